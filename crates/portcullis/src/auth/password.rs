//! Passwords: reset by an emailed code, or change with the current one.

use secrecy::SecretString;
use tracing::instrument;

use super::caller::{Caller, Client, Who};
use super::email_keys::{self, CodeCheck, KeyFor, StepOne};
use super::limits::{self, Bucket};
use crate::audit::Kind;
use crate::domain::{Code, Email};
use crate::error::ApiError;
use crate::password;
use crate::services::Services;
use crate::store::keys::{self, Purpose};
use crate::store::{sessions, users};

/// Mails a reset code if the address has an account; otherwise a decoy key
/// that costs and answers the same. Spends a try of the address's and the
/// client's mail budgets either way.
#[instrument(skip_all)]
pub async fn forgot_password(
    s: &Services,
    email: &Email,
    client: &Client,
) -> Result<StepOne, ApiError> {
    let now = s.now();
    let address = s.secrets.pseudonym(email.as_str());
    let buckets = limits::mail(client, &address);
    let user = users::by_email(&mut *s.read().await?, email.as_str()).await?;
    let user = user.filter(|u| !u.disabled);
    let who = Who {
        client,
        user_id: user.as_ref().map(|u| u.id.as_str()),
        device_id: None,
    };
    limits::spend_now(s, &buckets, who, now).await?;
    // Every write of this unit waits for its end and goes as one statement.
    let mut work = s.autocommit().await?;
    let key = KeyFor {
        user_id: user.as_ref().map(|u| u.id.as_str()),
        email: email.as_str(),
        purpose: Purpose::Reset,
        device: None,
        password_hash: None,
        username: None,
        second_factor: false,
    };
    let email_key = email_keys::issue(s, &mut work, &key, now)?;
    work.commit().await?;
    Ok(StepOne {
        email_key,
        email: email.as_str().to_owned(),
        is_register: false,
    })
}

/// Sets a new password with a reset code; every session of the account ends.
/// The key, its attempts and the budgets are checked before anything is hashed.
#[instrument(skip_all)]
pub async fn reset_password(
    s: &Services,
    email_key: &str,
    code: &Code,
    new_password: &SecretString,
    client: &Client,
) -> Result<(), ApiError> {
    password::check_policy(new_password, s.config.password_min_length)?;
    let now = s.now();
    let mut work = s.begin().await?;
    let check = email_keys::check_code(
        s,
        &mut work,
        email_key,
        code,
        &[Purpose::Reset],
        client,
        now,
    );
    let outcome = check.await?;
    // Committed whatever the outcome: a wrong guess stays counted, a right one spends the key.
    work.commit().await?;
    let key = match outcome {
        CodeCheck::Accepted(key) => key,
        refused => return Err(refused.refusal()),
    };
    let user_id = key.user_id.ok_or(ApiError::VerificationExpired)?;
    // Hashed outside any transaction: a hash takes long, and may wait for its turn.
    let hash = s.hasher.hash(&s.secrets, new_password).await?;
    let now = s.now();
    let mut work = s.begin().await?;
    // Keys first: a login verifying concurrently either finds its key retired
    // or has committed its session before the sessions are revoked below.
    keys::retire_all(&mut work, &user_id, now).await?;
    users::set_password(&mut work, &user_id, &hash, now).await?;
    // The code proves the address is theirs.
    users::mark_verified(&mut work, &user_id, now).await?;
    sessions::revoke_all(&mut work, &user_id, None, "password reset", now).await?;
    work.ends_access();
    work.audit(client.event(Kind::PasswordReset).user(&user_id), now);
    work.commit().await?;
    Ok(())
}

/// Changes the password of the caller; every other session of the account
/// ends and every pending code of it is retired. A wrong current password
/// spends a try of the account's login budget.
#[instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn change_password(
    s: &Services,
    caller: &Caller,
    current: &SecretString,
    new: &SecretString,
    client: &Client,
) -> Result<(), ApiError> {
    let user = users::by_id(&mut *s.read().await?, &caller.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(ApiError::InvalidToken)?;
    let now = s.now();
    let buckets = [Bucket::LoginAccount(&user.id)];
    let who = Who {
        client,
        user_id: Some(&user.id),
        device_id: None,
    };
    limits::spend_now(s, &buckets, who, now).await?;
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
    limits::refund(&mut work, &buckets);
    keys::retire_all(&mut work, &user.id, now).await?;
    users::set_password(&mut work, &user.id, &hash, now).await?;
    sessions::revoke_all(
        &mut work,
        &user.id,
        Some(&caller.session_id),
        "password changed",
        now,
    )
    .await?;
    work.ends_access();
    let event = client
        .event(Kind::PasswordChanged)
        .user(&user.id)
        .session(&caller.session_id);
    work.audit(event, now);
    work.commit().await?;
    Ok(())
}
