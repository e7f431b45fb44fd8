//! Request and response bodies of the API, with every documented spelling.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Grant, StepOne};
use crate::clock::rfc3339;
use crate::domain::CodeInput;
use crate::store::sessions::{Device, Session};
use crate::store::users::User;

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

impl DeviceFields {
    /// One device, the object's fields first, then the top-level ones.
    pub fn into_device(self) -> Device {
        let info = self.device_info.unwrap_or_default();
        Device {
            device_id: info.device_id.or(self.device_id),
            device_name: info.device.or(self.device_name),
            platform: info.platform.or(self.platform),
            operating_system: info.operating_system,
            location: info.location,
            latitude: info.latitude,
            longitude: info.longitude,
            fcm_token: self.fcm_token,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[serde(alias = "email", alias = "username")]
    pub email_or_username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[serde(flatten)]
    pub device: DeviceFields,
}

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

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailKeyRequest {
    pub email_key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct StepOneResponse {
    pub success: bool,
    pub message: String,
    pub email_key: String,
    pub email: String,
    /// What to send as `is_register` at `/v1/auth/verify`.
    pub is_register: bool,
    pub requires_verification: bool,
    /// Always `email_verification`.
    pub next_step: &'static str,
}

impl StepOneResponse {
    pub fn new(step: StepOne, message: &str) -> Self {
        Self {
            success: true,
            message: message.to_owned(),
            email_key: step.email_key,
            email: step.email,
            is_register: step.is_register,
            requires_verification: true,
            next_step: "email_verification",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
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

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        Self {
            verified: u.is_verified(),
            totp_enabled: u.totp_enabled != 0,
            created_at: rfc3339(u.created_at),
            id: u.id,
            email: u.email,
            username: u.username,
            name: u.name,
        }
    }
}

/// Tokens for a device session; `token` and `refreshToken` repeat the two
/// tokens under the names the documented client reads.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub success: bool,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
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

impl From<Grant> for TokenResponse {
    fn from(g: Grant) -> Self {
        Self {
            success: true,
            token: g.access_token.clone(),
            refresh_token_alias: g.refresh_token.clone(),
            access_token: g.access_token,
            refresh_token: g.refresh_token,
            token_type: "bearer",
            expires_in: g.expires_in,
            refresh_expires_in: g.refresh_expires_in,
            device_id: g.device_id,
            user: g.user.into(),
            requires_2fa: false,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    pub success: bool,
    pub message: String,
}

impl MessageResponse {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
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

impl SessionBody {
    pub fn new(s: Session, current_session: &str) -> Self {
        Self {
            current: s.id == current_session,
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            expires_at: rfc3339(s.expires_at),
            device_id: s.device_id,
            device_name: s.device_name,
            platform: s.platform,
            operating_system: s.operating_system,
            location: s.location,
            latitude: s.latitude,
            longitude: s.longitude,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsResponse {
    pub success: bool,
    pub sessions: Vec<SessionBody>,
}
