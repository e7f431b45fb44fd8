//! Access tokens: EdDSA-signed JWTs (SPEC §5) and the JWKS that publishes
//! their keys. Refresh tokens are opaque and live in `auth::refresh`.

use std::collections::HashMap;
use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::Timestamp;
use crate::crypto::{hex, Secrets};
use crate::error::ApiError;
use crate::store::{signing_keys, Db};

const TYP: &str = "at+jwt";

/// The claims of an access token: a user's, or (with `client_id` and
/// `scope`) a machine client's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The device session id.
    pub sid: String,
    pub jti: String,
    pub iat: Timestamp,
    pub nbf: Timestamp,
    pub exp: Timestamp,
    /// Only in a user's token: the account's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Only in a machine client's token: its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<i64>,
    /// Only in a machine client's token: its scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// At most this many verified tokens are remembered; past it the cache starts again.
const VERIFIED_CACHE: usize = 16_384;

/// Hashes a verified token by the end of its signature only: those bytes
/// already tell tokens apart, and hashing the whole token (hundreds of bytes)
/// was the dearest step of a cached check. Keys are still compared whole, and
/// only verified tokens are stored, so a forged tail cannot crowd a bucket.
#[derive(Default)]
struct SignatureTail(RandomState);

const TAIL: usize = 32;

impl BuildHasher for SignatureTail {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

struct TailHasher(DefaultHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(&bytes[bytes.len().saturating_sub(TAIL)..]);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Whose device session an access token is for.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub session_id: &'a str,
    /// When the session ends: no token of it outlives it.
    pub session_ends: Timestamp,
}

/// A signed access token and how many seconds it is valid.
pub struct Signed {
    pub token: String,
    pub expires_in: i64,
}

/// Signing and verifying access tokens with the current keys, which every
/// instance re-reads from the store (see [`Tokens::reload`]).
pub struct Tokens {
    ring: RwLock<Arc<KeyRing>>,
    /// Tokens whose signature and claims were checked, so that a token used
    /// again costs a lookup instead of a signature verification.
    verified: RwLock<HashMap<Box<str>, Arc<AccessClaims>, SignatureTail>>,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: i64,
}

/// The keys in use: the first signs, all verify.
struct KeyRing {
    kids: Vec<String>,
    /// The signer's JWT header, encoded once.
    header: String,
    /// Parsed once: parsing derives the public key, which costs as much as a signature.
    signing: Ed25519KeyPair,
    verifying: HashMap<String, DecodingKey>,
    jwks: Value,
}

impl KeyRing {
    fn new(keys: &[signing_keys::SigningKey], secrets: &Secrets) -> anyhow::Result<Self> {
        let newest = keys.first().context("no signing key")?;
        let context = signing_key_context(&newest.kid);
        let pkcs8 = secrets.decrypt(&newest.private_key, &context).context(
            "cannot decrypt the signing key: is this the master key it was created with?",
        )?;
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        for key in keys {
            let public = URL_SAFE_NO_PAD
                .decode(&key.public_key)
                .context("malformed public key")?;
            verifying.insert(key.kid.clone(), DecodingKey::from_ed_der(&public));
            jwks.push(json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": key.kid, "x": key.public_key,
            }));
        }
        Ok(Self {
            kids: keys.iter().map(|k| k.kid.clone()).collect(),
            header: URL_SAFE_NO_PAD
                .encode(json!({ "alg": "EdDSA", "typ": TYP, "kid": newest.kid }).to_string()),
            signing: Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
                .map_err(|e| anyhow::anyhow!("malformed signing key: {e}"))?,
            verifying,
            jwks: json!({ "keys": jwks }),
        })
    }
}

impl Tokens {
    /// Loads the keys, generating the first one on first start (once, however
    /// many instances start at the same time).
    pub async fn load(
        db: &Db,
        secrets: &Secrets,
        issuer: &str,
        audience: &str,
        access_ttl: i64,
        now: Timestamp,
    ) -> anyhow::Result<Self> {
        let mut conn = db.pool().acquire().await?;
        let keys = signing_keys::verifying(&mut conn, now).await?;
        let has_signer = keys.first().is_some_and(|k| k.retired_at.is_none());
        if !has_signer && signing_keys::insert_signer(&mut conn, &generate(secrets, now)?).await? {
            tracing::info!("generated the first token signing key");
        }
        let keys = signing_keys::verifying(&mut conn, now).await?;
        Self::from_keys(&keys, secrets, issuer, audience, access_ttl)
    }

