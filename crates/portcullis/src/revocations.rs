//! What this instance knows without asking the database: which sessions
//! were revoked (while tokens naming them may still be unexpired), and the
//! API keys it has already looked up. Both are kept current from the
//! revocation log (`store::revocations`): at once after this instance's own
//! revoking commits, and within about a second of any other writer's, so
//! checking a token or a key costs no database read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::{watch, Mutex};

use crate::clock::{Clock, Timestamp};
use crate::store::api_keys::LiveKey;
use crate::store::revocations::{self as log, Changes, Hint, Kind, Mark, Revocation};
use crate::store::Db;

/// At most this many API keys are remembered; past it the cache starts again.
const KEY_CACHE: usize = 10_000;
/// How far instances' clocks may disagree (as `nbf` allows).
const CLOCK_SKEW: Timestamp = 60;
/// How often revoked sessions whose tokens have all expired are forgotten.
const PRUNE_EVERY: Timestamp = 60;

pub struct Revocations {
    state: RwLock<State>,
    /// Moves on whenever a revocation is applied: a key read from the store
    /// before then may be stale, and is not remembered.
    generation: AtomicU64,
    /// Where this instance has read the log to; one reader at a time.
    mark: Mutex<Mark>,
    /// The longest life of an access token: a session revoked this long
    /// ago has no unexpired token left.
    token_ttl: Timestamp,
}

#[derive(Default)]
struct State {
    /// Revoked session ids, with the time after which no token of theirs is valid.
    sessions: HashMap<String, Timestamp>,
    /// Live API keys by hash, as last read from the store.
    keys: HashMap<String, Arc<LiveKey>>,
    pruned_at: Timestamp,
}

impl Revocations {
    /// Reads the revocations still in force.
    pub async fn load(db: &Db, token_ttl: Timestamp, now: Timestamp) -> sqlx::Result<Self> {
        let mut conn = db.pool().acquire().await?;
        let (current, mark) = log::current(&mut conn, now).await?;
        let revocations = Revocations {
            state: RwLock::default(),
            generation: AtomicU64::new(0),
            mark: Mutex::new(mark),
            token_ttl,
        };
        revocations.apply(&current, now);
        Ok(revocations)
    }

    pub fn session_revoked(&self, session_id: &str) -> bool {
        self.read().sessions.contains_key(session_id)
    }

    /// A key looked up before, unless something revoked it since.
    pub fn key(&self, hash: &str) -> Option<Arc<LiveKey>> {
        self.read().keys.get(hash).cloned()
    }

    /// Read before looking a key up in the store, and handed to [`Revocations::remember_key`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers a key read from the store, unless a revocation was applied
    /// since `generation` (the read may predate it).
    pub fn remember_key(&self, hash: &str, key: Arc<LiveKey>, generation: u64) {
        let mut state = self.write();
        if self.generation() != generation {
            return;
        }
        if state.keys.len() >= KEY_CACHE {
            state.keys.clear();
        }
        state.keys.insert(hash.to_owned(), key);
    }

    /// Applies the revocations written since the last read.
    pub async fn catch_up(&self, db: &Db, now: Timestamp) -> sqlx::Result<()> {
        let mut mark = self.mark.lock().await;
        let mut conn = db.pool().acquire().await?;
        let (new, next) = log::since(&mut conn, *mark).await?;
        self.apply(&new, now);
        *mark = next;
        Ok(())
    }

    /// Forgets every remembered key: after the log could not be followed
    /// for a while, none of them can be trusted to be current.
    fn forget_keys(&self) {
        self.write().keys.clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn apply(&self, revocations: &[Revocation], now: Timestamp) {
        let mut state = self.write();
        if now - state.pruned_at >= PRUNE_EVERY {
            state.sessions.retain(|_, until| *until > now);
            state.pruned_at = now;
        }
        if revocations.is_empty() {
            return;
        }
        for r in revocations {
            match r.kind {
                Kind::Session => {
                    // Tokens of the session were issued before `at` (give or take
                    // the instances' clock skew): none is valid past this.
                    let until = r.until.min(r.at + self.token_ttl + CLOCK_SKEW);
                    if until > now {
                        state.sessions.insert(r.subject.clone(), until);
                    }
                }
                Kind::ApiKey => state.keys.retain(|_, k| k.key.id != r.subject),
                Kind::User => state.keys.retain(|_, k| k.key.user_id != r.subject),
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Follows the revocation log until `stop` turns true.
pub async fn follow(
    revocations: Arc<Revocations>,
    db: Db,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = Changes::new(&db);
    loop {
        let hint = tokio::select! {
            hint = changes.next() => hint,
            _ = stop.changed() => return,
        };
        if hint == Hint::Reconnected {
            revocations.forget_keys();
        }
        if let Err(e) = revocations.catch_up(&db, clock.now()).await {
            tracing::warn!(error = %e, "revocations not read; will retry");
        }
    }
}
