//! The revocation log: a row for each session revoked, API key revoked and
//! account disabled, written by triggers (migration 0006), read by every
//! instance to keep its in-memory view current, and a way to wait for new
//! rows (PostgreSQL `LISTEN`; polling on SQLite, whose writers are the
//! server itself and the CLI on the same machine).

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::FromRow;

use super::{Backend, Conn, Db};
use crate::clock::Timestamp;

const CHANNEL: &str = "portcullis_revocations";

/// What a row revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user's or a machine client's session: tokens naming it as `sid`.
    Session,
    /// An API key, by id.
    ApiKey,
    /// An account disabled: its API keys, by the account's id.
    User,
}

#[derive(Debug, Clone)]
pub struct Revocation {
    pub kind: Kind,
    pub subject: String,
    pub at: Timestamp,
    /// After this, nothing the row covers can still be valid.
    pub until: Timestamp,
}

#[derive(FromRow)]
struct Row {
    kind: String,
    subject: String,
    at: Timestamp,
    until: Timestamp,
}

impl Row {
    fn parse(self) -> Option<Revocation> {
        let kind = match self.kind.as_str() {
            "session" => Kind::Session,
            "api_key" => Kind::ApiKey,
            "user" => Kind::User,
            _ => return None,
        };
        Some(Revocation {
            kind,
            subject: self.subject,
            at: self.at,
            until: self.until,
        })
    }
}

/// How far a reader has read. On SQLite (one writer at a time) rows commit
/// in `seq` order: the next `seq` to read. On PostgreSQL transactions commit
/// out of order: the oldest transaction that was still running, whose rows
/// (and those of any later one) must be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(i64);

async fn mark(conn: &mut Conn) -> sqlx::Result<Mark> {
    let query = if super::is_postgres(conn) {
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    } else {
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM revocations"
    };
    sqlx::query_scalar(query).fetch_one(conn).await.map(Mark)
}

fn parse(rows: Vec<Row>) -> Vec<Revocation> {
    rows.into_iter().filter_map(Row::parse).collect()
}

/// Every revocation still in force at `now`, and where to read on from.
pub async fn current(conn: &mut Conn, now: Timestamp) -> sqlx::Result<(Vec<Revocation>, Mark)> {
    let mark = mark(conn).await?;
    let rows: Vec<Row> =
        sqlx::query_as("SELECT kind, subject, at, until FROM revocations WHERE until > $1")
            .bind(now)
            .fetch_all(conn)
            .await?;
    Ok((parse(rows), mark))
}

/// The revocations written since `from` (some may come again: applying
/// one twice does no harm), and where to read on from.
pub async fn since(conn: &mut Conn, from: Mark) -> sqlx::Result<(Vec<Revocation>, Mark)> {
    // Read the new mark first: whatever commits after it is read next time.
    let mark = mark(conn).await?;
    let query = if super::is_postgres(conn) {
        "SELECT kind, subject, at, until FROM revocations WHERE txid >= $1 ORDER BY seq"
    } else {
        "SELECT kind, subject, at, until FROM revocations WHERE seq >= $1 ORDER BY seq"
    };
    let rows: Vec<Row> = sqlx::query_as(query).bind(from.0).fetch_all(conn).await?;
    Ok((parse(rows), mark))
}

/// How long SQLite is polled: its other writer (the CLI) has no way to wake us.
const SQLITE_POLL: Duration = Duration::from_millis(250);
/// How long PostgreSQL goes unread when no notification comes: a safety net only.
const POSTGRES_POLL: Duration = Duration::from_secs(5);

/// Why the log should be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// New rows were announced, or it is time to look.
    Look,
    /// The connection that announces rows was lost and is back: rows may
    /// have come unannounced meanwhile.
    Reconnected,
}

/// Waits for new rows in the log.
pub struct Changes {
    db: Db,
    listener: Option<Box<PgListener>>,
}

impl Changes {
    pub fn new(db: &Db) -> Changes {
        Changes {
            db: db.clone(),
            listener: None,
        }
    }

    /// Returns when the log should be read again: on PostgreSQL when a
    /// notification comes, when listening starts again after the connection
    /// was lost, or after [`POSTGRES_POLL`] without either; on SQLite every
    /// [`SQLITE_POLL`].
    pub async fn next(&mut self) -> Hint {
        if self.db.backend == Backend::Sqlite {
            tokio::time::sleep(SQLITE_POLL).await;
            return Hint::Look;
        }
        let deadline = tokio::time::Instant::now() + POSTGRES_POLL;
        loop {
            let Some(listener) = self.listener.as_mut() else {
                match listen(&self.db.url).await {
                    Ok(listener) => {
                        self.listener = Some(Box::new(listener));
                        return Hint::Reconnected;
                    }
                    Err(e) if tokio::time::Instant::now() >= deadline => {
                        tracing::warn!(error = %e, "cannot listen for revocations; retrying");
                        return Hint::Look;
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            };
            return match tokio::time::timeout_at(deadline, listener.try_recv()).await {
                Err(_) | Ok(Ok(Some(_))) => Hint::Look,
                // Lost, and listening again already (the listener reconnects eagerly).
                Ok(Ok(None)) => Hint::Reconnected,
                // Lost, and not back yet: listen anew.
                Ok(Err(_)) => {
                    self.listener = None;
                    continue;
                }
            };
        }
    }
}

/// Listens on a connection of its own that gives up quickly when the
/// database cannot be reached, so that listening resumes soon after it can.
async fn listen(url: &str) -> sqlx::Result<PgListener> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(1))
        .max_lifetime(None)
        .idle_timeout(None)
        .connect(url)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
