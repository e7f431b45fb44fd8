//! Email keys: the `email_key` handed to the client and the code mailed with it.

use sqlx::FromRow;

use super::{budgets, Batch, Conn};
use crate::clock::Timestamp;
use crate::domain::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Register,
    Login,
    Reset,
}

impl Purpose {
    const ALL: [Purpose; 3] = [Purpose::Register, Purpose::Login, Purpose::Reset];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::Login => "login",
            Purpose::Reset => "reset",
        }
    }

    fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == stored)
    }
}

#[derive(Debug, Clone)]
pub struct EmailKey {
    pub email_key: String,
    /// `None` for a decoy: a key for an address with no account, that no code matches.
    pub user_id: Option<String>,
    pub email: String,
    pub purpose: Purpose,
    pub code_hash: String,
    pub attempts: i64,
    pub resends: i64,
    pub sent_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// The device fields given at login step 1.
    pub device: Option<Device>,
    pub password_hash: Option<String>,
    pub username: Option<String>,
    /// Issued after the account's second factor was checked at login step 1.
    pub second_factor: bool,
}

/// An `email_keys` row as stored: the purpose as text, the device as JSON.
#[derive(FromRow)]
struct Row {
    email_key: String,
    user_id: Option<String>,
    email: String,
    purpose: String,
    code_hash: String,
    attempts: i64,
    resends: i64,
    sent_at: Timestamp,
    expires_at: Timestamp,
    used_at: Option<Timestamp>,
    device: Option<String>,
    password_hash: Option<String>,
    username: Option<String>,
    second_factor: i64,
}

impl TryFrom<Row> for EmailKey {
    type Error = sqlx::Error;

    fn try_from(r: Row) -> sqlx::Result<Self> {
        let corrupt = |what: String| sqlx::Error::Decode(what.into());
        let purpose = Purpose::parse(&r.purpose)
            .ok_or_else(|| corrupt(format!("email key purpose `{}`", r.purpose)))?;
        let device = r
            .device
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| corrupt(format!("email key device: {e}")))?;
        Ok(EmailKey {
            email_key: r.email_key,
            user_id: r.user_id,
            email: r.email,
            purpose,
            code_hash: r.code_hash,
            attempts: r.attempts,
            resends: r.resends,
            sent_at: r.sent_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            device,
            password_hash: r.password_hash,
            username: r.username,
            second_factor: r.second_factor != 0,
        })
    }
}

impl EmailKey {
    /// Unused and within its lifetime.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.used_at.is_none() && self.expires_at > now
    }
}

const COLUMNS: &str = "email_key, user_id, email, purpose, code_hash, attempts, resends, sent_at, \
                       expires_at, used_at, device, password_hash, username, second_factor";

pub struct NewKey<'a> {
    pub email_key: &'a str,
    pub user_id: Option<&'a str>,
    pub email: &'a str,
    pub purpose: Purpose,
    pub code_hash: &'a str,
    pub expires_at: Timestamp,
    pub device: Option<&'a Device>,
    pub password_hash: Option<&'a str>,
    pub username: Option<&'a str>,
    pub second_factor: bool,
}

pub fn insert(batch: &mut Batch, key: &NewKey<'_>, now: Timestamp) -> sqlx::Result<()> {
    let device = key
        .device
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
    batch
        .push(
            "INSERT INTO email_keys (email_key, user_id, email, purpose, code_hash, sent_at, expires_at, device,
                 password_hash, username, second_factor, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $6)",
        )
        .bind(key.email_key)
        .bind(key.user_id)
        .bind(key.email)
        .bind(key.purpose.as_str())
        .bind(key.code_hash)
        .bind(now)
        .bind(key.expires_at)
        .bind(device.as_deref())
        .bind(key.password_hash)
        .bind(key.username)
        .bind(i64::from(key.second_factor));
    Ok(())
}

/// Retires the address's oldest live keys so that at most `keep` stay live,
/// `newest` always among them (keys of the same second tie arbitrarily).
/// By address, not account, so that decoys are retired alike.
pub fn retire_beyond(batch: &mut Batch, email: &str, newest: &str, keep: i64, now: Timestamp) {
    batch
        .push(
            "UPDATE email_keys SET used_at = $3
             WHERE email = $1 AND used_at IS NULL AND expires_at > $3 AND email_key <> $4
               AND email_key NOT IN (
                 SELECT email_key FROM email_keys
                 WHERE email = $1 AND used_at IS NULL AND expires_at > $3 AND email_key <> $4
                 ORDER BY created_at DESC, email_key LIMIT $2)",
        )
        .bind(email)
        .bind(keep - 1)
        .bind(now)
        .bind(newest);
}

