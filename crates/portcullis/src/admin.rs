//! Operator commands (the CLI's `user`, `apikey` and `client` trees), on the
//! same configuration as `serve`.

use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ipnet::IpNet;

use secrecy::SecretString;
use serde::Serialize;

use crate::audit::{self, Event, Kind};
use crate::auth;
use crate::clock::{parse_rfc3339, rfc3339, Clock, SystemClock, Timestamp};
use crate::config::{parse_duration, Config};
use crate::crypto::Secrets;
use crate::domain::{Email, KeyName, Scopes, Username};
use crate::error::ApiError;
use crate::password::{self, Hasher};
use crate::store::{
    api_keys, clients, sessions, signing_keys, totp, unique_violation, users, Conn, Db,
};
use crate::tokens;

#[derive(Debug, Serialize)]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub verified: bool,
    pub disabled: bool,
}

impl From<users::User> for UserSummary {
    fn from(u: users::User) -> Self {
        Self {
            verified: u.verified,
            disabled: u.disabled,
            id: u.id,
            email: u.email,
            username: u.username,
        }
    }
}

pub struct Admin {
    config: Config,
    db: Db,
}

impl Admin {
    /// Connects and migrates, as `serve` would.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        Ok(Self { config, db })
    }

    /// Creates a verified account.
    pub async fn create_user(
        &self,
        email: &str,
        password: SecretString,
        username: Option<&str>,
    ) -> anyhow::Result<UserSummary> {
        let email = Email::parse("email", email).map_err(describe)?;
        let username = username
            .map(Username::parse)
            .transpose()
            .map_err(describe)?;
        password::check_policy(&password, self.config.password_min_length).map_err(describe)?;
        let secrets = Arc::new(Secrets::load(&self.config)?);
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
        let user = users::by_id(&mut conn, &id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user vanished"))?;
        Ok(user.into())
    }

    pub async fn list_users(&self) -> anyhow::Result<Vec<UserSummary>> {
        let users = users::list(&mut *self.db.pool().acquire().await?).await?;
        Ok(users.into_iter().map(Into::into).collect())
    }

    /// Disables (and signs out everywhere) or re-enables an account, by email or id.
    pub async fn set_disabled(&self, who: &str, disabled: bool) -> anyhow::Result<String> {
        let now = SystemClock.now();
        let mut tx = self.db.pool().begin().await?;
        let id = users::set_disabled(&mut tx, &who.trim().to_lowercase(), disabled, now)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user with email or id `{who}`"))?;
        if disabled {
            sessions::revoke_all(&mut tx, &id, None, "account disabled", now).await?;
        }
        let kind = if disabled {
            Kind::AccountDisabled
        } else {
            Kind::AccountEnabled
        };
        audit::record(&mut tx, Event::new(kind).user(&id).detail("cli"), now).await?;
        tx.commit().await?;
        Ok(id)
    }
}

impl Admin {
    /// Clears a lost authenticator (by email or id): TOTP off, recovery codes
    /// gone, every session ended. The owner signs in with password and email
    /// code and may set up TOTP again.
    pub async fn reset_totp(&self, who: &str) -> anyhow::Result<String> {
        let now = SystemClock.now();
        let who = who.trim().to_lowercase();
        let mut tx = self.db.pool().begin().await?;
        let user = self.account(&mut tx, &who).await?;
        if !totp::disable(&mut tx, &user.id, now).await? {
            anyhow::bail!("user {} does not have TOTP enabled", user.id);
        }
        sessions::revoke_all(&mut tx, &user.id, None, "two-factor reset", now).await?;
        let event = Event::new(Kind::TotpReset).user(&user.id).detail("cli");
        audit::record(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(user.id)
    }
}

impl Admin {
    /// Makes an API key for an account (by email or id). `expires` is a
    /// duration from now (`30d`) or an RFC 3339 time. The key is in the
    /// answer, the only time it is shown.
    pub async fn create_api_key(
        &self,
        who: &str,
        name: &str,
        scopes: Vec<String>,
        expires: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let now = SystemClock.now();
        let expires_at = expires.map(|text| expiry(text, now)).transpose()?;
        let input = auth::NewKey {
            name: KeyName::parse("name", name.trim().to_owned()).map_err(describe)?,
            scopes: Scopes::parse(scopes).map_err(describe)?,
            expires_at,
        };
        let secrets = Secrets::load(&self.config)?;
        let mut tx = self.db.pool().begin().await?;
        let user = self.account(&mut tx, who).await?;
        let created = auth::issue_api_key(&mut tx, &secrets, &user.id, input, now)
            .await
            .map_err(describe)?;
        let event = Event::new(Kind::ApiKeyCreated).user(&user.id);
        audit::record(&mut tx, event.detail("cli"), now).await?;
        tx.commit().await?;
        let mut summary = key_summary(&created.api_key);
        summary["key"] = created.key.into();
        Ok(summary)
    }

