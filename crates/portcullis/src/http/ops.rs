//! Operational endpoints: health, readiness, metrics, JWKS and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use portcullis_proto::ErrorEnvelope;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::AppState;
use super::openapi::Document;
use crate::error::ApiError;
use crate::store::outbox;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi))
        .routes(routes!(metrics))
}

/// Counters and histograms in the Prometheus text format (OpenMetrics).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "The metrics", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
    (status = 503, description = "SERVICE_UNAVAILABLE: the database is not reachable", body = ErrorEnvelope),
))]
async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let depth = outbox::depth(&mut *s.read().await?).await?;
    let text = s.metrics.render(depth, s.hasher.queued());
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text))
}

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "ops",
    responses((status = 200, description = "JWK set")))]
async fn jwks(State(s): State<AppState>) -> Json<Value> {
    Json(s.tokens.jwks())
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Up")))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database is reachable and migrated.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "SERVICE_UNAVAILABLE: the database is not ready", body = ErrorEnvelope),
))]
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.db.ready().await {
        Ok((StatusCode::OK, Json(json!({ "status": "ready" }))))
    } else {
        Err(ApiError::Unavailable("database not ready"))
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1")))]
async fn openapi(Extension(document): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document.0)
}
