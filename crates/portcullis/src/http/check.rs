//! For the team's other services (SPEC §3.3): forward-auth for reverse
//! proxies (nginx `auth_request`, Traefik ForwardAuth, Envoy ext_authz over
//! HTTP) and token introspection (RFC 7662).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{credential, ApiJsonOrForm, AppState};
use crate::auth::{self, Identity, INTROSPECT_SCOPE};
use crate::error::ApiError;
use portcullis_proto::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check))
        .routes(routes!(introspect))
}

/// Forward-auth's path, which the request middleware logs more quietly.
pub(super) const PATH: &str = "/v1/auth/check";

static USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
static EMAIL: HeaderName = HeaderName::from_static("x-auth-email");
static SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");
static CLIENT_ID: HeaderName = HeaderName::from_static("x-auth-client-id");
static SCOPES: HeaderName = HeaderName::from_static("x-auth-scopes");

/// Whether forward-auth's lane (see [`super::Api::answer`]) takes `request`:
/// this route's path, with one of its methods.
pub(super) fn in_lane(request: &Request) -> bool {
    request.uri().path() == PATH
        && matches!(
            *request.method(),
            Method::GET
                | Method::POST
                | Method::PUT
                | Method::PATCH
                | Method::DELETE
                | Method::HEAD
        )
}

/// Forward-auth's answer in its lane. The route stays in the router, which
/// the OpenAPI document is made from.
pub(super) async fn answer(s: AppState, request: Request) -> Response {
    check(State(s), request).await.into_response()
}

/// Forward-auth: who presents this request's bearer token (a user's or a
/// machine client's access token) or API key (`X-API-Key`, `api-key`). Any
/// method is answered, as proxies send the original one. No database read:
/// revocations are known in memory, on every instance within about a second.
#[utoipa::path(method(get, post, put, patch, delete, head), path = "/v1/auth/check", tag = "services",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Allowed. The caller is in the headers; a header that does not apply is absent.",
            headers(
                ("X-Auth-User-Id" = String, description = "The user (a token or key of a user)"),
                ("X-Auth-Email" = String, description = "The user's email"),
                ("X-Auth-Session-Id" = String, description = "The device or client session (a token)"),
                ("X-Auth-Client-Id" = String, description = "The machine client (a client's token)"),
                ("X-Auth-Scopes" = String, description = "Space-separated scopes (a client's token or an API key)"),
            )),
        (status = 401, description = "AUTHENTICATION_REQUIRED, INVALID_TOKEN or TOKEN_EXPIRED", body = ErrorEnvelope),
    ))]
async fn check(State(s): State<AppState>, request: Request) -> Result<Response, ApiError> {
    // The request itself rather than a copy of its headers: this route is hot.
    let credential = credential(request.headers()).ok_or(ApiError::AuthenticationRequired)?;
    let identity = auth::identify(&s, credential).await?;
    let mut answer = HeaderMap::new();
    let mut put = |name: &HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            answer.insert(name.clone(), value);
        }
    };
    match &identity {
        Identity::Token(claims) => {
            put(&SESSION_ID, &claims.sid);
            match claims.client_id {
                Some(client_id) => put(&CLIENT_ID, &client_id.to_string()),
                None => put(&USER_ID, &claims.sub),
            }
            if let Some(email) = &claims.email {
                put(&EMAIL, email);
            }
            if let Some(scope) = &claims.scope {
                put(&SCOPES, scope);
            }
        }
        Identity::Key(key) => {
            put(&USER_ID, &key.user_id);
            put(&EMAIL, &key.email);
            put(&SCOPES, &key.scopes.join(" "));
        }
    }
    Ok((StatusCode::OK, answer).into_response())
}

/// Introspection (RFC 7662): whether an access token, a refresh token or an
/// API key is active, and whose it is. For machine clients (their access
/// token) and API keys with the `introspect` scope.
#[utoipa::path(post, path = "/v1/auth/introspect", tag = "services",
    request_body(content(
        (IntrospectRequest = "application/json"),
        (IntrospectRequest = "application/x-www-form-urlencoded"),
    )),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "`{\"active\": false}` for anything not valid now; otherwise what it stands for", body = IntrospectionResponse),
        (status = 401, description = "AUTHENTICATION_REQUIRED, INVALID_TOKEN or TOKEN_EXPIRED: the caller's own credential", body = ErrorEnvelope),
        (status = 403, description = "INSUFFICIENT_PERMISSIONS: a user's token, or a key without the `introspect` scope", body = ErrorEnvelope),
    ))]
async fn introspect(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJsonOrForm(req): ApiJsonOrForm<IntrospectRequest>,
) -> Result<Json<IntrospectionResponse>, ApiError> {
    let credential = credential(&headers).ok_or(ApiError::AuthenticationRequired)?;
    let allowed = match auth::identify(&s, credential).await? {
        Identity::Token(claims) => claims.client_id.is_some(),
        Identity::Key(key) => key.has_scope(INTROSPECT_SCOPE),
    };
    if !allowed {
        return Err(ApiError::InsufficientPermissions);
    }
    let answer = auth::introspect(&s, req.token.expose_secret().trim()).await?;
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::Method;

    use super::{in_lane, router, PATH};

    /// The lane's methods are written twice, in `in_lane` and in the route's
    /// `utoipa::path`, which the router and the document are made from: a
    /// method in one only would be answered differently by the lane and by
    /// the router.
    #[test]
    fn the_lane_takes_the_methods_the_route_has() {
        let (_, doc) = router().split_for_parts();
        let route = &doc.paths.paths[PATH];
        let methods = [
            (Method::GET, &route.get),
            (Method::POST, &route.post),
            (Method::PUT, &route.put),
            (Method::PATCH, &route.patch),
            (Method::DELETE, &route.delete),
            (Method::HEAD, &route.head),
            (Method::OPTIONS, &route.options),
            (Method::TRACE, &route.trace),
        ];
        for (method, operation) in methods {
            let request = Request::builder().method(method.clone()).uri(PATH);
            let request = request.body(Body::empty()).unwrap();
            assert_eq!(in_lane(&request), operation.is_some(), "{method}");
        }
    }
}
