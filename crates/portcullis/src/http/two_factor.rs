//! `/v1/auth/2fa/totp`: setting up, enabling and disabling the second factor (SPEC §3.1).

use axum::extract::State;
use axum::Json;
use secrecy::ExposeSecret;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, AppState, Bearer, ClientMeta};
use super::responses;
use crate::auth;
use crate::error::ApiError;
use portcullis_proto::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(setup))
        .routes(routes!(enable))
        .routes(routes!(disable))
}

/// A new authenticator secret, waiting for its first code at `enable`.
#[utoipa::path(post, path = "/v1/auth/2fa/totp/setup", tag = "two-factor", security(("bearer" = [])), responses(
    (status = 200, description = "The secret, its otpauth URI and a QR code of it", body = TotpSetupResponse),
    (status = 422, description = "VALIDATION_ERROR: TOTP is already enabled; disable it first", body = ErrorEnvelope),
))]
async fn setup(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<TotpSetupResponse>, ApiError> {
    let setup = auth::setup_totp(&s, &caller).await?;
    Ok(Json(TotpSetupResponse {
        success: true,
        secret: setup.secret,
        otpauth_uri: setup.otpauth_uri,
        qr_svg: setup.qr_svg,
    }))
}

/// Enables TOTP with the authenticator's current code; the other sessions end.
#[utoipa::path(post, path = "/v1/auth/2fa/totp/enable", tag = "two-factor", request_body = TotpEnableRequest, security(("bearer" = [])), responses(
    (status = 200, description = "TOTP is enabled: ten single-use recovery codes, shown only here", body = RecoveryCodesResponse),
    (status = 401, description = "INVALID_TOTP_CODE: not the authenticator's current code", body = ErrorEnvelope),
    (status = 422, description = "VALIDATION_ERROR: nothing was set up, or TOTP is already enabled", body = ErrorEnvelope),
    (status = 429, description = "TOO_MANY_LOGIN_ATTEMPTS: too many wrong codes for this account (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn enable(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<TotpEnableRequest>,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    let recovery_codes = auth::enable_totp(&s, &caller, &req.code, &client).await?;
    Ok(Json(RecoveryCodesResponse {
        success: true,
        recovery_codes,
    }))
}

/// Disables TOTP with the password and a current code (or a recovery code); the other sessions end.
#[utoipa::path(post, path = "/v1/auth/2fa/totp/disable", tag = "two-factor", request_body = TotpDisableRequest, security(("bearer" = [])), responses(
    (status = 200, description = "TOTP is disabled", body = MessageResponse),
    (status = 401, description = "INVALID_CREDENTIALS: the password is wrong; INVALID_TOTP_CODE: the code is wrong or was used already", body = ErrorEnvelope),
    (status = 422, description = "VALIDATION_ERROR: TOTP is not enabled", body = ErrorEnvelope),
    (status = 429, description = "TOO_MANY_LOGIN_ATTEMPTS: too many failures for this account or from this client (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn disable(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<TotpDisableRequest>,
) -> Result<Json<MessageResponse>, ApiError> {
    let code = req.code.expose_secret();
    auth::disable_totp(&s, &caller, &req.password, code, &client).await?;
    Ok(Json(responses::message(
        "Two-factor authentication disabled. Your other sessions have been signed out.",
    )))
}