    /// Signs with the first key; verifies with any of them.
    fn from_keys(
        keys: &[signing_keys::SigningKey],
        secrets: &Secrets,
        issuer: &str,
        audience: &str,
        access_ttl: i64,
    ) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // Expiry is checked against the server's clock below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(Self {
            ring: RwLock::new(Arc::new(KeyRing::new(keys, secrets)?)),
            verified: RwLock::default(),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl,
        })
    }

    /// Re-reads the keys that verify at `now` and, if they changed (a
    /// rotation on any instance, or a superseded key whose tokens have all
    /// expired), swaps them in. Returns whether they changed.
    pub async fn reload(&self, db: &Db, secrets: &Secrets, now: Timestamp) -> anyhow::Result<bool> {
        let keys = signing_keys::verifying(&mut *db.pool().acquire().await?, now).await?;
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        if kids == self.ring().kids || keys.is_empty() {
            return Ok(false);
        }
        let ring = Arc::new(KeyRing::new(&keys, secrets)?);
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = ring;
        // A key that left the ring verifies nothing any more.
        self.verified
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(true)
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Signs an access token for a user's device session; it expires with
    /// the session at the latest.
    pub fn issue(
        &self,
        secrets: &Secrets,
        subject: Subject<'_>,
        now: Timestamp,
    ) -> anyhow::Result<Signed> {
        let ttl = self.access_ttl.min(subject.session_ends - now).max(0);
        let claims = AccessClaims {
            email: Some(subject.email.to_owned()),
            ..self.claims(secrets, subject.user_id, subject.session_id, ttl, now)
        };
        Ok(Signed {
            token: self.sign(&claims)?,
            expires_in: ttl,
        })
    }

    /// Signs an access token for a machine client's session, valid for `ttl`
    /// seconds; `sub` is the client id (RFC 9068 §2.2).
    pub fn issue_client(
        &self,
        secrets: &Secrets,
        client_id: i64,
        scopes: &[String],
        session_id: &str,
        ttl: i64,
        now: Timestamp,
    ) -> anyhow::Result<String> {
        let claims = AccessClaims {
            client_id: Some(client_id),
            scope: Some(scopes.join(" ")),
            ..self.claims(secrets, &client_id.to_string(), session_id, ttl, now)
        };
        self.sign(&claims)
    }

    fn claims(
        &self,
        secrets: &Secrets,
        sub: &str,
        session_id: &str,
        ttl: i64,
        now: Timestamp,
    ) -> AccessClaims {
        AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: sub.to_owned(),
            sid: session_id.to_owned(),
            jti: hex(&secrets.random::<16>()),
            iat: now,
            nbf: now,
            exp: now + ttl,
            email: None,
            client_id: None,
            scope: None,
        }
    }

    fn sign(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let ring = self.ring();
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
        let signed = format!("{}.{claims}", ring.header);
        let signature = ring.signing.sign(signed.as_bytes());
        Ok(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// Checks signature (our algorithm, our keys only), `typ`, `iss`, `aud`
    /// and lifetime. Headers such as `jku`, `x5u` or `jwk` are never followed.
    /// A token verified before is looked up, not verified again; its
    /// lifetime is checked each time.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Arc<AccessClaims>, ApiError> {
        let known = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned();
        let claims = match known {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signature(token)?);
                let mut verified = self
                    .verified
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if verified.len() >= VERIFIED_CACHE {
                    verified.clear();
                }
                verified.insert(token.into(), claims.clone());
                claims
            }
        };
        if claims.nbf > now + 60 {
            return Err(ApiError::InvalidToken);
        }
        if claims.exp <= now {
            return Err(ApiError::TokenExpired);
        }
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::InvalidToken)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TYP) {
            return Err(ApiError::InvalidToken);
        }
        let ring = self.ring();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| ring.verifying.get(kid))
            .ok_or(ApiError::InvalidToken)?;
        jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::InvalidToken)
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        self.ring().jwks.clone()
    }
}

