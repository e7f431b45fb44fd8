//! `/v1/auth/password`: forgotten, reset and changed passwords (SPEC §3.1).

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, AppState, Bearer, ClientMeta};
use super::responses;
use crate::auth;
use crate::domain::{Code, Email};
use crate::error::ApiError;
use portcullis_proto::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(change_password))
}

/// Emails a password-reset code if the address has an account; the answer is the same either way.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "password", request_body = ForgotPasswordRequest,
    responses((status = 200, description = "A code was emailed if the address has an account", body = StepOneResponse),
        (status = 429, description = "RATE_LIMITED: too many codes mailed to this address or for this client (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope)))]
async fn forgot_password(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<ForgotPasswordRequest>,
) -> Result<Json<StepOneResponse>, ApiError> {
    let email = Email::parse("email", &req.email)?;
    let step = auth::forgot_password(&s, &email, &client).await?;
    Ok(Json(responses::step_one(
        step,
        "If an account exists for this address, a code has been sent to it.",
    )))
}

/// Sets a new password with an emailed reset code; every session of the account ends.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "password", request_body = ResetPasswordRequest, responses(
    (status = 200, description = "The password is changed and every session ended", body = MessageResponse),
    (status = 401, description = "INVALID_VERIFICATION_CODE (`details.attempts_remaining`), or VERIFICATION_EXPIRED: the key is unknown, used or expired", body = ErrorEnvelope),
    (status = 422, description = "WEAK_PASSWORD: too short, too long or too common", body = ErrorEnvelope),
    (status = 429, description = "VERIFICATION_ATTEMPTS_EXCEEDED: the key is burned; start again; or RATE_LIMITED: too many wrong codes for this address or from this client, or its code flows are locked (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn reset_password(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> Result<Json<MessageResponse>, ApiError> {
    let code = Code::parse(
        "verification_code",
        &req.verification_code,
        s.config.reset_code_digits,
    )?;
    auth::reset_password(&s, &req.email_key, &code, &req.new_password, &client).await?;
    Ok(Json(responses::message(
        "Password changed. Every session has been signed out.",
    )))
}

/// Changes the caller's password; the account's other sessions end.
#[utoipa::path(post, path = "/v1/auth/password/change", tag = "password", request_body = ChangePasswordRequest, security(("bearer" = [])), responses(
    (status = 200, description = "The password is changed and the other sessions ended", body = MessageResponse),
    (status = 401, description = "INVALID_CREDENTIALS: the current password is wrong", body = ErrorEnvelope),
    (status = 422, description = "WEAK_PASSWORD: too short, too long or too common", body = ErrorEnvelope),
    (status = 429, description = "TOO_MANY_LOGIN_ATTEMPTS: too many wrong passwords for this account (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn change_password(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<Json<MessageResponse>, ApiError> {
    let (current, new) = (&req.current_password, &req.new_password);
    auth::change_password(&s, &caller, current, new, &client).await?;
    Ok(Json(responses::message(
        "Password changed. Your other sessions have been signed out.",
    )))
}
