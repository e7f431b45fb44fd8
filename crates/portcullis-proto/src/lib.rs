//! The Portcullis API's request and response bodies and its error envelope,
//! shared by the server and its clients. Requests accept every documented
//! spelling of their fields. Unknown fields are refused where a typo would
//! change what happens (registration, passwords, resend, refresh) and
//! ignored on login and verify, where clients send varied device fields.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(example = "user@example.com")]
    pub email: String,
    pub username: Option<String>,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    pub name: Option<String>,
}

/// Device metadata, as the `device_info` / `device_information` object.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeviceInfo {
    /// Device name, e.g. `Chrome Browser`.
    pub device: Option<String>,
    /// One of `web mobile desktop tablet ios android windows macos linux unknown`.
    pub platform: Option<String>,
    pub operating_system: Option<String>,
    pub device_id: Option<String>,
    pub location: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// Device fields accepted on login and verify, in any documented spelling.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeviceFields {
    #[serde(alias = "device_information")]
    pub device_info: Option<DeviceInfo>,
    pub device_id: Option<String>,
    pub platform: Option<String>,
    pub device_name: Option<String>,
    pub fcm_token: Option<String>,
}

/// Login step 1, and dev-login's body. Unknown fields are ignored: clients
/// send device fields of their own beside the documented ones.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[serde(alias = "email", alias = "username")]
    pub email_or_username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// The 6-digit code of the authenticator app, or a recovery code; needed
    /// when the account has TOTP enabled.
    #[schema(value_type = Option<String>, example = "482910")]
    pub totp_code: Option<SecretString>,
    #[serde(flatten)]
    pub device: DeviceFields,
}

/// Login step 2, and registration's. Unknown fields are ignored: clients
/// send device fields of their own beside the documented ones.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyRequest {
    pub email_key: String,
    /// The emailed code, as a number (`42` for `0042`) or a string of digits.
    #[serde(alias = "code")]
    pub verification_code: CodeInput,
    /// When given, must match what the key was issued for.
    pub is_register: Option<bool>,
    #[serde(flatten)]
    pub device: DeviceFields,
}

/// An email key, to resend its code. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailKeyRequest {
    pub email_key: String,
}

/// A refresh token, for a new access token. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[serde(alias = "refreshToken")]
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub email_key: String,
    #[serde(alias = "code")]
    pub verification_code: CodeInput,
    #[serde(alias = "password")]
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[serde(alias = "password")]
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// The documented step-1 body: a code was emailed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepOneResponse {
    pub success: bool,
    pub message: String,
    pub email_key: String,
    pub email: String,
    /// What to send as `is_register` at `/v1/auth/verify`.
    pub is_register: bool,
    pub requires_verification: bool,
    /// Always `email_verification`.
    pub next_step: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserBody {
    /// `usr_` and 32 hex digits.
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub name: Option<String>,
    pub verified: bool,
    pub created_at: String,
    pub totp_enabled: bool,
}

/// Tokens for a device session; `token` and `refreshToken` repeat the two
/// tokens under the names the documented client reads.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub success: bool,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    pub device_id: String,
    pub user: UserBody,
    pub requires_2fa: bool,
    pub token: String,
    #[serde(rename = "refreshToken")]
    pub refresh_token_alias: String,
    /// The same session in the shape of the login-with-TOTP document.
    pub data: SessionData,
}

/// A session as the login-with-TOTP document shapes it: `data.user`, `data.tokens`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionData {
    pub user: DataUser,
    pub tokens: DataTokens,
    /// Portcullis sells no plans: always `null`.
    #[schema(value_type = Option<Object>)]
    pub subscription: Option<Value>,
    pub requires_2fa: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataUser {
    /// `usr_` and 32 hex digits, as `user.id`.
    pub id: String,
    /// The same id.
    pub uuid: String,
    pub username: Option<String>,
    pub email: String,
    /// Always `USER`.
    pub role: String,
    /// `false` once the account is disabled.
    pub active: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataTokens {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(format = DateTime)]
    pub access_token_expires_at: String,
    #[schema(format = DateTime)]
    pub refresh_token_expires_at: String,
    /// Always `Bearer`.
    pub token_type: String,
}

