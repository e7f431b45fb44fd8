//! Extractors that turn requests into trusted values, with every rejection
//! in the error envelope.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::auth::{self, Caller, Client, Credential, KeyHolder, Principal};
use crate::error::ApiError;
use crate::services::Services;
use crate::store::clients::Client as MachineClient;

pub type AppState = Arc<Services>;

/// A JSON body: wrong content type and malformed JSON are `INVALID_JSON`,
/// oversize is `PAYLOAD_TOO_LARGE`, and type errors are `VALIDATION_ERROR`
/// naming the field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::InvalidJson(
                "Content-Type must be application/json".into(),
            ));
        }
        let bytes = body(req, state).await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::InvalidJson(format!("Malformed JSON: {e}")))?;
        from_value(value).map(ApiJson)
    }
}

/// A JSON body, or a form (`application/x-www-form-urlencoded`, as OAuth
/// clients send to introspection), read into the same type with the same errors.
pub struct ApiJsonOrForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return ApiJson::from_request(req, state)
                .await
                .map(|ApiJson(body)| ApiJsonOrForm(body));
        }
        let bytes = body(req, state).await?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::InvalidJson(format!("Malformed form: {e}")))?;
        let fields = pairs
            .into_iter()
            .map(|(name, value)| (name, serde_json::Value::String(value)));
        from_value(serde_json::Value::Object(fields.collect())).map(ApiJsonOrForm)
    }
}

/// The body's bytes; over the limit is `PAYLOAD_TOO_LARGE`.
async fn body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::InvalidJson("The request body could not be read".into())
        }
    })
}

/// Reads a body's JSON value into its type, naming the field of any error.
fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::InvalidJson(
            "The request body must be a JSON object".into(),
        ));
    }
    // No text the server stores or looks up may hold NUL (PostgreSQL refuses it).
    if let Some(field) = field_with_nul(&value) {
        return Err(ApiError::field(&field, "Must not contain NUL characters"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| field_error(&e))
}

/// The first field whose text (or key) contains a NUL character.
fn field_with_nul(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Some("body".into()),
        Value::Array(items) => items.iter().find_map(field_with_nul),
        Value::Object(map) => map.iter().find_map(|(key, value)| {
            if key.contains('\0') {
                return Some("body".into());
            }
            field_with_nul(value).map(|inner| if inner == "body" { key.clone() } else { inner })
        }),
        _ => None,
    }
}

/// Path parameters. One that cannot be read (not text once decoded, holding
/// a NUL, or not of the expected type) names nothing that exists: `NOT_FOUND`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Nothing the server stores has a NUL in its name (PostgreSQL cannot hold one).
        if parts.uri.path().contains("%00") {
            return Err(ApiError::NotFound);
        }
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::NotFound),
            // A route without the parameter its handler reads: a bug, not bad input.
            Err(other) => Err(ApiError::Internal(anyhow::anyhow!(other.body_text()))),
        }
    }
}

/// Names the field a deserialisation error is about.
fn field_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner().to_string();
    let quoted = |prefix: &str| {
        inner
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = quoted("missing field `") {
        return ApiError::field(&field, "This field is required");
    }
    if let Some(field) = quoted("unknown field `") {
        return ApiError::field(&field, "Unknown field");
    }
    let path = e.path().to_string();
    let field = if path == "." { "body".to_owned() } else { path };
    // serde's wording ("invalid type: integer `1`, expected a string") is clear enough.
    ApiError::field(&field, inner)
}

/// The caller of an endpoint that requires a signed-in session
/// (`Authorization: Bearer`). A valid API key instead is `INSUFFICIENT_PERMISSIONS`:
/// keys may not manage credentials, keys or sessions' own lifecycle.
pub struct Bearer(pub Caller);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer_token(&parts.headers) {
            return auth::authenticate(state, token).map(Bearer);
        }
        let key = api_key(&parts.headers).ok_or(ApiError::AuthenticationRequired)?;
        auth::authenticate_key(state, key).await?;
        Err(ApiError::InsufficientPermissions)
    }
}

/// The holder of an API key in `X-API-Key` or `api-key` (never a query string).
pub struct ApiKey(pub KeyHolder);

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = api_key(&parts.headers).ok_or(ApiError::AuthenticationRequired)?;
        auth::authenticate_key(state, key).await.map(ApiKey)
    }
}

