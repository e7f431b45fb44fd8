//! A logged-in device session: refreshing its tokens, checking them, listing
//! and ending sessions.

use tracing::instrument;

use super::caller::{Caller, Client, Principal};
use super::grant::{renew, Grant, Renewal};
use crate::audit::{Event, Kind};
use crate::crypto::token_hash;
use crate::error::ApiError;
use crate::metrics::Holder;
use crate::services::{Services, Work};
use crate::store::refresh::Family;
use crate::store::sessions::{self as store, Session};
use crate::store::users::{self, User};
use crate::tokens::Subject;

/// Exchanges a refresh token for a new access token (and, with rotation, a
/// new refresh token). See SPEC §5 for the grace window and reuse detection.
#[instrument(skip_all)]
pub async fn refresh(s: &Services, token: &str, client: &Client) -> Result<Grant, ApiError> {
    let now = s.now();
    let hash = token_hash(token);
    let (stored, user) = store::find_refresh(&mut *s.read().await?, &hash, now)
        .await?
        .filter(|(_, user)| !user.disabled)
        .ok_or(ApiError::RefreshTokenInvalid)?;

    let mut work = s.begin().await?;
    let session = &stored.session_id;
    let renewal = renew(
        s,
        &mut work,
        Family::User,
        token,
        session,
        stored.expires_at,
        now,
    );
    let refresh_token = match renewal.await? {
        Renewal::Token(token) => {
            let ip = client.ip.as_deref();
            if !stored.seen_lately(ip, now) {
                store::touch(&mut work, session, ip, now).await?;
            }
            token
        }
        Renewal::Reused => {
            store::revoke(&mut work, session, "refresh token reuse", now).await?;
            work.ends_access();
            let event = client
                .event(Kind::RefreshReused)
                .user(&user.id)
                .session(session);
            work.audit(event, now);
            work.commit().await?;
            return Err(ApiError::RefreshTokenReused);
        }
    };
    work.commit().await?;
    s.metrics.refreshed(Holder::User);
    let subject = Subject {
        user_id: &user.id,
        email: &user.email,
        session_id: &stored.session_id,
        session_ends: stored.expires_at,
    };
    let access = s.tokens.issue(&s.secrets, subject, now)?;
    Ok(Grant {
        access_token: access.token,
        refresh_token,
        expires_in: access.expires_in,
        refresh_expires_in: stored.expires_at - now,
        device_id: stored.device_id,
        session_id: stored.session_id,
        user,
        issued_at: now,
    })
}

pub async fn me(s: &Services, user_id: &str) -> Result<User, ApiError> {
    let user = users::by_id(&mut *s.read().await?, user_id).await?;
    user.filter(|u| !u.disabled).ok_or(ApiError::InvalidToken)
}

pub async fn logout(s: &Services, caller: &Caller) -> Result<(), ApiError> {
    let now = s.now();
    let mut work = s.begin().await?;
    store::revoke(&mut work, &caller.session_id, "logout", now).await?;
    work.ends_access();
    revoked(
        &mut work,
        &caller.user_id,
        Some(&caller.session_id),
        "logout",
        now,
    );
    work.commit().await?;
    Ok(())
}

/// Ends every session of the account; returns how many were live.
pub async fn logout_all(s: &Services, who: &Principal) -> Result<u64, ApiError> {
    let now = s.now();
    let mut work = s.begin().await?;
    let user_id = who.user_id();
    let count = store::revoke_all(&mut work, user_id, None, "logout everywhere", now).await?;
    work.ends_access();
    revoked(&mut work, user_id, who.session_id(), "logout_all", now);
    work.commit().await?;
    Ok(count)
}

fn revoked(work: &mut Work<'_>, user_id: &str, session_id: Option<&str>, why: &str, now: i64) {
    let event = Event {
        session_id,
        ..Event::new(Kind::SessionRevoked).user(user_id)
    };
    work.audit(event.detail(why), now)
}

pub async fn list_sessions(s: &Services, user_id: &str) -> Result<Vec<Session>, ApiError> {
    Ok(store::list_live(&mut *s.read().await?, user_id, s.now()).await?)
}

pub async fn revoke_device(s: &Services, who: &Principal, device_id: &str) -> Result<(), ApiError> {
    let now = s.now();
    let mut work = s.begin().await?;
    let user_id = who.user_id();
    let count = store::revoke_device(&mut work, user_id, device_id, "revoked by user", now).await?;
    if count == 0 {
        return Err(ApiError::NotFound);
    }
    work.ends_access();
    revoked(&mut work, user_id, who.session_id(), "revoked_device", now);
    work.commit().await?;
    Ok(())
}
