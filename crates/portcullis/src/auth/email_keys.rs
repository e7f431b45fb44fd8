//! Email keys and their codes, the mechanics that register, login and
//! password reset share: issuing a key and mailing its code, decoys for
//! addresses without an account, and checking a code against its budget.

use crate::audit::{Event, Kind};
use crate::clock::Timestamp;
use crate::crypto::{ct_eq, hex};
use crate::domain::{Code, Device};
use crate::error::ApiError;
use crate::mail::Message;
use crate::services::{Services, Work};
use crate::store::keys::{self, Attempt, EmailKey, Purpose};

/// The answer of a step that mailed a code.
#[derive(Debug, Clone)]
pub struct StepOne {
    pub email_key: String,
    pub email: String,
    pub is_register: bool,
}

/// What a new email key is for.
pub(super) struct KeyFor<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub purpose: Purpose,
    /// Device fields of login step 1, for the session that verifying opens.
    pub device: Option<&'a Device>,
    /// A registration's password, set on the account when the code is verified.
    pub password_hash: Option<&'a str>,
}

/// Creates a key, mails its code and retires the account's oldest live keys
/// beyond the allowed number, all inside `work`.
pub(super) async fn issue(
    s: &Services,
    work: &mut Work<'_>,
    key: &KeyFor<'_>,
    now: Timestamp,
) -> Result<String, ApiError> {
    let email_key = new_email_key(s);
    let code = s.secrets.random_code(s.config.code_digits);
    let new = keys::NewKey {
        email_key: &email_key,
        user_id: Some(key.user_id),
        email: key.email,
        purpose: key.purpose,
        code_hash: &s.secrets.code_hash(&email_key, &code),
        expires_at: now + s.config.code_ttl.as_secs() as i64,
        device: key.device,
        password_hash: key.password_hash,
    };
    keys::insert(work, &new, now).await?;
    let sent = Event::new(Kind::CodeSent)
        .user(key.user_id)
        .detail(key.purpose.as_str());
    work.audit(sent, now).await?;
    keys::retire_beyond(
        work,
        key.user_id,
        &email_key,
        s.config.live_keys_per_account,
        now,
    )
    .await?;
    work.mail(key.email, message(s, key.purpose, &code), now)
        .await?;
    Ok(email_key)
}

/// A key that behaves like a real one but whose stored hash no code matches.
pub(super) async fn decoy(
    s: &Services,
    work: &mut Work<'_>,
    email: &str,
    purpose: Purpose,
    now: Timestamp,
) -> Result<String, ApiError> {
    let email_key = new_email_key(s);
    let key = keys::NewKey {
        email_key: &email_key,
        user_id: None,
        email,
        purpose,
        code_hash: &hex(&s.secrets.random::<32>()),
        expires_at: now + s.config.code_ttl.as_secs() as i64,
        device: None,
        password_hash: None,
    };
    keys::insert(work, &key, now).await?;
    Ok(email_key)
}

/// The message that carries a code for `purpose`.
pub(super) fn message<'a>(s: &Services, purpose: Purpose, code: &'a str) -> Message<'a> {
    let minutes = (s.config.code_ttl.as_secs() as i64 + 59) / 60;
    match purpose {
        Purpose::Register => Message::RegisterCode { code, minutes },
        Purpose::Login => Message::LoginCode { code, minutes },
        Purpose::Reset => Message::ResetCode { code, minutes },
    }
}

/// After a password change, codes started with the old password must not finish.
pub(super) async fn retire_pending_logins(
    work: &mut Work<'_>,
    user_id: &str,
    now: Timestamp,
) -> sqlx::Result<()> {
    for purpose in [Purpose::Login, Purpose::Reset] {
        keys::retire_purpose(work, user_id, purpose, now).await?;
    }
    Ok(())
}

fn new_email_key(s: &Services) -> String {
    uuid::Builder::from_random_bytes(s.secrets.random())
        .into_uuid()
        .to_string()
}

/// What checking a code found.
#[derive(Debug)]
pub(super) enum CodeCheck {
    /// The code matched; the key is now used.
    Accepted(Box<EmailKey>),
    /// The code did not match; one attempt was spent.
    Wrong { attempts_left: i64 },
    /// The key has no attempts left.
    Exhausted,
    /// The key is unknown, used or past its lifetime.
    Expired,
    /// The key was issued for another purpose; no attempt was spent.
    IssuedFor(Purpose),
}

impl CodeCheck {
    /// The error a refusal answers with; a key for another purpose is, to
    /// this flow, no key at all.
    pub fn refusal(self) -> ApiError {
        match self {
            CodeCheck::Wrong { attempts_left } => ApiError::InvalidVerificationCode {
                attempts_remaining: attempts_left,
            },
            CodeCheck::Exhausted => ApiError::VerificationAttemptsExceeded,
            CodeCheck::Accepted(_) | CodeCheck::Expired | CodeCheck::IssuedFor(_) => {
                ApiError::VerificationExpired
            }
        }
    }
}

/// Checks a code against a key issued for one of `purposes`, spending one
/// attempt atomically first so that concurrent guesses never exceed the
/// budget. On success the key is consumed. Commit `work` either way: a
/// wrong guess must stay counted.
pub(super) async fn check_code(
    s: &Services,
    work: &mut Work<'_>,
    email_key: &str,
    code: &Code,
    purposes: &[Purpose],
    now: Timestamp,
) -> Result<CodeCheck, ApiError> {
    let max = s.config.code_max_attempts;
    let key = match keys::spend_attempt(work, email_key, purposes, max, now).await? {
        Attempt::Spent(key) => key,
        Attempt::IssuedFor(purpose) => return Ok(CodeCheck::IssuedFor(purpose)),
        Attempt::Exhausted => return Ok(CodeCheck::Exhausted),
        Attempt::Expired => return Ok(CodeCheck::Expired),
    };
    if !ct_eq(
        &s.secrets.code_hash(email_key, code.as_str()),
        &key.code_hash,
    ) {
        let event = Event {
            user_id: key.user_id.as_deref(),
            ..Event::new(Kind::CodeFailed)
        };
        work.audit(event.detail(key.purpose.as_str()), now).await?;
        return Ok(CodeCheck::Wrong {
            attempts_left: max - key.attempts,
        });
    }
    if !keys::consume(work, email_key, now).await? {
        return Ok(CodeCheck::Expired);
    }
    Ok(CodeCheck::Accepted(key))
}
