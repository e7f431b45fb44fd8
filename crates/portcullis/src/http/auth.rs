//! `/v1/auth`: registration, login and the emailed codes of SPEC §3.1.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, AppState, ClientMeta};
use super::responses;
use crate::auth::{self, LoginOutcome};
use crate::domain::{Code, Device, Email, LoginName, PersonName, Username};
use crate::error::ApiError;
use portcullis_proto::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(verify))
        .routes(routes!(resend_email))
}

/// Creates an account and emails a registration code (login step 1's answer).
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest, responses(
    (status = 200, description = "A code was emailed (an address already taken gets the same answer)", body = StepOneResponse),
    (status = 422, description = "WEAK_PASSWORD: too short, too long or too common", body = ErrorEnvelope),
    (status = 429, description = "RATE_LIMITED: too many codes mailed to this address or for this client (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn register(
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

/// Login step 1: checks the password and, when the account has TOTP enabled, the TOTP code; then emails a code or, when none is needed, answers with the tokens.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "A code was emailed or, when none is needed, the tokens; or `requires_2fa: true` when the account has TOTP enabled and no `totp_code` was sent", body = LoginResponse),
    (status = 401, description = "INVALID_CREDENTIALS: unknown account or wrong password; INVALID_TOTP_CODE: the TOTP code is wrong or was used already", body = ErrorEnvelope),
    (status = 403, description = "ACCOUNT_DISABLED: the password is right but the account is disabled", body = ErrorEnvelope),
    (status = 429, description = "TOO_MANY_LOGIN_ATTEMPTS: too many failed logins for this account or from this client (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn login(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let input = auth::Login {
        login: LoginName::parse(&req.email_or_username)?,
        password: req.password,
        totp_code: req.totp_code,
        device: Device::parse(req.device)?,
    };
    Ok(Json(match auth::login(&s, input, &client).await? {
        LoginOutcome::Code(step) => LoginResponse::Code(responses::step_one(
            step,
            "Login credentials verified. Please check your email for verification code.",
        )),
        LoginOutcome::Tokens(grant) => LoginResponse::Tokens(Box::new(responses::tokens(*grant))),
        LoginOutcome::SecondFactor => LoginResponse::SecondFactor(responses::second_factor()),
    }))
}

/// Login step 2 (and registration's): the emailed code for tokens.
#[utoipa::path(post, path = "/v1/auth/verify", tag = "auth", request_body = VerifyRequest, responses(
    (status = 200, description = "Tokens for a new device session", body = TokenResponse),
    (status = 401, description = "INVALID_VERIFICATION_CODE (`details.attempts_remaining`), or VERIFICATION_EXPIRED: the key is unknown, used or expired", body = ErrorEnvelope),
    (status = 403, description = "ACCOUNT_DISABLED", body = ErrorEnvelope),
    (status = 429, description = "VERIFICATION_ATTEMPTS_EXCEEDED: the key is burned; start again; or RATE_LIMITED: too many wrong codes for this address or from this client, or its code flows are locked (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn verify(
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

/// Emails a fresh code for a key; the old code stops working.
#[utoipa::path(post, path = "/v1/auth/resend-email", tag = "auth", request_body = EmailKeyRequest, responses(
    (status = 200, description = "A fresh code was emailed", body = StepOneResponse),
    (status = 401, description = "VERIFICATION_EXPIRED: the key is unknown, used or expired", body = ErrorEnvelope),
    (status = 429, description = "VERIFICATION_ATTEMPTS_EXCEEDED: no more codes for this key; RESEND_TOO_SOON or RATE_LIMITED: too many codes mailed to this address or for this client (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn resend_email(
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
