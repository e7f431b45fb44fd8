//! Emailed codes: registration, the login code, password reset, resends.

use secrecy::SecretString;
use tracing::instrument;

use super::sessions::{start_session, Client, Grant};
use crate::audit::{self, Event, Kind};
use crate::crypto::{ct_eq, hex};
use crate::domain::{Code, Email, Username};
use crate::error::ApiError;
use crate::mail::Template;
use crate::password;
use crate::services::Services;
use crate::store::keys::{self, EmailKey, Purpose};
use crate::store::sessions::{self as session_store, Device};
use crate::store::{unique_violation, users, Conn};

/// The answer of a step that mailed a code.
#[derive(Debug, Clone)]
pub struct StepOne {
    pub email_key: String,
    pub email: String,
    pub is_register: bool,
}

pub struct Register {
    pub email: Email,
    pub username: Option<Username>,
    pub password: SecretString,
    pub name: Option<String>,
}

/// Creates an account and mails a registration code. An address whose
/// account is not verified yet gets a fresh key that carries the new password,
/// set only if that key's code is verified. An address with a verified account
/// gets the same answer, a key no code will ever match, and a notice by email.
#[instrument(skip_all, fields(email = %input.email.as_str()))]
pub async fn register(s: &Services, input: Register, client: &Client) -> Result<StepOne, ApiError> {
    password::check_policy(&input.password, s.config.password_min_length)?;
    let hash = s.hasher.hash(&s.secrets, &input.password).await?;
    let now = s.now();
    let email = input.email.as_str();
    let existing = users::by_email(&mut *s.db.pool().acquire().await?, email).await?;

    let mut tx = s.db.pool().begin().await?;
    let email_key = match existing {
        Some(user) if user.is_verified() => {
            s.mailer
                .enqueue(&mut tx, email, Template::AccountExists, None, 0, now)
                .await?;
            let event = Event::new(Kind::Registered)
                .user(&user.id)
                .ip(client.ip.as_deref());
            audit::record(&mut tx, event.detail("address_taken"), now).await?;
            decoy_key(s, &mut tx, email, Purpose::Register, now).await?
        }
        existing => {
            let user_id = match existing {
                Some(user) => user.id,
                None => {
                    let id = s.secrets.random_id("usr_");
                    let new = users::NewUser {
                        id: &id,
                        email,
                        username: input.username.as_ref().map(Username::as_str),
                        name: input.name.as_deref(),
                        password_hash: &hash,
                        verified: false,
                    };
                    users::insert(&mut tx, &new, now).await.map_err(taken)?;
                    id
                }
            };
            let event = Event::new(Kind::Registered)
                .user(&user_id)
                .ip(client.ip.as_deref());
            audit::record(&mut tx, event, now).await?;
            let key = KeyFor {
                user_id: &user_id,
                email,
                purpose: Purpose::Register,
                device: None,
                password_hash: Some(&hash),
            };
            issue_key(s, &mut tx, &key, now).await?
        }
    };
    tx.commit().await?;
    s.mailer.wake();
    Ok(StepOne {
        email_key,
        email: email.to_owned(),
        is_register: true,
    })
}

/// A failed insert because the email or username is in use.
fn taken(e: sqlx::Error) -> ApiError {
    match unique_violation(&e) {
        Some("username") => ApiError::field("username", "This username is already taken"),
        // A racing registration of the same address: answer as for a taken one would
        // reveal it; ask the client to retry, which then takes the verified-or-not path.
        Some(_) => ApiError::Unavailable("registration race"),
        None => e.into(),
    }
}

/// What a new email key is for.
pub(super) struct KeyFor<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub purpose: Purpose,
    /// Device fields of login step 1, for the session that verifying opens.
    pub device: Option<&'a Device>,
    /// A registration's password, set on the account when the code is verified.
    pub password_hash: Option<&'a str>,
}

/// Creates a key, mails its code (inside `tx`) and retires the account's
/// oldest live keys beyond the allowed number.
pub(super) async fn issue_key(
    s: &Services,
    tx: &mut Conn,
    key: &KeyFor<'_>,
    now: i64,
) -> Result<String, ApiError> {
    let email_key = new_email_key(s);
    let code = s.secrets.random_code(s.config.code_digits);
    let device = key
        .device
        .map(serde_json::to_string)
        .transpose()
        .map_err(anyhow::Error::from)?;
    let new = keys::NewKey {
        email_key: &email_key,
        user_id: Some(key.user_id),
        email: key.email,
        purpose: key.purpose,
        code_hash: &s.secrets.code_hash(&email_key, &code),
        expires_at: now + s.config.code_ttl.as_secs() as i64,
        device: device.as_deref(),
        password_hash: key.password_hash,
    };
    keys::insert(tx, &new, now).await?;
    let sent = Event::new(Kind::CodeSent)
        .user(key.user_id)
        .detail(key.purpose.as_str());
    audit::record(tx, sent, now).await?;
    keys::retire_beyond(
        tx,
        key.user_id,
        &email_key,
        s.config.live_keys_per_account,
        now,
    )
    .await?;
    s.mailer
        .enqueue(
            tx,
            key.email,
            template_for(key.purpose),
            Some(&code),
            code_minutes(s),
            now,
        )
        .await?;
    Ok(email_key)
}