/// A signed-in session or an API key; the bearer token wins when both are sent.
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = match (bearer_token(&parts.headers), api_key(&parts.headers)) {
            (Some(token), _) => Principal::Session(auth::authenticate(state, token)?),
            (None, Some(key)) => Principal::Key(auth::authenticate_key(state, key).await?),
            (None, None) => return Err(ApiError::AuthenticationRequired),
        };
        Ok(Authenticated(principal))
    }
}

/// The machine client of a client access token (`Authorization: Bearer`).
/// Refusals are the client API's `UNAUTHORIZED`.
pub struct ClientBearer(pub MachineClient);

impl FromRequestParts<AppState> for ClientBearer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::ClientUnauthorized(
            "A client access token is required",
        ))?;
        auth::authenticate_client(state, token)
            .await
            .map(ClientBearer)
    }
}

/// The credential of a request: its bearer token, else its API key.
pub fn credential(headers: &HeaderMap) -> Option<Credential<'_>> {
    bearer_token(headers)
        .map(Credential::AccessToken)
        .or_else(|| api_key(headers).map(Credential::ApiKey))
}

/// The API key of a request, from `X-API-Key` or `api-key`.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    ["x-api-key", "api-key"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client's address and user agent. Forwarding headers are believed only
/// when the TCP peer is a configured trusted proxy.
pub struct ClientMeta(pub Client);

impl FromRequestParts<AppState> for ClientMeta {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = peer.map(|peer| client_ip(peer, &parts.headers, &state.config.trusted_proxies));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        Ok(ClientMeta(Client {
            ip: ip.map(|ip| ip.to_string()),
            user_agent,
        }))
    }
}

/// The client's address: the TCP peer, unless it is a trusted proxy; then
/// the forwarding chain (`Forwarded`'s `for=` if the proxy sent it, else
/// `X-Forwarded-For`) read from the right, past trusted proxies. An entry
/// that is not an address (`unknown`, an obfuscated name) ends the walk at
/// the last hop known, so nothing written left of it can be believed.
/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut hop = peer.to_canonical();
    if !is_trusted(&hop) {
        return hop;
    }
    let texts = |name: &str| -> Vec<String> {
        let values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
        values
            .flat_map(|v| v.split(','))
            .map(str::to_owned)
            .collect()
    };
    let forwarded = texts("forwarded");
    let chain: Vec<Option<IpAddr>> = if forwarded.is_empty() {
        texts("x-forwarded-for")
            .iter()
            .map(|e| e.trim().parse().ok())
            .collect()
    } else {
        forwarded.iter().map(|e| forwarded_for(e)).collect()
    };
    for entry in chain.into_iter().rev() {
        let Some(ip) = entry.map(|ip| ip.to_canonical()) else {
            return hop;
        };
        hop = ip;
        if !is_trusted(&hop) {
            return hop;
        }
    }
    hop
}

/// The address in one `Forwarded` element's `for=` parameter (RFC 7239):
/// `for=192.0.2.60`, `for="192.0.2.60:8080"`, `for="[2001:db8::17]:4711"`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })?;
    let value = value.trim_matches('"');
    if let Some(v6) = value.strip_prefix('[') {
        return v6.split(']').next()?.parse().ok();
    }
    value
        .parse()
        .ok()
        .or_else(|| value.split(':').next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &headers, &trusted).to_string(),
            "203.0.113.9"
        );
        assert_eq!(client_ip(stranger, &headers, &trusted), stranger);
        assert_eq!(client_ip(proxy, &headers, &[]), proxy);
    }

    #[test]
    fn forwarded_is_read_like_x_forwarded_for() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "forwarded",
            "for=198.51.100.1, for=\"[2001:db8::17]:4711\";proto=https, for=\"10.0.0.3:80\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            client_ip(proxy, &headers, &trusted).to_string(),
            "2001:db8::17"
        );
        // Forwarded wins over X-Forwarded-For when a proxy sends both.
        headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(
            client_ip(proxy, &headers, &trusted).to_string(),
            "2001:db8::17"
        );
    }

    #[test]
    fn an_entry_that_is_no_address_stops_the_walk() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, unknown, 10.0.0.2".parse().unwrap(),
        );
        assert_eq!(client_ip(proxy, &headers, &trusted).to_string(), "10.0.0.2");
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "::ffff:203.0.113.9".parse().unwrap());
        assert_eq!(
            client_ip(mapped, &headers, &trusted).to_string(),
            "203.0.113.9"
        );
        let stranger: IpAddr = "::ffff:198.51.100.1".parse().unwrap();
        assert_eq!(
            client_ip(stranger, &headers, &trusted).to_string(),
            "198.51.100.1"
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
