//! The HTTP API: routes, the request middleware and the operational endpoints.

mod auth;
pub mod extract;
mod ops;
mod responses;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use tracing::Instrument;

use crate::error::{ApiError, RequestContext, REQUEST};
use extract::AppState;

/// Bodies over this are refused with 413 (SPEC §6).
pub const BODY_LIMIT: usize = 64 * 1024;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/verify", post(auth::verify))
        .route("/v1/auth/resend-email", post(auth::resend_email))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/logout-all", post(auth::logout_all))
        .route("/v1/auth/me", get(auth::me).post(auth::me_post))
        .route("/v1/auth/sessions", get(auth::sessions))
        .route(
            "/v1/auth/sessions/{device_id}",
            delete(auth::revoke_session),
        )
        .route("/v1/auth/password/forgot", post(auth::forgot_password))
        .route("/v1/auth/password/reset", post(auth::reset_password))
        .route("/v1/auth/password/change", post(auth::change_password))
        .route("/.well-known/jwks.json", get(ops::jwks))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.json", get(ops::openapi))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// Gives every request a trace id (in errors, in `X-Request-Id` and in its
/// log line) and the server's clock for the errors' timestamps, and logs one
/// line per request.
async fn request_context(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let trace_id = format!("req_{}", crate::crypto::hex(&s.secrets.random::<12>()));
    let span = tracing::info_span!("request", trace_id = %trace_id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let context = RequestContext {
        trace_id: trace_id.clone(),
        clock: s.clock.clone(),
    };
    let mut response = REQUEST
        .scope(context, next.run(req).instrument(span.clone()))
        .await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}