/// A key that behaves like a real one but whose stored hash no code matches.
async fn decoy_key(
    s: &Services,
    tx: &mut Conn,
    email: &str,
    purpose: Purpose,
    now: i64,
) -> Result<String, ApiError> {
    let email_key = new_email_key(s);
    let key = keys::NewKey {
        email_key: &email_key,
        user_id: None,
        email,
        purpose,
        code_hash: &hex(&s.secrets.random::<32>()),
        expires_at: now + s.config.code_ttl.as_secs() as i64,
        device: None,
        password_hash: None,
    };
    keys::insert(tx, &key, now).await?;
    Ok(email_key)
}

/// After a password change, codes started with the old password must not finish.
pub(super) async fn retire_pending_logins(
    tx: &mut Conn,
    user_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    for purpose in [Purpose::Login, Purpose::Reset] {
        keys::retire_purpose(tx, user_id, purpose, now).await?;
    }
    Ok(())
}

fn new_email_key(s: &Services) -> String {
    uuid::Builder::from_random_bytes(s.secrets.random())
        .into_uuid()
        .to_string()
}

fn template_for(purpose: Purpose) -> Template {
    match purpose {
        Purpose::Register => Template::RegisterCode,
        Purpose::Login => Template::LoginCode,
        Purpose::Reset => Template::ResetCode,
    }
}

fn code_minutes(s: &Services) -> i64 {
    (s.config.code_ttl.as_secs() as i64 + 59) / 60
}

/// Checks a code against its key, spending one attempt atomically first so
/// that concurrent guesses never exceed the budget. On success the key is
/// consumed inside `tx`.
async fn check_code(
    s: &Services,
    tx: &mut Conn,
    email_key: &str,
    code: &Code,
    accepts: impl Fn(Purpose) -> bool,
    now: i64,
) -> Result<EmailKey, ApiError> {
    let max = s.config.code_max_attempts;
    let Some(key) = keys::spend_attempt(tx, email_key, max, now).await? else {
        let key = keys::get(tx, email_key).await?;
        return Err(match key {
            Some(k) if k.used_at.is_none() && k.expires_at > now && k.attempts >= max => {
                ApiError::VerificationAttemptsExceeded
            }
            _ => ApiError::VerificationExpired,
        });
    };
    if !key.purpose().is_some_and(accepts) {
        return Err(ApiError::VerificationExpired);
    }
    if !ct_eq(
        &s.secrets.code_hash(email_key, code.as_str()),
        &key.code_hash,
    ) {
        let event = Event {
            user_id: key.user_id.as_deref(),
            ..Event::new(Kind::CodeFailed)
        };
        audit::record(tx, event.detail(&key.purpose), now).await?;
        return Err(ApiError::InvalidVerificationCode {
            attempts_remaining: max - key.attempts,
        });
    }
    if !keys::consume(tx, email_key, now).await? {
        return Err(ApiError::VerificationExpired);
    }
    Ok(key)
}

/// Login step 2 (and registration's): the code for tokens.
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
    // Say so when the flag contradicts the key, before an attempt is spent.
    if let Some(flag) = is_register {
        let key = keys::get(&mut *s.db.pool().acquire().await?, email_key).await?;
        if let Some(purpose) = key.as_ref().and_then(EmailKey::purpose) {
            if purpose != Purpose::Reset && flag != (purpose == Purpose::Register) {
                return Err(ApiError::field(
                    "is_register",
                    format!(
                        "This key was issued for {}",
                        if flag { "a login" } else { "a registration" }
                    ),
                ));
            }
        }
    }
    // A failed check commits too, so the attempt it spent counts.
    let mut tx = s.db.pool().begin().await?;
    let key = match check_code(s, &mut tx, email_key, code, |p| p != Purpose::Reset, now).await {
        Ok(key) => key,
        Err(e) => {
            tx.commit().await?;
            return Err(e);
        }
    };
    let user_id = key.user_id.clone().ok_or(ApiError::VerificationExpired)?;
    let mut user = users::by_id(&mut tx, &user_id)
        .await?
        .ok_or(ApiError::VerificationExpired)?;
    if user.is_disabled() {
        return Err(ApiError::AccountDisabled);
    }
    if key.purpose() == Some(Purpose::Register) {
        if let Some(hash) = &key.password_hash {
            users::set_password(&mut tx, &user.id, hash, now).await?;
        }
        users::mark_verified(&mut tx, &user.id, now).await?;
        // Other registration keys carry other passwords: none may apply any more.
        keys::retire_purpose(&mut tx, &user.id, Purpose::Register, now).await?;
        user.verified = 1;
    }
    // Device fields given now take precedence over those given at step 1.
    let earlier: Device = key
        .device
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let device = merge_device(device, earlier);
    let grant = start_session(s, &mut tx, user, device, client, now).await?;
    let event = Event::new(Kind::LoginSucceeded)
        .user(&grant.user.id)
        .session(&grant.session_id);
    audit::record(&mut tx, event.ip(client.ip.as_deref()).detail("code"), now).await?;
    tx.commit().await?;
    Ok(grant)
}

