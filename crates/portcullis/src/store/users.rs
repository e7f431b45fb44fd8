//! Accounts.

use sqlx::FromRow;

use super::Conn;
use crate::clock::Timestamp;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub verified: bool,
    pub disabled: bool,
    pub totp_enabled: bool,
    /// The TOTP secret, encrypted, once TOTP is enabled.
    pub totp_secret: Option<String>,
    pub created_at: Timestamp,
}

/// A `users` row as stored: flags are 0/1 integers on both backends.
#[derive(FromRow)]
pub(super) struct Row {
    id: String,
    email: String,
    username: Option<String>,
    name: Option<String>,
    password_hash: Option<String>,
    verified: i64,
    disabled: i64,
    totp_enabled: i64,
    totp_secret: Option<String>,
    created_at: Timestamp,
}

impl From<Row> for User {
    fn from(r: Row) -> Self {
        User {
            id: r.id,
            email: r.email,
            username: r.username,
            name: r.name,
            password_hash: r.password_hash,
            verified: r.verified != 0,
            disabled: r.disabled != 0,
            totp_enabled: r.totp_enabled != 0,
            totp_secret: r.totp_secret,
            created_at: r.created_at,
        }
    }
}

async fn one(conn: &mut Conn, filter: &str, value: &str) -> sqlx::Result<Option<User>> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM users u WHERE {filter}"))
        .bind(value)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(User::from))
}

/// The columns of [`Row`], of the table named `u`.
pub(super) const COLUMNS: &str = "u.id, u.email, u.username, u.name, u.password_hash, u.verified, \
     u.disabled, u.totp_enabled, u.totp_secret, u.created_at";

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub username: Option<&'a str>,
    pub name: Option<&'a str>,
    pub password_hash: &'a str,
    pub verified: bool,
}

pub async fn insert(conn: &mut Conn, user: &NewUser<'_>, now: Timestamp) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (id, email, username, name, password_hash, verified, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(user.username)
    .bind(user.name)
    .bind(user.password_hash)
    .bind(i64::from(user.verified))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn by_id(conn: &mut Conn, id: &str) -> sqlx::Result<Option<User>> {
    one(conn, "id = $1", id).await
}

pub async fn by_email(conn: &mut Conn, email: &str) -> sqlx::Result<Option<User>> {
    one(conn, "email = $1", email).await
}

/// By email or by id, as operators name accounts.
pub async fn by_email_or_id(conn: &mut Conn, who: &str) -> sqlx::Result<Option<User>> {
    one(conn, "email = $1 OR id = $1", who).await
}

/// By email or by username (both are stored in lower case).
pub async fn by_login(conn: &mut Conn, login: &str) -> sqlx::Result<Option<User>> {
    one(conn, "email = $1 OR username = $1", login).await
}

pub async fn list(conn: &mut Conn) -> sqlx::Result<Vec<User>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users u ORDER BY created_at, email"
    ))
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(User::from).collect())
}

pub async fn mark_verified(conn: &mut Conn, id: &str, now: Timestamp) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET verified = 1, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_password(
    conn: &mut Conn,
    id: &str,
    password_hash: &str,
    now: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets the username unless another account has it.
pub async fn set_username_if_free(
    conn: &mut Conn,
    id: &str,
    username: &str,
    now: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET username = $2, updated_at = $3
         WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM users WHERE username = $2)",
    )
    .bind(id)
    .bind(username)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Returns whether an account with that email or id exists.
pub async fn set_disabled(
    conn: &mut Conn,
    email_or_id: &str,
    disabled: bool,
    now: Timestamp,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "UPDATE users SET disabled = $2, updated_at = $3 WHERE email = $1 OR id = $1 RETURNING id",
    )
    .bind(email_or_id)
    .bind(i64::from(disabled))
    .bind(now)
    .fetch_optional(conn)
    .await
}
