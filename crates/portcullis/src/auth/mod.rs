//! The end-user flows of SPEC §3.1, one file per thing a user does, written
//! once over the store. Flow files never import each other: what they share
//! (email keys and their codes, opening a device session) sits beside them.

mod api_keys;
mod caller;
mod clients;
mod dev_login;
mod email_keys;
mod grant;
mod introspect;
mod limits;
mod login;
mod password;
mod recognise;
mod register;
mod sessions;
mod totp;
mod two_factor;

pub use api_keys::{
    create_api_key, issue_api_key, list_api_keys, revoke_api_key, CreatedKey, NewKey,
};
pub use caller::{Caller, Client, KeyHolder, Principal};
pub use clients::{
    authenticate_client, client_login, client_refresh, ClientGrant,
    SECRET_KIND as CLIENT_SECRET_KIND,
};
pub use dev_login::{dev_login, DevLogin, DevLoginOutcome};
pub use email_keys::StepOne;
pub use grant::Grant;
pub use introspect::{introspect, INTROSPECT_SCOPE};
pub use login::{login, resend, verify, Login, LoginOutcome};
pub use password::{change_password, forgot_password, reset_password};
pub use recognise::{authenticate, authenticate_key, identify, Credential, Identity};
pub use register::{register, Register};
pub use sessions::{list_sessions, logout, logout_all, me, refresh, revoke_device};
pub use two_factor::{disable_totp, enable_totp, setup_totp, TotpSetup};
