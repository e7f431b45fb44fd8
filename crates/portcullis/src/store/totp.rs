//! The second factor of an account: its TOTP secret (encrypted by the
//! caller; read with the account), the last time step accepted, and its
//! recovery codes (hashed).

use super::Conn;
use crate::clock::Timestamp;

/// The secret set up and waiting for its first code, still encrypted.
pub async fn pending(conn: &mut Conn, user_id: &str) -> sqlx::Result<Option<String>> {
    let pending: Option<Option<String>> =
        sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(pending.flatten())
}

/// Keeps a new secret waiting for its first code, replacing any earlier
/// one; refused (`false`) while TOTP is enabled.
pub async fn set_pending(
    conn: &mut Conn,
    user_id: &str,
    encrypted: &str,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET totp_pending = $2, updated_at = $3 WHERE id = $1 AND totp_enabled = 0",
    )
    .bind(user_id)
    .bind(encrypted)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes the waiting secret the account's, with `step` as the last step
/// accepted; `false` when it changed meanwhile (another enable won).
pub async fn enable(
    conn: &mut Conn,
    user_id: &str,
    pending: &str,
    step: i64,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET totp_enabled = 1, totp_secret = totp_pending, totp_pending = NULL,
             totp_last_step = $3, updated_at = $4
         WHERE id = $1 AND totp_enabled = 0 AND totp_pending = $2",
    )
    .bind(user_id)
    .bind(pending)
    .bind(step)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes the second factor and its recovery codes; `false` if it was not enabled.
pub async fn disable(conn: &mut Conn, user_id: &str, now: Timestamp) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET totp_enabled = 0, totp_secret = NULL, totp_pending = NULL,
             totp_last_step = NULL, updated_at = $2
         WHERE id = $1 AND totp_enabled = 1",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Accepts time step `step` once: `false` if it, or a later step, was
/// accepted already (a replayed code), atomically on both stores.
pub async fn accept_step(conn: &mut Conn, user_id: &str, step: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET totp_last_step = $2
         WHERE id = $1 AND totp_enabled = 1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(user_id)
    .bind(step)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the account's recovery codes.
pub async fn set_recovery_codes(
    conn: &mut Conn,
    user_id: &str,
    hashes: &[String],
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    for hash in hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(hash)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Spends an unused recovery code; `false` if there is none with this hash.
pub async fn spend_recovery_code(
    conn: &mut Conn,
    user_id: &str,
    hash: &str,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $3
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
