//! The server's secrets: the master key and what is derived from it, the one
//! CSPRNG, hashing of stored tokens and codes, and encryption at rest.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::aead::{self, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::digest;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::config::{Config, Mode};

/// Keys derived from the master key, one per purpose.
pub struct Secrets {
    rng: SystemRandom,
    aead: LessSafeKey,
    code_key: hmac::Key,
    refresh_key: hmac::Key,
    pseudonym_key: hmac::Key,
    secret_key: hmac::Key,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("PORTCULLIS_MASTER_KEY must be 32 bytes in base64")]
    Malformed,
    #[error("production mode requires PORTCULLIS_MASTER_KEY (32 bytes, base64)")]
    Required,
    #[error("PORTCULLIS_MASTER_KEY looks made by hand (too few distinct bytes): production needs 32 random bytes, e.g. `openssl rand -base64 32`")]
    Weak,
    #[error("master key file {path} can be read by other users: `chmod 600 {path}`")]
    Exposed { path: String },
    #[error("master key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl Secrets {
    /// The master key from configuration or, in development, from the key file
    /// (generated with mode 0600 on first start).
    pub fn load(config: &Config) -> Result<Self, MasterKeyError> {
        if let Some(key) = configured_key(config)? {
            return Ok(Self::from_key(key));
        }
        // Settings refuse this too; a Config built by hand must not get a generated key.
        if config.mode == Mode::Production {
            return Err(MasterKeyError::Required);
        }
        let path = &config.master_key_file;
        let key = random_bytes::<32>(&SystemRandom::new());
        write_private(path, STANDARD.encode(key).as_bytes()).map_err(|source| {
            MasterKeyError::File {
                path: path.display().to_string(),
                source,
            }
        })?;
        tracing::info!(path = %path.display(), "generated a development master key");
        Ok(Self::from_key(key))
    }

    /// Checks the master key the configuration names, as [`Secrets::load`]
    /// would, without generating one: for `config check` and every command.
    pub fn check(config: &Config) -> Result<(), MasterKeyError> {
        configured_key(config).map(drop)
    }

    pub fn from_key(master: [u8; 32]) -> Self {
        let master = hmac::Key::new(hmac::HMAC_SHA256, &master);
        let derive = |label: &str| hmac::sign(&master, label.as_bytes());
        let aead_key = derive("portcullis/encryption/v1");
        let aead = match UnboundKey::new(&CHACHA20_POLY1305, aead_key.as_ref()) {
            Ok(key) => LessSafeKey::new(key),
            // A 32-byte key is always valid for ChaCha20-Poly1305.
            Err(_) => unreachable!("ChaCha20-Poly1305 takes a 32-byte key"),
        };
        Self {
            rng: SystemRandom::new(),
            aead,
            code_key: hmac::Key::new(hmac::HMAC_SHA256, derive("portcullis/codes/v1").as_ref()),
            refresh_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                derive("portcullis/refresh/v1").as_ref(),
            ),
            pseudonym_key: hmac::Key::new(
                hmac::HMAC_SHA256,
                derive("portcullis/pseudonyms/v1").as_ref(),
            ),
            secret_key: hmac::Key::new(hmac::HMAC_SHA256, derive("portcullis/secrets/v1").as_ref()),
        }
    }

    /// The one CSPRNG, for APIs that take it directly (key generation).
    pub fn rng(&self) -> &SystemRandom {
        &self.rng
    }

    pub fn random<const N: usize>(&self) -> [u8; N] {
        random_bytes(&self.rng)
    }

    /// A random (version 4) UUID, as email keys and generated device ids are.
    pub fn random_uuid(&self) -> String {
        uuid::Builder::from_random_bytes(self.random())
            .into_uuid()
            .to_string()
    }

    /// `prefix` followed by 32 hex digits of randomness (ids such as `usr_…`).
    pub fn random_id(&self, prefix: &str) -> String {
        format!("{prefix}{}", hex(&self.random::<16>()))
    }

    /// A uniformly random code of `digits` decimal digits, zero-padded.
    pub fn random_code(&self, digits: u32) -> String {
        let modulus = 10u32.pow(digits);
        // Rejection sampling keeps every code equally likely.
        let limit = u32::MAX - u32::MAX % modulus;
        loop {
            let n = u32::from_le_bytes(self.random::<4>());
            if n < limit {
                return format!("{:0width$}", n % modulus, width = digits as usize);
            }
        }
    }

    /// The stored form of an emailed code, bound to the key it was sent for.
    pub fn code_hash(&self, email_key: &str, code: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.code_key);
        ctx.update(email_key.as_bytes());
        ctx.update(b":");
        ctx.update(code.as_bytes());
        hex(ctx.sign().as_ref())
    }

    /// An opaque, stable stand-in for a value such as an email address, for
    /// budget buckets: the same for the same value, telling nothing of it
    /// without the master key.
    pub fn pseudonym(&self, value: &str) -> String {
        hex(&hmac::sign(&self.pseudonym_key, value.as_bytes()).as_ref()[..16])
    }

    /// The stored form of a high-entropy secret the server must recognise but
    /// never keep (API keys, recovery codes): keyed, so that a copy of the
    /// database alone cannot test guesses, and fast, since nothing
    /// high-entropy needs a slow hash. `kind` keeps the uses apart.
    pub fn secret_hash(&self, kind: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.secret_key);
        ctx.update(kind.as_bytes());
        ctx.update(b":");
        ctx.update(value.as_bytes());
        hex(ctx.sign().as_ref())
    }

    /// The refresh token that replaces `token` on rotation. Derived rather than
    /// random, so two racing refreshes with one token get the same successor
    /// without the server ever storing a token in plain text.
    pub fn successor_refresh_token(&self, token: &str) -> String {
        format!(
            "rt_{}",
            URL_SAFE_NO_PAD.encode(hmac::sign(&self.refresh_key, token.as_bytes()))
        )
    }

    /// Encrypts for storage, bound to `context` (what the value is and which
    /// row holds it), so that a ciphertext moved to another row or purpose
    /// does not decrypt: `v2:` and base64 of nonce, ciphertext and tag.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> String {
        let nonce_bytes = self.random::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        let tag = self.aead.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            aead::Aad::from(context.as_bytes()),
            &mut buf,
        );
        let Ok(tag) = tag else {
            unreachable!("sealing fails only for inputs over 256 GiB")
        };
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        format!("{BOUND}{}", STANDARD.encode(out))
    }

    /// Decrypts what [`Secrets::encrypt`] stored under the same `context`.
    /// Values written before ciphertexts were bound (no `v2:`) open without it.
    pub fn decrypt(&self, stored: &str, context: &str) -> Option<Vec<u8>> {
        let (encoded, aad) = match stored.strip_prefix(BOUND) {
            Some(encoded) => (encoded, context.as_bytes()),
            None => (stored, &b""[..]),
        };
        let bytes = STANDARD.decode(encoded).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, aead::Aad::from(aad), &mut sealed)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// The prefix of ciphertexts bound to their context.