/// Retires every unused key of the account.
pub async fn retire_all(conn: &mut Conn, user_id: &str, now: Timestamp) -> sqlx::Result<()> {
    sqlx::query("UPDATE email_keys SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Retires every unused key of the account issued for `purpose`.
pub async fn retire_purpose(
    conn: &mut Conn,
    user_id: &str,
    purpose: Purpose,
    now: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE email_keys SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, email_key: &str) -> sqlx::Result<Option<EmailKey>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM email_keys WHERE email_key = $1"
    ))
    .bind(email_key)
    .fetch_optional(conn)
    .await?;
    row.map(EmailKey::try_from).transpose()
}

/// What spending an attempt on a key found.
#[derive(Debug)]
pub enum Attempt {
    /// One attempt was spent; the key as it is now.
    Spent(Box<EmailKey>),
    /// The key was issued for another purpose; nothing was spent.
    IssuedFor(Purpose),
    /// No attempts were left.
    Exhausted,
    /// Unknown, used or past its lifetime.
    Expired,
}

/// Atomically spends one attempt of a live key issued for one of `purposes`.
/// Spending before comparing means concurrent guesses can never exceed the budget.
pub async fn spend_attempt(
    conn: &mut Conn,
    email_key: &str,
    purposes: &[Purpose],
    max_attempts: i64,
    now: Timestamp,
) -> sqlx::Result<Attempt> {
    let sql = format!(
        "UPDATE email_keys SET attempts = attempts + 1
         WHERE email_key = $1 AND used_at IS NULL AND expires_at > $3 AND attempts < $2
           AND purpose IN ({})
         RETURNING {COLUMNS}",
        super::placeholders(4, purposes.len())
    );
    let mut query = sqlx::query_as::<_, Row>(&sql)
        .bind(email_key)
        .bind(max_attempts)
        .bind(now);
    for purpose in purposes {
        query = query.bind(purpose.as_str());
    }
    if let Some(row) = query.fetch_optional(&mut *conn).await? {
        return Ok(Attempt::Spent(Box::new(row.try_into()?)));
    }
    // Nothing was spent: say why.
    Ok(match get(conn, email_key).await? {
        Some(key) if !key.is_live(now) => Attempt::Expired,
        Some(key) if !purposes.contains(&key.purpose) => Attempt::IssuedFor(key.purpose),
        Some(_) => Attempt::Exhausted,
        None => Attempt::Expired,
    })
}

/// Gives back an attempt spent on a guess that was then never compared.
pub async fn refund_attempt(conn: &mut Conn, email_key: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE email_keys SET attempts = attempts - 1 WHERE email_key = $1 AND attempts > 0",
    )
    .bind(email_key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the key used and refunds `buckets` (see [`budgets::refund`]), at
/// the unit's end. The unit spent an attempt of the key first
/// ([`spend_attempt`]), which holds the key's row (PostgreSQL) or the writer
/// (SQLite) until it ends: no other request can use the key meanwhile.
pub fn consume(batch: &mut Batch, email_key: &str, buckets: &[String], now: Timestamp) {
    budgets::refund(batch, buckets);
    batch
        .push("UPDATE email_keys SET used_at = $2 WHERE email_key = $1 AND used_at IS NULL")
        .bind(email_key)
        .bind(now);
}

pub struct Resend<'a> {
    pub email_key: &'a str,
    pub code_hash: &'a str,
    pub expires_at: Timestamp,
    /// The previous send must be at or before this time.
    pub sent_before: Timestamp,
    pub max_resends: i64,
    pub max_attempts: i64,
}

/// Replaces the code of a live key if the cooldown and caps allow it, and
/// gives it a new lifetime; the attempt count is kept. An expired key stays
/// expired. False when a check failed (or a racing resend won).
pub async fn resend(conn: &mut Conn, r: &Resend<'_>, now: Timestamp) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE email_keys SET code_hash = $2, sent_at = $3, expires_at = $4, resends = resends + 1
         WHERE email_key = $1 AND used_at IS NULL AND expires_at > $3 AND sent_at <= $5
           AND resends < $6 AND attempts < $7",
    )
    .bind(r.email_key)
    .bind(r.code_hash)
    .bind(now)
    .bind(r.expires_at)
    .bind(r.sent_before)
    .bind(r.max_resends)
    .bind(r.max_attempts)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
