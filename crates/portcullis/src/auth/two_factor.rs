//! Turning the second factor on and off: setting up an authenticator,
//! confirming it with its first code (which yields the recovery codes), and
//! removing it with the password and a code.

use secrecy::SecretString;
use tracing::instrument;

use super::caller::{Caller, Client, Who};
use super::limits::{self, Bucket};
use super::totp::{self, Authenticator};
use crate::audit::Kind;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::services::{Services, Work};
use crate::store::sessions;
use crate::store::totp as store;
use crate::store::users::{self, User};

/// What an authenticator app needs: the secret, as text and as a QR code.
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// Makes a new secret that waits for its first code; an earlier one that
/// was never confirmed is replaced. Refused while TOTP is enabled: changing
/// it takes `disable` first, which asks for the password and a code.
#[instrument(skip_all)]
pub async fn setup_totp(s: &Services, caller: &Caller) -> Result<TotpSetup, ApiError> {
    let user = account(s, caller).await?;
    if user.totp_enabled {
        return Err(already_enabled());
    }
    let authenticator = Authenticator::generate(s, &user);
    let now = s.now();
    let mut work = s.begin().await?;
    if !store::set_pending(&mut work, &user.id, &authenticator.seal(s, &user), now).await? {
        return Err(already_enabled());
    }
    work.commit().await?;
    let otpauth_uri = authenticator.uri();
    let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .map_err(|e| anyhow::anyhow!("QR code of the otpauth URI: {e}"))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(TotpSetup {
        secret: authenticator.secret_base32(),
        otpauth_uri,
        qr_svg,
    })
}

/// Confirms the secret set up with its current code: TOTP is on from now,
/// the caller's other sessions end, and the recovery codes are returned,
/// the only time they are shown.
#[instrument(skip_all)]
pub async fn enable_totp(
    s: &Services,
    caller: &Caller,
    code: &str,
    client: &Client,
) -> Result<Vec<String>, ApiError> {
    let user = account(s, caller).await?;
    if user.totp_enabled {
        return Err(already_enabled());
    }
    let Some(pending) = store::pending(&mut *s.read().await?, &user.id).await? else {
        return Err(ApiError::field(
            "code",
            "No authenticator is being set up; call /v1/auth/2fa/totp/setup first",
        ));
    };
    let now = s.now();
    let buckets = [Bucket::LoginAccount(&user.id)];
    let who = who(client, &user);
    limits::spend_now(s, &buckets, who, now).await?;
    let authenticator = Authenticator::open(s, &user, &pending)?;
    let Some(step) = authenticator.matching_step(code.trim(), now) else {
        return Err(ApiError::InvalidTotpCode);
    };
    let (codes, hashes) = totp::new_recovery_codes(s, &user.id);
    let mut work = s.begin().await?;
    limits::refund(&mut work, &buckets);
    if !store::enable(&mut work, &user.id, &pending, step, now).await? {
        // Another setup or enable got there first.
        return Err(ApiError::InvalidTotpCode);
    }
    store::set_recovery_codes(&mut work, &user.id, &hashes).await?;
    changed(&mut work, caller, Kind::TotpEnabled, client, now).await?;
    work.commit().await?;
    Ok(codes)
}

/// Turns TOTP off with the password and a current code (or a recovery
/// code); the caller's other sessions end. Both count against the
/// account's login budget, like a login.
#[instrument(skip_all)]
pub async fn disable_totp(
    s: &Services,
    caller: &Caller,
    password: &SecretString,
    code: &str,
    client: &Client,
) -> Result<(), ApiError> {
    let user = account(s, caller).await?;
    let now = s.now();
    let buckets = limits::login(client, &user.id);
    let who = who(client, &user);
    limits::spend_now(s, &buckets, who, now).await?;
    let hash = user.password_hash.as_deref();
    if !s.hasher.verify(password, hash).await? {
        let mut work = s.begin().await?;
        let event = who.event(Kind::LoginFailed).detail("invalid_credentials");
        work.audit(event, now);
        work.commit().await?;
        return Err(ApiError::InvalidCredentials);
    }
    if !user.totp_enabled {
        return Err(ApiError::field(
            "code",
            "Two-factor authentication is not enabled",
        ));
    }
    let now = s.now();
    let mut work = s.begin().await?;
    if !totp::check(s, &mut work, &user, code, now).await? {
        let event = who.event(Kind::LoginFailed).detail("invalid_totp_code");
        work.audit(event, now);
        work.commit().await?;
        return Err(ApiError::InvalidTotpCode);
    }
    limits::refund(&mut work, &buckets);
    store::disable(&mut work, &user.id, now).await?;
    changed(&mut work, caller, Kind::TotpDisabled, client, now).await?;
    work.commit().await?;
    Ok(())
}

/// The caller's account, which a live session implies unless it was disabled since.
async fn account(s: &Services, caller: &Caller) -> Result<User, ApiError> {
    let user = users::by_id(&mut *s.read().await?, &caller.user_id).await?;
    user.filter(|u| !u.disabled).ok_or(ApiError::InvalidToken)
}

fn who<'a>(client: &'a Client, user: &'a User) -> Who<'a> {
    Who {
        client,
        user_id: Some(&user.id),
        device_id: None,
    }
}

fn already_enabled() -> ApiError {
    ApiError::field(
        "totp",
        "Two-factor authentication is already enabled; disable it first",
    )
}

/// A second factor changed: every other session of the account ends.
async fn changed(
    work: &mut Work<'_>,
    caller: &Caller,
    kind: Kind,
    client: &Client,
    now: Timestamp,
) -> Result<(), ApiError> {
    let reason = match kind {
        Kind::TotpEnabled => "two-factor enabled",
        _ => "two-factor disabled",
    };
    let id = &caller.user_id;
    sessions::revoke_all(work, id, Some(&caller.session_id), reason, now).await?;
    work.ends_access();
    let event = client.event(kind).user(id).session(&caller.session_id);
    work.audit(event, now);
    Ok(())
}
