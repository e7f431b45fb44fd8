//! Opening a device session and issuing its tokens: what every flow that
//! ends in a login shares.

use super::caller::Client;
use crate::clock::Timestamp;
use crate::crypto::{new_refresh_token, token_hash};
use crate::domain::{Device, Label};
use crate::error::ApiError;
use crate::services::{Services, Work};
use crate::store::sessions;
use crate::store::users::User;

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

/// Opens a device session (replacing a live one on the same device) and issues its tokens.
pub(super) async fn start_session(
    s: &Services,
    work: &mut Work<'_>,
    user: User,
    mut device: Device,
    client: &Client,
    now: Timestamp,
) -> Result<Grant, ApiError> {
    let device_id = device
        .id
        .get_or_insert_with(|| {
            let generated = uuid::Builder::from_random_bytes(s.secrets.random()).into_uuid();
            Label::trusted(generated.to_string())
        })
        .as_str()
        .to_owned();
    sessions::revoke_device(work, &user.id, &device_id, "replaced by a new login", now).await?;
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
    sessions::insert(work, &new, now).await?;
    let refresh_token = new_refresh_token(&s.secrets);
    sessions::insert_refresh(
        work,
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
        issued_at: now,
    })
}
