//! `/v1/api-keys`: the caller's API keys (SPEC §3.1). Managing keys takes a
//! signed-in session: an API key may not make, list or revoke keys.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, AppState, Bearer, ClientMeta};
use super::responses;
use crate::auth;
use crate::clock::{parse_rfc3339, rfc3339};
use crate::domain::{KeyName, Scopes};
use crate::error::ApiError;
use crate::store::api_keys::ApiKey;
use portcullis_proto::*;

pub fn writes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(revoke))
}

pub fn reads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Makes an API key for the caller; the key is shown only in this answer.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The new key, shown only here", body = CreatedApiKeyResponse),
))]
async fn create(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> Result<Json<CreatedApiKeyResponse>, ApiError> {
    let expires_at = req
        .expires_at
        .as_deref()
        .map(|at| {
            parse_rfc3339(at)
                .ok_or_else(|| ApiError::field("expires_at", "Must be an RFC 3339 time"))
        })
        .transpose()?;
    let input = auth::NewKey {
        name: KeyName::parse("name", req.name.trim().to_owned())?,
        scopes: Scopes::parse(req.scopes)?,
        expires_at,
    };
    let created = auth::create_api_key(&s, &caller, input, &client).await?;
    let key = created.api_key;
    Ok(Json(CreatedApiKeyResponse {
        success: true,
        id: key.id,
        key: created.key,
        name: key.name,
        scopes: key.scopes,
        created_at: rfc3339(key.created_at),
        expires_at: key.expires_at.map(rfc3339),
    }))
}

/// The caller's keys not revoked (expired ones included), without their secrets.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = [])), responses(
    (status = 200, description = "The caller's keys", body = ApiKeysResponse),
))]
async fn list(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<ApiKeysResponse>, ApiError> {
    let keys = auth::list_api_keys(&s, &caller.user_id).await?;
    Ok(Json(ApiKeysResponse {
        success: true,
        api_keys: keys.into_iter().map(body).collect(),
    }))
}

/// Revokes one of the caller's keys, at once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key is revoked", body = MessageResponse),
        (status = 404, description = "NOT_FOUND: no such key of the caller's, or revoked already", body = ErrorEnvelope),
    ))]
async fn revoke(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
    ClientMeta(client): ClientMeta,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    auth::revoke_api_key(&s, &caller, &id, &client).await?;
    Ok(Json(responses::message("API key revoked.")))
}

fn body(key: ApiKey) -> ApiKeyBody {
    ApiKeyBody {
        id: key.id,
        name: key.name,
        scopes: key.scopes,
        created_at: rfc3339(key.created_at),
        expires_at: key.expires_at.map(rfc3339),
        last_used_at: key.last_used_at.map(rfc3339),
    }
}
