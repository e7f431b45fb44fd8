//! The one error type of the API and its JSON envelope (SPEC §4).

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_proto::{ErrorBody, ErrorEnvelope};
use serde_json::{json, Value};

tokio::task_local! {
    /// The id of the request being served, set by the request middleware.
    pub static TRACE_ID: String;
}

/// The current request's trace id, or an empty string outside a request.
pub fn trace_id() -> String {
    TRACE_ID.try_with(Clone::clone).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422 `VALIDATION_ERROR`; details map each field to what is wrong with it.
    #[error("validation failed")]
    Validation(BTreeMap<String, String>),
    /// 400 `INVALID_JSON`.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// 413 `PAYLOAD_TOO_LARGE`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 401 `AUTHENTICATION_REQUIRED`.
    #[error("authentication required")]
    AuthenticationRequired,
    /// 401 `INVALID_TOKEN`.
    #[error("invalid token")]
    InvalidToken,
    /// 401 `TOKEN_EXPIRED`.
    #[error("token expired")]
    TokenExpired,
    /// 401 `INVALID_CREDENTIALS`.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 403 `ACCOUNT_DISABLED`.
    #[error("account disabled")]
    AccountDisabled,
    /// 401 `INVALID_VERIFICATION_CODE` with `details.attempts_remaining`.
    #[error("invalid verification code")]
    InvalidVerificationCode { attempts_remaining: i64 },
    /// 401 `VERIFICATION_EXPIRED`: the key is unknown, used or past its lifetime.
    #[error("verification expired")]
    VerificationExpired,
    /// 429 `VERIFICATION_ATTEMPTS_EXCEEDED`.
    #[error("verification attempts exceeded")]
    VerificationAttemptsExceeded,
    /// 429 `RESEND_TOO_SOON` with `details.retry_after` and `Retry-After`.
    #[error("resend too soon")]
    ResendTooSoon { retry_after: i64 },
    /// 429 `TOO_MANY_LOGIN_ATTEMPTS` with `details.retry_after` and `Retry-After`.
    #[error("too many login attempts")]
    TooManyLoginAttempts { retry_after: i64 },
    /// 429 `RATE_LIMITED` with `details.retry_after` and `Retry-After`.
    #[error("rate limited")]
    RateLimited { retry_after: i64 },
    /// 401 `REFRESH_TOKEN_INVALID`.
    #[error("refresh token invalid")]
    RefreshTokenInvalid,
    /// 401 `REFRESH_TOKEN_REUSED`: the session has been revoked.
    #[error("refresh token reused")]
    RefreshTokenReused,
    /// 422 `WEAK_PASSWORD`.
    #[error("weak password: {0}")]
    WeakPassword(&'static str),
    /// 404 `NOT_FOUND`.
    #[error("not found")]
    NotFound,
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503 `SERVICE_UNAVAILABLE` with `Retry-After`.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// 500 `INTERNAL_ERROR`; the cause goes to the log only.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if database_unavailable(&e) {
            // Fail closed and say so; the client may retry shortly.
            tracing::error!(error = %e, "database unavailable");
            return ApiError::Unavailable("database");
        }
        ApiError::Internal(e.into())
    }
}

/// Errors that mean "try again later" rather than a bug: the database is
/// unreachable, shutting down, or (SQLite) still locked after the busy timeout.
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite SQLITE_BUSY (5) and its extended codes; PostgreSQL classes 08 and 57.
            code == "5" || code == "517" || code.starts_with("08") || code.starts_with("57")
        }
        _ => false,
    }
}

