//! Token signing keys; private halves are encrypted with the master key.
//! One key signs (`signer = 1`); superseded keys verify until `retired_at`.

use sqlx::FromRow;

use super::Conn;
use crate::clock::Timestamp;

#[derive(Debug, Clone, FromRow)]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    pub private_key: String,
    pub public_key: String,
    pub created_at: Timestamp,
    /// When a superseded key stops verifying; `None` while it signs.
    pub retired_at: Option<Timestamp>,
}

const COLUMNS: &str = "kid, alg, private_key, public_key, created_at, retired_at";

/// Stores `key` as the signing key if there is none; `false` when there is
/// (another instance starting at the same time got there first).
pub async fn insert_signer(conn: &mut Conn, key: &SigningKey) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key, public_key, created_at, signer)
         VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (signer) DO NOTHING",
    )
    .bind(&key.kid)
    .bind(&key.alg)
    .bind(&key.private_key)
    .bind(&key.public_key)
    .bind(key.created_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes `key` the signing key; the one it supersedes verifies until
/// `retire_at`. Run it in a transaction.
pub async fn rotate(conn: &mut Conn, key: &SigningKey, retire_at: Timestamp) -> sqlx::Result<()> {
    sqlx::query("UPDATE signing_keys SET signer = NULL, retired_at = $1 WHERE signer = 1")
        .bind(retire_at)
        .execute(&mut *conn)
        .await?;
    if !insert_signer(conn, key).await? {
        return Err(sqlx::Error::Protocol(
            "another key became the signer".into(),
        ));
    }
    Ok(())
}

/// The keys that verify at `now`, the signing key first.
pub async fn verifying(conn: &mut Conn, now: Timestamp) -> sqlx::Result<Vec<SigningKey>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM signing_keys
         WHERE signer = 1 OR retired_at IS NULL OR retired_at > $1
         ORDER BY COALESCE(signer, 0) DESC, created_at DESC, kid"
    ))
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Every key, newest first.
pub async fn list(conn: &mut Conn) -> sqlx::Result<Vec<SigningKey>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM signing_keys ORDER BY COALESCE(signer, 0) DESC, created_at DESC, kid"
    ))
    .fetch_all(conn)
    .await
}
