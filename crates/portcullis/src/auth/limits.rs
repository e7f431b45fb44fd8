//! The budgets of SPEC §6 as the flows spend them: which bucket a request
//! draws on, how much it holds, and what an empty one answers.

use sqlx::pool::PoolConnection;
use sqlx::Any;

use super::caller::{Client, Who};
use crate::audit::Kind;
use crate::clock::Timestamp;
use crate::config::Budget;
use crate::error::ApiError;
use crate::services::{Services, Work};
use crate::store::budgets;

/// A bucket: what is counted, and for whom.
#[derive(Debug, Clone, Copy)]
pub(super) enum Bucket<'a> {
    /// Failed logins of an account (its id, or the pseudonym of an unknown login name).
    LoginAccount(&'a str),
    /// Failed logins from an IP.
    LoginIp(&'a str),
    /// Wrong codes for an address (its pseudonym), across all its keys.
    CodeAddress(&'a str),
    /// Wrong codes from an IP.
    CodeIp(&'a str),
    /// Codes mailed to an address (its pseudonym).
    MailAddress(&'a str),
    /// Codes mailed on requests from an IP.
    MailIp(&'a str),
    /// Dev-logins with an API key (its id), spent and never given back.
    DevLoginKey(&'a str),
    /// Failed logins of a machine client (its API key's pseudonym).
    ClientLogin(&'a str),
    /// Failed client logins from an IP.
    ClientIp(&'a str),
}

/// The buckets a request spends, in order: its client's (when the client's
/// address is known), then the account's or address's.
fn pair<'a>(
    client: &'a Client,
    by_ip: fn(&'a str) -> Bucket<'a>,
    whose: Bucket<'a>,
) -> Vec<Bucket<'a>> {
    let mut buckets: Vec<Bucket> = client.ip.as_deref().map(by_ip).into_iter().collect();
    buckets.push(whose);
    buckets
}

/// A login: the client's and the account's failed-login budgets.
pub(super) fn login<'a>(client: &'a Client, account: &'a str) -> Vec<Bucket<'a>> {
    pair(client, Bucket::LoginIp, Bucket::LoginAccount(account))
}

/// A code guessed: the client's and the address's wrong-code budgets.
pub(super) fn code<'a>(client: &'a Client, address: &'a str) -> Vec<Bucket<'a>> {
    pair(client, Bucket::CodeIp, Bucket::CodeAddress(address))
}

/// A machine client's login: the IP's and the client's failed-login budgets.
pub(super) fn client<'a>(client: &'a Client, api_key: &'a str) -> Vec<Bucket<'a>> {
    pair(client, Bucket::ClientIp, Bucket::ClientLogin(api_key))
}

/// A code mailed: the client's and the address's mail budgets.
pub(super) fn mail<'a>(client: &'a Client, address: &'a str) -> Vec<Bucket<'a>> {
    pair(client, Bucket::MailIp, Bucket::MailAddress(address))
}

impl Bucket<'_> {
    fn name(self) -> &'static str {
        match self {
            Bucket::LoginAccount(_) => "login_account",
            Bucket::LoginIp(_) => "login_ip",
            Bucket::CodeAddress(_) => "code_address",
            Bucket::CodeIp(_) => "code_ip",
            Bucket::MailAddress(_) => "mail_address",
            Bucket::MailIp(_) => "mail_ip",
            Bucket::DevLoginKey(_) => "dev_login_key",
            Bucket::ClientLogin(_) => "client_login",
            Bucket::ClientIp(_) => "client_ip",
        }
    }

    fn key(self) -> String {
        let (Bucket::LoginAccount(who)
        | Bucket::LoginIp(who)
        | Bucket::CodeAddress(who)
        | Bucket::CodeIp(who)
        | Bucket::MailAddress(who)
        | Bucket::MailIp(who)
        | Bucket::DevLoginKey(who)
        | Bucket::ClientLogin(who)
        | Bucket::ClientIp(who)) = self;
        format!("{}:{who}", self.name())
    }

    fn budget(self, s: &Services) -> Budget {
        let c = &s.config;
        match self {
            Bucket::LoginAccount(_) => c.login_account_budget,
            Bucket::LoginIp(_) => c.login_ip_budget,
            Bucket::CodeAddress(_) => c.code_account_budget,
            Bucket::CodeIp(_) => c.code_ip_budget,
            Bucket::MailAddress(_) => c.mail_address_budget,
            Bucket::MailIp(_) => c.mail_ip_budget,
            Bucket::DevLoginKey(_) => c.dev_login_key_budget,
            Bucket::ClientLogin(_) => c.client_login_budget,
            Bucket::ClientIp(_) => c.client_ip_budget,
        }
    }

    fn exhausted(self, retry_after: i64) -> ApiError {
        match self {
            Bucket::LoginAccount(_) | Bucket::LoginIp(_) => {
                ApiError::TooManyLoginAttempts { retry_after }
            }
            _ => ApiError::RateLimited { retry_after },
        }
    }
}

/// Spends one try of each bucket, in order, inside `work` and in one
/// statement; the first that is empty ends it with its 429 (the buckets after
/// it keep their tries), after recording the hit.
pub(super) async fn spend(
    s: &Services,
    work: &mut Work<'_>,
    buckets: &[Bucket<'_>],
    who: Who<'_>,
    now: Timestamp,
) -> Result<(), ApiError> {
    let keys = keys(buckets);
    match budgets::spend(work, &asked(s, &keys, buckets), now).await? {
        None => Ok(()),
        Some((first, retry_after)) => Err(hit(work, buckets[first], who, retry_after, now)),
    }
}

/// Records that a request found `bucket` empty; returns its 429.
fn hit(
    work: &mut Work<'_>,
    bucket: Bucket<'_>,
    who: Who<'_>,
    retry_after: i64,
    now: Timestamp,
) -> ApiError {
    let event = who.event(Kind::BudgetExhausted).detail(bucket.name());
    work.audit(event, now);
    bucket.exhausted(retry_after)
}

/// Spends the buckets in a unit of work of their own, committed whatever
/// follows, so that what the request does next is paid for. Each spend is
/// atomic by itself: they need no transaction around them.
pub(super) async fn spend_now(
    s: &Services,
    buckets: &[Bucket<'_>],
    who: Who<'_>,
    now: Timestamp,
) -> Result<(), ApiError> {
    let mut work = s.autocommit().await?;
    let spent = spend(s, &mut work, buckets, who, now).await;
    work.commit().await?;
    spent
}

/// A success: each bucket gets its try back and its run of failures ends.
pub(super) fn refund(work: &mut Work<'_>, buckets: &[Bucket<'_>]) {
    budgets::refund(work.later(), &keys(buckets));
}

/// The buckets' rows in the store.
pub(super) fn keys(buckets: &[Bucket<'_>]) -> Vec<String> {
    buckets.iter().map(|bucket| bucket.key()).collect()
}

/// Each bucket's row in the store, with its budget.
fn asked<'a>(s: &Services, keys: &'a [String], buckets: &[Bucket<'_>]) -> Vec<(&'a str, Budget)> {
    keys.iter()
        .zip(buckets)
        .map(|(key, bucket)| (key.as_str(), bucket.budget(s)))
        .collect()
}

/// Like [`spend_now`], but reads instead of spending: a request that is then
/// refused must [`spend`] before it is answered, and one that succeeds costs
/// its buckets nothing. Only for secrets too long to guess (client secrets):
/// every failure is still counted atomically and none is answered once a
/// bucket is empty, while requests already past this check when it empties
/// can only succeed, with the right secret. Reads on `conn`, which it lets
/// go before it records an empty bucket: a request never holds two.
pub(super) async fn check(
    s: &Services,
    mut conn: PoolConnection<Any>,
    buckets: &[Bucket<'_>],
    who: Who<'_>,
    now: Timestamp,
) -> Result<(), ApiError> {
    let keys = keys(buckets);
    let empty = budgets::check(&mut conn, &asked(s, &keys, buckets), now).await?;
    drop(conn);
    let Some((first, retry_after)) = empty else {
        return Ok(());
    };
    let mut work = s.begin().await?;
    let refusal = hit(&mut work, buckets[first], who, retry_after, now);
    work.commit().await?;
    Err(refusal)
}

/// A failure that lengthens the bucket's run of consecutive failures; the
/// `code_lock_after`th locks it for `code_lock` (SPEC §6). True when this
/// one locked it.
pub(super) async fn fail(
    s: &Services,
    work: &mut Work<'_>,
    bucket: Bucket<'_>,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let until = now + s.config.code_lock.as_secs() as i64;
    budgets::fail(work, &bucket.key(), s.config.code_lock_after, until).await
}
