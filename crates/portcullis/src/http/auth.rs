//! `/v1/auth`: the end-user endpoints of SPEC §3.1.

use axum::extract::{Path, State};
use axum::Json;

use super::extract::{ApiJson, AppState, Bearer, ClientMeta};
use super::responses;
use crate::auth::{self, LoginOutcome};
use crate::domain::{Code, Device, Email, LoginName, PersonName, Username};
use crate::error::ApiError;
use portcullis_proto::*;

#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 200, body = StepOneResponse), (status = 422, body = ErrorEnvelope)))]
pub async fn register(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Json<StepOneResponse>, ApiError> {
    let input = auth::Register {
        email: Email::parse("email", &req.email)?,
        username: req.username.as_deref().map(Username::parse).transpose()?,
        password: req.password,
        name: PersonName::parse_optional(req.name)?,
    };
    let step = auth::register(&s, input, &client).await?;
    Ok(Json(responses::step_one(
        step,
        "Account created. Please check your email for the verification code.",
    )))
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "A code was emailed or, when none is needed, the tokens", body = LoginResponse),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
pub async fn login(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let input = auth::Login {
        login: LoginName::parse(&req.email_or_username)?,
        password: req.password,
        device: Device::parse(req.device)?,
    };
    Ok(Json(match auth::login(&s, input, &client).await? {
        LoginOutcome::Code(step) => LoginResponse::Code(responses::step_one(
            step,
            "Login credentials verified. Please check your email for verification code.",
        )),
        LoginOutcome::Tokens(grant) => LoginResponse::Tokens(Box::new(responses::tokens(*grant))),
    }))
}

#[utoipa::path(post, path = "/v1/auth/verify", tag = "auth", request_body = VerifyRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
pub async fn verify(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let code = Code::parse(
        "verification_code",
        &req.verification_code,
        s.config.code_digits,
    )?;
    let device = Device::parse(req.device)?;
    let grant = auth::verify(&s, &req.email_key, &code, req.is_register, device, &client).await?;
    Ok(Json(responses::tokens(grant)))
}

#[utoipa::path(post, path = "/v1/auth/resend-email", tag = "auth", request_body = EmailKeyRequest,
    responses((status = 200, body = StepOneResponse), (status = 429, body = ErrorEnvelope)))]
pub async fn resend_email(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<EmailKeyRequest>,
) -> Result<Json<StepOneResponse>, ApiError> {
    let step = auth::resend(&s, &req.email_key, &client).await?;
    Ok(Json(responses::step_one(
        step,
        "A new verification code has been sent.",
    )))
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorEnvelope)))]
pub async fn refresh(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    use secrecy::ExposeSecret;
    let grant = auth::refresh(&s, req.refresh_token.expose_secret(), &client).await?;
    Ok(Json(responses::tokens(grant)))
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MessageResponse), (status = 401, body = ErrorEnvelope)))]
pub async fn logout(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<MessageResponse>, ApiError> {
    auth::logout(&s, &caller).await?;
    Ok(Json(responses::message("Logged out.")))
}

#[utoipa::path(post, path = "/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MessageResponse), (status = 401, body = ErrorEnvelope)))]
pub async fn logout_all(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<MessageResponse>, ApiError> {
    let revoked = auth::logout_all(&s, &caller).await?;
    Ok(Json(responses::message(format!(
        "Logged out of {revoked} session(s)."
    ))))
}

#[utoipa::path(get, path = "/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserBody), (status = 401, body = ErrorEnvelope)))]
pub async fn me(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(responses::user(auth::me(&s, &caller).await?)))
}

/// The same as `GET`, for clients that try their token with a `POST`; any body is ignored.
#[utoipa::path(post, path = "/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserBody), (status = 401, body = ErrorEnvelope)))]
pub async fn me_post(state: State<AppState>, caller: Bearer) -> Result<Json<UserBody>, ApiError> {
    me(state, caller).await
}

#[utoipa::path(get, path = "/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = SessionsResponse), (status = 401, body = ErrorEnvelope)))]
pub async fn sessions(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<SessionsResponse>, ApiError> {
    let sessions = auth::list_sessions(&s, &caller).await?;
    let sessions = sessions
        .into_iter()
        .map(|x| responses::session(x, &caller.session_id))
        .collect();
    Ok(Json(SessionsResponse {
        success: true,
        sessions,
    }))
}

#[utoipa::path(delete, path = "/v1/auth/sessions/{device_id}", tag = "auth", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device whose session to revoke")),
    responses((status = 200, body = MessageResponse), (status = 404, body = ErrorEnvelope)))]
pub async fn revoke_session(
    State(s): State<AppState>,
    Bearer(caller): Bearer,
    Path(device_id): Path<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    if device_id.contains('\0') {
        return Err(ApiError::NotFound);
    }
    auth::revoke_device(&s, &caller, &device_id).await?;
    Ok(Json(responses::message("Session revoked.")))
}

#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "auth", request_body = ForgotPasswordRequest,
    responses((status = 200, body = StepOneResponse), (status = 422, body = ErrorEnvelope)))]
pub async fn forgot_password(
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

#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 200, body = MessageResponse), (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn reset_password(
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

#[utoipa::path(post, path = "/v1/auth/password/change", tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])),
    responses((status = 200, body = MessageResponse), (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn change_password(
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
