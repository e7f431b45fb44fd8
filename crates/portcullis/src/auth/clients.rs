//! Machine clients (SPEC §3.2, `reference/client-credentials-login.txt`):
//! logging in with the API key and secret, refreshing, and recognising a
//! client's access token. Answers use the client API's documented codes.

use std::net::IpAddr;

use tracing::instrument;

use super::caller::{Client, Who};
use super::grant::{renew, Renewal};
use super::limits::{self, Bucket};
use crate::audit::{Event, Kind};
use crate::clock::Timestamp;
use crate::crypto::{ct_eq, new_refresh_token, token_hash};
use crate::error::ApiError;
use crate::metrics::Holder;
use crate::services::{Services, Work};
use crate::store::clients::{self as store, Client as MachineClient};
use crate::store::refresh::Family;

/// What the stored hash of a client secret is keyed with, apart from other secrets.
pub const SECRET_KIND: &str = "client_secret";

const INVALID_CREDENTIALS: &str = "Invalid credentials";
/// What an unknown API key's secret is compared with: no HMAC is all zeros.
const NO_CLIENT: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const NOT_ACTIVE: &str = "Client account is not active";
const INVALID_REFRESH: &str = "Invalid refresh token";

/// Tokens for a client's session.
#[derive(Debug, Clone)]
pub struct ClientGrant {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_expires_at: Timestamp,
    pub client_id: i64,
}

/// The API key and secret for tokens. The secret is high-entropy: a keyed
/// hash compared in constant time suffices, and an unknown key is compared
/// against a hash that nothing matches, so both fail alike. Then the status,
/// then the allowlist. The client's and the IP's budgets must have a try
/// left; a refusal spends one before it is answered, and a success costs
/// them nothing (see [`limits::check`]).
#[instrument(skip_all)]
pub async fn client_login(
    s: &Services,
    api_key: &str,
    secret: &str,
    from: &Client,
) -> Result<ClientGrant, ApiError> {
    let now = s.now();
    let mut conn = s.read().await?;
    let found = store::by_api_key(&mut conn, api_key).await?;
    let pseudonym = s.secrets.pseudonym(api_key);
    let buckets = limits::client(from, &pseudonym);
    let who = Who {
        client: from,
        user_id: None,
        device_id: None,
    };
    limits::check(s, conn, &buckets, who, now).await?;
    let presented = s.secrets.secret_hash(SECRET_KIND, secret);
    let stored = found.as_ref().map_or(NO_CLIENT, |c| c.secret_hash.as_str());
    let matches = ct_eq(&presented, stored);
    let client = match found {
        Some(client) if matches => client,
        other => {
            let refusal = ApiError::ClientUnauthorized(INVALID_CREDENTIALS);
            return Err(refused(s, &buckets, who, other.map(|c| c.id), refusal, now).await?);
        }
    };
    if let Err(refusal) = admission(&client, from) {
        return Err(refused(s, &buckets, who, Some(client.id), refusal, now).await?);
    }
    // The session, its refresh token and its audit row are one statement.
    let mut work = s.autocommit().await?;
    let opened = open_session(s, &mut work, &client, from, now).await?;
    work.commit().await?;
    grant(s, &client, opened, now)
}

/// A refresh token for new tokens, rotated as users' are (SPEC §5). The
/// client must still be active and the request from an allowed address.
#[instrument(skip_all)]
pub async fn client_refresh(
    s: &Services,
    token: &str,
    from: &Client,
) -> Result<ClientGrant, ApiError> {
    let now = s.now();
    let mut conn = s.read().await?;
    let stored = store::find_refresh(&mut conn, &token_hash(token), now)
        .await?
        .ok_or(ApiError::ClientUnauthorized(INVALID_REFRESH))?;
    let client = store::by_id(&mut conn, stored.client_id)
        .await?
        .ok_or(ApiError::ClientUnauthorized(INVALID_REFRESH))?;
    drop(conn);
    admission(&client, from)?;
    let mut work = s.begin().await?;
    let session = &stored.session_id;
    let renewal = renew(
        s,
        &mut work,
        Family::Client,
        token,
        session,
        stored.expires_at,
        now,
    );
    let refresh_token = match renewal.await {
        Ok(Renewal::Token(token)) => token,
        Ok(Renewal::Reused) => {
            store::revoke_sessions(&mut work, client.id, Some(session), now).await?;
            work.ends_access();
            let event = from.event(Kind::RefreshReused).client(client.id);
            work.audit(event.session(session), now);
            work.commit().await?;
            return Err(ApiError::ClientUnauthorized(
                "Refresh token reused; the session is revoked",
            ));
        }
        Err(ApiError::RefreshTokenInvalid) => {
            return Err(ApiError::ClientUnauthorized(INVALID_REFRESH))
        }
        Err(other) => return Err(other),
    };
    work.commit().await?;
    s.metrics.refreshed(Holder::Client);
    let opened = Opened {
        session_id: stored.session_id,
        refresh_token,
        refresh_expires_at: stored.expires_at,
    };
    grant(s, &client, opened, now)
}

