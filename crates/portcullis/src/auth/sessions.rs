//! Login step 1, device sessions, access and refresh tokens.

use secrecy::SecretString;
use tracing::instrument;

use super::codes::{issue_key, retire_pending_logins, KeyFor, StepOne};
use crate::audit::{self, Event, Kind};
use crate::config::LoginVerification;
use crate::crypto::{new_refresh_token, token_hash};
use crate::domain::LoginName;
use crate::error::ApiError;
use crate::password;
use crate::services::Services;
use crate::store::keys::Purpose;
use crate::store::sessions::{self as store, Device, Session};
use crate::store::users::{self, User};
use crate::store::Conn;

/// Where a request came from, as recorded on its device session.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The holder of a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub session_id: String,
}

/// Tokens for a device session.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub device_id: String,
    pub session_id: String,
    pub user: User,
}

pub struct Login {
    pub login: LoginName,
    pub password: SecretString,
    pub device: Device,
}

pub enum LoginOutcome {
    /// A code was mailed; the client continues with `verify`.
    Code(StepOne),
    /// No code was needed (policy `never`, or `new_device` on a known device).
    Tokens(Box<Grant>),
}

/// Login step 1: checks the password, then decides whether a code is needed.
#[instrument(skip_all)]
pub async fn login(s: &Services, input: Login, client: &Client) -> Result<LoginOutcome, ApiError> {
    let user = users::by_login(&mut *s.db.pool().acquire().await?, input.login.as_str()).await?;
    // Unknown user, no password and wrong password all cost one hash and give one answer.
    let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let ok = s.hasher.verify(&input.password, stored).await?;
    let now = s.now();
    let user = match user {
        Some(user) if ok => user,
        user => {
            let event = Event {
                user_id: user.as_ref().map(|u| u.id.as_str()),
                ..Event::new(Kind::LoginFailed)
            };
            let event = event.ip(client.ip.as_deref()).detail("invalid_credentials");
            audit::record(&mut *s.db.pool().acquire().await?, event, now).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    if user.is_disabled() {
        let event = Event::new(Kind::LoginFailed).user(&user.id);
        let event = event.ip(client.ip.as_deref()).detail("account_disabled");
        audit::record(&mut *s.db.pool().acquire().await?, event, now).await?;
        return Err(ApiError::AccountDisabled);
    }
    let needs_code = !user.is_verified()
        || match s.config.login_verification {
            LoginVerification::Always => true,
            LoginVerification::Never => false,
            LoginVerification::NewDevice => match &input.device.device_id {
                Some(device_id) => {
                    !store::live_for_device(
                        &mut *s.db.pool().acquire().await?,
                        &user.id,
                        device_id,
                        now,
                    )
                    .await?
                }
                None => true,
            },
        };
    let mut tx = s.db.pool().begin().await?;
    let outcome = if needs_code {
        let purpose = if user.is_verified() {
            Purpose::Login
        } else {
            Purpose::Register
        };
        let key = KeyFor {
            user_id: &user.id,
            email: &user.email,
            purpose,
            device: Some(&input.device),
            password_hash: None,
        };
        let email_key = issue_key(s, &mut tx, &key, now).await?;
        LoginOutcome::Code(StepOne {
            email_key,
            email: user.email,
            is_register: purpose == Purpose::Register,
        })
    } else {
        let grant = start_session(s, &mut tx, user, input.device, client, now).await?;
        let event = Event::new(Kind::LoginSucceeded)
            .user(&grant.user.id)
            .session(&grant.session_id);
        audit::record(
            &mut tx,
            event.ip(client.ip.as_deref()).detail("password"),
            now,
        )
        .await?;
        LoginOutcome::Tokens(Box::new(grant))
    };
    tx.commit().await?;
    if needs_code {
        s.mailer.wake();
    }
    Ok(outcome)
}

/// Opens a device session (replacing a live one on the same device) and issues its tokens.
pub(super) async fn start_session(
    s: &Services,
    tx: &mut Conn,
    user: User,
    device: Device,
    client: &Client,
    now: i64,
) -> Result<Grant, ApiError> {
    let device_id = device.device_id.clone().unwrap_or_else(|| {
        uuid::Builder::from_random_bytes(s.secrets.random())
            .into_uuid()
            .to_string()
    });
    store::revoke_device(tx, &user.id, &device_id, "replaced by a new login", now).await?;
    let session_id = s.secrets.random_id("ses_");
    let expires_at = now + s.config.refresh_ttl.as_secs() as i64;
    let new = store::NewSession {
        id: &session_id,
        user_id: &user.id,
        device_id: &device_id,
        device: &device,
        ip: client.ip.as_deref(),
        user_agent: client.user_agent.as_deref(),
        expires_at,
    };
    store::insert(tx, &new, now).await?;
    let refresh_token = new_refresh_token(&s.secrets);
    store::insert_refresh(
        tx,
        &token_hash(&refresh_token),
        &session_id,
        expires_at,
        now,
    )
    .await?;
    let access_token = s.tokens.issue(&s.secrets, &user.id, &session_id, now)?;
    Ok(Grant {
        access_token,
        refresh_token,
        expires_in: s.tokens.access_ttl(),
        refresh_expires_in: expires_at - now,
        device_id,
        session_id,
        user,
    })
}

/// Exchanges a refresh token for a new access token (and, with rotation, a
/// new refresh token). See SPEC §5 for the grace window and reuse detection.
#[instrument(skip_all)]
pub async fn refresh(s: &Services, token: &str, client: &Client) -> Result<Grant, ApiError> {
    let now = s.now();
    let hash = token_hash(token);
    let mut conn = s.db.pool().acquire().await?;
    let found = store::find_refresh(&mut conn, &hash, now).await?;
    let Some(stored) = found.filter(|t| t.session_live != 0 && t.expires_at > now) else {
        return Err(ApiError::RefreshTokenInvalid);
    };
    let user = users::by_id(&mut conn, &stored.user_id)
        .await?
        .ok_or(ApiError::RefreshTokenInvalid)?;
    if user.is_disabled() {
        return Err(ApiError::RefreshTokenInvalid);
    }
    drop(conn);

    let refresh_token = if !s.config.refresh_rotation {
        store::touch(
            &mut *s.db.pool().acquire().await?,
            &stored.session_id,
            client.ip.as_deref(),
            now,
        )
        .await?;
        token.to_owned()
    } else {
        let successor = s.secrets.successor_refresh_token(token);
        let mut tx = s.db.pool().begin().await?;
        let rotated_at = if store::mark_rotated(&mut tx, &hash, now).await? {
            store::insert_refresh(
                &mut tx,
                &token_hash(&successor),
                &stored.session_id,
                stored.expires_at,
                now,
            )
            .await?;
            store::touch(&mut tx, &stored.session_id, client.ip.as_deref(), now).await?;
            None
        } else {
            // Rotated before, or by a racing request a moment ago.
            store::rotated_at(&mut tx, &hash).await?
        };
        if let Some(rotated_at) = rotated_at {
            if now - rotated_at > s.config.refresh_grace.as_secs() as i64 {
                store::revoke(&mut tx, &stored.session_id, "refresh token reuse", now).await?;
                let event = Event::new(Kind::RefreshReused)
                    .user(&user.id)
                    .session(&stored.session_id);
                audit::record(&mut tx, event.ip(client.ip.as_deref()), now).await?;
                tx.commit().await?;
                return Err(ApiError::RefreshTokenReused);
            }
        }
        tx.commit().await?;
        successor
    };
    let access_token = s
        .tokens
        .issue(&s.secrets, &user.id, &stored.session_id, now)?;
    Ok(Grant {
        access_token,
        refresh_token,
        expires_in: s.tokens.access_ttl(),
        refresh_expires_in: stored.expires_at - now,
        device_id: stored.device_id,
        session_id: stored.session_id,
        user,
    })
}

/// Checks an access token and that its session is still live.
pub async fn authenticate(s: &Services, token: &str) -> Result<Caller, ApiError> {
    let now = s.now();
    let claims = s.tokens.verify(token, now)?;
    let user_id = store::live_user(&mut *s.db.pool().acquire().await?, &claims.sid, now).await?;
    match user_id {
        Some(user_id) if user_id == claims.sub => Ok(Caller {
            user_id,
            session_id: claims.sid,
        }),
        _ => Err(ApiError::InvalidToken),
    }
}

pub async fn me(s: &Services, caller: &Caller) -> Result<User, ApiError> {
    let user = users::by_id(&mut *s.db.pool().acquire().await?, &caller.user_id).await?;
    user.filter(|u| !u.is_disabled())
        .ok_or(ApiError::InvalidToken)
}

pub async fn logout(s: &Services, caller: &Caller) -> Result<(), ApiError> {
    let now = s.now();
    let mut tx = s.db.pool().begin().await?;
    store::revoke(&mut tx, &caller.session_id, "logout", now).await?;
    revoked(&mut tx, caller, "logout", now).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of the caller's account; returns how many were live.
pub async fn logout_all(s: &Services, caller: &Caller) -> Result<u64, ApiError> {
    let now = s.now();
    let mut tx = s.db.pool().begin().await?;
    let count = store::revoke_all(&mut tx, &caller.user_id, None, "logout everywhere", now).await?;
    revoked(&mut tx, caller, "logout_all", now).await?;
    tx.commit().await?;
    Ok(count)
}

async fn revoked(tx: &mut Conn, caller: &Caller, why: &str, now: i64) -> sqlx::Result<()> {
    let event = Event::new(Kind::SessionRevoked)
        .user(&caller.user_id)
        .session(&caller.session_id);
    audit::record(tx, event.detail(why), now).await
}

pub async fn list_sessions(s: &Services, caller: &Caller) -> Result<Vec<Session>, ApiError> {
    Ok(store::list_live(&mut *s.db.pool().acquire().await?, &caller.user_id, s.now()).await?)
}

pub async fn revoke_device(s: &Services, caller: &Caller, device_id: &str) -> Result<(), ApiError> {
    let now = s.now();
    let mut tx = s.db.pool().begin().await?;
    let count =
        store::revoke_device(&mut tx, &caller.user_id, device_id, "revoked by user", now).await?;
    if count == 0 {
        return Err(ApiError::NotFound);
    }
    revoked(&mut tx, caller, "revoked_device", now).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the password of the caller; every other session of the account ends.
#[instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn change_password(
    s: &Services,
    caller: &Caller,
    current: &SecretString,
    new: &SecretString,
) -> Result<(), ApiError> {
    let user = me(s, caller).await?;
    if !s
        .hasher
        .verify(current, user.password_hash.as_deref())
        .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    password::check_policy(new, s.config.password_min_length)?;
    let hash = s.hasher.hash(&s.secrets, new).await?;
    let now = s.now();
    let mut tx = s.db.pool().begin().await?;
    users::set_password(&mut tx, &user.id, &hash, now).await?;
    store::revoke_all(
        &mut tx,
        &user.id,
        Some(&caller.session_id),
        "password changed",
        now,
    )
    .await?;
    retire_pending_logins(&mut tx, &user.id, now).await?;
    let event = Event::new(Kind::PasswordChanged)
        .user(&user.id)
        .session(&caller.session_id);
    audit::record(&mut tx, event, now).await?;
    tx.commit().await?;
    Ok(())
}
