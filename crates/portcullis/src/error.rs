//! The one error type of the API and its JSON envelope (SPEC §4).

use std::collections::BTreeMap;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_proto::{ErrorBody, ErrorCode, ErrorEnvelope};
use serde_json::{json, Value};

use crate::clock::{rfc3339, Clock, SystemClock};

/// What an error rendered during a request takes from it.
#[derive(Clone)]
pub struct RequestContext {
    /// Sent as `X-Request-Id`, written to the request's log line.
    pub trace_id: String,
    /// The server's clock, which tests move by hand.
    pub clock: Arc<dyn Clock>,
}

tokio::task_local! {
    /// The request being served, set by the request middleware.
    pub static REQUEST: RequestContext;
}

/// The current request's trace id, or an empty string outside a request.
pub fn trace_id() -> String {
    REQUEST.try_with(|r| r.trace_id.clone()).unwrap_or_default()
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
    /// 401 `AUTHENTICATION_REQUIRED`: no credentials, or an API key that is
    /// unknown, revoked or expired (worded as the dev-login document words it).
    #[error("Missing or invalid authorization header")]
    AuthenticationRequired,
    /// 403 `INSUFFICIENT_PERMISSIONS`: the credentials are good but may not do this.
    #[error("Insufficient permissions for this operation")]
    InsufficientPermissions,
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
    /// 401 `INVALID_TOTP_CODE`: neither a current TOTP code nor an unused recovery code.
    #[error("invalid TOTP code")]
    InvalidTotpCode,
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
    /// 408 `REQUEST_TIMEOUT`: the body or the answer took too long; the connection closes.
    #[error("request timeout")]
    RequestTimeout,
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503 `SERVICE_UNAVAILABLE` with `Retry-After`.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// 400 `VALIDATION_FAILURE` (client API): a required field is missing or empty.
    #[error("{0}")]
    ClientValidation(&'static str),
    /// 401 `UNAUTHORIZED` (client API), with the documented message.
    #[error("{0}")]
    ClientUnauthorized(&'static str),
    /// 403 `FORBIDDEN` (client API): the request's IP is not in the allowlist.
    #[error("IP address not authorized")]
    ClientForbidden,
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

    /// The stable code of each error and the message a client may show.
    fn code_and_message(&self) -> (ErrorCode, &str) {
        use ApiError::*;
        match self {
            Validation(_) => (ErrorCode::ValidationError, "Validation failed"),
            InvalidJson(_) => (ErrorCode::InvalidJson, "The request body is not valid JSON"),
            PayloadTooLarge => (ErrorCode::PayloadTooLarge, "The request body is too large"),
            AuthenticationRequired => (
                ErrorCode::AuthenticationRequired,
                "Authentication required. Please provide a valid API key.",
            ),
            InsufficientPermissions => (
                ErrorCode::InsufficientPermissions,
                "You do not have permission to access this resource.",
            ),
            InvalidToken => (
                ErrorCode::InvalidToken,
                "The token is invalid or has been revoked",
            ),
            TokenExpired => (ErrorCode::TokenExpired, "The token has expired"),
            InvalidCredentials => (ErrorCode::InvalidCredentials, "Invalid email or password"),
            AccountDisabled => (ErrorCode::AccountDisabled, "This account is disabled"),
            InvalidTotpCode => (
                ErrorCode::InvalidTotpCode,
                "The two-factor code is incorrect or was already used",
            ),
            InvalidVerificationCode { .. } => (
                ErrorCode::InvalidVerificationCode,
                "Invalid verification code",
            ),
            VerificationExpired => (
                ErrorCode::VerificationExpired,
                "The verification key is invalid or has expired; start again",
            ),
            VerificationAttemptsExceeded => (
                ErrorCode::VerificationAttemptsExceeded,
                "Too many attempts for this verification key; start again",
            ),
            ResendTooSoon { .. } => (
                ErrorCode::ResendTooSoon,
                "Please wait before requesting another code",
            ),
            TooManyLoginAttempts { .. } => (
                ErrorCode::TooManyLoginAttempts,
                "Too many failed login attempts; try again later",
            ),
            RateLimited { .. } => (ErrorCode::RateLimited, "Too many requests; try again later"),
            RefreshTokenInvalid => (
                ErrorCode::RefreshTokenInvalid,
                "The refresh token is invalid or has expired",
            ),
            RefreshTokenReused => (
                ErrorCode::RefreshTokenReused,
                "The refresh token was already used; the session has been revoked",
            ),
            WeakPassword(why) => (ErrorCode::WeakPassword, why),
            NotFound => (ErrorCode::NotFound, "The requested resource was not found"),
            MethodNotAllowed => (
                ErrorCode::MethodNotAllowed,
                "This method is not allowed here",
            ),
            RequestTimeout => (
                ErrorCode::RequestTimeout,
                "The request took too long; send it again",
            ),
            Unavailable(_) => (
                ErrorCode::ServiceUnavailable,
                "The service is temporarily unavailable; try again shortly",
            ),
            Internal(_) => (ErrorCode::InternalError, "An internal error occurred"),
            ClientValidation(message) => (ErrorCode::ValidationFailure, message),
            ClientUnauthorized(message) => (ErrorCode::Unauthorized, message),
            ClientForbidden => (ErrorCode::Forbidden, "IP address not authorized"),
        }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, message) = self.code_and_message();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "internal error");
        }
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (trace_id, now) = REQUEST
            .try_with(|r| (r.trace_id.clone(), r.clock.now()))
            // Outside a request (no trace id to give) the wall clock is all there is.
            .unwrap_or_else(|_| (String::new(), SystemClock.now()));
        let body = ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code,
                name: code.name().into(),
                message: message.into(),
                system_message: self.system_message(),
                kind: code.kind().into(),
                status: status.as_u16(),
                trace_id,
                timestamp: rfc3339(now),
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