/// A client session's refresh side, as its unit of work stored it.
struct Opened {
    session_id: String,
    refresh_token: String,
    refresh_expires_at: Timestamp,
}

/// Signs the access token of a session once its unit of work has committed:
/// on SQLite units of work queue for the one writer, which must not wait
/// for a signature.
fn grant(
    s: &Services,
    client: &MachineClient,
    opened: Opened,
    now: Timestamp,
) -> Result<ClientGrant, ApiError> {
    let ttl = s.config.client_access_ttl.as_secs() as i64;
    let session = &opened.session_id;
    let access_token =
        s.tokens
            .issue_client(&s.secrets, client.id, &client.scopes, session, ttl, now)?;
    Ok(ClientGrant {
        access_token,
        refresh_token: opened.refresh_token,
        access_expires_at: now + ttl,
        refresh_expires_at: opened.refresh_expires_at,
        client_id: client.id,
    })
}

/// The client of a live client access token: active, and its session not revoked.
pub async fn authenticate_client(s: &Services, token: &str) -> Result<MachineClient, ApiError> {
    let now = s.now();
    let claims = s
        .tokens
        .verify(token, now)
        .map_err(|_| ApiError::ClientUnauthorized("Invalid or expired access token"))?;
    let client = match claims.client_id {
        Some(id) => store::live_session(&mut *s.read().await?, &claims.sid, now)
            .await?
            .filter(|client| client.id == id),
        None => None,
    };
    client.ok_or(ApiError::ClientUnauthorized(
        "Invalid or expired access token",
    ))
}

/// Whether an authenticated client may have tokens, from this address.
fn admission(client: &MachineClient, from: &Client) -> Result<(), ApiError> {
    if !client.active {
        return Err(ApiError::ClientUnauthorized(NOT_ACTIVE));
    }
    if client.allowed_ips.is_empty() {
        return Ok(());
    }
    // The address is already canonical: an IPv4-mapped peer is its IPv4 address.
    let ip: Option<IpAddr> = from.ip.as_deref().and_then(|ip| ip.parse().ok());
    match ip {
        Some(ip) if client.allowed_ips.iter().any(|net| net.contains(&ip)) => Ok(()),
        _ => Err(ApiError::ClientForbidden),
    }
}

/// Spends a try of each of the login's buckets and audits the refusal, which
/// it returns; an empty bucket answers with its 429 instead.
async fn refused(
    s: &Services,
    buckets: &[Bucket<'_>],
    who: Who<'_>,
    client_id: Option<i64>,
    refusal: ApiError,
    now: Timestamp,
) -> Result<ApiError, ApiError> {
    let detail = match refusal {
        ApiError::ClientUnauthorized(NOT_ACTIVE) => "not_active",
        ApiError::ClientForbidden => "ip_not_allowed",
        _ => "invalid_credentials",
    };
    let mut work = s.begin().await?;
    let spent = limits::spend(s, &mut work, buckets, who, now).await;
    if spent.is_ok() {
        let mut event = who.client.event(Kind::ClientLoginFailed);
        event.client_id = client_id;
        work.audit(event.detail(detail), now);
    }
    work.commit().await?;
    spent.map(|()| refusal)
}

async fn open_session(
    s: &Services,
    work: &mut Work<'_>,
    client: &MachineClient,
    from: &Client,
    now: Timestamp,
) -> Result<Opened, ApiError> {
    let session_id = s.secrets.random_id("cls_");
    let refresh_expires_at = now + s.config.client_refresh_ttl.as_secs() as i64;
    let refresh_token = new_refresh_token(&s.secrets);
    let event = Event::new(Kind::ClientLoginSucceeded)
        .from(from.ip.as_deref(), from.user_agent.as_deref())
        .client(client.id)
        .session(&session_id);
    let new = store::NewSession {
        id: &session_id,
        client_id: client.id,
        ip: from.ip.as_deref(),
        expires_at: refresh_expires_at,
    };
    let hash = token_hash(&refresh_token);
    let entry = work.announce(event, now);
    store::open_session(work.later(), &new, &hash, &entry, now);
    Ok(Opened {
        session_id,
        refresh_token,
        refresh_expires_at,
    })
}
