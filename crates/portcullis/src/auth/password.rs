//! Passwords: reset by an emailed code, or change with the current one.

use secrecy::SecretString;
use tracing::instrument;

use super::caller::{Caller, Client};
use super::email_keys::{self, CodeCheck, KeyFor, StepOne};
use crate::audit::{Event, Kind};
use crate::domain::{Code, Email};
use crate::error::ApiError;
use crate::password;
use crate::services::Services;
use crate::store::keys::Purpose;
use crate::store::{sessions, users};

/// Mails a reset code if the address has an account; the answer is the same either way.
#[instrument(skip_all)]
pub async fn forgot_password(s: &Services, email: &Email) -> Result<StepOne, ApiError> {
    let now = s.now();
    let user = users::by_email(&mut *s.read().await?, email.as_str()).await?;
    let mut work = s.begin().await?;
    let email_key = match user.filter(|u| !u.disabled) {
        Some(user) => {
            let key = KeyFor {
                user_id: &user.id,
                email: &user.email,
                purpose: Purpose::Reset,
                device: None,
                password_hash: None,
            };
            email_keys::issue(s, &mut work, &key, now).await?
        }
        None => email_keys::decoy(s, &mut work, email.as_str(), Purpose::Reset, now).await?,
    };
    work.commit().await?;
    Ok(StepOne {
        email_key,
        email: email.as_str().to_owned(),
        is_register: false,
    })
}

/// Sets a new password with a reset code; every session of the account ends.
#[instrument(skip_all)]
pub async fn reset_password(
    s: &Services,
    email_key: &str,
    code: &Code,
    new_password: &SecretString,
    client: &Client,
) -> Result<(), ApiError> {
    password::check_policy(new_password, s.config.password_min_length)?;
    let hash = s.hasher.hash(&s.secrets, new_password).await?;
    let now = s.now();
    let mut work = s.begin().await?;
    let key = match email_keys::check_code(s, &mut work, email_key, code, &[Purpose::Reset], now)
        .await?
    {
        CodeCheck::Accepted(key) => key,
        refused => {
            // The attempt it spent must stay counted.
            work.commit().await?;
            return Err(refused.refusal());
        }
    };
    let user_id = key.user_id.ok_or(ApiError::VerificationExpired)?;
    users::set_password(&mut work, &user_id, &hash, now).await?;
    // The code proves the address is theirs.
    users::mark_verified(&mut work, &user_id, now).await?;
    sessions::revoke_all(&mut work, &user_id, None, "password reset", now).await?;
    email_keys::retire_pending_logins(&mut work, &user_id, now).await?;
    let event = Event::new(Kind::PasswordReset)
        .user(&user_id)
        .ip(client.ip.as_deref());
    work.audit(event, now).await?;
    work.commit().await?;
    Ok(())
}

/// Changes the password of the caller; every other session of the account ends.
#[instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn change_password(
    s: &Services,
    caller: &Caller,
    current: &SecretString,
    new: &SecretString,
) -> Result<(), ApiError> {
    let user = users::by_id(&mut *s.read().await?, &caller.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(ApiError::InvalidToken)?;
    if !s
        .hasher
        .verify(current, user.password_hash.as_deref())
        .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    password::check_policy(new, s.config.password_min_length)?;
    let hash = s.hasher.hash(&s.secrets, new).await?;
    let now = s.now();
    let mut work = s.begin().await?;
    users::set_password(&mut work, &user.id, &hash, now).await?;
    sessions::revoke_all(
        &mut work,
        &user.id,
        Some(&caller.session_id),
        "password changed",
        now,
    )
    .await?;
    email_keys::retire_pending_logins(&mut work, &user.id, now).await?;
    let event = Event::new(Kind::PasswordChanged)
        .user(&user.id)
        .session(&caller.session_id);
    work.audit(event, now).await?;
    work.commit().await?;
    Ok(())
}
