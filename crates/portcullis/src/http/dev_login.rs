//! `/v1/auth/dev-login` (SPEC §3.1, `reference/dev-login.txt`): routed only
//! when `PORTCULLIS_DEV_LOGIN` is on, so that otherwise it does not exist.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiKey, AppState, ClientMeta};
use super::responses;
use crate::auth::{self, DevLoginOutcome};
use crate::domain::{Device, LoginName};
use crate::error::ApiError;
use portcullis_proto::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dev_login))
}

/// Development login: an API key with the `dev_login` scope, the key owner's password, and tokens with no emailed code; a TOTP code is still needed when the account has TOTP enabled.
#[utoipa::path(post, path = "/v1/auth/dev-login", tag = "auth", request_body = LoginRequest, security(("api_key" = [])), responses(
    (status = 200, description = "Tokens for a new device session; or `requires_2fa: true` when the account has TOTP enabled and no `totp_code` was sent", body = DevLoginResponse),
    (status = 401, description = "AUTHENTICATION_REQUIRED: no API key, or one that is unknown, revoked or expired; INVALID_CREDENTIALS: wrong login or password, or an account not the key's; INVALID_TOTP_CODE", body = ErrorEnvelope),
    (status = 403, description = "INSUFFICIENT_PERMISSIONS: the key lacks the `dev_login` scope; ACCOUNT_DISABLED", body = ErrorEnvelope),
    (status = 429, description = "TOO_MANY_LOGIN_ATTEMPTS: too many failed logins for this account or from this client; RATE_LIMITED: too many dev-logins with this key (`details.retry_after`, `Retry-After`)", body = ErrorEnvelope),
))]
async fn dev_login(
    State(s): State<AppState>,
    ClientMeta(client): ClientMeta,
    ApiKey(key): ApiKey,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<DevLoginResponse>, ApiError> {
    let input = auth::DevLogin {
        login: LoginName::parse(&req.email_or_username)?,
        password: req.password,
        totp_code: req.totp_code,
        device: Device::parse(req.device)?,
    };
    Ok(Json(
        match auth::dev_login(&s, &key, input, &client).await? {
            DevLoginOutcome::Tokens(grant) => {
                DevLoginResponse::Tokens(Box::new(responses::tokens(*grant)))
            }
            DevLoginOutcome::SecondFactor => {
                DevLoginResponse::SecondFactor(responses::second_factor())
            }
        },
    ))
}
