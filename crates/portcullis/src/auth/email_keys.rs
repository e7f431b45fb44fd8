//! Email keys and their codes, the mechanics that register, login and
//! password reset share: issuing a key and mailing its code (or, for an
//! address with no account, a decoy that costs and answers the same), and
//! checking a code against the key's attempts and the address's budgets.

use super::caller::{Client, Who};
use super::limits::{self, Bucket};
use crate::audit::Kind;
use crate::clock::Timestamp;
use crate::crypto::{ct_eq, hex};
use crate::domain::{Code, Device};
use crate::error::ApiError;
use crate::mail::Message;
use crate::services::{Services, Work};
use crate::store::keys::{self, Attempt, EmailKey, Purpose};
use crate::store::users;

/// The answer of a step that mailed a code.
#[derive(Debug, Clone)]
pub struct StepOne {
    pub email_key: String,
    pub email: String,
    pub is_register: bool,
}

/// What a new email key is for.
pub(super) struct KeyFor<'a> {
    /// `None` for a decoy: an address with no account (or one that must not
    /// learn anything), whose key no code will ever match.
    pub user_id: Option<&'a str>,
    pub email: &'a str,
    pub purpose: Purpose,
    /// Device fields of login step 1, for the session that verifying opens.
    pub device: Option<&'a Device>,
    /// A registration's password and username, set on the account when the code is verified.
    pub password_hash: Option<&'a str>,
    pub username: Option<&'a str>,
    /// The account's second factor was checked before the key was issued.
    pub second_factor: bool,
}

/// Creates a key, mails its code and retires the account's oldest live keys
/// beyond the allowed number, all kept for `work`'s commit. A decoy goes
/// through the same steps, so that its answer takes as long, but its mail is
/// withheld.
pub(super) fn issue(
    s: &Services,
    work: &mut Work<'_>,
    key: &KeyFor<'_>,
    now: Timestamp,
) -> Result<String, ApiError> {
    let email_key = s.secrets.random_uuid();
    let code = s.secrets.random_code(digits(s, key.purpose));
    let code_hash = match key.user_id {
        Some(_) => s.secrets.code_hash(&email_key, &code),
        None => hex(&s.secrets.random::<32>()),
    };
    let new = keys::NewKey {
        email_key: &email_key,
        user_id: key.user_id,
        email: key.email,
        purpose: key.purpose,
        code_hash: &code_hash,
        expires_at: now + s.config.code_ttl.as_secs() as i64,
        device: key.device,
        password_hash: key.password_hash,
        username: key.username,
        second_factor: key.second_factor,
    };
    keys::insert(work.later(), &new, now)?;
    let sent = crate::audit::Event {
        user_id: key.user_id,
        ..crate::audit::Event::new(Kind::CodeSent)
    };
    work.audit(sent.detail(key.purpose.as_str()), now);
    let keep = s.config.live_keys_per_account;
    keys::retire_beyond(work.later(), key.email, &email_key, keep, now);
    let message = message(s, key.purpose, &code);
    match key.user_id {
        Some(_) => work.mail(key.email, message, now)?,
        None => work.withhold(key.email, message, now)?,
    }
    Ok(email_key)
}

/// Reset codes hand over the account: they are longer (SPEC §6).
pub(super) fn digits(s: &Services, purpose: Purpose) -> u32 {
    match purpose {
        Purpose::Reset => s.config.reset_code_digits,
        Purpose::Register | Purpose::Login => s.config.code_digits,
    }
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

/// What checking a code found.
#[derive(Debug)]
pub(super) enum CodeCheck {
    /// The code matched; the key is used once `work` commits.
    Accepted(Box<EmailKey>),
    /// The code did not match; one attempt was spent.
    Wrong { attempts_left: i64 },
    /// The key has no attempts left.
    Exhausted,
    /// The key is unknown, used or past its lifetime.
    Expired,
    /// The key was issued for another purpose; no attempt was spent.
    IssuedFor(Purpose),
    /// A budget of the address or the client is spent; nothing was compared.
    Limited(ApiError),
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
            CodeCheck::Limited(error) => error,
            CodeCheck::Accepted(_) | CodeCheck::Expired | CodeCheck::IssuedFor(_) => {
                ApiError::VerificationExpired
            }
        }
    }
}

/// Checks a code against a key issued for one of `purposes`. Before the
/// compare it spends, atomically, one attempt of the key and one try of the
/// address's and the client's code budgets, so that no more guesses are
/// ever compared than the budgets allow, whatever runs concurrently. A
/// success gives the budgets their try back and ends the address's run of
/// failures; the run's `code_lock_after`th failure locks the address's code
/// flows and tells its owner. Commit `work` whatever the outcome: a wrong
/// guess must stay counted.
pub(super) async fn check_code(
    s: &Services,
    work: &mut Work<'_>,
    email_key: &str,
    code: &Code,
    purposes: &[Purpose],
    client: &Client,
    now: Timestamp,
) -> Result<CodeCheck, ApiError> {
    let max = s.config.code_max_attempts;
    let key = match keys::spend_attempt(work, email_key, purposes, max, now).await? {
        Attempt::Spent(key) => key,
        Attempt::IssuedFor(purpose) => return Ok(CodeCheck::IssuedFor(purpose)),
        refused => {
            let detail = match refused {
                Attempt::Exhausted => "burned_key",
                _ => "expired_or_unknown_key",
            };
            work.audit(client.event(Kind::CodeRefused).detail(detail), now);
            return Ok(match refused {
                Attempt::Exhausted => CodeCheck::Exhausted,
                _ => CodeCheck::Expired,
            });
        }
    };
    let who = Who {
        client,
        user_id: key.user_id.as_deref(),
        device_id: key
            .device
            .as_ref()
            .and_then(|d| d.id.as_ref())
            .map(|id| id.as_str()),
    };
    let address = s.secrets.pseudonym(&key.email);
    let buckets = limits::code(client, &address);
    if let Err(limited) = limits::spend(s, work, &buckets, who, now).await {
        // Nothing was compared: the key keeps its attempt.
        keys::refund_attempt(work, email_key).await?;
        return Ok(CodeCheck::Limited(limited));
    }
    if !ct_eq(
        &s.secrets.code_hash(email_key, code.as_str()),
        &key.code_hash,
    ) {
        work.audit(
            who.event(Kind::CodeFailed).detail(key.purpose.as_str()),
            now,
        );
        if limits::fail(s, work, Bucket::CodeAddress(&address), now).await? {
            codes_locked(s, work, &key, who, now).await?;
        }
        return Ok(CodeCheck::Wrong {
            attempts_left: max - key.attempts,
        });
    }
    // A right code was no guess: the budgets get their try back.
    keys::consume(work.later(), email_key, &limits::keys(&buckets), now);
    Ok(CodeCheck::Accepted(key))
}

/// Records the lock and mails the owner, if the address has an account.
async fn codes_locked(
    s: &Services,
    work: &mut Work<'_>,
    key: &EmailKey,
    who: Who<'_>,
    now: Timestamp,
) -> Result<(), ApiError> {
    work.audit(who.event(Kind::CodesLocked), now);
    let hours = (s.config.code_lock.as_secs() as i64 + 3599) / 3600;
    if let Some(user) = users::by_email(work, &key.email).await? {
        work.mail(&user.email, Message::CodesLocked { hours }, now)?;
    }
    Ok(())
}