    /// An account's API keys not revoked, without their secrets.
    pub async fn list_api_keys(&self, who: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut conn = self.db.pool().acquire().await?;
        let user = self.account(&mut conn, who).await?;
        let keys = api_keys::list(&mut conn, &user.id).await?;
        Ok(keys.iter().map(key_summary).collect())
    }

    /// Revokes an API key by id; returns its account.
    pub async fn revoke_api_key(&self, id: &str) -> anyhow::Result<String> {
        let now = SystemClock.now();
        let mut tx = self.db.pool().begin().await?;
        let user_id = api_keys::revoke(&mut tx, id.trim(), None, now)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no live API key with id `{id}`"))?;
        let event = Event::new(Kind::ApiKeyRevoked).user(&user_id);
        audit::record(&mut tx, event.detail("cli"), now).await?;
        tx.commit().await?;
        Ok(user_id)
    }

    async fn account(&self, conn: &mut Conn, who: &str) -> anyhow::Result<users::User> {
        users::by_email_or_id(conn, &who.trim().to_lowercase())
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user with email or id `{who}`"))
    }
}

impl Admin {
    /// Makes a new signing key, which signs from now on (on every instance
    /// within seconds); the one it supersedes verifies until every token it
    /// signed has expired. Returns both.
    pub async fn rotate_signing_key(&self) -> anyhow::Result<serde_json::Value> {
        let now = SystemClock.now();
        let secrets = Secrets::load(&self.config)?;
        let key = tokens::generate(&secrets, now)?;
        // The longest-lived access token, and the seconds instances take to notice.
        let longest = self.config.access_ttl.max(self.config.client_access_ttl);
        let retire_at = now + longest.as_secs() as i64 + 60;
        let mut tx = self.db.pool().begin().await?;
        let before = signing_keys::list(&mut tx).await?;
        signing_keys::rotate(&mut tx, &key, retire_at).await?;
        tx.commit().await?;
        let superseded = before.iter().find(|k| k.retired_at.is_none());
        Ok(serde_json::json!({
            "kid": key.kid,
            "superseded": superseded.map(|k| k.kid.clone()),
            "superseded_verifies_until": superseded.map(|_| rfc3339(retire_at)),
        }))
    }

    /// Every signing key: the one that signs, those that still verify, the retired.
    pub async fn list_signing_keys(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let now = SystemClock.now();
        let keys = signing_keys::list(&mut *self.db.pool().acquire().await?).await?;
        Ok(keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let state = match k.retired_at {
                    None if i == 0 => "signing",
                    None => "verifying",
                    Some(at) if at > now => "verifying",
                    Some(_) => "retired",
                };
                serde_json::json!({
                    "kid": k.kid,
                    "alg": k.alg,
                    "created_at": rfc3339(k.created_at),
                    "state": state,
                    "verifies_until": k.retired_at.map(rfc3339),
                })
            })
            .collect())
    }
}

/// What an operator does to a client.
pub enum ClientChange {
    Disable,
    Enable,
    AllowIp(IpNet),
    DenyIp(IpNet),
    RotateSecret,
}

impl Admin {
    /// Makes a machine client; its API key and secret are in the answer,
    /// the only time the secret is shown.
    pub async fn create_client(
        &self,
        name: &str,
        allowed_ips: &[String],
        scopes: Vec<String>,
    ) -> anyhow::Result<serde_json::Value> {
        let now = SystemClock.now();
        let name = KeyName::parse("name", name.trim().to_owned()).map_err(describe)?;
        let scopes = Scopes::parse(scopes).map_err(describe)?;
        let allowed_ips = allowed_ips
            .iter()
            .map(|ip| cidr(ip))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let secrets = Secrets::load(&self.config)?;
        let api_key = secrets.random_id("ck_");
        let secret = new_client_secret(&secrets);
        let new = clients::NewClient {
            name: name.as_str(),
            api_key: &api_key,
            secret_hash: &secrets.secret_hash(auth::CLIENT_SECRET_KIND, &secret),
            scopes: scopes.as_slice(),
            allowed_ips: &allowed_ips,
        };
        let mut tx = self.db.pool().begin().await?;
        let id = clients::insert(&mut tx, &new, now).await?;
        let event = Event::new(Kind::ClientCreated).client(id).detail("cli");
        audit::record(&mut tx, event, now).await?;
        let client = clients::by_id(&mut tx, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("client {id} vanished"))?;
        tx.commit().await?;
        let mut summary = client_summary(&client);
        summary["api_secret"] = secret.into();
        Ok(summary)
    }

