//! Passwords: the policy for new ones and argon2id hashing on a few threads
//! of its own, with bounded concurrency and a bounded queue (SPEC §6).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use flume::RecvTimeoutError;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::crypto::Secrets;
use crate::error::ApiError;

pub const MAX_LENGTH: usize = 256;

/// Verified against when the account is unknown, so that answer takes as long
/// as a real check: a hash of a discarded random password, with our parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ut6h3+5FjVKlOeT0ixP9yQ$W5ExB+XXCSvxFs+Y4kyjtPdKAFiQ/bQJI5KC/PTAyi8";

/// How long a hashing thread keeps its argon2 memory with no hash to do; then
/// it gives the memory back, so a flood leaves no resident trace.
const KEEP_MEMORY: Duration = Duration::from_secs(2);

/// glibc keeps a freed block of up to 32 MiB in the thread's arena for
/// reuse, so dropping 19 MiB of argon2 blocks would not shrink the process;
/// a reservation past that (33 MiB, of which only the blocks argon2 writes
/// become resident) is always its own mapping, returned to the system on drop.
const MMAPPED_BLOCKS: usize = 33 * 1024;

/// How much lower than the rest of the server hashing threads run (`nice`,
/// which Linux applies per thread; elsewhere it would slow the whole process).
#[cfg(target_os = "linux")]
const NICENESS: i32 = 10;

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

/// OWASP's argon2id parameters, which every password hash here uses:
/// 19 MiB, two passes, one lane.
pub fn params() -> anyhow::Result<Params> {
    Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow!("argon2 params: {e}"))
}

