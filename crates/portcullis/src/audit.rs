//! Security events (SPEC §6): each is written to the `audit_log` table,
//! in the same transaction as the change it records, and logged.

use crate::clock::Timestamp;
use crate::store::audit_log::{self, NewEntry};
pub use crate::store::audit_log::{Event, Kind};
use crate::store::{Batch, Conn};

/// Writes the event beside the change it belongs to, with the request's
/// trace id, and logs it. Events that name no account or client (failures
/// for unknown addresses or API keys) are counted per hour instead, so a flood of them cannot grow
/// the table without bound.
pub async fn record(conn: &mut Conn, event: Event<'_>, now: Timestamp) -> sqlx::Result<()> {
    let mut batch = Batch::default();
    write(&mut batch, event, now);
    batch.run(conn).await
}

/// [`record`], as a write of `batch`.
pub fn write(batch: &mut Batch, event: Event<'_>, now: Timestamp) {
    log(&event);
    if event.user_id.is_none() && event.client_id.is_none() {
        let hour = now - now.rem_euclid(3600);
        return audit_log::tally(batch, event.kind.as_str(), hour);
    }
    audit_log::insert(batch, &entry(&event, now));
}

/// Logs the event, as every recorded one is.
pub fn log(event: &Event<'_>) {
    tracing::info!(
        event = event.kind.as_str(),
        user_id = event.user_id,
        client_id = event.client_id,
        session_id = event.session_id,
        ip = event.ip,
        device_id = event.device_id,
        detail = event.detail,
        "audit"
    );
}

/// The `audit_log` row of an event that names its account or client, with
/// the request's trace id.
pub fn entry<'a>(event: &Event<'a>, now: Timestamp) -> NewEntry<'a> {
    let trace_id = crate::error::trace_id();
    NewEntry {
        at: now,
        event: *event,
        trace_id: Some(trace_id).filter(|t| !t.is_empty()),
    }
}
