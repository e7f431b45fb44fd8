//! Security events (SPEC §6): each is written to the `audit_log` table,
//! in the same transaction as the change it records, and logged.

use crate::clock::Timestamp;
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
        }
    }
}

/// One event; never carries a secret.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub kind: Kind,
    pub user_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    /// A short reason, e.g. `invalid_credentials`, `logout`.
    pub detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            user_id: None,
            session_id: None,
            ip: None,
            detail: None,
        }
    }

    pub fn user(mut self, user_id: &'a str) -> Self {
        self.user_id = Some(user_id);
        self
    }

    pub fn session(mut self, session_id: &'a str) -> Self {
        self.session_id = Some(session_id);
        self
    }

    pub fn ip(mut self, ip: Option<&'a str>) -> Self {
        self.ip = ip;
        self
    }

    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }
}

pub async fn record(conn: &mut Conn, event: Event<'_>, now: Timestamp) -> sqlx::Result<()> {
    tracing::info!(
        event = event.kind.as_str(),
        user_id = event.user_id,
        session_id = event.session_id,
        ip = event.ip,
        detail = event.detail,
        "audit"
    );
    sqlx::query(
        "INSERT INTO audit_log (at, event, user_id, session_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now)
    .bind(event.kind.as_str())
    .bind(event.user_id)
    .bind(event.session_id)
    .bind(event.ip)
    .bind(event.detail)
    .execute(conn)
    .await?;
    Ok(())
}
