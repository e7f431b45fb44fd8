//! Registration: an account and a code to prove its address.

use secrecy::SecretString;
use tracing::instrument;

use super::caller::{Client, Who};
use super::email_keys::{self, KeyFor, StepOne};
use super::limits;
use crate::audit::Kind;
use crate::domain::{Email, PersonName, Username};
use crate::error::ApiError;
use crate::mail::Message;
use crate::password;
use crate::services::Services;
use crate::store::keys::Purpose;
use crate::store::{unique_violation, users};

pub struct Register {
    pub email: Email,
    pub username: Option<Username>,
    pub password: SecretString,
    pub name: Option<PersonName>,
}

/// Creates an account and mails a registration code; the answer is the same
/// whoever holds the address or the username. The password and the username
/// ride on the key, applied only when its code is verified (the username if
/// it is still free), so re-registering cannot plant either. An address with
/// a verified account gets a decoy key and its owner a notice by email.
#[instrument(skip_all)]
pub async fn register(s: &Services, input: Register, client: &Client) -> Result<StepOne, ApiError> {
    password::check_policy(&input.password, s.config.password_min_length)?;
    let now = s.now();
    let email = input.email.as_str();
    let address = s.secrets.pseudonym(email);
    let buckets = limits::mail(client, &address);
    let who = Who {
        client,
        user_id: None,
        device_id: None,
    };
    limits::spend_now(s, &buckets, who, now).await?;
    let hash = s.hasher.hash(&s.secrets, &input.password).await?;
    let existing = users::by_email(&mut *s.read().await?, email).await?;

    let mut work = s.begin().await?;
    let registered = client.event(Kind::Registered);
    let user_id = match existing {
        Some(user) if user.verified => {
            work.mail(email, Message::AccountExists, now)?;
            let event = registered.user(&user.id).detail("address_taken");
            work.audit(event, now);
            None
        }
        Some(user) => {
            work.audit(registered.user(&user.id), now);
            Some(user.id)
        }
        None => {
            let id = s.secrets.random_id("usr_");
            let new = users::NewUser {
                id: &id,
                email,
                username: None,
                name: input.name.as_ref().map(PersonName::as_str),
                password_hash: &hash,
                verified: false,
            };
            users::insert(&mut work, &new, now).await.map_err(raced)?;
            work.audit(registered.user(&id), now);
            Some(id)
        }
    };
    let key = KeyFor {
        user_id: user_id.as_deref(),
        email,
        purpose: Purpose::Register,
        device: None,
        password_hash: Some(&hash),
        username: input.username.as_ref().map(Username::as_str),
        second_factor: false,
    };
    let email_key = email_keys::issue(s, &mut work, &key, now)?;
    work.commit().await?;
    Ok(StepOne {
        email_key,
        email: email.to_owned(),
        is_register: true,
    })
}

/// A racing registration of the same address: answering as for a taken one
/// would reveal it; ask the client to retry, which then takes the other path.
fn raced(e: sqlx::Error) -> ApiError {
    match unique_violation(&e) {
        Some(_) => ApiError::Unavailable("registration race"),
        None => e.into(),
    }
}
