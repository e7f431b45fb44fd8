//! The end-user flows of SPEC §3.1, one file per thing a user does, written
//! once over the store. Flow files never import each other: what they share
//! (email keys and their codes, opening a device session) sits beside them.

mod email_keys;
mod grant;
mod login;
mod password;
mod register;
mod sessions;

pub use grant::Grant;
pub use login::{login, resend, verify, Login, LoginOutcome};
pub use password::{change_password, forgot_password, reset_password};
pub use register::{register, Register};
pub use sessions::{authenticate, list_sessions, logout, logout_all, me, refresh, revoke_device};

/// Where a request came from, as recorded on its device session and in the audit log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The holder of a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub session_id: String,
}

/// The answer of a step that mailed a code.
#[derive(Debug, Clone)]
pub struct StepOne {
    pub email_key: String,
    pub email: String,
    pub is_register: bool,
}
