//! Development login (SPEC §3.1, `reference/dev-login.txt`): an API key of
//! the account with the `dev_login` scope, then the password, then tokens
//! with no emailed code. TOTP is still asked for when enabled. The route
//! exists only when `PORTCULLIS_DEV_LOGIN` is on.

use secrecy::SecretString;
use tracing::instrument;

use super::caller::{Client, KeyHolder, Who};
use super::grant::{start_session, Grant};
use super::limits::{self, Bucket};
use super::totp::{self, Factor};
use crate::audit::Kind;
use crate::domain::{Device, LoginName};
use crate::error::ApiError;
use crate::services::Services;
use crate::store::users;

/// The scope a key needs for dev-login.
const DEV_LOGIN_SCOPE: &str = "dev_login";

pub struct DevLogin {
    pub login: LoginName,
    pub password: SecretString,
    /// A TOTP code or a recovery code, for accounts with TOTP enabled.
    pub totp_code: Option<SecretString>,
    pub device: Device,
}

pub enum DevLoginOutcome {
    Tokens(Box<Grant>),
    /// The password is right and TOTP is enabled, but no TOTP code was sent.
    SecondFactor,
}

/// Checks the key's scope, then the password (as login does: one hash
/// whoever asks, the login budgets spent first and given back on success,
/// and the key's own dev-login budget), then the second factor. The account
/// must be the key's own: a key never logs anyone else in, and a password
/// right for another account gets the same answer as a wrong one.
#[instrument(skip_all)]
pub async fn dev_login(
    s: &Services,
    key: &KeyHolder,
    input: DevLogin,
    client: &Client,
) -> Result<DevLoginOutcome, ApiError> {
    if !key.has_scope(DEV_LOGIN_SCOPE) {
        return Err(ApiError::InsufficientPermissions);
    }
    let place = s.hasher.reserve()?;
    let user = users::by_login(&mut *s.read().await?, input.login.as_str()).await?;
    let now = s.now();
    let user_id = user.as_ref().map(|u| u.id.clone());
    let account = match &user_id {
        Some(id) => id.clone(),
        None => s.secrets.pseudonym(input.login.as_str()),
    };
    let logins = limits::login(client, &account);
    let mut buckets = logins.clone();
    buckets.push(Bucket::DevLoginKey(&key.key_id));
    let who = Who {
        client,
        user_id: user_id.as_deref(),
        device_id: input.device.id.as_ref().map(|id| id.as_str()),
    };
    limits::spend_now(s, &buckets, who, now).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let ok = s.hasher.verify_in(place, &input.password, stored).await?;
    let user = match user {
        Some(user) if ok && user.id == key.user_id && !user.disabled => user,
        user => {
            let (detail, error) = match &user {
                Some(u) if ok && u.id != key.user_id => {
                    ("dev_login_other_account", ApiError::InvalidCredentials)
                }
                Some(u) if ok && u.disabled => ("account_disabled", ApiError::AccountDisabled),
                _ => ("invalid_credentials", ApiError::InvalidCredentials),
            };
            let mut work = s.begin().await?;
            let event = who.event(Kind::LoginFailed).detail(detail);
            work.audit(event, now);
            work.commit().await?;
            return Err(error);
        }
    };
    let mut work = s.begin().await?;
    let code = input.totp_code.as_ref();
    match totp::second_factor(s, &mut work, &user, code, now).await? {
        Factor::Passed => {}
        Factor::Missing => {
            limits::refund(&mut work, &logins);
            work.commit().await?;
            return Ok(DevLoginOutcome::SecondFactor);
        }
        Factor::Wrong => {
            let event = who.event(Kind::LoginFailed).detail("invalid_totp_code");
            work.audit(event, now);
            work.commit().await?;
            return Err(ApiError::InvalidTotpCode);
        }
    }
    limits::refund(&mut work, &logins);
    let opened = start_session(s, &mut work, user, input.device, client, "dev_login", now).await?;
    work.commit().await?;
    Ok(DevLoginOutcome::Tokens(Box::new(opened.sign(s, now)?)))
}
