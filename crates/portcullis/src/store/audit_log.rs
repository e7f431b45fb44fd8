//! Reading the audit log (events are written by `audit::record`).

use sqlx::FromRow;

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
