//! `keys …`: token signing keys.

use serde_json::{json, Value};

use super::{text, Admin, Report};
use crate::clock::{rfc3339, Clock, SystemClock};
use crate::store::signing_keys;
use crate::tokens;

/// How long instances may take to notice a new key (they re-read every 2 s), with room.
const NOTICE: i64 = 60;

impl Admin {
    /// Makes a new signing key, which signs from now on (on every instance
    /// within seconds); the one it supersedes verifies until every token it
    /// signed has expired.
    pub async fn rotate_signing_key(&self) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let key = tokens::generate(&self.secrets()?, now)?;
        let longest = self.config.access_ttl.max(self.config.client_access_ttl);
        let retire_at = now + longest.as_secs() as i64 + NOTICE;
        let mut tx = self.db.begin().await?;
        let before = signing_keys::list(&mut tx).await?;
        signing_keys::rotate(&mut tx, &key, retire_at).await?;
        tx.commit().await?;
        let superseded = before.iter().find(|k| k.retired_at.is_none());
        let text = match superseded {
            Some(old) => format!(
                "key {} signs from now on; {} verifies until {}",
                key.kid,
                old.kid,
                rfc3339(retire_at)
            ),
            None => format!("key {} signs from now on", key.kid),
        };
        let json = json!({
            "kid": key.kid,
            "superseded": superseded.map(|k| k.kid.clone()),
            "superseded_verifies_until": superseded.map(|_| rfc3339(retire_at)),
        });
        Ok(Report::new(json, text))
    }

    /// Every signing key: the one that signs, those that still verify, the retired.
    pub async fn list_signing_keys(&self) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let keys = signing_keys::list(&mut *self.db.pool().acquire().await?).await?;
        let items: Vec<Value> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let state = match k.retired_at {
                    None if i == 0 => "signing",
                    None => "verifying",
                    Some(at) if at > now => "verifying",
                    Some(_) => "retired",
                };
                json!({
                    "kid": k.kid,
                    "alg": k.alg,
                    "created_at": rfc3339(k.created_at),
                    "state": state,
                    "verifies_until": k.retired_at.map(rfc3339),
                })
            })
            .collect();
        Ok(Report::lines(items, |k| {
            let until = k["verifies_until"]
                .as_str()
                .map(|at| format!(" until {at}"))
                .unwrap_or_default();
            format!(
                "{}\t{}\tcreated {}\t{}{until}",
                text(&k["kid"]),
                text(&k["alg"]),
                text(&k["created_at"]),
                text(&k["state"]),
            )
        }))
    }
}
