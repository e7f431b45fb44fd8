//! Recognising who presents a credential: an access token (a user's or a
//! machine client's) or an API key. What the endpoints that take either
//! share, and what tells the team's other services who is calling. None
//! of it reads the database for a token, or for a key seen before:
//! revocations are known in memory (see `revocations`).

use std::sync::Arc;

use super::caller::{Caller, KeyHolder};
use crate::error::ApiError;
use crate::services::Services;
use crate::store::api_keys::{self as store, LiveKey};
use crate::tokens::AccessClaims;

/// What the stored hash of a key is keyed with, apart from other secrets.
pub const KEY_HASH_KIND: &str = "api_key";
/// A key's last use is written when it is at least this much newer than the stored one.
const LAST_USED_RESOLUTION: i64 = 60;

/// Checks a user's access token and that its session was not revoked
/// (disabling an account revokes its sessions).
pub fn authenticate(s: &Services, token: &str) -> Result<Caller, ApiError> {
    let now = s.now();
    let claims = s.tokens.verify(token, now)?;
    // A machine client's token is no user's.
    if claims.client_id.is_some() {
        return Err(ApiError::InvalidToken);
    }
    // Revocations reach every instance within about a second (see `revocations`).
    if s.revocations.session_revoked(&claims.sid) {
        return Err(ApiError::InvalidToken);
    }
    Ok(Caller {
        user_id: claims.sub.clone(),
        session_id: claims.sid.clone(),
    })
}

/// The holder of a live key of an enabled account. Unknown, revoked and
/// expired keys are all `AUTHENTICATION_REQUIRED`. A key is read from the
/// store once and then remembered until it is revoked (see `revocations`).
/// The use is noted in memory; the last-used time is written in batches.
pub async fn authenticate_key(s: &Services, key: &str) -> Result<KeyHolder, ApiError> {
    if !key.starts_with("ak_") {
        return Err(ApiError::AuthenticationRequired);
    }
    let now = s.now();
    let hash = s.secrets.secret_hash(KEY_HASH_KIND, key);
    let found = match s.revocations.key(&hash) {
        Some(found) => found,
        None => {
            let generation = s.revocations.generation();
            let found = store::live(&mut *s.read().await?, &hash, now).await?;
            let found = Arc::new(found.ok_or(ApiError::AuthenticationRequired)?);
            s.revocations.remember_key(&hash, found.clone(), generation);
            found
        }
    };
    let LiveKey { key, email } = &*found;
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::AuthenticationRequired);
    }
    if key
        .last_used_at
        .is_none_or(|at| now - at >= LAST_USED_RESOLUTION)
    {
        s.key_usage.record(&key.id, now);
    }
    Ok(KeyHolder {
        user_id: key.user_id.clone(),
        email: email.clone(),
        key_id: key.id.clone(),
        scopes: key.scopes.clone(),
        expires_at: key.expires_at,
    })
}

/// A credential presented to one of the team's services.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    AccessToken(&'a str),
    ApiKey(&'a str),
}

/// Who is calling one of the team's services.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A user's or a machine client's access token of a session not revoked.
    Token(Arc<AccessClaims>),
    /// A live API key.
    Key(KeyHolder),
}

/// Recognises a credential for forward-auth and introspection. Refusals:
/// `INVALID_TOKEN`, `TOKEN_EXPIRED`, or `AUTHENTICATION_REQUIRED` for a key.
pub async fn identify(s: &Services, credential: Credential<'_>) -> Result<Identity, ApiError> {
    match credential {
        Credential::AccessToken(token) => {
            let claims = s.tokens.verify(token, s.now())?;
            if s.revocations.session_revoked(&claims.sid) {
                return Err(ApiError::InvalidToken);
            }
            Ok(Identity::Token(claims))
        }
        Credential::ApiKey(key) => authenticate_key(s, key).await.map(Identity::Key),
    }
}
