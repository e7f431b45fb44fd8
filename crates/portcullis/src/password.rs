//! Passwords: the policy for new ones and argon2id hashing off the async
//! workers, with bounded concurrency and a bounded queue.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::crypto::Secrets;
use crate::error::ApiError;

pub const MAX_LENGTH: usize = 256;

/// Verified against when the account is unknown, so that answer takes as long
/// as a real check: a hash of a discarded random password, with our parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ut6h3+5FjVKlOeT0ixP9yQ$W5ExB+XXCSvxFs+Y4kyjtPdKAFiQ/bQJI5KC/PTAyi8";

static COMMON: &str = include_str!("../assets/common-passwords.txt");

/// Checks a new password against the policy of SPEC §6: length only, no
/// composition rules, and not one of the commonest passwords.
pub fn check_policy(password: &SecretString, min_length: usize) -> Result<(), ApiError> {
    let text = password.expose_secret();
    let length = text.chars().count();
    if length < min_length {
        return Err(ApiError::WeakPassword("The password is too short"));
    }
    if length > MAX_LENGTH {
        return Err(ApiError::WeakPassword(
            "The password is longer than 256 characters",
        ));
    }
    let lower = text.to_lowercase();
    if COMMON.lines().any(|common| common == lower) {
        return Err(ApiError::WeakPassword(
            "This password is too common; choose another",
        ));
    }
    Ok(())
}

pub struct Hasher {
    argon: Argon2<'static>,
    /// Hashes running at once (one per core).
    running: Arc<Semaphore>,
    /// Hashes running or waiting; beyond it the server answers 503.
    admitted: Arc<Semaphore>,
}

impl Hasher {
    pub fn new(concurrency: usize, queue: usize) -> anyhow::Result<Self> {
        // OWASP: argon2id, 19 MiB, two passes, one lane.
        let params = Params::new(19 * 1024, 2, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        Ok(Self {
            argon,
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
        })
    }

    pub async fn hash(
        &self,
        secrets: &Arc<Secrets>,
        password: &SecretString,
    ) -> Result<String, ApiError> {
        let (argon, secrets, password) = (self.argon.clone(), secrets.clone(), password.clone());
        self.run(move || {
            hash_with(&argon, &secrets, password.expose_secret()).map_err(ApiError::Internal)
        })
        .await
    }

    /// Verifies a password; with no stored hash it checks a dummy and fails,
    /// taking the same time as a real check.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or(DUMMY_HASH).to_owned();
        let (argon, password) = (self.argon.clone(), password.clone());
        let ok = self
            .run(move || {
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored hash: {e}")))?;
                Ok(argon
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(ok && known)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _admitted = self
            .admitted
            .try_acquire()
            .map_err(|_| ApiError::Unavailable("password hashing queue full"))?;
        let _running = self
            .running
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("shutting down"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing task: {e}")))?
    }
}

fn hash_with(argon: &Argon2<'_>, secrets: &Secrets, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&secrets.random::<16>())
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn policy_counts_characters_not_bytes() {
        assert!(check_policy(&secret("ünïcødé!"), 8).is_ok());
        assert!(check_policy(&secret("short"), 8).is_err());
        assert!(check_policy(&secret(&"x".repeat(257)), 8).is_err());
    }

    #[test]
    fn policy_refuses_common_passwords_in_any_case() {
        assert!(check_policy(&secret("Password123"), 8).is_err());
        assert!(check_policy(&secret("correct horse battery staple"), 8).is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_do() {
        let secrets = Arc::new(Secrets::from_key([3; 32]));
        let hasher = Hasher::new(1, 4).unwrap();
        let hash = hasher
            .hash(&secrets, &secret("s3cret-enough"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        // The dummy costs what a real hash costs.
        assert!(DUMMY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher
            .verify(&secret("s3cret-enough"), Some(&hash))
            .await
            .unwrap());
        assert!(!hasher
            .verify(&secret("wrong-password"), Some(&hash))
            .await
            .unwrap());
        assert!(!hasher.verify(&secret("anything"), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_unavailable_instead_of_waiting() {
        let secrets = Arc::new(Secrets::from_key([3; 32]));
        let hasher = Arc::new(Hasher::new(1, 0).unwrap());
        let results = futures_of(&hasher, &secrets, 4).await;
        assert!(results.iter().any(Result::is_ok));
        assert!(results
            .iter()
            .any(|r| matches!(r, Err(ApiError::Unavailable(_)))));
    }

    async fn futures_of(
        hasher: &Arc<Hasher>,
        secrets: &Arc<Secrets>,
        n: usize,
    ) -> Vec<Result<String, ApiError>> {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (hasher, secrets) = (hasher.clone(), secrets.clone());
                tokio::spawn(async move { hasher.hash(&secrets, &secret("s3cret-enough")).await })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    }
}
