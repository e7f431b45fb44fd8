//! The audit log: its rows, written beside the change they record (see
//! `audit::record`), the hourly tally of events that name no one, and reads.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, FromRow};

use super::Conn;
use crate::clock::Timestamp;

#[derive(Debug, Clone, FromRow)]
pub struct Entry {
    pub at: Timestamp,
    pub event: String,
    pub user_id: Option<String>,
    pub client_id: Option<i64>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
    pub trace_id: Option<String>,
}

/// Which events: each field narrows, `None` does not.
pub struct Filter<'a> {
    pub user_id: Option<&'a str>,
    pub since: Option<Timestamp>,
    pub kind: Option<&'a str>,
    pub limit: i64,
}

/// Events matching `filter`, newest first.
pub async fn list(conn: &mut Conn, filter: &Filter<'_>) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as(
        "SELECT at, event, user_id, client_id, session_id, ip, detail, trace_id FROM audit_log
         WHERE ($1 = '' OR user_id = $1) AND at >= $2 AND ($3 = '' OR event = $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(filter.user_id.unwrap_or(""))
    .bind(filter.since.unwrap_or(0))
    .bind(filter.kind.unwrap_or(""))
    .bind(filter.limit)
    .fetch_all(conn)
    .await
}

/// An event as `audit_log` keeps it: one that names its account or client.
pub struct NewEntry<'a> {
    pub at: Timestamp,
    pub event: &'a str,
    pub user_id: Option<&'a str>,
    pub client_id: Option<i64>,
    pub session_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub trace_id: Option<String>,
    pub detail: Option<&'a str>,
}

/// The statement that stores a [`NewEntry`], its placeholders numbered from
/// `$first` on, for [`bind`]'s values.
pub(super) fn insert_sql(first: usize) -> String {
    format!(
        "INSERT INTO audit_log (at, event, user_id, client_id, session_id, ip, user_agent, device_id, trace_id, detail)
         VALUES ({})",
        super::placeholders(first, 10)
    )
}

/// Binds a [`NewEntry`]'s values after those `query` already has.
pub(super) fn bind<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    e: &'q NewEntry<'_>,
) -> Query<'q, Any, AnyArguments<'q>> {
    query
        .bind(e.at)
        .bind(e.event)
        .bind(e.user_id)
        .bind(e.client_id)
        .bind(e.session_id)
        .bind(e.ip)
        .bind(e.user_agent)
        .bind(e.device_id)
        .bind(e.trace_id.as_deref())
        .bind(e.detail)
}

pub async fn insert(conn: &mut Conn, entry: &NewEntry<'_>) -> sqlx::Result<()> {
    bind(sqlx::query(&insert_sql(1)), entry)
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts one `event` in the hour that starts at `hour`.
pub async fn tally(conn: &mut Conn, event: &str, hour: Timestamp) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_tally (event, hour, count) VALUES ($1, $2, 1)
         ON CONFLICT (event, hour) DO UPDATE SET count = audit_tally.count + 1",
    )
    .bind(event)
    .bind(hour)
    .execute(conn)
    .await?;
    Ok(())
}
