//! `user …` and `session …`: accounts and their device sessions.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{json, Value};

use super::{describe, text, Admin, Report};
use crate::audit::{self, Event, Kind};
use crate::clock::{rfc3339, Clock, SystemClock};
use crate::domain::{Email, Username};
use crate::password::{self, Hasher};
use crate::store::{sessions, totp, unique_violation, users};

fn summary(u: &users::User) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "username": u.username,
        "verified": u.verified,
        "disabled": u.disabled,
        "totp_enabled": u.totp_enabled,
    })
}

impl Admin {
    /// Creates a verified account.
    pub async fn create_user(
        &self,
        email: &str,
        password: SecretString,
        username: Option<&str>,
    ) -> anyhow::Result<Report> {
        let email = Email::parse("email", email).map_err(describe)?;
        let username = username
            .map(Username::parse)
            .transpose()
            .map_err(describe)?;
        password::check_policy(&password, self.config.password_min_length).map_err(describe)?;
        let secrets = Arc::new(self.secrets()?);
        let hash = Hasher::new(1, 1)?
            .hash(&secrets, &password)
            .await
            .map_err(describe)?;
        let id = secrets.random_id("usr_");
        let new = users::NewUser {
            id: &id,
            email: email.as_str(),
            username: username.as_ref().map(Username::as_str),
            name: None,
            password_hash: &hash,
            verified: true,
        };
        let mut conn = self.db.pool().acquire().await?;
        users::insert(&mut conn, &new, SystemClock.now())
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(field) => anyhow::anyhow!("a user with this {field} already exists"),
                None => e.into(),
            })?;
        let user = self.account(&mut conn, &id).await?;
        let text = format!("created user {} <{}>", user.id, user.email);
        Ok(Report::new(summary(&user), text))
    }

    pub async fn list_users(&self) -> anyhow::Result<Report> {
        let users = users::list(&mut *self.db.pool().acquire().await?).await?;
        Ok(Report::lines(users.iter().map(summary).collect(), |u| {
            let state = if u["disabled"] == true {
                "disabled"
            } else if u["verified"] == true {
                "active"
            } else {
                "unverified"
            };
            format!(
                "{}\t{}\t{}\t{state}",
                text(&u["id"]),
                text(&u["email"]),
                text(&u["username"])
            )
        }))
    }

    /// Disables (and signs out everywhere) or re-enables an account, by email or id.
    pub async fn set_disabled(&self, who: &str, disabled: bool) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let mut tx = self.db.begin().await?;
        let id = users::set_disabled(&mut tx, &who.trim().to_lowercase(), disabled, now)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user with email or id `{who}`"))?;
        if disabled {
            sessions::revoke_all(&mut tx, &id, None, "account disabled", now).await?;
        }
        let (kind, done) = if disabled {
            (Kind::AccountDisabled, "disabled")
        } else {
            (Kind::AccountEnabled, "enabled")
        };
        audit::record(&mut tx, Event::new(kind).user(&id).detail("cli"), now).await?;
        tx.commit().await?;
        let json = json!({ "id": id, "disabled": disabled });
        Ok(Report::new(json, format!("{done} {id}")))
    }

    /// Clears a lost authenticator (by email or id): TOTP off, recovery codes
    /// gone, every session ended. The owner signs in with password and email
    /// code and may set up TOTP again.
    pub async fn reset_totp(&self, who: &str) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let mut tx = self.db.begin().await?;
        let user = self.account(&mut tx, who).await?;
        if !totp::disable(&mut tx, &user.id, now).await? {
            anyhow::bail!("user {} does not have TOTP enabled", user.id);
        }
        sessions::revoke_all(&mut tx, &user.id, None, "two-factor reset", now).await?;
        let event = Event::new(Kind::TotpReset).user(&user.id).detail("cli");
        audit::record(&mut tx, event, now).await?;
        tx.commit().await?;
        let text = format!(
            "two-factor authentication reset for {}; its sessions are ended",
            user.id
        );
        Ok(Report::new(
            json!({ "id": user.id, "totp_enabled": false }),
            text,
        ))
    }

    /// An account's live device sessions.
    pub async fn list_sessions(&self, who: &str) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let mut conn = self.db.pool().acquire().await?;
        let user = self.account(&mut conn, who).await?;
        let sessions = sessions::list_live(&mut conn, &user.id, now).await?;
        let items = sessions
            .iter()
            .map(|s| {
                json!({
                    "session_id": s.id,
                    "device_id": s.device.id.as_ref().map(|id| id.as_str()),
                    "device_name": s.device.name.as_ref().map(|n| n.as_str()),
                    "ip": s.ip,
                    "created_at": rfc3339(s.created_at),
                    "last_seen_at": rfc3339(s.last_seen_at),
                    "expires_at": rfc3339(s.expires_at),
                })
            })
            .collect();
        Ok(Report::lines(items, |s| {
            format!(
                "{}\t{}\t{}\tlast seen {}",
                text(&s["session_id"]),
                text(&s["device_id"]),
                text(&s["ip"]),
                text(&s["last_seen_at"])
            )
        }))
    }

    /// Ends an account's session on one device, or all of its sessions.
    pub async fn revoke_sessions(&self, who: &str, device: Option<&str>) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let mut tx = self.db.begin().await?;
        let user = self.account(&mut tx, who).await?;
        let reason = "revoked by an operator";
        let count = match device {
            Some(device) => sessions::revoke_device(&mut tx, &user.id, device, reason, now).await?,
            None => sessions::revoke_all(&mut tx, &user.id, None, reason, now).await?,
        };
        if count == 0 {
            anyhow::bail!("no live session to revoke");
        }
        let event = Event::new(Kind::SessionRevoked)
            .user(&user.id)
            .detail("cli");
        audit::record(&mut tx, event, now).await?;
        tx.commit().await?;
        let json = json!({ "user_id": user.id, "revoked": count });
        Ok(Report::new(
            json,
            format!("revoked {count} session(s) of {}", user.id),
        ))
    }
}
