//! Retention: rows that can no longer matter are deleted, so the tables do
//! not grow without bound. Deleting is idempotent, so every instance may run it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Db;
use crate::clock::{Clock, Timestamp};

const DAY: i64 = 86_400;
/// Keys and sessions are kept a day past their end, for support questions.
const ENDED_KEEP: i64 = DAY;
/// Sent mail (its body already gone) and refused mail are kept a week, for inspection.
const SENT_MAIL_KEEP: i64 = 7 * DAY;
/// A run of failed codes is remembered for a week without a try.
const IDLE_BUDGET_KEEP: i64 = 7 * DAY;
/// Revoked and expired API keys, and retired signing keys, are kept a month,
/// so that lists and the audit log can still be matched up.
const ENDED_API_KEY_KEEP: i64 = 30 * DAY;

/// Deletes what ended long enough ago, and accounts never verified within
/// `unverified_keep` seconds (with their keys); returns how many rows went.
pub async fn purge(db: &Db, now: Timestamp, unverified_keep: i64) -> sqlx::Result<u64> {
    let ended = now - ENDED_KEEP;
    let statements: [(&str, Timestamp); 9] = [
        // Their keys go with them (ON DELETE CASCADE); they never had a session.
        (
            "DELETE FROM users WHERE verified = 0 AND created_at < $1",
            now - unverified_keep,
        ),
        (
            "DELETE FROM email_keys WHERE expires_at < $1 OR used_at < $1",
            ended,
        ),
        // Refresh tokens go with their session (ON DELETE CASCADE).
        (
            "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1",
            ended,
        ),
        (
            "DELETE FROM outbox WHERE sent_at < $1 OR refused_at < $1",
            now - SENT_MAIL_KEEP,
        ),
        // Budgets whose window is long over, unless they hold a run of failures or a lock...
        (
            "DELETE FROM budgets WHERE window_start < $1 AND streak = 0 AND locked_until IS NULL",
            ended,
        ),
        // ...which a week without a try forgets.
        (
            "DELETE FROM budgets WHERE window_start < $1 AND (locked_until IS NULL OR locked_until < $1)",
            now - IDLE_BUDGET_KEEP,
        ),
        (
            "DELETE FROM api_keys WHERE revoked_at < $1 OR expires_at < $1",
            now - ENDED_API_KEY_KEEP,
        ),
        // Instances read new revocations within seconds; a day is ample.
        ("DELETE FROM revocations WHERE until < $1", ended),
        // Signing keys whose tokens all expired long ago (the signer has none).
        (
            "DELETE FROM signing_keys WHERE signer IS NULL AND retired_at < $1",
            now - ENDED_API_KEY_KEEP,
        ),
    ];
    let mut deleted = 0;
    // One unit of work each: the writer is not held for all of them at once.
    for (sql, before) in statements {
        let mut unit = db.begin().await?;
        deleted += sqlx::query(sql)
            .bind(before)
            .execute(&mut *unit)
            .await?
            .rows_affected();
        unit.commit().await?;
    }
    Ok(deleted)
}

/// Purges at start and then hourly, until `stop` turns true.
pub async fn run(
    db: Db,
    clock: Arc<dyn Clock>,
    unverified_keep: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match purge(&db, clock.now(), unverified_keep.as_secs() as i64).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "retention: purged ended rows"),
            Err(e) => tracing::warn!(error = %e, "retention: purge failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}
