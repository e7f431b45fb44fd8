//! The OpenAPI document. Each route declares its own operation and the
//! answers only it gives; the error answers that follow from an operation's
//! shape (a JSON body, a bearer token, a path parameter) are added here, once.

use std::collections::btree_map::Entry;

use axum::body::Bytes;
use portcullis_proto::ErrorEnvelope;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};
use utoipa::OpenApi as _;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Portcullis", description = "A self-hosted authentication server."),
    components(schemas(ErrorEnvelope)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
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
        // Also read from `api-key`, as the documented client sends it.
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The document before any route is added: title, schemes, the envelope.
pub fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// Answers of every operation that reads a JSON body (`ApiJson`).
const BODY_ANSWERS: &[(&str, &str)] = &[
    (
        "400",
        "INVALID_JSON: the body is not a JSON object, or not sent as application/json",
    ),
    (
        "408",
        "REQUEST_TIMEOUT: the body did not arrive in time; the connection is closed",
    ),
    ("413", "PAYLOAD_TOO_LARGE: the body is over 64 KiB"),
    (
        "422",
        "VALIDATION_ERROR: `details` maps each missing, unknown or wrong field to what is wrong",
    ),
];

/// Answers of every operation that requires a bearer token or an API key.
const TOKEN_ANSWERS: &[(&str, &str)] = &[
    (
        "401",
        "AUTHENTICATION_REQUIRED, INVALID_TOKEN or TOKEN_EXPIRED: no live access token or API key",
    ),
    (
        "403",
        "INSUFFICIENT_PERMISSIONS: an API key where a signed-in session is needed, or without the scope needed",
    ),
];

/// Answers of every operation with a path parameter (`ApiPath`).
const PATH_ANSWERS: &[(&str, &str)] = &[(
    "404",
    "NOT_FOUND: a path parameter names nothing that exists",
)];

/// Answers of every operation that uses the database or the password hasher.
const SERVER_ANSWERS: &[(&str, &str)] = &[
    (
        "500",
        "INTERNAL_ERROR: a fault on the server, described only in its log",
    ),
    (
        "503",
        "SERVICE_UNAVAILABLE: the database is unreachable or busy, or the password hasher's \
         queue is full; retry after `Retry-After` seconds",
    ),
];

/// Adds to each operation the error answers that follow from its shape; an
/// answer the route declared itself gets the common reason added to its own.
pub fn add_common_answers(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            let has_body = operation.request_body.is_some();
            let needs_token = operation
                .security
                .iter()
                .flatten()
                .any(|requirement| *requirement != SecurityRequirement::default());
            let has_path_parameter = operation
                .parameters
                .iter()
                .flatten()
                .any(|parameter| parameter.parameter_in == ParameterIn::Path);
            let mut answers = Vec::new();
            if has_body {
                answers.extend(BODY_ANSWERS);
            }
            if needs_token {
                answers.extend(TOKEN_ANSWERS);
            }
            if has_path_parameter {
                answers.extend(PATH_ANSWERS);
            }
            // Checking a token looks its session up, and every body is handled
            // by a flow that reads or writes the database (most hash a password).
            if has_body || needs_token {
                answers.extend(SERVER_ANSWERS);
            }
            for (status, description) in answers {
                add_answer(operation, status, description);
            }
        }
    }
}

fn add_answer(operation: &mut Operation, status: &str, description: &str) {
    match operation.responses.responses.entry(status.to_owned()) {
        Entry::Vacant(entry) => {
            entry.insert(RefOr::T(error_answer(description)));
        }
        Entry::Occupied(mut entry) => {
            if let RefOr::T(response) = entry.get_mut() {
                response.description = format!("{}; {description}", response.description);
            }
        }
    }
}

/// An answer whose body is the error envelope.
fn error_answer(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        "application/json".into(),
        Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
    );
    response
}

/// The finished document as served, serialised once at start.
#[derive(Clone)]
pub struct Document(pub Bytes);

impl Document {
    pub fn new(doc: &OpenApi) -> serde_json::Result<Self> {
        serde_json::to_vec(doc).map(|json| Document(json.into()))
    }
}
