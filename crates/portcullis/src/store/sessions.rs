//! Device sessions and their refresh tokens.

use std::sync::LazyLock;

use sqlx::FromRow;

use super::audit_log::{self, NewEntry};
use super::refresh::{self, Family};
use super::users::{self, User};
use super::{Batch, Bind, Conn};
use crate::clock::Timestamp;
use crate::domain::{Device, Label, Platform};

/// A device session; its device always has an id.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub device: Device,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(FromRow)]
struct Row {
    id: String,
    user_id: String,
    device_id: String,
    device_name: Option<String>,
    platform: Option<String>,
    operating_system: Option<String>,
    location: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    fcm_token: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    created_at: Timestamp,
    last_seen_at: Timestamp,
    expires_at: Timestamp,
}

impl From<Row> for Session {
    fn from(r: Row) -> Self {
        Session {
            id: r.id,
            user_id: r.user_id,
            device: Device {
                id: Some(Label::trusted(r.device_id)),
                name: r.device_name.map(Label::trusted),
                platform: r.platform.as_deref().and_then(Platform::parse),
                operating_system: r.operating_system.map(Label::trusted),
                location: r.location.map(Label::trusted),
                latitude: r.latitude,
                longitude: r.longitude,
                fcm_token: r.fcm_token.map(Label::trusted),
            },
            ip: r.ip,
            user_agent: r.user_agent,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
        }
    }
}

const COLUMNS: &str = "id, user_id, device_id, device_name, platform, operating_system, location, \
                       latitude, longitude, fcm_token, ip, user_agent, created_at, last_seen_at, expires_at";

pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub device_id: &'a str,
    pub device: &'a Device,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub expires_at: Timestamp,
}

/// Opens a session with its first refresh token, stored as `refresh_hash`,
/// and records the login's `event`: kept for the unit's end, where they go
/// with its other writes in one round trip.
pub fn open(
    batch: &mut Batch,
    s: &NewSession<'_>,
    refresh_hash: &str,
    event: &NewEntry<'_>,
    now: Timestamp,
) {
    batch
        .push(
            "INSERT INTO sessions (id, user_id, device_id, device_name, platform, operating_system, location,
                 latitude, longitude, fcm_token, ip, user_agent, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)",
        )
        .text(Some(s.id))
        .text(Some(s.user_id))
        .text(Some(s.device_id))
        .text(s.device.name.as_ref().map(Label::as_str))
        .text(s.device.platform.map(Platform::as_str))
        .text(s.device.operating_system.as_ref().map(Label::as_str))
        .text(s.device.location.as_ref().map(Label::as_str))
        .real(s.device.latitude)
        .real(s.device.longitude)
        .text(s.device.fcm_token.as_ref().map(Label::as_str))
        .text(s.ip)
        .text(s.user_agent)
        .integer(Some(now))
        .integer(Some(s.expires_at));
    refresh::keep(batch, Family::User, refresh_hash, s.id, s.expires_at, now);
    audit_log::insert(batch, event);
}

pub async fn live_for_device(
    conn: &mut Conn,
    user_id: &str,
    device_id: &str,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM sessions WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL AND expires_at > $3 LIMIT 1",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

pub async fn list_live(
    conn: &mut Conn,
    user_id: &str,
    now: Timestamp,
) -> sqlx::Result<Vec<Session>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
         ORDER BY last_seen_at DESC, id"
    ))
    .bind(user_id)
    .bind(now)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Session::from).collect())
}

pub async fn revoke(
    conn: &mut Conn,
    session_id: &str,
    reason: &str,
    now: Timestamp,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(session_id)
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn revoke_device(
    conn: &mut Conn,
    user_id: &str,
    device_id: &str,
    reason: &str,
    now: Timestamp,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4
         WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every session of the user except `keep` (if given).
pub async fn revoke_all(
    conn: &mut Conn,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
    now: Timestamp,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4
         WHERE user_id = $1 AND revoked_at IS NULL AND id <> $2",
    )
    .bind(user_id)
    .bind(keep.unwrap_or(""))
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Notes a session's use (see [`RefreshToken::seen_lately`] for when it is due).
pub async fn touch(
    conn: &mut Conn,
    session_id: &str,
    ip: Option<&str>,
    now: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2, ip = COALESCE($3, ip) WHERE id = $1")
        .bind(session_id)
        .bind(now)
        .bind(ip)
        .execute(conn)
        .await?;
    Ok(())
}

/// How stale a session's last-seen time may be, in seconds.
const LAST_SEEN_RESOLUTION: Timestamp = 60;

/// A stored refresh token of a live session.
#[derive(Debug, Clone, FromRow)]
pub struct RefreshToken {
    pub session_id: String,
    pub device_id: String,
    pub expires_at: Timestamp,
    last_seen_at: Timestamp,
    ip: Option<String>,
}

impl RefreshToken {
    /// Whether the session's use is noted already: from this address (when
    /// known), within the last minute. Then a refresh need not write it: a
    /// write is one more statement in the unit of work (on SQLite, in the
    /// one writer's queue).
    pub fn seen_lately(&self, ip: Option<&str>, now: Timestamp) -> bool {
        now - self.last_seen_at < LAST_SEEN_RESOLUTION
            && ip.is_none_or(|ip| self.ip.as_deref() == Some(ip))
    }
}

/// The token, if it is unexpired and its session live, with its account.
pub async fn find_refresh(
    conn: &mut Conn,
    token_hash: &str,
    now: Timestamp,
) -> sqlx::Result<Option<(RefreshToken, User)>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT r.session_id, s.device_id, r.expires_at, s.last_seen_at, s.ip, {}
             FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
                 JOIN users u ON u.id = s.user_id
             WHERE r.token_hash = $1 AND r.expires_at > $2
               AND s.revoked_at IS NULL AND s.expires_at > $2",
            users::COLUMNS
        )
    });
    #[derive(FromRow)]
    struct Found {
        #[sqlx(flatten)]
        token: RefreshToken,
        #[sqlx(flatten)]
        user: users::Row,
    }
    let found: Option<Found> = sqlx::query_as(&SQL)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(conn)
        .await?;
    Ok(found.map(|f| (f.token, f.user.into())))
}
