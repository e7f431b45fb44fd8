//! Token introspection (RFC 7662): whether a token or an API key is active,
//! and what it stands for, for the team's services that hold one.

use tracing::instrument;

use super::recognise::{identify, Credential, Identity};
use crate::crypto::token_hash;
use crate::error::ApiError;
use crate::services::Services;
use crate::store::refresh::{self, Family};
use portcullis_proto::IntrospectionResponse;

/// The scope an API key needs to introspect tokens.
pub const INTROSPECT_SCOPE: &str = "introspect";

/// What `token` is: an access token, a refresh token (user's or client's)
/// or an API key, told apart by their shapes. Anything not valid now is
/// just `{"active": false}`.
#[instrument(skip_all)]
pub async fn introspect(s: &Services, token: &str) -> Result<IntrospectionResponse, ApiError> {
    if token.starts_with("rt_") {
        return refresh_token(s, token).await;
    }
    let credential = if token.starts_with("ak_") {
        Credential::ApiKey(token)
    } else {
        Credential::AccessToken(token)
    };
    let identity = match identify(s, credential).await {
        Ok(identity) => identity,
        Err(ApiError::Internal(e)) => return Err(ApiError::Internal(e)),
        Err(_) => return Ok(IntrospectionResponse::inactive()),
    };
    Ok(match identity {
        Identity::Token(claims) => IntrospectionResponse {
            active: true,
            token_type: Some("access_token".into()),
            sub: Some(claims.sub.clone()),
            sid: Some(claims.sid.clone()),
            email: claims.email.clone(),
            scope: claims.scope.clone(),
            client_id: claims.client_id.map(|id| id.to_string()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            iss: Some(claims.iss.clone()),
            aud: Some(claims.aud.clone()),
            jti: Some(claims.jti.clone()),
        },
        Identity::Key(key) => IntrospectionResponse {
            active: true,
            token_type: Some("api_key".into()),
            sub: Some(key.user_id),
            email: Some(key.email),
            scope: Some(key.scopes.join(" ")),
            exp: key.expires_at,
            jti: Some(key.key_id),
            ..IntrospectionResponse::inactive()
        },
    })
}

async fn refresh_token(s: &Services, token: &str) -> Result<IntrospectionResponse, ApiError> {
    let hash = token_hash(token);
    let now = s.now();
    let mut conn = s.read().await?;
    for family in [Family::User, Family::Client] {
        if let Some(found) = refresh::live(&mut conn, family, &hash, now).await? {
            let client = family == Family::Client;
            return Ok(IntrospectionResponse {
                active: true,
                token_type: Some("refresh_token".into()),
                client_id: client.then(|| found.subject.clone()),
                sub: Some(found.subject),
                sid: Some(found.session_id),
                exp: Some(found.expires_at),
                iat: Some(found.created_at),
                ..IntrospectionResponse::inactive()
            });
        }
    }
    Ok(IntrospectionResponse::inactive())
}