/// The password was right and the account has TOTP enabled: send the login
/// again with `totp_code`. No token of any kind is issued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecondFactorResponse {
    pub success: bool,
    /// Always `true`.
    pub requires_2fa: bool,
    /// Always `totp`.
    pub next_step: String,
}

/// Login step 1: a code was emailed, or (policy `never`, or `new_device` on a
/// known device) the tokens themselves, or a TOTP code is needed first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(Box<TokenResponse>),
    Code(StepOneResponse),
    SecondFactor(SecondFactorResponse),
}

/// Dev-login: the tokens, or a TOTP code is needed first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DevLoginResponse {
    Tokens(Box<TokenResponse>),
    SecondFactor(SecondFactorResponse),
}

/// What an authenticator app needs to be set up.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TotpSetupResponse {
    pub success: bool,
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    /// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER`.
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// The current code of the authenticator being set up.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnableRequest {
    #[schema(example = "482910")]
    pub code: String,
}

/// Single-use codes accepted in place of a TOTP code; shown only this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodesResponse {
    pub success: bool,
    pub recovery_codes: Vec<String>,
}

/// The password and a current TOTP code (or a recovery code).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableRequest {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[schema(value_type = String)]
    pub code: SecretString,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageResponse {
    pub success: bool,
    pub message: String,
}

/// The device of a session, as the client described it at login.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceBody {
    pub device_id: String,
    pub device_name: Option<String>,
    pub platform: Option<String>,
    pub operating_system: Option<String>,
    pub location: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionBody {
    #[serde(flatten)]
    pub device: DeviceBody,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    /// The session of the token making this request.
    pub current: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionsResponse {
    pub success: bool,
    pub sessions: Vec<SessionBody>,
}

/// An emailed code as the client sent it: a number or a string of digits.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CodeInput {
    Number(u64),
    Text(String),
}

/// Every error: `{"success": false, "error": {...}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// The name of the code's kind of error, e.g. `UnauthorizedError`.
    pub name: String,
    pub message: String,
    pub system_message: String,
    /// The broad class of the error, e.g. `authentication_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// Also sent as `X-Request-Id` and written to the server's log line.
    pub trace_id: String,
    /// When the error happened, RFC 3339 in UTC.
    #[schema(format = DateTime)]
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

/// The stable error codes of the API (SPEC §4): clients match on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 422; `details` maps each field to what is wrong with it.
    ValidationError,
    /// 400: the body is not a JSON object, or not sent as JSON.
    InvalidJson,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 401: no credentials were sent.
    AuthenticationRequired,
    /// 401: the token is malformed, forged or revoked.
    InvalidToken,
    /// 401
    TokenExpired,
    /// 403: the caller may not do this.
    InsufficientPermissions,
    /// 401: wrong login or password, with no hint which.
    InvalidCredentials,
    /// 403
    AccountDisabled,
    /// 401
    InvalidTotpCode,
    /// 401; `details.attempts_remaining`.
    InvalidVerificationCode,
    /// 401: the email key is unknown, used or past its lifetime.
    VerificationExpired,
    /// 429: the email key is burned; start again.
    VerificationAttemptsExceeded,
    /// 429; `details.retry_after` and a `Retry-After` header.
    TooManyLoginAttempts,
    /// 429; `details.retry_after` and a `Retry-After` header.
    RateLimited,
    /// 429; `details.retry_after` and a `Retry-After` header.
    ResendTooSoon,
    /// 401
    RefreshTokenInvalid,
    /// 401: an old refresh token came back; its session is revoked.
    RefreshTokenReused,
    /// 422
    WeakPassword,
    /// 404
    NotFound,
    /// 408: the request's body or its answer took longer than the server allows.
    RequestTimeout,
    /// 405
    MethodNotAllowed,
    /// 503, with a `Retry-After` header.
    ServiceUnavailable,
    /// 500; the details are in the server's log only.
    InternalError,
    /// 400, the client API's (SPEC §3.2): a required field is missing or empty.
    ValidationFailure,
    /// 401, the client API's: wrong credentials, an inactive client, or a bad token.
    Unauthorized,
    /// 403, the client API's: the request's IP is not in the client's allowlist.
    Forbidden,
}

