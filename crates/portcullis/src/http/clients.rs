//! `/v1/clients`: machine clients (SPEC §3.2), so that the documented Go
//! client works with base URL `http://HOST/v1/clients` unchanged.

use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, AppState, ClientBearer, ClientMeta};
use crate::auth::{self, ClientGrant};
use crate::clock::rfc3339;
use crate::error::ApiError;
use portcullis_proto::*;

pub fn writes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
}

pub fn reads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// A machine client's API key and secret for tokens.
#[utoipa::path(post, path = "/v1/clients/auth/login", tag = "clients", request_body = ClientLoginRequest, responses(
    (status = 200, description = "Tokens for the client", body = ClientTokenResponse),
    (status = 400, description = "VALIDATION_FAILURE: username or password missing or empty", body = ErrorEnvelope),
    (status = 401, description = "UNAUTHORIZED: \"Invalid credentials\", or \"Client account is not active\"", body = ErrorEnvelope),
    (status = 403, description = "FORBIDDEN: \"IP address not authorized\"", body = ErrorEnvelope),
    (status = 429, description = "RATE_LIMITED: too many failed logins for this client or from this address (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn login(
    State(s): State<AppState>,
    ClientMeta(from): ClientMeta,
    ApiJson(req): ApiJson<ClientLoginRequest>,
) -> Result<Json<ClientTokenResponse>, ApiError> {
    let required = "Username and password are required";
    let username = text(req.username.as_ref()).ok_or(ApiError::ClientValidation(required))?;
    let password = text(req.password.as_ref()).ok_or(ApiError::ClientValidation(required))?;
    let grant = auth::client_login(&s, username, password, &from).await?;
    Ok(Json(tokens(grant)))
}

/// A machine client's refresh token for new tokens (rotated as users' are).
#[utoipa::path(post, path = "/v1/clients/auth/refresh", tag = "clients", request_body = ClientRefreshRequest, responses(
    (status = 200, description = "New tokens for the client", body = ClientTokenResponse),
    (status = 400, description = "VALIDATION_FAILURE: refresh_token missing or empty", body = ErrorEnvelope),
    (status = 401, description = "UNAUTHORIZED: the refresh token is invalid, expired or reused, or the client is not active", body = ErrorEnvelope),
    (status = 403, description = "FORBIDDEN: \"IP address not authorized\"", body = ErrorEnvelope),
))]
async fn refresh(
    State(s): State<AppState>,
    ClientMeta(from): ClientMeta,
    ApiJson(req): ApiJson<ClientRefreshRequest>,
) -> Result<Json<ClientTokenResponse>, ApiError> {
    let token = text(req.refresh_token.as_ref())
        .ok_or(ApiError::ClientValidation("refresh_token is required"))?;
    let grant = auth::client_refresh(&s, token, &from).await?;
    Ok(Json(tokens(grant)))
}

/// The client a client access token belongs to.
#[utoipa::path(get, path = "/v1/clients/me", tag = "clients", security(("bearer" = [])), responses(
    (status = 200, description = "The client", body = ClientMeResponse),
    (status = 401, description = "UNAUTHORIZED: no live client access token (a user's token is not one)", body = ErrorEnvelope),
))]
async fn me(ClientBearer(client): ClientBearer) -> Json<ClientMeResponse> {
    Json(ClientMeResponse {
        success: true,
        data: ClientBody {
            client_id: client.id,
            name: client.name,
            scopes: client.scopes,
        },
    })
}

/// A field's text, if it is a non-empty string.
fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn tokens(g: ClientGrant) -> ClientTokenResponse {
    ClientTokenResponse {
        success: true,
        data: ClientTokens {
            access_token: g.access_token,
            refresh_token: g.refresh_token,
            access_expires_at: rfc3339(g.access_expires_at),
            refresh_expires_at: rfc3339(g.refresh_expires_at),
            client_id: g.client_id,
        },
    }
}