impl ApiError {
    /// One field failed validation.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(BTreeMap::from([(field.to_owned(), message.into())]))
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        use ApiError::*;
        let unauthorized = StatusCode::UNAUTHORIZED;
        let (status, code, message): (_, _, String) = match self {
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
                "Validation failed".into(),
            ),
            InvalidJson(_) => (
                StatusCode::BAD_REQUEST,
                "INVALID_JSON",
                "The request body is not valid JSON".into(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "The request body is too large".into(),
            ),
            AuthenticationRequired => (
                unauthorized,
                "AUTHENTICATION_REQUIRED",
                "Authentication required".into(),
            ),
            InvalidToken => (
                unauthorized,
                "INVALID_TOKEN",
                "The token is invalid or has been revoked".into(),
            ),
            TokenExpired => (
                unauthorized,
                "TOKEN_EXPIRED",
                "The token has expired".into(),
            ),
            InvalidCredentials => (
                unauthorized,
                "INVALID_CREDENTIALS",
                "Invalid email or password".into(),
            ),
            AccountDisabled => (
                StatusCode::FORBIDDEN,
                "ACCOUNT_DISABLED",
                "This account is disabled".into(),
            ),
            InvalidVerificationCode { .. } => (
                unauthorized,
                "INVALID_VERIFICATION_CODE",
                "Invalid verification code".into(),
            ),
            VerificationExpired => (
                unauthorized,
                "VERIFICATION_EXPIRED",
                "The verification key is invalid or has expired; start again".into(),
            ),
            VerificationAttemptsExceeded => (
                StatusCode::TOO_MANY_REQUESTS,
                "VERIFICATION_ATTEMPTS_EXCEEDED",
                "Too many attempts for this verification key; start again".into(),
            ),
            ResendTooSoon { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "RESEND_TOO_SOON",
                "Please wait before requesting another code".into(),
            ),
            TooManyLoginAttempts { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_LOGIN_ATTEMPTS",
                "Too many failed login attempts; try again later".into(),
            ),
            RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "Too many requests; try again later".into(),
            ),
            RefreshTokenInvalid => (
                unauthorized,
                "REFRESH_TOKEN_INVALID",
                "The refresh token is invalid or has expired".into(),
            ),
            RefreshTokenReused => (
                unauthorized,
                "REFRESH_TOKEN_REUSED",
                "The refresh token was already used; the session has been revoked".into(),
            ),
            WeakPassword(why) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "WEAK_PASSWORD",
                (*why).into(),
            ),
            NotFound => (
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource was not found".into(),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "This method is not allowed here".into(),
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "The service is temporarily unavailable; try again shortly".into(),
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "An internal error occurred".into(),
            ),
        };
        (status, code, message)
    }

    fn details(&self) -> Value {
        match self {
            ApiError::Validation(fields) => json!(fields),
            ApiError::InvalidVerificationCode { attempts_remaining } => {
                json!({ "attempts_remaining": attempts_remaining })
            }
            ApiError::ResendTooSoon { retry_after }
            | ApiError::TooManyLoginAttempts { retry_after }
            | ApiError::RateLimited { retry_after } => json!({ "retry_after": retry_after }),
            _ => json!({}),
        }
    }

    /// What the server understood, for the client's developer; never internals.
    fn system_message(&self) -> String {
        match self {
            ApiError::InvalidJson(why) => why.clone(),
            ApiError::Internal(_) | ApiError::Unavailable(_) => {
                "See the server log for this trace_id".into()
            }
            other => other.to_string(),
        }
    }
}

/// `error.name` and `error.type` of the envelope, by status.
fn name_and_type(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => ("ValidationError", "validation_error"),
        StatusCode::BAD_REQUEST => ("BadRequestError", "invalid_request_error"),
        StatusCode::PAYLOAD_TOO_LARGE => ("PayloadTooLargeError", "invalid_request_error"),
        StatusCode::UNAUTHORIZED => ("UnauthorizedError", "authentication_error"),
        StatusCode::FORBIDDEN => ("ForbiddenError", "authorization_error"),
        StatusCode::NOT_FOUND => ("NotFoundError", "invalid_request_error"),
        StatusCode::METHOD_NOT_ALLOWED => ("MethodNotAllowedError", "invalid_request_error"),
        StatusCode::TOO_MANY_REQUESTS => ("RateLimitError", "rate_limit_error"),
        StatusCode::SERVICE_UNAVAILABLE => ("ServiceUnavailableError", "server_error"),
        _ => ("InternalServerError", "server_error"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "internal error");
        }
        let (name, kind) = name_and_type(status);
        let body = ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code: code.into(),
                name: name.into(),
                message,
                system_message: self.system_message(),
                kind: kind.into(),
                status: status.as_u16(),
                trace_id: trace_id(),
                timestamp: crate::clock::rfc3339(time::OffsetDateTime::now_utc().unix_timestamp()),
                details: self.details(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match self {
            ApiError::ResendTooSoon { retry_after }
            | ApiError::TooManyLoginAttempts { retry_after }
            | ApiError::RateLimited { retry_after } => Some(retry_after.max(1)),
            ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
