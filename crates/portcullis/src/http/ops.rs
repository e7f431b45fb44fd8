//! Operational endpoints: health, readiness, JWKS and the OpenAPI document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use utoipa::OpenApi;

use super::extract::AppState;
use crate::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis", description = "A self-hosted authentication server."),
    paths(
        super::auth::register, super::auth::login, super::auth::verify, super::auth::resend_email,
        super::auth::refresh, super::auth::logout, super::auth::logout_all, super::auth::me, super::auth::me_post,
        super::auth::sessions, super::auth::revoke_session, super::auth::forgot_password,
        super::auth::reset_password, super::auth::change_password,
        jwks, healthz, readyz, openapi,
    ),
    components(schemas(portcullis_proto::TokenResponse, portcullis_proto::DeviceInfo)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "ops", responses((status = 200, description = "JWK set")))]
pub async fn jwks(State(s): State<AppState>) -> Json<Value> {
    Json(s.tokens.jwks().clone())
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "Up")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database is reachable and migrated.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "Ready"), (status = 503, body = portcullis_proto::ErrorEnvelope)))]
pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.db.ready().await {
        Ok((StatusCode::OK, Json(json!({ "status": "ready" }))))
    } else {
        Err(ApiError::Unavailable("database not ready"))
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3.1")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