    pub async fn list_clients(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let clients = clients::list(&mut *self.db.pool().acquire().await?).await?;
        Ok(clients.iter().map(client_summary).collect())
    }

    pub async fn show_client(&self, id: i64) -> anyhow::Result<serde_json::Value> {
        let client = clients::by_id(&mut *self.db.pool().acquire().await?, id)
            .await?
            .ok_or_else(|| no_client(id))?;
        Ok(client_summary(&client))
    }

    /// Changes a client. Disabling it and rotating its secret end its
    /// sessions, so its outstanding tokens stop working at once. A new
    /// secret is in the answer, shown only then.
    pub async fn change_client(
        &self,
        id: i64,
        change: ClientChange,
    ) -> anyhow::Result<serde_json::Value> {
        let now = SystemClock.now();
        let mut tx = self.db.pool().begin().await?;
        let client = clients::by_id(&mut tx, id)
            .await?
            .ok_or_else(|| no_client(id))?;
        let mut nets = client.allowed_ips.clone();
        let mut secret = None;
        let (update, ends_sessions, detail) = match change {
            ClientChange::Disable => (clients::Change::Active(false), true, "disabled"),
            ClientChange::Enable => (clients::Change::Active(true), false, "enabled"),
            ClientChange::AllowIp(net) => {
                if !nets.contains(&net) {
                    nets.push(net);
                }
                (clients::Change::AllowedIps(&nets), false, "allow_ip")
            }
            ClientChange::DenyIp(net) => {
                nets.retain(|n| *n != net);
                (clients::Change::AllowedIps(&nets), false, "deny_ip")
            }
            ClientChange::RotateSecret => {
                let secrets = Secrets::load(&self.config)?;
                let new = new_client_secret(&secrets);
                let hash = secrets.secret_hash(auth::CLIENT_SECRET_KIND, &new);
                secret = Some((new, hash));
                let hash = secret.as_ref().map(|(_, h)| h.as_str()).unwrap_or_default();
                (clients::Change::SecretHash(hash), true, "secret_rotated")
            }
        };
        clients::update(&mut tx, id, update, now).await?;
        if ends_sessions {
            clients::revoke_sessions(&mut tx, id, None, now).await?;
        }
        let event = Event::new(Kind::ClientChanged).client(id).detail(detail);
        audit::record(&mut tx, event, now).await?;
        let client = clients::by_id(&mut tx, id)
            .await?
            .ok_or_else(|| no_client(id))?;
        tx.commit().await?;
        let mut summary = client_summary(&client);
        if let Some((secret, _)) = secret {
            summary["api_secret"] = secret.into();
        }
        Ok(summary)
    }
}

/// `cs_` and 256 random bits.
fn new_client_secret(secrets: &Secrets) -> String {
    format!("cs_{}", URL_SAFE_NO_PAD.encode(secrets.random::<32>()))
}

/// A CIDR range, or a single address as its /32 or /128.
pub fn cidr(text: &str) -> anyhow::Result<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| anyhow::anyhow!("`{text}` is not an IP address or CIDR range"))
}

fn no_client(id: i64) -> anyhow::Error {
    anyhow::anyhow!("no client with id {id}")
}

fn client_summary(client: &clients::Client) -> serde_json::Value {
    serde_json::json!({
        "client_id": client.id,
        "name": client.name,
        "api_key": client.api_key,
        "status": if client.active { "active" } else { "disabled" },
        "scopes": client.scopes,
        "allowed_ips": client.allowed_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "created_at": rfc3339(client.created_at),
    })
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

fn key_summary(key: &api_keys::ApiKey) -> serde_json::Value {
    serde_json::json!({
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "scopes": key.scopes,
        "created_at": rfc3339(key.created_at),
        "expires_at": key.expires_at.map(rfc3339),
        "last_used_at": key.last_used_at.map(rfc3339),
    })
}

fn describe(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Validation(fields) => {
            anyhow::anyhow!(fields
                .into_iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; "))
        }
        other => anyhow::anyhow!("{other}"),
    }
}
