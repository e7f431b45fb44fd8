//! The durable mail outbox.

use sqlx::FromRow;

use super::{Batch, Conn};
use crate::clock::Timestamp;

#[derive(Debug, Clone, FromRow)]
pub struct Queued {
    pub id: String,
    pub recipient: String,
    pub template: String,
    /// Encrypted rendered message; cleared once sent.
    pub message: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
}

/// A message to queue.
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub recipient: &'a str,
    pub template: &'a str,
    /// Encrypted rendered message.
    pub message: &'a str,
    /// Stored as refused and never sent.
    pub withheld: bool,
    /// Now, or the end of the lease of the worker it was handed to.
    pub next_attempt_at: Timestamp,
}

pub fn insert(batch: &mut Batch, new: &NewMessage<'_>, now: Timestamp) {
    let (refused_at, last_error) = match new.withheld {
        true => (Some(now), Some("withheld: no account at this address")),
        false => (None, None),
    };
    batch
        .push(
            "INSERT INTO outbox (id, recipient, template, message, created_at, next_attempt_at, refused_at, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id)
        .bind(new.recipient)
        .bind(new.template)
        .bind(new.message)
        .bind(now)
        .bind(new.next_attempt_at)
        .bind(refused_at)
        .bind(last_error);
}

/// Messages neither delivered nor refused: the queue's depth.
pub async fn depth(conn: &mut Conn) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND refused_at IS NULL")
        .fetch_one(conn)
        .await
}

pub async fn due(conn: &mut Conn, now: Timestamp, limit: i64) -> sqlx::Result<Vec<Queued>> {
    sqlx::query_as(
        "SELECT id, recipient, template, message, attempts, next_attempt_at FROM outbox
         WHERE sent_at IS NULL AND refused_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, created_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Leases a message to this worker until `until`; false if another worker took it.
pub async fn lease(conn: &mut Conn, msg: &Queued, until: Timestamp) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2 AND sent_at IS NULL",
    )
    .bind(&msg.id)
    .bind(msg.next_attempt_at)
    .bind(until)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks messages sent and drops their bodies: the codes in them must not linger.
pub async fn mark_sent(conn: &mut Conn, ids: &[&str], now: Timestamp) -> sqlx::Result<()> {
    let sql = format!(
        "UPDATE outbox SET sent_at = $1, message = NULL, attempts = attempts + 1, last_error = NULL
         WHERE id IN ({})",
        super::placeholders(2, ids.len())
    );
    let mut query = sqlx::query(&sql).bind(now);
    for id in ids {
        query = query.bind(*id);
    }
    query.execute(conn).await?;
    Ok(())
}

pub async fn mark_failed(
    conn: &mut Conn,
    id: &str,
    error: &str,
    retry_at: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1")
        .bind(id)
        .bind(error)
        .bind(retry_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stops retrying a message the server refused for good; it stays for inspection.
pub async fn mark_refused(
    conn: &mut Conn,
    id: &str,
    error: &str,
    now: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, refused_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
