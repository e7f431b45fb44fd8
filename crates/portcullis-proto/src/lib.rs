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

/// Login step 1. Unknown fields are ignored: clients send device fields of
/// their own beside the documented ones.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[serde(alias = "email", alias = "username")]
    pub email_or_username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
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
}

/// Login step 1: a code was emailed, or (policy `never`, or `new_device` on a
/// known device) the tokens themselves.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(Box<TokenResponse>),
    Code(StepOneResponse),
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageResponse {
    pub success: bool,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionBody {
    pub device_id: String,
    pub device_name: Option<String>,
    pub platform: Option<String>,
    pub operating_system: Option<String>,
    pub location: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
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
    /// Stable machine-readable code, e.g. `INVALID_CREDENTIALS`.
    pub code: String,
    pub name: String,
    pub message: String,
    pub system_message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: u16,
    /// Also sent as `X-Request-Id` and written to the server's log line.
    pub trace_id: String,
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub details: Value,
}
