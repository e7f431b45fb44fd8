//! Logging in: the password step, the emailed code that completes it (also
//! for registrations), and sending a fresh code.

use secrecy::SecretString;
use tracing::instrument;

use super::caller::{Client, Who};
use super::email_keys::{self, CodeCheck, KeyFor, StepOne};
use super::grant::{start_session, Grant};
use super::limits;
use super::totp::{self, Factor};
use crate::audit::Kind;
use crate::config::LoginVerification;
use crate::crypto::hex;
use crate::domain::{Code, Device, LoginName};
use crate::error::ApiError;
use crate::services::Services;
use crate::store::keys::{self, Purpose};
use crate::store::{sessions, unique_violation, users};

pub struct Login {
    pub login: LoginName,
    pub password: SecretString,
    /// A TOTP code or a recovery code, for accounts with TOTP enabled.
    pub totp_code: Option<SecretString>,
    pub device: Device,
}

pub enum LoginOutcome {
    /// A code was mailed; the client continues with `verify`.
    Code(StepOne),
    /// No code was needed (policy `never`, or `new_device` on a known device).
    Tokens(Box<Grant>),
    /// The password is right and TOTP is enabled, but no TOTP code was sent.
    SecondFactor,
}

/// Login step 1: checks the password, then the TOTP code when the account
/// has TOTP enabled, then decides whether an emailed code is needed. A place
/// for the hash is taken first, then a try of the account's and the client's
/// login budgets, given back when the password (and TOTP code) are right.
#[instrument(skip_all)]
pub async fn login(s: &Services, input: Login, client: &Client) -> Result<LoginOutcome, ApiError> {
    // When hashing is full, answer 503 before reading or spending anything.
    let place = s.hasher.reserve()?;
    let user = users::by_login(&mut *s.read().await?, input.login.as_str()).await?;
    let now = s.now();
    // An unknown login name has a budget of its own, so that its answers are the same.
    let user_id = user.as_ref().map(|u| u.id.clone());
    let account = match &user_id {
        Some(id) => id.clone(),
        None => s.secrets.pseudonym(input.login.as_str()),
    };
    let buckets = limits::login(client, &account);
    let who = Who {
        client,
        user_id: user_id.as_deref(),
        device_id: input.device.id.as_ref().map(|id| id.as_str()),
    };
    limits::spend_now(s, &buckets, who, now).await?;
    // Unknown user, no password and wrong password all cost one hash and give one answer.
    let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let ok = s.hasher.verify_in(place, &input.password, stored).await?;
    let user = match user {
        Some(user) if ok && !user.disabled => user,
        user => {
            // The disabled answer is only for the right password.
            let (detail, error) = match &user {
                Some(u) if ok && u.disabled => ("account_disabled", ApiError::AccountDisabled),
                _ => ("invalid_credentials", ApiError::InvalidCredentials),
            };
            let mut work = s.autocommit().await?;
            work.audit(who.event(Kind::LoginFailed).detail(detail), now);
            work.commit().await?;
            return Err(error);
        }
    };
    let needs_code = !user.verified
        || match s.config.login_verification {
            LoginVerification::Always => true,
            LoginVerification::Never => false,
            LoginVerification::NewDevice => match &input.device.id {
                Some(device_id) => {
                    let mut conn = s.read().await?;
                    !sessions::live_for_device(&mut conn, &user.id, device_id.as_str(), now).await?
                }
                None => true,
            },
        };
    // Without TOTP every write of this unit waits for its end and goes as one
    // statement, which needs no transaction around it; with TOTP, a code
    // spent and its audit row must stand or fall together.
    let mut work = match user.totp_enabled {
        true => s.begin().await?,
        false => s.autocommit().await?,
    };
    let code = input.totp_code.as_ref();
    match totp::second_factor(s, &mut work, &user, code, now).await? {
        Factor::Passed => {}
        Factor::Missing => {
            // The password was right: the client asks for the code and comes back.
            limits::refund(&mut work, &buckets);
            work.commit().await?;
            return Ok(LoginOutcome::SecondFactor);
        }
        Factor::Wrong => {
            // The try spent stays spent: TOTP guesses count like password guesses.
            let event = who.event(Kind::LoginFailed).detail("invalid_totp_code");
            work.audit(event, now);
            work.commit().await?;
            return Err(ApiError::InvalidTotpCode);
        }
    }
    limits::refund(&mut work, &buckets);
    if !needs_code {
        let opened =
            start_session(s, &mut work, user, input.device, client, "password", now).await?;
        work.commit().await?;
        return Ok(LoginOutcome::Tokens(Box::new(opened.sign(s, now)?)));
    }
    let purpose = if user.verified {
        Purpose::Login
    } else {
        Purpose::Register
    };
    let key = KeyFor {
        user_id: Some(&user.id),
        email: &user.email,
        purpose,
        device: Some(&input.device),
        password_hash: None,
        username: None,
        // Checked above when enabled.
        second_factor: user.totp_enabled,
    };
    let email_key = email_keys::issue(s, &mut work, &key, now)?;
    work.commit().await?;
    Ok(LoginOutcome::Code(StepOne {
        email_key,
        email: user.email,
        is_register: purpose == Purpose::Register,
    }))
}

