//! The end-user flows of SPEC §3.1, written once over the store.

mod codes;
mod sessions;

pub use codes::{forgot_password, register, resend, reset_password, verify, Register, StepOne};
pub use sessions::{
    authenticate, change_password, list_sessions, login, logout, logout_all, me, refresh,
    revoke_device, Caller, Client, Grant, Login, LoginOutcome,
};
