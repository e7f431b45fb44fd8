//! User API keys: stored as keyed hashes; scopes as space-separated names.
//! The time a key was last used is kept in memory and written in batches.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::FromRow;

use super::{Conn, Db};
use crate::clock::Timestamp;

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

#[derive(FromRow)]
struct Row {
    id: String,
    user_id: String,
    name: String,
    scopes: String,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
}

impl From<Row> for ApiKey {
    fn from(r: Row) -> Self {
        ApiKey {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
        }
    }
}

const COLUMNS: &str =
    "k.id, k.user_id, k.name, k.scopes, k.created_at, k.expires_at, k.last_used_at";

pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub scopes: &'a [String],
    pub expires_at: Option<Timestamp>,
}

pub async fn insert(conn: &mut Conn, key: &NewApiKey<'_>, now: Timestamp) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, name, key_hash, scopes, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(key.id)
    .bind(key.user_id)
    .bind(key.name)
    .bind(key.key_hash)
    .bind(key.scopes.join(" "))
    .bind(now)
    .bind(key.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keys of the account neither revoked nor expired.
pub async fn count_live(conn: &mut Conn, user_id: &str, now: Timestamp) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys
         WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// The account's keys not revoked (expired ones included), oldest first.
pub async fn list(conn: &mut Conn, user_id: &str) -> sqlx::Result<Vec<ApiKey>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys k
         WHERE k.user_id = $1 AND k.revoked_at IS NULL ORDER BY k.created_at, k.id"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(ApiKey::from).collect())
}

/// Revokes a key not yet revoked; `owner` limits it to one account's keys.
/// Returns the key's account, or `None` when there is no such key.
pub async fn revoke(
    conn: &mut Conn,
    id: &str,
    owner: Option<&str>,
    now: Timestamp,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "UPDATE api_keys SET revoked_at = $3
         WHERE id = $1 AND ($2 = '' OR user_id = $2) AND revoked_at IS NULL
         RETURNING user_id",
    )
    .bind(id)
    .bind(owner.unwrap_or(""))
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// A live key and its account's email.
#[derive(Debug, Clone)]
pub struct LiveKey {
    pub key: ApiKey,
    pub email: String,
}

#[derive(FromRow)]
struct LiveRow {
    #[sqlx(flatten)]
    key: Row,
    email: String,
}

/// The key with this hash, if it is live and its account is not disabled.
pub async fn live(
    conn: &mut Conn,
    key_hash: &str,
    now: Timestamp,
) -> sqlx::Result<Option<LiveKey>> {
    let row: Option<LiveRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, u.email FROM api_keys k JOIN users u ON u.id = k.user_id
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > $2) AND u.disabled = 0"
    ))
    .bind(key_hash)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| LiveKey {
        key: ApiKey::from(r.key),
        email: r.email,
    }))
}

/// When keys were last used, gathered in memory and written in one batch,
/// so that using a key costs no write.
#[derive(Default)]
pub struct Usage(Mutex<HashMap<String, Timestamp>>);

impl Usage {
    pub fn record(&self, id: &str, at: Timestamp) {
        if let Ok(mut pending) = self.0.lock() {
            match pending.get_mut(id) {
                Some(latest) => *latest = (*latest).max(at),
                None => {
                    pending.insert(id.to_owned(), at);
                }
            }
        }
    }

    /// Writes what was gathered; on failure it is kept for the next flush.
    pub async fn flush(&self, db: &Db) -> sqlx::Result<()> {
        let pending = match self.0.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Ok(()),
        };
        let written = async {
            let mut unit = db.begin().await?;
            for (id, at) in &pending {
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = $2
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *unit)
                .await?;
            }
            unit.commit().await
        };
        if let Err(e) = written.await {
            for (id, at) in &pending {
                self.record(id, *at);
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Flushes `usage` every `every`, and once more when `stop` turns true.
pub async fn write_usage(
    usage: std::sync::Arc<Usage>,
    db: Db,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stop.changed() => true,
        };
        if let Err(e) = usage.flush(&db).await {
            tracing::warn!(error = %e, "API keys: last-used times not written; will retry");
        }
        if stopping {
            return;
        }
    }
}