/// Login step 2 (and registration's): the code for tokens. `is_register`,
/// when given, must match what the key was issued for.
#[instrument(skip_all)]
pub async fn verify(
    s: &Services,
    email_key: &str,
    code: &Code,
    is_register: Option<bool>,
    device: Device,
    client: &Client,
) -> Result<Grant, ApiError> {
    let now = s.now();
    let purposes: &[Purpose] = match is_register {
        None => &[Purpose::Register, Purpose::Login],
        Some(true) => &[Purpose::Register],
        Some(false) => &[Purpose::Login],
    };
    let mut work = s.begin().await?;
    let check = email_keys::check_code(s, &mut work, email_key, code, purposes, client, now);
    let key = match check.await? {
        CodeCheck::Accepted(key) => key,
        CodeCheck::IssuedFor(issued @ (Purpose::Register | Purpose::Login)) => {
            let issued = if issued == Purpose::Register {
                "a registration"
            } else {
                "a login"
            };
            return Err(ApiError::field(
                "is_register",
                format!("This key was issued for {issued}"),
            ));
        }
        refused => {
            // The attempt it spent must stay counted.
            work.commit().await?;
            return Err(refused.refusal());
        }
    };
    let user_id = key
        .user_id
        .as_deref()
        .ok_or(ApiError::VerificationExpired)?;
    let mut user = users::by_id(&mut work, user_id)
        .await?
        .ok_or(ApiError::VerificationExpired)?;
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
    if user.totp_enabled && !key.second_factor {
        // TOTP was enabled after this key's login step: that login must start
        // again and give a TOTP code. The key is spent.
        work.commit().await?;
        return Err(ApiError::VerificationExpired);
    }
    if key.purpose == Purpose::Register {
        if let Some(hash) = &key.password_hash {
            users::set_password(&mut work, &user.id, hash, now).await?;
        }
        // Register never said whether the username was taken; the owner sees it here.
        if let Some(username) = &key.username {
            users::set_username_if_free(&mut work, &user.id, username, now)
                .await
                .map_err(|e| match unique_violation(&e) {
                    // Taken by a verify racing this one: nothing was committed, the client may retry.
                    Some(_) => ApiError::Unavailable("username race"),
                    None => e.into(),
                })?;
        }
        users::mark_verified(&mut work, &user.id, now).await?;
        // Other registration keys carry other passwords: none may apply any more.
        keys::retire_purpose(&mut work, &user.id, Purpose::Register, now).await?;
        user = users::by_id(&mut work, &user.id)
            .await?
            .ok_or(ApiError::VerificationExpired)?;
    }
    // Device fields given now take precedence over those given at step 1.
    let device = device.or(key.device.unwrap_or_default());
    let opened = start_session(s, &mut work, user, device, client, "code", now).await?;
    work.commit().await?;
    opened.sign(s, now)
}

/// Sends a fresh code for a live key; the old code stops working. Attempts
/// are not reset, the cooldown counts from the previous send, resends are
/// capped, and each spends a try of the address's and the client's mail
/// budgets. A decoy's resend costs and answers the same and mails nothing.
#[instrument(skip_all)]
pub async fn resend(s: &Services, email_key: &str, client: &Client) -> Result<StepOne, ApiError> {
    let now = s.now();
    let key = keys::get(&mut *s.read().await?, email_key).await?;
    let Some(key) = key.filter(|k| k.is_live(now)) else {
        return Err(ApiError::VerificationExpired);
    };
    if key.attempts >= s.config.code_max_attempts || key.resends >= s.config.resend_max {
        return Err(ApiError::VerificationAttemptsExceeded);
    }
    let cooldown = s.config.resend_cooldown.as_secs() as i64;
    if now < key.sent_at + cooldown {
        return Err(ApiError::ResendTooSoon {
            retry_after: key.sent_at + cooldown - now,
        });
    }
    let address = s.secrets.pseudonym(&key.email);
    let buckets = limits::mail(client, &address);
    let who = Who {
        client,
        user_id: key.user_id.as_deref(),
        device_id: None,
    };
    limits::spend_now(s, &buckets, who, now).await?;
    let code = s.secrets.random_code(email_keys::digits(s, key.purpose));
    // A decoy keeps a hash no code matches.
    let code_hash = match key.user_id {
        Some(_) => s.secrets.code_hash(email_key, &code),
        None => hex(&s.secrets.random::<32>()),
    };
    let mut work = s.begin().await?;
    let update = keys::Resend {
        email_key,
        code_hash: &code_hash,
        expires_at: now + s.config.code_ttl.as_secs() as i64,
        sent_before: now - cooldown,
        max_resends: s.config.resend_max,
        max_attempts: s.config.code_max_attempts,
    };
    if !keys::resend(&mut work, &update, now).await? {
        return Err(ApiError::ResendTooSoon {
            retry_after: cooldown,
        });
    }
    work.audit(who.event(Kind::CodeSent).detail("resend"), now);
    let message = email_keys::message(s, key.purpose, &code);
    match key.user_id {
        Some(_) => work.mail(&key.email, message, now)?,
        None => work.withhold(&key.email, message, now)?,
    }
    work.commit().await?;
    Ok(StepOne {
        email_key: email_key.to_owned(),
        email: key.email,
        is_register: key.purpose == Purpose::Register,
    })
}
