//! `audit list`: the security events, newest first.

use serde_json::{json, Value};

use super::{text, Admin, Report};
use crate::clock::{parse_rfc3339, rfc3339, Clock, SystemClock, Timestamp};
use crate::config::parse_duration;
use crate::store::audit_log;

impl Admin {
    /// Events, newest first, at most `limit`: of one account (by email or
    /// id), since a time (`24h` ago or an RFC 3339 time), of one kind.
    pub async fn list_audit(
        &self,
        who: Option<&str>,
        since: Option<&str>,
        kind: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let since = since.map(|text| moment(text, now)).transpose()?;
        let mut conn = self.db.pool().acquire().await?;
        let user_id = match who {
            Some(who) => Some(self.account(&mut conn, who).await?.id),
            None => None,
        };
        let filter = audit_log::Filter {
            user_id: user_id.as_deref(),
            since,
            kind,
            limit,
        };
        let events = audit_log::list(&mut conn, &filter).await?;
        let items: Vec<Value> = events
            .into_iter()
            .map(|e| {
                json!({
                    "at": rfc3339(e.at),
                    "event": e.event,
                    "user_id": e.user_id,
                    "client_id": e.client_id,
                    "session_id": e.session_id,
                    "ip": e.ip,
                    "detail": e.detail,
                    "trace_id": e.trace_id,
                })
            })
            .collect();
        Ok(Report::lines(items, |e| {
            let subject = e["user_id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| e["client_id"].as_i64().map(|id| format!("client {id}")))
                .unwrap_or_else(|| "-".into());
            format!(
                "{}\t{}\t{subject}\t{}\t{}",
                text(&e["at"]),
                text(&e["event"]),
                text(&e["ip"]),
                text(&e["detail"]),
            )
        }))
    }
}

/// A moment given on the command line: a duration ago, or a time.
fn moment(text: &str, now: Timestamp) -> anyhow::Result<Timestamp> {
    if let Some(at) = parse_rfc3339(text) {
        return Ok(at);
    }
    let ago = parse_duration(text.trim())
        .map_err(|e| anyhow::anyhow!("--since: {e}; or an RFC 3339 time"))?;
    Ok(now - ago.as_secs() as i64)
}