/// Hashes and verifies passwords on `concurrency` threads of its own, so no
/// more argon2 computations than that ever run at once, whatever happens to
/// the requests that asked for them.
pub struct Hasher {
    /// See [`params`].
    params: Params,
    /// Hashes running or queued; beyond it the server answers 503. A place is
    /// held by the job, not the request: it returns when the hash ends, not
    /// when the client hangs up.
    admitted: Arc<Semaphore>,
    /// To the hashing threads; dropping it stops them once the queue is empty.
    jobs: flume::Sender<Job>,
    gauge: Arc<Gauge>,
    /// Places in all: running and waiting.
    capacity: usize,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

impl Hasher {
    /// Starts `concurrency` hashing threads; `queue` more hashes may wait.
    pub fn new(concurrency: usize, queue: usize) -> anyhow::Result<Self> {
        let params = params()?;
        let (jobs, queued) = flume::unbounded();
        let gauge = Arc::new(Gauge::default());
        for n in 0..concurrency {
            let worker = Worker {
                blocks: Vec::new(),
                gauge: gauge.clone(),
            };
            let queued = queued.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || worker.run(queued))
                .context("cannot start a password hashing thread")?;
        }
        Ok(Self {
            params,
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            jobs,
            gauge,
            capacity: concurrency + queue,
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(
        &self,
        secrets: &Arc<Secrets>,
        password: &SecretString,
    ) -> Result<String, ApiError> {
        let (params, secrets, password) = (self.params.clone(), secrets.clone(), password.clone());
        self.run(self.reserve()?, move |worker| {
            worker
                .hash(&params, &secrets, password.expose_secret())
                .map_err(ApiError::Internal)
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
        self.verify_in(self.reserve()?, password, stored).await
    }

    /// Hashes running or waiting now.
    pub fn queued(&self) -> usize {
        self.capacity - self.admitted.available_permits()
    }

    /// A place in the queue, for a flow that must know there is room before
    /// it does the work that leads to a hash: a full queue answers 503 at once.
    pub fn reserve(&self) -> Result<Place, ApiError> {
        let permit = self.admitted.clone().try_acquire_owned();
        permit
            .map(Place)
            .map_err(|_| ApiError::Unavailable("password hashing queue full"))
    }

    /// [`Hasher::verify`] in a place taken with [`Hasher::reserve`].
    pub async fn verify_in(
        &self,
        place: Place,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or(DUMMY_HASH).to_owned();
        let password = password.clone();
        let ok = self
            .run(place, move |worker| {
                worker
                    .verify(password.expose_secret(), &hash)
                    .map_err(ApiError::Internal)
            })
            .await?;
        Ok(ok && known)
    }

    /// How many argon2 computations run at once.
    pub fn gauge(&self) -> Arc<Gauge> {
        self.gauge.clone()
    }

    async fn run<T: Send + 'static>(
        &self,
        place: Place,
        work: impl FnOnce(&mut Worker) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let admitted = place.0;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |worker| {
            // The request has gone (its client hung up): nobody wants this hash.
            if reply.is_closed() {
                return;
            }
            let result = work(worker);
            drop(admitted);
            let _ = reply.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::Unavailable("shutting down"))?;
        answer
            .await
            .map_err(|_| ApiError::Internal(anyhow!("a password hashing thread stopped")))?
    }
}

/// A place in the hashing queue (running or waiting). It travels with the
/// hash it is spent on and returns when that hash ends.
pub struct Place(OwnedSemaphorePermit);

/// Argon2 computations running now, and the most that ever ran at once.
#[derive(Debug, Default)]
pub struct Gauge {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    /// Computations running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most that ran at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn start(&self) {
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(running, Ordering::SeqCst);
    }

    fn end(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One hashing thread: argon2's working memory is reused from hash to hash
/// while they keep coming, instead of 19 MiB per hash that the allocator
/// would keep.
struct Worker {
    blocks: Vec<Block>,
    gauge: Arc<Gauge>,
}

impl Worker {
    fn run(mut self, jobs: flume::Receiver<Job>) {
        // Hashing yields the CPU to request handling and the database: under a
        // login flood token checks stay fast, and logins take what is left.
        #[cfg(target_os = "linux")]
        if let Err(e) = rustix::process::nice(NICENESS) {
            tracing::warn!(error = %e, "cannot lower the priority of password hashing");
        }
        loop {
            let next = if self.blocks.is_empty() {
                jobs.recv().map_err(RecvTimeoutError::from)
            } else {
                jobs.recv_timeout(KEEP_MEMORY)
            };
            match next {
                Ok(job) => job(&mut self),
                Err(RecvTimeoutError::Timeout) => self.blocks = Vec::new(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// A new PHC string, as `PasswordHasher::hash_password` writes it.
    fn hash(
        &mut self,
        params: &Params,
        secrets: &Secrets,
        password: &str,
    ) -> anyhow::Result<String> {
        let salt = secrets.random::<16>();
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        self.argon2(&argon, params, password.as_bytes(), &salt, &mut output)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow!("salt: {e}"))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|e| anyhow!("params: {e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(|e| anyhow!("output: {e}"))?),
        };
        Ok(hash.to_string())
    }

    /// Checks a password against a stored PHC string with the parameters it
    /// names, as `PasswordVerifier::verify_password` does.
    fn verify(&mut self, password: &str, stored: &str) -> anyhow::Result<bool> {
        let stored = PasswordHash::new(stored).map_err(|e| anyhow!("stored hash: {e}"))?;
        let (Some(salt), Some(expected)) = (stored.salt, &stored.hash) else {
            anyhow::bail!("stored hash without salt or output");
        };
        let algorithm =
            Algorithm::try_from(stored.algorithm).map_err(|e| anyhow!("stored hash: {e}"))?;
        let version = match stored.version {
            Some(v) => Version::try_from(v).map_err(|e| anyhow!("stored hash: {e}"))?,
            None => Version::default(),
        };
        let params = Params::try_from(&stored).map_err(|e| anyhow!("stored hash: {e}"))?;
        let mut salt_bytes = [0u8; 64];
        let salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| anyhow!("stored hash: {e}"))?;
        let mut output = vec![0u8; expected.len()];
        let argon = Argon2::new(algorithm, version, params.clone());
        self.argon2(&argon, &params, password.as_bytes(), salt, &mut output)?;
        // `Output` compares in constant time.
        Ok(Output::new(&output).map_err(|e| anyhow!("output: {e}"))? == *expected)
    }

    fn argon2(
        &mut self,
        argon: &Argon2<'_>,
        params: &Params,
        password: &[u8],
        salt: &[u8],
        output: &mut [u8],
    ) -> anyhow::Result<()> {
        let count = params.block_count();
        if self.blocks.len() < count {
            self.blocks = Vec::with_capacity(count.max(MMAPPED_BLOCKS));
            self.blocks.resize(count, Block::default());
        }
        self.gauge.start();
        let result =
            argon.hash_password_into_with_memory(password, salt, output, &mut self.blocks[..count]);
        self.gauge.end();
        result.map_err(|e| anyhow!("argon2: {e}"))
    }
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
    async fn hashes_read_and_write_the_phc_strings_of_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let secrets = Arc::new(Secrets::from_key([3; 32]));
        let hasher = Hasher::new(1, 4).unwrap();
        let stock = Argon2::new(Algorithm::Argon2id, Version::V0x13, hasher.params.clone());
        let ours = hasher
            .hash(&secrets, &secret("s3cret-enough"))
            .await
            .unwrap();
        assert!(stock
            .verify_password(b"s3cret-enough", &PasswordHash::new(&ours).unwrap())
            .is_ok());
        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        let theirs = stock
            .hash_password(b"s3cret-enough", &salt)
            .unwrap()
            .to_string();
        assert!(hasher
            .verify(&secret("s3cret-enough"), Some(&theirs))
            .await
            .unwrap());
        assert!(!hasher
            .verify(&secret("s3cret-enougH"), Some(&theirs))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_request_that_goes_away_leaves_its_hash_holding_its_place() {
        let secrets = Arc::new(Secrets::from_key([3; 32]));
        let hasher = Arc::new(Hasher::new(1, 0).unwrap());
        let gauge = hasher.gauge();
        // Thirty passes instead of two: a check that lasts long enough to look at.
        let slow = DUMMY_HASH.replace("t=2", "t=30");
        let first = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.verify(&secret("s3cret-enough"), Some(&slow)).await }
        });
        while gauge.running() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        first.abort();
        // The hash runs on: its place is still taken.
        assert!(matches!(
            hasher.hash(&secrets, &secret("s3cret-enough")).await,
            Err(ApiError::Unavailable(_))
        ));
        while hasher.admitted.available_permits() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Once it ends, the place is free again.
        assert!(hasher
            .hash(&secrets, &secret("s3cret-enough"))
            .await
            .is_ok());
        assert_eq!(gauge.peak(), 1);
    }

    #[test]
    fn a_place_is_held_until_it_is_given_back() {
        let hasher = Hasher::new(1, 0).unwrap();
        let place = hasher.reserve().unwrap();
        assert!(matches!(hasher.reserve(), Err(ApiError::Unavailable(_))));
        drop(place);
        assert!(hasher.reserve().is_ok());
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