/// What a signing key's encrypted private half is bound to: its row.
fn signing_key_context(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// A new Ed25519 key, its private half encrypted for its row.
pub fn generate(secrets: &Secrets, now: Timestamp) -> anyhow::Result<signing_keys::SigningKey> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(secrets.rng())
        .map_err(|_| anyhow::anyhow!("key generation failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("invalid generated key"))?;
    let kid = hex(&secrets.random::<8>());
    Ok(signing_keys::SigningKey {
        private_key: secrets.encrypt(pkcs8.as_ref(), &signing_key_context(&kid)),
        kid,
        alg: "EdDSA".into(),
        public_key: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        created_at: now,
        retired_at: None,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tokens(secrets: &Secrets) -> Tokens {
        let key = generate(secrets, 1_000).unwrap();
        Tokens::from_keys(&[key], secrets, "https://iss", "https://aud", 3600).unwrap()
    }

    fn subject() -> Subject<'static> {
        Subject {
            user_id: "usr_1",
            email: "ada@example.com",
            session_id: "ses_1",
            session_ends: 1_000_000,
        }
    }

    #[test]
    fn no_token_outlives_its_session() {
        let secrets = Secrets::from_key([5; 32]);
        let tokens = tokens(&secrets);
        let ending = Subject {
            session_ends: 1_600,
            ..subject()
        };
        let signed = tokens.issue(&secrets, ending, 1_000).unwrap();
        assert_eq!(signed.expires_in, 600);
        assert!(tokens.verify(&signed.token, 1_599).is_ok());
        assert!(matches!(
            tokens.verify(&signed.token, 1_600),
            Err(ApiError::TokenExpired)
        ));
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let secrets = Secrets::from_key([5; 32]);
        let tokens = tokens(&secrets);
        let token = tokens.issue(&secrets, subject(), 1_000).unwrap().token;
        let claims = tokens.verify(&token, 1_000).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.sid.as_str()),
            ("usr_1", "ses_1")
        );
        assert!(matches!(
            tokens.verify(&token, 4_600),
            Err(ApiError::TokenExpired)
        ));
    }

    #[test]
    fn tokens_of_another_issuer_audience_or_key_are_refused() {
        let secrets = Secrets::from_key([5; 32]);
        let ours = tokens(&secrets);
        let key = generate(&secrets, 1_000).unwrap();
        let other_aud =
            Tokens::from_keys(&[key], &secrets, "https://iss", "https://other", 3600).unwrap();
        let token = other_aud.issue(&secrets, subject(), 1_000).unwrap().token;
        assert!(ours.verify(&token, 1_000).is_err(), "unknown kid");
        let theirs = tokens(&secrets);
        let token = theirs.issue(&secrets, subject(), 1_000).unwrap().token;
        assert!(ours.verify(&token, 1_000).is_err(), "another key");
    }

    proptest! {
        #[test]
        fn garbage_never_verifies_and_never_panics(input in ".{0,400}") {
            let secrets = Secrets::from_key([5; 32]);
            prop_assert!(tokens(&secrets).verify(&input, 1_000).is_err());
        }

        #[test]
        fn any_changed_character_breaks_the_token(at in any::<prop::sample::Index>(), c in "[A-Za-z0-9_.-]") {
            let secrets = Secrets::from_key([5; 32]);
            let tokens = tokens(&secrets);
            let token = tokens.issue(&secrets, subject(), 1_000).unwrap().token;
            let i = at.index(token.len());
            let mut changed = token.clone();
            changed.replace_range(i..=i, &c);
            prop_assume!(changed != token);
            prop_assert!(tokens.verify(&changed, 1_000).is_err(), "{} verified", changed);
        }
    }

    /// The claim: every changed character fails verification. The signature
    /// covers the header and payload as text, and the signature's own text
    /// decodes strictly, so no other spelling yields the same bytes. The last
    /// character of a segment is where a lenient base64url decoder would read
    /// unused bits as the same bytes: try every character there.
    #[test]
    fn no_other_spelling_of_a_segment_end_verifies() {
        let secrets = Secrets::from_key([5; 32]);
        let tokens = tokens(&secrets);
        let token = tokens.issue(&secrets, subject(), 1_000).unwrap().token;
        let ends = token
            .match_indices('.')
            .map(|(dot, _)| dot - 1)
            .chain([token.len() - 1]);
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for end in ends {
            for c in alphabet.chars() {
                let mut changed = token.clone();
                changed.replace_range(end..=end, &c.to_string());
                if changed != token {
                    assert!(
                        tokens.verify(&changed, 1_000).is_err(),
                        "{changed} verified"
                    );
                }
            }
        }
    }
}
