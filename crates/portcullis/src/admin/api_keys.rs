//! `apikey …`: users' API keys.

use serde_json::{json, Value};

use super::{describe, joined, text, Admin, Report};
use crate::audit::{self, Event, Kind};
use crate::auth;
use crate::clock::{parse_rfc3339, rfc3339, Clock, SystemClock, Timestamp};
use crate::config::parse_duration;
use crate::domain::{KeyName, Scopes};
use crate::store::api_keys;

impl Admin {
    /// Makes an API key for an account (by email or id). `expires` is a
    /// duration from now (`30d`) or an RFC 3339 time. The key is in the
    /// report, the only time it is shown.
    pub async fn create_api_key(
        &self,
        who: &str,
        name: &str,
        scopes: Vec<String>,
        expires: Option<&str>,
    ) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let expires_at = expires.map(|text| expiry(text, now)).transpose()?;
        let input = auth::NewKey {
            name: KeyName::parse("name", name.trim().to_owned()).map_err(describe)?,
            scopes: Scopes::parse(scopes).map_err(describe)?,
            expires_at,
        };
        let secrets = self.secrets()?;
        let mut tx = self.db.begin().await?;
        let user = self.account(&mut tx, who).await?;
        let created = auth::issue_api_key(&mut tx, &secrets, &user.id, input, now)
            .await
            .map_err(describe)?;
        let event = Event::new(Kind::ApiKeyCreated).user(&user.id);
        audit::record(&mut tx, event.detail("cli"), now).await?;
        tx.commit().await?;
        let mut json = summary(&created.api_key);
        json["key"] = created.key.clone().into();
        let text = format!(
            "created API key {}\n{}\n(the key is shown only this once)",
            created.api_key.id, created.key
        );
        Ok(Report::new(json, text))
    }

    /// An account's API keys not revoked, without their secrets.
    pub async fn list_api_keys(&self, who: &str) -> anyhow::Result<Report> {
        let mut conn = self.db.pool().acquire().await?;
        let user = self.account(&mut conn, who).await?;
        let keys = api_keys::list(&mut conn, &user.id).await?;
        Ok(Report::lines(keys.iter().map(summary).collect(), |k| {
            format!(
                "{}\t{}\tscopes {}\texpires {}",
                text(&k["id"]),
                text(&k["name"]),
                joined(&k["scopes"]),
                k["expires_at"].as_str().unwrap_or("never"),
            )
        }))
    }

    /// Revokes an API key by id, at once.
    pub async fn revoke_api_key(&self, id: &str) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let mut tx = self.db.begin().await?;
        let user_id = api_keys::revoke(&mut tx, id.trim(), None, now)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no live API key with id `{id}`"))?;
        let event = Event::new(Kind::ApiKeyRevoked).user(&user_id);
        audit::record(&mut tx, event.detail("cli"), now).await?;
        tx.commit().await?;
        let json = json!({ "id": id, "user_id": user_id, "revoked": true });
        Ok(Report::new(json, format!("revoked API key {id}")))
    }
}

/// An expiry given on the command line: a duration from now, or a time.
fn expiry(text: &str, now: Timestamp) -> anyhow::Result<Timestamp> {
    if let Some(at) = parse_rfc3339(text) {
        return Ok(at);
    }
    let after = parse_duration(text.trim())
        .map_err(|e| anyhow::anyhow!("--expires: {e}; or an RFC 3339 time"))?;
    Ok(now + after.as_secs() as i64)
}

fn summary(key: &api_keys::ApiKey) -> Value {
    json!({
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "scopes": key.scopes,
        "created_at": rfc3339(key.created_at),
        "expires_at": key.expires_at.map(rfc3339),
        "last_used_at": key.last_used_at.map(rfc3339),
    })
}
