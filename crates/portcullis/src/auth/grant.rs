//! Opening a device session and issuing its tokens: what every flow that
//! ends in a login shares.

use super::caller::Client;
use crate::audit::Kind;
use crate::clock::Timestamp;
use crate::crypto::{new_refresh_token, token_hash};
use crate::domain::{Device, Label};
use crate::error::ApiError;
use crate::services::{Services, Work};
use crate::store::refresh::{self, Family, Rotation};
use crate::store::sessions;
use crate::store::users::User;
use crate::tokens::Subject;

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
    pub issued_at: Timestamp,
}

/// A device session opened inside a unit of work, its access token not yet signed.
pub(super) struct Opened {
    pub(super) user: User,
    pub(super) session_id: String,
    device_id: String,
    refresh_token: String,
    expires_at: Timestamp,
}

impl Opened {
    /// Signs the access token, once the unit of work has committed: on
    /// SQLite units of work queue for the one writer, which must not wait
    /// for a signature.
    pub(super) fn sign(self, s: &Services, now: Timestamp) -> Result<Grant, ApiError> {
        let subject = Subject {
            user_id: &self.user.id,
            email: &self.user.email,
            session_id: &self.session_id,
            session_ends: self.expires_at,
        };
        let access = s.tokens.issue(&s.secrets, subject, now)?;
        Ok(Grant {
            access_token: access.token,
            refresh_token: self.refresh_token,
            expires_in: access.expires_in,
            refresh_expires_in: self.expires_at - now,
            device_id: self.device_id,
            session_id: self.session_id,
            user: self.user,
            issued_at: now,
        })
    }
}

/// Opens a device session (replacing a live one on the same device),
/// stores its refresh token and records the login, done `how`;
/// [`Opened::sign`] issues the access token.
pub(super) async fn start_session(
    s: &Services,
    work: &mut Work<'_>,
    user: User,
    mut device: Device,
    client: &Client,
    how: &str,
    now: Timestamp,
) -> Result<Opened, ApiError> {
    // A device named by the client replaces its earlier session; one named
    // here is new.
    let named = device.id.is_some();
    let device_id = device
        .id
        .get_or_insert_with(|| Label::trusted(s.secrets.random_uuid()))
        .as_str()
        .to_owned();
    let replaced = "replaced by a new login";
    if named && sessions::revoke_device(work, &user.id, &device_id, replaced, now).await? > 0 {
        work.ends_access();
    }
    let session_id = s.secrets.random_id("ses_");
    let expires_at = now + s.config.refresh_ttl.as_secs() as i64;
    let new = sessions::NewSession {
        id: &session_id,
        user_id: &user.id,
        device_id: &device_id,
        device: &device,
        ip: client.ip.as_deref(),
        user_agent: client.user_agent.as_deref(),
        expires_at,
    };
    let refresh_token = new_refresh_token(&s.secrets);
    let event = client
        .event(Kind::LoginSucceeded)
        .user(&user.id)
        .session(&session_id)
        .detail(how);
    let entry = work.announce(event, now);
    sessions::open(work.later(), &new, &token_hash(&refresh_token), &entry, now);
    Ok(Opened {
        user,
        session_id,
        device_id,
        refresh_token,
        expires_at,
    })
}

/// What presenting a refresh token yields.
pub(super) enum Renewal {
    /// The refresh token to hand back: the successor, or with rotation off the same one.
    Token(String),
    /// An old token came back after the grace window: its session must end.
    Reused,
}

/// Renews a live refresh token of `session_id` inside `work` (SPEC §5):
/// with rotation on, the successor is derived from the token, so that racing
/// requests within the grace window get the same answer.
pub(super) async fn renew(
    s: &Services,
    work: &mut Work<'_>,
    family: Family,
    token: &str,
    session_id: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<Renewal, ApiError> {
    if !s.config.refresh_rotation {
        return Ok(Renewal::Token(token.to_owned()));
    }
    let successor = s.secrets.successor_refresh_token(token);
    match refresh::rotate(work, family, &token_hash(token), now).await? {
        Rotation::Rotated => {
            let hash = token_hash(&successor);
            refresh::insert(work, family, &hash, session_id, expires_at, now).await?;
        }
        Rotation::RotatedAt(at) if now - at <= s.config.refresh_grace.as_secs() as i64 => {}
        Rotation::RotatedAt(_) => return Ok(Renewal::Reused),
        Rotation::Gone => return Err(ApiError::RefreshTokenInvalid),
    }
    Ok(Renewal::Token(successor))
}
