//! Security events (SPEC §6): each is written to the `audit_log` table,
//! in the same transaction as the change it records, and logged.

use crate::clock::Timestamp;
use crate::store::audit_log::{self, NewEntry};
use crate::store::Conn;

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

/// Writes the event beside the change it belongs to, with the request's
/// trace id, and logs it. Events that name no account or client (failures
/// for unknown addresses or API keys) are counted per hour instead, so a flood of them cannot grow
/// the table without bound.
pub async fn record(conn: &mut Conn, event: Event<'_>, now: Timestamp) -> sqlx::Result<()> {
    log(&event);
    if event.user_id.is_none() && event.client_id.is_none() {
        let hour = now - now.rem_euclid(3600);
        return audit_log::tally(conn, event.kind.as_str(), hour).await;
    }
    audit_log::insert(conn, &entry(&event, now)).await
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
        event: event.kind.as_str(),
        user_id: event.user_id,
        client_id: event.client_id,
        session_id: event.session_id,
        ip: event.ip,
        user_agent: event.user_agent,
        device_id: event.device_id,
        trace_id: Some(trace_id).filter(|t| !t.is_empty()),
        detail: event.detail,
    }
}
