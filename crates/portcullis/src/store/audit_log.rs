//! The audit log: the security events of SPEC §6, their rows, written
//! beside the change they record (see `audit::record`), the hourly tally of
//! events that name no one, and reads.

use sqlx::FromRow;

use super::{Batch, Bind, Conn};
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

/// What a security event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Registered,
    LoginFailed,
    CodeSent,
    CodeFailed,
    LoginSucceeded,
    RefreshReused,
    SessionRevoked,
    PasswordChanged,
    PasswordReset,
    AccountDisabled,
    AccountEnabled,
    /// A code was not even compared: its key was unknown, used, expired or burned.
    CodeRefused,
    /// A budget of SPEC §6 ran out; the detail names which.
    BudgetExhausted,
    /// Too many consecutive wrong codes: the address's code flows are locked.
    CodesLocked,
    TotpEnabled,
    TotpDisabled,
    /// An operator cleared a lost authenticator.
    TotpReset,
    /// A recovery code was spent in place of a TOTP code.
    RecoveryCodeUsed,
    ApiKeyCreated,
    ApiKeyRevoked,
    ClientLoginSucceeded,
    ClientLoginFailed,
    /// An operator made a client.
    ClientCreated,
    /// An operator changed a client; the detail says how.
    ClientChanged,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Registered => "registered",
            Kind::LoginFailed => "login_failed",
            Kind::CodeSent => "code_sent",
            Kind::CodeFailed => "code_failed",
            Kind::LoginSucceeded => "login_succeeded",
            Kind::RefreshReused => "refresh_reused",
            Kind::SessionRevoked => "session_revoked",
            Kind::PasswordChanged => "password_changed",
            Kind::PasswordReset => "password_reset",
            Kind::AccountDisabled => "account_disabled",
            Kind::AccountEnabled => "account_enabled",
            Kind::CodeRefused => "code_refused",
            Kind::BudgetExhausted => "budget_exhausted",
            Kind::CodesLocked => "codes_locked",
            Kind::TotpEnabled => "totp_enabled",
            Kind::TotpDisabled => "totp_disabled",
            Kind::TotpReset => "totp_reset",
            Kind::RecoveryCodeUsed => "recovery_code_used",
            Kind::ApiKeyCreated => "api_key_created",
            Kind::ApiKeyRevoked => "api_key_revoked",
            Kind::ClientLoginSucceeded => "client_login_succeeded",
            Kind::ClientLoginFailed => "client_login_failed",
            Kind::ClientCreated => "client_created",
            Kind::ClientChanged => "client_changed",
        }
    }
}

/// One event; never carries a secret.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub kind: Kind,
    pub user_id: Option<&'a str>,
    /// The machine client the event is about.
    pub client_id: Option<i64>,
    pub session_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub device_id: Option<&'a str>,
    /// A short reason, e.g. `invalid_credentials`, `logout`.
    pub detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            user_id: None,
            client_id: None,
            session_id: None,
            ip: None,
            user_agent: None,
            device_id: None,
            detail: None,
        }
    }

    pub fn user(mut self, user_id: &'a str) -> Self {
        self.user_id = Some(user_id);
        self
    }

    pub fn client(mut self, client_id: i64) -> Self {
        self.client_id = Some(client_id);
        self
    }

    pub fn session(mut self, session_id: &'a str) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// Where the request came from.
    pub fn from(mut self, ip: Option<&'a str>, user_agent: Option<&'a str>) -> Self {
        self.ip = ip;
        self.user_agent = user_agent;
        self
    }

    pub fn device(mut self, device_id: Option<&'a str>) -> Self {
        self.device_id = device_id;
        self
    }

    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// An event as `audit_log` keeps it: one that names its account or client,
/// with when it happened and the request's trace id.
pub struct NewEntry<'a> {
    pub at: Timestamp,
    pub event: Event<'a>,
    pub trace_id: Option<String>,
}

/// Stores a [`NewEntry`] with the batch's other writes.
pub fn insert(batch: &mut Batch, e: &NewEntry<'_>) {
    let event = &e.event;
    batch
        .push(
            "INSERT INTO audit_log (at, event, user_id, client_id, session_id, ip, user_agent, device_id, trace_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .integer(Some(e.at))
        .text(Some(event.kind.as_str()))
        .text(event.user_id)
        .integer(event.client_id)
        .text(event.session_id)
        .text(event.ip)
        .text(event.user_agent)
        .text(event.device_id)
        .text(e.trace_id.as_deref())
        .text(event.detail);
}

/// Counts one `event` in the hour that starts at `hour`.
pub fn tally(batch: &mut Batch, event: &str, hour: Timestamp) {
    batch
        .push(
            "INSERT INTO audit_tally (event, hour, count) VALUES ($1, $2, 1)
             ON CONFLICT (event, hour) DO UPDATE SET count = audit_tally.count + 1",
        )
        .bind(event)
        .bind(hour);
}