impl ErrorCode {
    /// The HTTP status of an answer with this code.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidJson | ValidationFailure => 400,
            AuthenticationRequired
            | InvalidToken
            | TokenExpired
            | InvalidCredentials
            | InvalidTotpCode
            | InvalidVerificationCode
            | VerificationExpired
            | RefreshTokenInvalid
            | RefreshTokenReused
            | Unauthorized => 401,
            InsufficientPermissions | AccountDisabled | Forbidden => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            RequestTimeout => 408,
            PayloadTooLarge => 413,
            ValidationError | WeakPassword => 422,
            VerificationAttemptsExceeded | TooManyLoginAttempts | RateLimited | ResendTooSoon => {
                429
            }
            InternalError => 500,
            ServiceUnavailable => 503,
        }
    }

    /// The envelope's `error.name`, which follows the status, except where
    /// the client API documents its own.
    pub fn name(self) -> &'static str {
        if self == ErrorCode::ValidationFailure {
            return "ValidationException";
        }
        match self.status() {
            400 => "BadRequestError",
            401 => "UnauthorizedError",
            403 => "ForbiddenError",
            404 => "NotFoundError",
            405 => "MethodNotAllowedError",
            408 => "RequestTimeoutError",
            413 => "PayloadTooLargeError",
            422 => "ValidationError",
            429 => "RateLimitError",
            503 => "ServiceUnavailableError",
            _ => "InternalServerError",
        }
    }

    /// The envelope's `error.type`, which follows the status.
    pub fn kind(self) -> &'static str {
        match self.status() {
            400 | 404 | 405 | 408 | 413 => "invalid_request_error",
            401 => "authentication_error",
            403 => "authorization_error",
            422 => "validation_error",
            429 => "rate_limit_error",
            _ => "server_error",
        }
    }
}

/// A new API key for the caller. Unknown fields are refused: the account is
/// always the caller's own, never named in the body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[schema(example = "CI deploys")]
    pub name: String,
    /// Names of `[a-z][a-z0-9_.:-]{0,63}`, at most 32. Portcullis gives
    /// meaning to `dev_login`, `sessions` and `introspect`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// RFC 3339; the key stops working then.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// A new API key: `key` is shown only in this answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    pub success: bool,
    pub id: String,
    /// `ak_` and 43 characters: send it as `X-API-Key` or `api-key`.
    pub key: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// An API key as listed: never its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyBody {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// To within a minute, written every 30 s.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeysResponse {
    pub success: bool,
    pub api_keys: Vec<ApiKeyBody>,
}

/// A machine client's login, as `reference/client-credentials-login.txt`
/// shows it: the API key as `username`, the API secret as `password`. A
/// field that is missing, empty or not text is 400 `VALIDATION_FAILURE`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientLoginRequest {
    #[schema(value_type = String, example = "ck_…")]
    pub username: Option<Value>,
    #[schema(value_type = String, format = Password)]
    pub password: Option<Value>,
}

/// A machine client's refresh token, for new tokens.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientRefreshRequest {
    #[schema(value_type = String)]
    pub refresh_token: Option<Value>,
}

/// Tokens for a machine client, in the document's shape.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientTokenResponse {
    pub success: bool,
    pub data: ClientTokens,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientTokens {
    /// A JWT, valid for an hour, with `client_id` and `scope` claims.
    pub access_token: String,
    /// Opaque; valid until the client's session ends (7 days after login).
    pub refresh_token: String,
    #[schema(format = DateTime)]
    pub access_expires_at: String,
    #[schema(format = DateTime)]
    pub refresh_expires_at: String,
    pub client_id: i64,
}

/// The machine client an access token belongs to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientMeResponse {
    pub success: bool,
    pub data: ClientBody,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientBody {
    pub client_id: i64,
    pub name: String,
    pub scopes: Vec<String>,
}

/// A token to introspect (RFC 7662 §2.1), as JSON or as a form. The hint is
/// accepted and not needed: tokens are told apart by their shape.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IntrospectRequest {
    #[schema(value_type = String)]
    pub token: SecretString,
    pub token_type_hint: Option<String>,
}

/// RFC 7662 §2.2: `active`, and for an active token what it stands for.
/// `token_type` is `access_token`, `refresh_token` or `api_key`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The user's id; for a machine client's token, the client's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The device session (or client session) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The token's id; an API key's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl IntrospectionResponse {
    /// `{"active": false}`: unknown, expired, revoked or malformed, alike.
    pub fn inactive() -> Self {
        Self::default()
    }
}
