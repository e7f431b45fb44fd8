//! Machine clients and their sessions. Scopes and allowed IP ranges are
//! stored space-separated; the secret only as a keyed hash.

use ipnet::IpNet;
use sqlx::FromRow;

use super::audit_log::{self, NewEntry};
use super::refresh::{self, Family};
use super::{Batch, Bind, Conn};
use crate::clock::Timestamp;

#[derive(Debug, Clone)]
pub struct Client {
    pub id: i64,
    pub name: String,
    pub api_key: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    /// Empty: every address may log in.
    pub allowed_ips: Vec<IpNet>,
    pub active: bool,
    pub created_at: Timestamp,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    name: String,
    api_key: String,
    secret_hash: String,
    scopes: String,
    allowed_ips: String,
    active: i64,
    created_at: Timestamp,
}

impl TryFrom<Row> for Client {
    type Error = sqlx::Error;

    fn try_from(r: Row) -> sqlx::Result<Self> {
        let allowed_ips = r
            .allowed_ips
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| sqlx::Error::Decode(format!("client {} allowlist: {e}", r.id).into()))?;
        Ok(Client {
            id: r.id,
            name: r.name,
            api_key: r.api_key,
            secret_hash: r.secret_hash,
            scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
            allowed_ips,
            active: r.active != 0,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, name, api_key, secret_hash, scopes, allowed_ips, active, created_at";

fn joined<T: ToString>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(" ")
}

pub struct NewClient<'a> {
    pub name: &'a str,
    pub api_key: &'a str,
    pub secret_hash: &'a str,
    pub scopes: &'a [String],
    pub allowed_ips: &'a [IpNet],
}

/// Inserts a client; returns its id.
pub async fn insert(conn: &mut Conn, client: &NewClient<'_>, now: Timestamp) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO clients (name, api_key, secret_hash, scopes, allowed_ips, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(client.name)
    .bind(client.api_key)
    .bind(client.secret_hash)
    .bind(joined(client.scopes))
    .bind(joined(client.allowed_ips))
    .bind(now)
    .fetch_one(conn)
    .await
}

pub async fn by_api_key(conn: &mut Conn, api_key: &str) -> sqlx::Result<Option<Client>> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM clients WHERE api_key = $1"))
            .bind(api_key)
            .fetch_optional(conn)
            .await?;
    row.map(Client::try_from).transpose()
}

pub async fn by_id(conn: &mut Conn, id: i64) -> sqlx::Result<Option<Client>> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(Client::try_from).transpose()
}

pub async fn list(conn: &mut Conn) -> sqlx::Result<Vec<Client>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM clients ORDER BY id"))
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(Client::try_from).collect()
}

/// What an operator changes on a client.
pub enum Change<'a> {
    Active(bool),
    AllowedIps(&'a [IpNet]),
    SecretHash(&'a str),
}

/// Applies `change`; `false` when there is no such client.
pub async fn update(
    conn: &mut Conn,
    id: i64,
    change: Change<'_>,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let query = match change {
        Change::Active(active) => {
            sqlx::query("UPDATE clients SET active = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(i64::from(active))
        }
        Change::AllowedIps(nets) => {
            sqlx::query("UPDATE clients SET allowed_ips = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(joined(nets))
        }
        Change::SecretHash(hash) => {
            sqlx::query("UPDATE clients SET secret_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(hash.to_owned())
        }
    };
    let done = query.bind(now).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub client_id: i64,
    pub ip: Option<&'a str>,
    pub expires_at: Timestamp,
}

/// Opens a client session with its first refresh token, stored as
/// `refresh_hash`, and records the login's `event`: kept for the unit's end,
/// where they go with its other writes in one round trip.
pub fn open_session(
    batch: &mut Batch,
    s: &NewSession<'_>,
    refresh_hash: &str,
    event: &NewEntry<'_>,
    now: Timestamp,
) {
    batch
        .push(
            "INSERT INTO client_sessions (id, client_id, ip, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .text(Some(s.id))
        .integer(Some(s.client_id))
        .text(s.ip)
        .integer(Some(now))
        .integer(Some(s.expires_at));
    refresh::keep(batch, Family::Client, refresh_hash, s.id, s.expires_at, now);
    audit_log::insert(batch, event);
}

/// A client's refresh token, if it is unexpired and its session live.
#[derive(Debug, Clone, FromRow)]
pub struct RefreshToken {
    pub session_id: String,
    pub client_id: i64,
    pub expires_at: Timestamp,
}

pub async fn find_refresh(
    conn: &mut Conn,
    token_hash: &str,
    now: Timestamp,
) -> sqlx::Result<Option<RefreshToken>> {
    sqlx::query_as(
        "SELECT r.session_id, s.client_id, r.expires_at
         FROM client_refresh_tokens r JOIN client_sessions s ON s.id = r.session_id
         WHERE r.token_hash = $1 AND r.expires_at > $2 AND s.revoked_at IS NULL AND s.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// The client of a live session, if the client is active.
pub async fn live_session(
    conn: &mut Conn,
    session_id: &str,
    now: Timestamp,
) -> sqlx::Result<Option<Client>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM clients WHERE active = 1 AND id =
             (SELECT client_id FROM client_sessions
              WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2)"
    ))
    .bind(session_id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.map(Client::try_from).transpose()
}

/// Ends one session (refresh-token reuse), or all of a client's.
pub async fn revoke_sessions(
    conn: &mut Conn,
    client_id: i64,
    only: Option<&str>,
    now: Timestamp,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE client_sessions SET revoked_at = $3
         WHERE client_id = $1 AND ($2 = '' OR id = $2) AND revoked_at IS NULL",
    )
    .bind(client_id)
    .bind(only.unwrap_or(""))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
