//! Attempt budgets: tries per window for one bucket, spent atomically in the
//! database so that every instance of a cluster shares them and concurrent
//! requests can never spend more than there is.

use super::Conn;
use crate::clock::Timestamp;
use crate::config::Budget;

/// Spends one try of `bucket`. `None` when it was spent; otherwise the
/// seconds until a try is available again (the window ends or a lock lifts).
pub async fn spend(
    conn: &mut Conn,
    bucket: &str,
    budget: Budget,
    now: Timestamp,
) -> sqlx::Result<Option<i64>> {
    // A window that started at or before `$3` is over: the count starts again.
    // The conditional update runs on the row as it is after any concurrent
    // spender has committed, so the count is exact.
    let spent: Option<i64> = sqlx::query_scalar(
        "INSERT INTO budgets (bucket, window_start, spent) VALUES ($1, $2, 1)
         ON CONFLICT (bucket) DO UPDATE SET
             spent = CASE WHEN budgets.window_start <= $3 THEN 1 ELSE budgets.spent + 1 END,
             window_start = CASE WHEN budgets.window_start <= $3 THEN $2 ELSE budgets.window_start END
         WHERE (budgets.window_start <= $3 OR budgets.spent < $4)
           AND (budgets.locked_until IS NULL OR budgets.locked_until <= $2)
         RETURNING spent",
    )
    .bind(bucket)
    .bind(now)
    .bind(now - budget.window)
    .bind(budget.tries)
    .fetch_optional(&mut *conn)
    .await?;
    if spent.is_some() {
        return Ok(None);
    }
    let (window_start, locked_until): (Timestamp, Option<Timestamp>) =
        sqlx::query_as("SELECT window_start, locked_until FROM budgets WHERE bucket = $1")
            .bind(bucket)
            .fetch_one(conn)
            .await?;
    let window_ends = window_start + budget.window;
    let wait = locked_until.map_or(window_ends, |until| until.max(window_ends)) - now;
    Ok(Some(wait.max(1)))
}

/// A success: the try it spent is given back and any run of failures ends.
pub async fn refund(conn: &mut Conn, bucket: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE budgets SET spent = CASE WHEN spent > 0 THEN spent - 1 ELSE 0 END, streak = 0
         WHERE bucket = $1",
    )
    .bind(bucket)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failure that lengthens the bucket's run of consecutive failures; the
/// `limit`th locks the bucket until `locked_until` and starts a new run.
/// True when this failure locked it.
pub async fn fail(
    conn: &mut Conn,
    bucket: &str,
    limit: i64,
    locked_until: Timestamp,
) -> sqlx::Result<bool> {
    let locked: Option<Option<Timestamp>> = sqlx::query_scalar(
        "UPDATE budgets SET
             streak = CASE WHEN streak + 1 >= $2 THEN 0 ELSE streak + 1 END,
             locked_until = CASE WHEN streak + 1 >= $2 THEN $3 ELSE locked_until END
         WHERE bucket = $1
         RETURNING locked_until",
    )
    .bind(bucket)
    .bind(limit)
    .bind(locked_until)
    .fetch_optional(conn)
    .await?;
    Ok(locked.flatten() == Some(locked_until))
}
