//! `/v1/auth`: refresh tokens, the caller and their device sessions (SPEC §3.1).

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, AppState, Authenticated, Bearer, ClientMeta};
use super::responses;
use crate::auth;
use crate::error::ApiError;
use portcullis_proto::*;

/// The scope an API key needs to list and end sessions.
const SESSIONS_SCOPE: &str = "sessions";

pub fn writes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(revoke_session))
}

pub fn reads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, me_post))
        .routes(routes!(sessions))
}

/// A refresh token for a new access token (and, with rotation, a new refresh token).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "sessions", request_body = RefreshRequest, responses(
    (status = 200, description = "A new access token (and refresh token)", body = TokenResponse),
    (status = 401, description = "REFRESH_TOKEN_INVALID, or REFRESH_TOKEN_REUSED: an old token came back and its session is revoked", body = ErrorEnvelope),
))]
async fn refresh(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    use secrecy::ExposeSecret;
    let grant = auth::refresh(&s, req.refresh_token.expose_secret(), &client).await?;
    Ok(Json(responses::tokens(grant)))
}

/// Ends the caller's device session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, description = "The session is ended", body = MessageResponse)))]
async fn logout(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<MessageResponse>, ApiError> {
    auth::logout(&s, &caller).await?;
    Ok(Json(responses::message("Logged out.")))
}

/// Ends every session of the caller's account.
#[utoipa::path(post, path = "/v1/auth/logout-all", tag = "sessions", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every session is ended", body = MessageResponse),
        (status = 403, description = "INSUFFICIENT_PERMISSIONS: an API key without the `sessions` scope", body = ErrorEnvelope),
    ))]
async fn logout_all(
    State(s): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<MessageResponse>, ApiError> {
    who.require(SESSIONS_SCOPE)?;
    let revoked = auth::logout_all(&s, &who).await?;
    Ok(Json(responses::message(format!(
        "Logged out of {revoked} session(s)."
    ))))
}

/// The caller's account; any API key of it will do.
#[utoipa::path(get, path = "/v1/auth/me", tag = "sessions", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The caller's account", body = UserBody)))]
async fn me(
    State(s): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(responses::user(auth::me(&s, who.user_id()).await?)))
}

/// The same as `GET`, for clients that try their token with a `POST`; any body is ignored.
#[utoipa::path(post, path = "/v1/auth/me", tag = "sessions", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The caller's account", body = UserBody)))]
async fn me_post(state: State<AppState>, who: Authenticated) -> Result<Json<UserBody>, ApiError> {
    me(state, who).await
}

/// The caller's live device sessions.
#[utoipa::path(get, path = "/v1/auth/sessions", tag = "sessions", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The live sessions, the caller's marked `current` (none, for an API key)", body = SessionsResponse),
        (status = 403, description = "INSUFFICIENT_PERMISSIONS: an API key without the `sessions` scope", body = ErrorEnvelope),
    ))]
async fn sessions(
    State(s): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<SessionsResponse>, ApiError> {
    who.require(SESSIONS_SCOPE)?;
    let sessions = auth::list_sessions(&s, who.user_id()).await?;
    let current = who.session_id().unwrap_or_default();
    let sessions = sessions
        .into_iter()
        .map(|x| responses::session(x, current))
        .collect();
    Ok(Json(SessionsResponse {
        success: true,
        sessions,
    }))
}

/// Ends the caller's session on one device.
#[utoipa::path(delete, path = "/v1/auth/sessions/{device_id}", tag = "sessions", security(("bearer" = []), ("api_key" = [])),
    params(("device_id" = String, Path, description = "The device whose session to revoke")),
    responses(
        (status = 200, description = "The session is ended", body = MessageResponse),
        (status = 403, description = "INSUFFICIENT_PERMISSIONS: an API key without the `sessions` scope", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND: no live session on this device", body = ErrorEnvelope),
    ))]
async fn revoke_session(
    State(s): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(device_id): ApiPath<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    who.require(SESSIONS_SCOPE)?;
    auth::revoke_device(&s, &who, &device_id).await?;
    Ok(Json(responses::message("Session revoked.")))
}
