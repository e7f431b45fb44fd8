//! Verifying Portcullis access tokens in another Rust service, from the
//! keys Portcullis publishes (`/.well-known/jwks.json`): no call to
//! Portcullis per request. The keys are fetched once and again when a token
//! names a key not seen yet (a rotation), at most once per refetch floor.
//! Only EdDSA, only `typ: at+jwt`, `iss`, `aud`, `exp` and `nbf` checked;
//! `jku`, `x5u` and `jwk` headers are never followed.
//!
//! This checks the signature and lifetime only: a token whose session was
//! revoked stays valid here until it expires. Where a revocation must count
//! at once, ask Portcullis (`/v1/auth/check`, or introspection).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_proto::ErrorCode;
use serde::Deserialize;
use serde_json::json;

const TYP: &str = "at+jwt";

/// What a verified access token says.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user's id; for a machine client's token, the client's.
    pub sub: String,
    /// The device session (or client session).
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// A user's token: the account's email.
    #[serde(default)]
    pub email: Option<String>,
    /// A machine client's token: its id.
    #[serde(default)]
    pub client_id: Option<i64>,
    /// A machine client's token: its scopes, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the signing keys cannot be fetched: {0}")]
    Keys(String),
}

/// Verifies access tokens of one Portcullis server.
#[derive(Debug)]
pub struct Guard {
    http: reqwest::Client,
    jwks_url: String,
    validation: Validation,
    refetch_floor: Duration,
    keys: RwLock<Keys>,
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_kid.keys()).finish()
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    kty: String,
    crv: Option<String>,
    x: Option<String>,
}

impl Guard {
    /// A guard for tokens of the server at `base_url` with this `iss` and
    /// `aud` (Portcullis's `PORTCULLIS_ISSUER` and audience; both default to
    /// its public URL). Keys are refetched at most every 30 s, and a fetch
    /// gives up after 10 s (5 s to connect), so that a Portcullis that hangs
    /// cannot hold the requests that wait for its keys.
    pub fn new(base_url: &str, issuer: &str, audience: &str) -> Guard {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        Guard {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            jwks_url: format!("{}/.well-known/jwks.json", base_url.trim_end_matches('/')),
            validation,
            refetch_floor: Duration::from_secs(30),
            keys: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// How often, at most, an unknown `kid` makes the guard fetch the keys again.
    pub fn refetch_floor(mut self, floor: Duration) -> Guard {
        self.refetch_floor = floor;
        self
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, GuardError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| GuardError::Invalid)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TYP) {
            return Err(GuardError::Invalid);
        }
        let kid = header.kid.ok_or(GuardError::Invalid)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.fetch_keys().await?;
                self.key(&kid).ok_or(GuardError::Invalid)?
            }
        };
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => GuardError::Expired,
                _ => GuardError::Invalid,
            })
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.by_kid.get(kid).cloned()
    }

    /// Fetches the keys, unless they were fetched within the floor.
    async fn fetch_keys(&self) -> Result<(), GuardError> {
        let _one_at_a_time = self.fetching.lock().await;
        let fetched_at = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .fetched_at;
        if fetched_at.is_some_and(|at| at.elapsed() < self.refetch_floor) {
            return Ok(());
        }
        let keys = async {
            let response = self.http.get(&self.jwks_url).send().await?;
            response.error_for_status()?.json::<Jwks>().await
        };
        let jwks = keys.await.map_err(|e| GuardError::Keys(e.to_string()))?;
        let by_kid = jwks
            .keys
            .into_iter()
            .filter(|k| k.kty == "OKP" && k.crv.as_deref() == Some("Ed25519"))
            .filter_map(|k| {
                let key = DecodingKey::from_ed_components(k.x.as_deref()?).ok()?;
                Some((k.kid, key))
            })
            .collect();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Keys {
            by_kid,
            fetched_at: Some(Instant::now()),
        };
        Ok(())
    }
}

/// The verified caller of a request to a service of the team: take
/// `Verified` as a handler argument, with an `Arc<Guard>` in the state.
/// A refusal is 401 in Portcullis's error envelope.
#[derive(Debug, Clone)]
pub struct Verified(pub Claims);

impl<S> FromRequestParts<S> for Verified
where
    Arc<Guard>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
            .map(|(_, token)| token.trim());
        let verified = match token {
            Some(token) => Arc::<Guard>::from_ref(state).verify(token).await,
            None => Err(GuardError::Missing),
        };
        verified.map(Verified).map_err(refusal)
    }
}

/// The error envelope of Portcullis for a refused token.
fn refusal(error: GuardError) -> Response {
    let (code, message) = match &error {
        GuardError::Missing => (ErrorCode::AuthenticationRequired, "Authentication required"),
        GuardError::Expired => (ErrorCode::TokenExpired, "The token has expired"),
        GuardError::Invalid | GuardError::Keys(_) => (
            ErrorCode::InvalidToken,
            "The token is invalid or has been revoked",
        ),
    };
    let body = json!({
        "success": false,
        "error": {
            "code": code, "name": code.name(), "type": code.kind(), "status": 401,
            "message": message, "system_message": error.to_string(), "details": {},
        },
    });
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}
