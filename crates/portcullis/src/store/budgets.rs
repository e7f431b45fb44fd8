//! Attempt budgets: tries per window for one bucket, spent atomically in the
//! database so that every instance of a cluster shares them and concurrent
//! requests can never spend more than there is.

use sqlx::any::AnyArguments;
use sqlx::Arguments;

use super::{Batch, Conn};
use crate::clock::Timestamp;
use crate::config::Budget;

/// The condition for a try to be there, on the bucket's row at `$1` (now),
/// with `since` the start of the window that ends now and `tries` the
/// tries: a window that started at or before `since` is over, and the count
/// starts again.
fn available(since: &str, tries: &str) -> String {
    format!(
        "(budgets.window_start <= {since} OR budgets.spent < {tries})
         AND (budgets.locked_until IS NULL OR budgets.locked_until <= $1)"
    )
}

/// Spends one try of each of `buckets` in one statement, in order, each
/// only if the one before it was spent: `None` when all were; otherwise the
/// first that has no try (its index) and the seconds until it has (the window
/// ends or a lock lifts).
pub async fn spend(
    conn: &mut Conn,
    buckets: &[(&str, Budget)],
    now: Timestamp,
) -> sqlx::Result<Option<(usize, i64)>> {
    let Some((last, _)) = buckets.last() else {
        return Ok(None);
    };
    // Each conditional update runs on its row as it is after any concurrent
    // spender has committed, so every count is exact. A bucket's statement
    // spends nothing unless the one before spent: on SQLite it changed a
    // row; on PostgreSQL, where each is a CTE, the one before returned one.
    let statements: Vec<String> = (0..buckets.len())
        .map(|i| {
            let [bucket, since, tries] = [2, 3, 4].map(|n| format!("${}", n + 3 * i));
            let spent_before = match i {
                0 => "true".to_owned(),
                _ if super::is_postgres(conn) => format!("EXISTS (SELECT 1 FROM s{})", i - 1),
                _ => "changes() = 1".to_owned(),
            };
            format!(
                "INSERT INTO budgets (bucket, window_start, spent) SELECT {bucket}, $1, 1
                 WHERE {spent_before}
                 ON CONFLICT (bucket) DO UPDATE SET
                     spent = CASE WHEN budgets.window_start <= {since} THEN 1 ELSE budgets.spent + 1 END,
                     window_start = CASE WHEN budgets.window_start <= {since} THEN $1 ELSE budgets.window_start END
                 WHERE {}
                 RETURNING bucket",
                available(&since, &tries),
            )
        })
        .collect();
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    let sql = super::together(conn, &statements);
    // SQLite returns every statement's row, PostgreSQL the last one's; the
    // last bucket was spent only if all were.
    let spent: Vec<String> = sqlx::query_scalar_with(&sql, arguments(buckets, now)?)
        .fetch_all(&mut *conn)
        .await?;
    if spent.iter().any(|bucket| bucket == last) {
        return Ok(None);
    }
    // A bucket has no try left: which, and how long until it has. (One
    // that a concurrent spender emptied and whose window then ended before
    // this read is found full: the first waits a second.)
    Ok(Some(check(conn, buckets, now).await?.unwrap_or((0, 1))))
}

/// Whether each of `buckets` has a try, without spending any, in one query:
/// `None` when all do, otherwise the first that has none (its index) and
/// the seconds until it has.
pub async fn check(
    conn: &mut Conn,
    buckets: &[(&str, Budget)],
    now: Timestamp,
) -> sqlx::Result<Option<(usize, i64)>> {
    // One row of (bucket, window start, tries) per bucket.
    let rows: Vec<String> = (0..buckets.len())
        .map(|i| format!("({})", super::placeholders(2 + 3 * i, 3)))
        .collect();
    let sql = format!(
        "SELECT budgets.bucket, budgets.window_start, budgets.locked_until
         FROM budgets JOIN (VALUES {}) AS asked ON budgets.bucket = asked.column1
         WHERE NOT ({})",
        rows.join(", "),
        available("asked.column2", "asked.column3"),
    );
    let empty: Vec<(String, Timestamp, Option<Timestamp>)> =
        sqlx::query_as_with(&sql, arguments(buckets, now)?)
            .fetch_all(conn)
            .await?;
    let first = buckets
        .iter()
        .enumerate()
        .find_map(|(i, (bucket, budget))| {
            let (_, window_start, locked_until) = empty.iter().find(|row| row.0 == *bucket)?;
            Some((i, wait(*budget, *window_start, *locked_until, now)))
        });
    Ok(first)
}

/// The parameters of [`spend`] and [`check`]: `$1` now, then each bucket's
/// name, the start of its window that ends now, and its tries, from `$2` on.
fn arguments<'q>(buckets: &[(&'q str, Budget)], now: Timestamp) -> sqlx::Result<AnyArguments<'q>> {
    let mut arguments = AnyArguments::default();
    arguments.add(now).map_err(sqlx::Error::Encode)?;
    for (bucket, budget) in buckets {
        arguments.add(*bucket).map_err(sqlx::Error::Encode)?;
        arguments
            .add(now - budget.window)
            .map_err(sqlx::Error::Encode)?;
        arguments.add(budget.tries).map_err(sqlx::Error::Encode)?;
    }
    Ok(arguments)
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
    let sql = format!(
        "UPDATE budgets SET spent = CASE WHEN spent > 0 THEN spent - 1 ELSE 0 END, streak = 0
         WHERE bucket IN ({})",
        super::placeholders(1, buckets.len())
    );
    let mut statement = batch.push(&sql);
    for bucket in buckets {
        statement = statement.bind(bucket.as_str());
    }
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
