//! Attempt budgets: tries per window for one bucket, spent atomically in the
//! database so that every instance of a cluster shares them and concurrent
//! requests can never spend more than there is.

use super::{Batch, Conn};
use crate::clock::Timestamp;
use crate::config::Budget;

/// The condition for a try to be there, on the bucket's row at `$now`,
/// with `$since` the start of the window that ends now and `$tries` the
/// tries: a window that started at or before `$since` is over, and the count
/// starts again.
macro_rules! available {
    (now = $now:literal, since = $since:literal, tries = $tries:literal) => {
        concat!(
            "(budgets.window_start <= ",
            $since,
            " OR budgets.spent < ",
            $tries,
            ")
             AND (budgets.locked_until IS NULL OR budgets.locked_until <= ",
            $now,
            ")"
        )
    };
}

/// Spends one try of `bucket`. `None` when it was spent; otherwise the
/// seconds until a try is available again (the window ends or a lock lifts).
pub async fn spend(
    conn: &mut Conn,
    bucket: &str,
    budget: Budget,
    now: Timestamp,
) -> sqlx::Result<Option<i64>> {
    // The conditional update runs on the row as it is after any concurrent
    // spender has committed, so the count is exact.
    let spent: Option<i64> = sqlx::query_scalar(concat!(
        "INSERT INTO budgets (bucket, window_start, spent) VALUES ($1, $2, 1)
         ON CONFLICT (bucket) DO UPDATE SET
             spent = CASE WHEN budgets.window_start <= $3 THEN 1 ELSE budgets.spent + 1 END,
             window_start = CASE WHEN budgets.window_start <= $3 THEN $2 ELSE budgets.window_start END
         WHERE ",
        available!(now = "$2", since = "$3", tries = "$4"),
        " RETURNING spent"
    ))
    .bind(bucket)
    .bind(now)
    .bind(now - budget.window)
    .bind(budget.tries)
    .fetch_optional(&mut *conn)
    .await?;
    if spent.is_some() {
        return Ok(None);
    }
    // The row exists and has no try left: how long until it has.
    let empty = check(conn, &[(bucket, budget)], now).await?;
    Ok(Some(empty.map_or(1, |(_, wait)| wait)))
}

/// Whether each of `buckets` has a try, without spending any, in one query:
/// `None` when all do, otherwise the first that has none (its index) and
/// the seconds until it has.
pub async fn check(
    conn: &mut Conn,
    buckets: &[(&str, Budget)],
    now: Timestamp,
) -> sqlx::Result<Option<(usize, i64)>> {
    // One row of (bucket, window start, tries) per bucket, from `$2` on.
    let rows: Vec<String> = (0..buckets.len())
        .map(|i| format!("({})", super::placeholders(2 + 3 * i, 3)))
        .collect();
    let sql = format!(
        "SELECT budgets.bucket, budgets.window_start, budgets.locked_until
         FROM budgets JOIN (VALUES {}) AS asked ON budgets.bucket = asked.column1
         WHERE NOT ({})",
        rows.join(", "),
        available!(now = "$1", since = "asked.column2", tries = "asked.column3"),
    );
    let mut query = sqlx::query_as(&sql).bind(now);
    for (bucket, budget) in buckets {
        query = query
            .bind(*bucket)
            .bind(now - budget.window)
            .bind(budget.tries);
    }
    let empty: Vec<(String, Timestamp, Option<Timestamp>)> = query.fetch_all(conn).await?;
    let first = buckets
        .iter()
        .enumerate()
        .find_map(|(i, (bucket, budget))| {
            let (_, window_start, locked_until) = empty.iter().find(|row| row.0 == *bucket)?;
            Some((i, wait(*budget, *window_start, *locked_until, now)))
        });
    Ok(first)
}

/// Seconds until an empty bucket has a try again.
fn wait(
    budget: Budget,
    window_start: Timestamp,
    locked_until: Option<Timestamp>,
    now: Timestamp,
) -> i64 {
    let window_ends = window_start + budget.window;
    let until = locked_until.map_or(window_ends, |until| until.max(window_ends));
    (until - now).max(1)
}

/// A success: each bucket gets the try it spent back, and its run of
/// failures ends.
pub fn refund(batch: &mut Batch, buckets: &[String]) {
    let mut statement = batch.push(&refund_sql(1, buckets.len()));
    for bucket in buckets {
        statement = statement.bind(bucket.as_str());
    }
}

/// The statement of [`refund`] for `count` buckets, their placeholders
/// numbered from `$first` on.
pub(super) fn refund_sql(first: usize, count: usize) -> String {
    format!(
        "UPDATE budgets SET spent = CASE WHEN spent > 0 THEN spent - 1 ELSE 0 END, streak = 0
         WHERE bucket IN ({})",
        super::placeholders(first, count)
    )
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
