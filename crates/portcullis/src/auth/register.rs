//! Registration: an account and a code to prove its address.

use secrecy::SecretString;
use tracing::instrument;

use super::caller::Client;
use super::email_keys::{self, KeyFor, StepOne};
use crate::audit::{Event, Kind};
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

/// Creates an account and mails a registration code. An address whose
/// account is not verified yet gets a fresh key that carries the new password,
/// set only if that key's code is verified. An address with a verified account
/// gets the same answer, a key no code will ever match, and a notice by email.
#[instrument(skip_all)]
pub async fn register(s: &Services, input: Register, client: &Client) -> Result<StepOne, ApiError> {
    password::check_policy(&input.password, s.config.password_min_length)?;
    let hash = s.hasher.hash(&s.secrets, &input.password).await?;
    let now = s.now();
    let email = input.email.as_str();
    let existing = users::by_email(&mut *s.read().await?, email).await?;

    let mut work = s.begin().await?;
    let email_key = match existing {
        Some(user) if user.verified => {
            work.mail(email, Message::AccountExists, now).await?;
            let event = Event::new(Kind::Registered)
                .user(&user.id)
                .ip(client.ip.as_deref());
            work.audit(event.detail("address_taken"), now).await?;
            email_keys::decoy(s, &mut work, email, Purpose::Register, now).await?
        }
        existing => {
            let user_id = match existing {
                Some(user) => user.id,
                None => {
                    let id = s.secrets.random_id("usr_");
                    let new = users::NewUser {
                        id: &id,
                        email,
                        username: input.username.as_ref().map(Username::as_str),
                        name: input.name.as_ref().map(PersonName::as_str),
                        password_hash: &hash,
                        verified: false,
                    };
                    users::insert(&mut work, &new, now).await.map_err(taken)?;
                    id
                }
            };
            let event = Event::new(Kind::Registered)
                .user(&user_id)
                .ip(client.ip.as_deref());
            work.audit(event, now).await?;
            let key = KeyFor {
                user_id: &user_id,
                email,
                purpose: Purpose::Register,
                device: None,
                password_hash: Some(&hash),
            };
            email_keys::issue(s, &mut work, &key, now).await?
        }
    };
    work.commit().await?;
    Ok(StepOne {
        email_key,
        email: email.to_owned(),
        is_register: true,
    })
}

/// A failed insert because the email or username is in use.
fn taken(e: sqlx::Error) -> ApiError {
    match unique_violation(&e) {
        Some("username") => ApiError::field("username", "This username is already taken"),
        // A racing registration of the same address: answer as for a taken one would
        // reveal it; ask the client to retry, which then takes the verified-or-not path.
        Some(_) => ApiError::Unavailable("registration race"),
        None => e.into(),
    }
}
