//! Refresh tokens of users' device sessions and of clients' sessions: stored
//! as hashes, each rotated once (SPEC §5). The two kinds live in tables of
//! their own, with the same columns.

use super::{Batch, Bind, Conn};
use crate::clock::Timestamp;

/// Whose refresh tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Of a user's device session (`sessions`).
    User,
    /// Of a machine client's session (`client_sessions`).
    Client,
}

impl Family {
    fn table(self) -> &'static str {
        match self {
            Family::User => "refresh_tokens",
            Family::Client => "client_refresh_tokens",
        }
    }
}

/// Stores a token's hash; storing the same one twice is a no-op (racing
/// rotations derive the same successor).
pub async fn insert(
    conn: &mut Conn,
    family: Family,
    token_hash: &str,
    session_id: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> sqlx::Result<()> {
    let sql = insert_sql(family);
    bind(sqlx::query(&sql), token_hash, session_id, expires_at, now)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`insert`], kept in `batch` for its unit's end.
pub(super) fn keep(
    batch: &mut Batch,
    family: Family,
    token_hash: &str,
    session_id: &str,
    expires_at: Timestamp,
    now: Timestamp,
) {
    let statement = batch.push(&insert_sql(family));
    bind(statement, token_hash, session_id, expires_at, now);
}

/// The statement of [`insert`], for [`bind`]'s values.
fn insert_sql(family: Family) -> String {
    format!(
        "INSERT INTO {} (token_hash, session_id, expires_at, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (token_hash) DO NOTHING",
        family.table(),
    )
}

/// Binds [`insert`]'s values after those `query` already has.
fn bind<'q, B: Bind<'q>>(
    query: B,
    token_hash: &'q str,
    session_id: &'q str,
    expires_at: Timestamp,
    now: Timestamp,
) -> B {
    query
        .text(Some(token_hash))
        .text(Some(session_id))
        .integer(Some(expires_at))
        .integer(Some(now))
}

/// What rotating a refresh token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// This request rotated it.
    Rotated,
    /// Rotated before (or a moment ago by a racing request), at this time.
    RotatedAt(Timestamp),
    /// The token is gone (purged meanwhile).
    Gone,
}

/// Marks a token rotated, unless it was already.
pub async fn rotate(
    conn: &mut Conn,
    family: Family,
    token_hash: &str,
    now: Timestamp,
) -> sqlx::Result<Rotation> {
    let table = family.table();
    let done = sqlx::query(&format!(
        "UPDATE {table} SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL"
    ))
    .bind(token_hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(Rotation::Rotated);
    }
    let at: Option<Option<Timestamp>> = sqlx::query_scalar(&format!(
        "SELECT rotated_at FROM {table} WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(at.flatten().map_or(Rotation::Gone, Rotation::RotatedAt))
}

/// An unrotated refresh token of a live session, as introspection shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveToken {
    pub session_id: String,
    /// The user's id, or the client's id as text.
    pub subject: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The token, if it is unexpired, not yet rotated and its session live.
pub async fn live(
    conn: &mut Conn,
    family: Family,
    token_hash: &str,
    now: Timestamp,
) -> sqlx::Result<Option<LiveToken>> {
    let (sessions, subject) = match family {
        Family::User => ("sessions", "s.user_id"),
        Family::Client => ("client_sessions", "CAST(s.client_id AS TEXT)"),
    };
    sqlx::query_as(&format!(
        "SELECT r.session_id, {subject} AS subject, r.created_at, r.expires_at
         FROM {table} r JOIN {sessions} s ON s.id = r.session_id
         WHERE r.token_hash = $1 AND r.rotated_at IS NULL AND r.expires_at > $2
           AND s.revoked_at IS NULL AND s.expires_at > $2",
        table = family.table()
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(conn)
    .await
}
