//! A user's API keys: making one (shown once), listing and revoking them,
//! and recognising one on a request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tracing::instrument;

use super::caller::{Caller, Client};
use super::recognise::KEY_HASH_KIND;
use crate::audit::Kind;
use crate::clock::Timestamp;
use crate::crypto::Secrets;
use crate::domain::{KeyName, Scopes};
use crate::error::ApiError;
use crate::services::Services;
use crate::store::api_keys::{self as store, ApiKey, NewApiKey};
use crate::store::Conn;

/// Live keys one account may hold.
pub const MAX_LIVE_KEYS: i64 = 100;

pub struct NewKey {
    pub name: KeyName,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
}

/// A new key: the only time its secret is seen.
pub struct CreatedKey {
    pub key: String,
    pub api_key: ApiKey,
}

/// Makes a key for the caller's own account (never another's: the account
/// comes from the session, not from the request body).
#[instrument(skip_all)]
pub async fn create_api_key(
    s: &Services,
    caller: &Caller,
    input: NewKey,
    client: &Client,
) -> Result<CreatedKey, ApiError> {
    let now = s.now();
    let mut work = s.begin().await?;
    let created = issue_api_key(&mut work, &s.secrets, &caller.user_id, input, now).await?;
    let event = client
        .event(Kind::ApiKeyCreated)
        .user(&caller.user_id)
        .session(&caller.session_id);
    work.audit(event.detail(&created.api_key.id), now);
    work.commit().await?;
    Ok(created)
}

/// Makes a key for `user_id` inside a transaction (the API's, or the CLI's).
pub async fn issue_api_key(
    tx: &mut Conn,
    secrets: &Secrets,
    user_id: &str,
    input: NewKey,
    now: Timestamp,
) -> Result<CreatedKey, ApiError> {
    if input.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::field("expires_at", "Must be in the future"));
    }
    let key = format!("ak_{}", URL_SAFE_NO_PAD.encode(secrets.random::<32>()));
    let id = secrets.random_id("key_");
    let new = NewApiKey {
        id: &id,
        user_id,
        name: input.name.as_str(),
        key_hash: &secrets.secret_hash(KEY_HASH_KIND, &key),
        scopes: input.scopes.as_slice(),
        expires_at: input.expires_at,
    };
    // Inserted first, so that the count sees it and racing creations cannot overshoot.
    store::insert(tx, &new, now).await?;
    if store::count_live(tx, user_id, now).await? > MAX_LIVE_KEYS {
        return Err(ApiError::field(
            "api_keys",
            format!("At most {MAX_LIVE_KEYS} live keys per account; revoke one first"),
        ));
    }
    let api_key = ApiKey {
        id,
        user_id: user_id.to_owned(),
        name: input.name.into_string(),
        scopes: input.scopes.into_vec(),
        created_at: now,
        expires_at: input.expires_at,
        last_used_at: None,
    };
    Ok(CreatedKey { key, api_key })
}

pub async fn list_api_keys(s: &Services, user_id: &str) -> Result<Vec<ApiKey>, ApiError> {
    Ok(store::list(&mut *s.read().await?, user_id).await?)
}

/// Revokes one of the caller's keys, at once. Someone else's key, an
/// unknown one and one revoked already are all `NOT_FOUND`.
#[instrument(skip_all)]
pub async fn revoke_api_key(
    s: &Services,
    caller: &Caller,
    id: &str,
    client: &Client,
) -> Result<(), ApiError> {
    let now = s.now();
    let mut work = s.begin().await?;
    store::revoke(&mut work, id, Some(&caller.user_id), now)
        .await?
        .ok_or(ApiError::NotFound)?;
    work.ends_access();
    let event = client
        .event(Kind::ApiKeyRevoked)
        .user(&caller.user_id)
        .session(&caller.session_id);
    work.audit(event.detail(id), now);
    work.commit().await?;
    Ok(())
}