const BOUND: &str = "v2:";

/// A fresh opaque refresh token: 256 bits of randomness.
pub fn new_refresh_token(secrets: &Secrets) -> String {
    format!("rt_{}", URL_SAFE_NO_PAD.encode(secrets.random::<32>()))
}

/// The stored form of a high-entropy token (refresh tokens).
pub fn token_hash(token: &str) -> String {
    hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Constant-time equality for secrets.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The configured master key, or the key file's; `None` when neither exists
/// yet (development generates one). Refuses a key file others can read and,
/// in production, a key that does not look random.
fn configured_key(config: &Config) -> Result<Option<[u8; 32]>, MasterKeyError> {
    if let Some(key) = &config.master_key {
        let key = decode_key(key.expose_secret())?;
        if config.mode == Mode::Production && !looks_random(&key) {
            return Err(MasterKeyError::Weak);
        }
        return Ok(Some(key));
    }
    let path = &config.master_key_file;
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(MasterKeyError::Exposed {
                path: path.display().to_string(),
            });
        }
    }
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MasterKeyError::File {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn decode_key(text: &str) -> Result<[u8; 32], MasterKeyError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| MasterKeyError::Malformed)?;
    bytes.try_into().map_err(|_| MasterKeyError::Malformed)
}

/// 32 random bytes have about 30 distinct values, give or take 1.3; fewer
/// than 20 is beyond seven deviations, while keys typed or repeated by hand
/// (all zeros, a phrase, hex digits) have at most 16.
fn looks_random(key: &[u8; 32]) -> bool {
    let mut seen = [false; 256];
    key.iter().for_each(|&b| seen[usize::from(b)] = true);
    seen.iter().filter(|&&s| s).count() >= 20
}

fn random_bytes<const N: usize>(rng: &SystemRandom) -> [u8; N] {
    let mut buf = [0u8; N];
    if rng.fill(&mut buf).is_err() {
        // Without a working CSPRNG nothing the server issues would be safe.
        tracing::error!("the operating system's random number generator failed");
        std::process::abort();
    }
    buf
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_and_detects_tampering() {
        let secrets = Secrets::from_key([7; 32]);
        let sealed = secrets.encrypt(b"signing key", "signing_key:k1");
        assert_eq!(
            secrets.decrypt(&sealed, "signing_key:k1").unwrap(),
            b"signing key"
        );
        let other = Secrets::from_key([8; 32]);
        assert!(other.decrypt(&sealed, "signing_key:k1").is_none());
        assert!(secrets.decrypt("not base64!", "signing_key:k1").is_none());
    }

    #[test]
    fn a_ciphertext_does_not_open_in_another_row_or_purpose() {
        let secrets = Secrets::from_key([7; 32]);
        let sealed = secrets.encrypt(b"mail with a code", "outbox:msg_1");
        assert!(secrets.decrypt(&sealed, "outbox:msg_2").is_none());
        assert!(secrets.decrypt(&sealed, "signing_key:msg_1").is_none());
        let unbound = sealed.strip_prefix("v2:").unwrap();
        assert!(secrets.decrypt(unbound, "outbox:msg_1").is_none());
    }

    #[test]
    fn hand_made_master_keys_do_not_look_random() {
        assert!(!looks_random(&[0; 32]));
        assert!(!looks_random(b"0123456789abcdef0123456789abcdef"));
        let secrets = Secrets::from_key([1; 32]);
        assert!(looks_random(&secrets.random::<32>()));
    }

    #[test]
    fn codes_have_the_requested_length() {
        let secrets = Secrets::from_key([1; 32]);
        for digits in 4..=8 {
            let code = secrets.random_code(digits);
            assert_eq!(code.len(), digits as usize);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn code_hashes_are_bound_to_their_key() {
        let secrets = Secrets::from_key([1; 32]);
        assert_ne!(
            secrets.code_hash("a", "1234"),
            secrets.code_hash("b", "1234")
        );
        assert_eq!(
            secrets.code_hash("a", "1234"),
            secrets.code_hash("a", "1234")
        );
    }

    #[test]
    fn successor_tokens_are_deterministic_per_secret() {
        let a = Secrets::from_key([1; 32]);
        let b = Secrets::from_key([2; 32]);
        assert_eq!(
            a.successor_refresh_token("rt_x"),
            a.successor_refresh_token("rt_x")
        );
        assert_ne!(
            a.successor_refresh_token("rt_x"),
            b.successor_refresh_token("rt_x")
        );
    }
}