fn merge_device(now: Device, earlier: Device) -> Device {
    Device {
        device_id: now.device_id.or(earlier.device_id),
        device_name: now.device_name.or(earlier.device_name),
        platform: now.platform.or(earlier.platform),
        operating_system: now.operating_system.or(earlier.operating_system),
        location: now.location.or(earlier.location),
        latitude: now.latitude.or(earlier.latitude),
        longitude: now.longitude.or(earlier.longitude),
        fcm_token: now.fcm_token.or(earlier.fcm_token),
    }
}

/// Sends a fresh code for a key; the old code stops working. Attempts are
/// not reset, the cooldown counts from the previous send, resends are capped.
#[instrument(skip_all)]
pub async fn resend(s: &Services, email_key: &str) -> Result<StepOne, ApiError> {
    let now = s.now();
    let key = keys::get(&mut *s.db.pool().acquire().await?, email_key).await?;
    let Some(key) = key.filter(|k| k.used_at.is_none()) else {
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
    let purpose = key.purpose().ok_or(ApiError::VerificationExpired)?;
    let code = s.secrets.random_code(s.config.code_digits);
    // A decoy keeps a hash no code matches.
    let code_hash = match key.user_id {
        Some(_) => s.secrets.code_hash(email_key, &code),
        None => hex(&s.secrets.random::<32>()),
    };
    let mut tx = s.db.pool().begin().await?;
    let update = keys::Resend {
        email_key,
        code_hash: &code_hash,
        expires_at: now + s.config.code_ttl.as_secs() as i64,
        sent_before: now - cooldown,
        max_resends: s.config.resend_max,
        max_attempts: s.config.code_max_attempts,
    };
    if !keys::resend(&mut tx, &update, now).await? {
        return Err(ApiError::ResendTooSoon {
            retry_after: cooldown,
        });
    }
    // A decoy sends nothing; its answer is the same.
    if let Some(user_id) = &key.user_id {
        let sent = Event::new(Kind::CodeSent).user(user_id).detail("resend");
        audit::record(&mut tx, sent, now).await?;
        s.mailer
            .enqueue(
                &mut tx,
                &key.email,
                template_for(purpose),
                Some(&code),
                code_minutes(s),
                now,
            )
            .await?;
    }
    tx.commit().await?;
    s.mailer.wake();
    Ok(StepOne {
        email_key: email_key.to_owned(),
        email: key.email,
        is_register: purpose == Purpose::Register,
    })
}

/// Mails a reset code if the address has an account; the answer is the same either way.
#[instrument(skip_all)]
pub async fn forgot_password(s: &Services, email: &Email) -> Result<StepOne, ApiError> {
    let now = s.now();
    let user = users::by_email(&mut *s.db.pool().acquire().await?, email.as_str()).await?;
    let mut tx = s.db.pool().begin().await?;
    let email_key = match user.filter(|u| !u.is_disabled()) {
        Some(user) => {
            let key = KeyFor {
                user_id: &user.id,
                email: &user.email,
                purpose: Purpose::Reset,
                device: None,
                password_hash: None,
            };
            issue_key(s, &mut tx, &key, now).await?
        }
        None => decoy_key(s, &mut tx, email.as_str(), Purpose::Reset, now).await?,
    };
    tx.commit().await?;
    s.mailer.wake();
    Ok(StepOne {
        email_key,
        email: email.as_str().to_owned(),
        is_register: false,
    })
}

/// Sets a new password with a reset code; every session of the account ends.
#[instrument(skip_all)]
pub async fn reset_password(
    s: &Services,
    email_key: &str,
    code: &Code,
    new_password: &SecretString,
    client: &Client,
) -> Result<(), ApiError> {
    password::check_policy(new_password, s.config.password_min_length)?;
    let hash = s.hasher.hash(&s.secrets, new_password).await?;
    let now = s.now();
    let mut tx = s.db.pool().begin().await?;
    let key = match check_code(s, &mut tx, email_key, code, |p| p == Purpose::Reset, now).await {
        Ok(key) => key,
        Err(e) => {
            tx.commit().await?;
            return Err(e);
        }
    };
    let user_id = key.user_id.ok_or(ApiError::VerificationExpired)?;
    users::set_password(&mut tx, &user_id, &hash, now).await?;
    // The code proves the address is theirs.
    users::mark_verified(&mut tx, &user_id, now).await?;
    session_store::revoke_all(&mut tx, &user_id, None, "password reset", now).await?;
    retire_pending_logins(&mut tx, &user_id, now).await?;
    let event = Event::new(Kind::PasswordReset)
        .user(&user_id)
        .ip(client.ip.as_deref());
    audit::record(&mut tx, event, now).await?;
    tx.commit().await?;
    Ok(())
}
