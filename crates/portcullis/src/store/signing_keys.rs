//! Token signing keys; private halves are encrypted with the master key.

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
}

pub async fn insert(conn: &mut Conn, key: &SigningKey) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, public_key, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_key)
        .bind(&key.public_key)
        .bind(key.created_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Keys not retired, newest first: the first one signs.
pub async fn active(conn: &mut Conn) -> sqlx::Result<Vec<SigningKey>> {
    sqlx::query_as(
        "SELECT kid, alg, private_key, public_key, created_at FROM signing_keys
         WHERE retired_at IS NULL ORDER BY created_at DESC, kid",
    )
    .fetch_all(conn)
    .await
}
