//! `client …`: machine clients, their status, allowlists and secrets.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ipnet::IpNet;
use serde_json::{json, Value};

use super::{describe, joined, text as text_of, Admin, Report};
use crate::audit::{self, Event, Kind};
use crate::auth;
use crate::clock::{rfc3339, Clock, SystemClock};
use crate::crypto::Secrets;
use crate::domain::{KeyName, Scopes};
use crate::store::clients;

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
    ) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let name = KeyName::parse("name", name.trim().to_owned()).map_err(describe)?;
        let scopes = Scopes::parse(scopes).map_err(describe)?;
        let allowed_ips = allowed_ips
            .iter()
            .map(|ip| cidr(ip))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let secrets = self.secrets()?;
        let api_key = secrets.random_id("ck_");
        let secret = new_client_secret(&secrets);
        let new = clients::NewClient {
            name: name.as_str(),
            api_key: &api_key,
            secret_hash: &secrets.secret_hash(auth::CLIENT_SECRET_KIND, &secret),
            scopes: scopes.as_slice(),
            allowed_ips: &allowed_ips,
        };
        let mut tx = self.db.begin().await?;
        let id = clients::insert(&mut tx, &new, now).await?;
        let event = Event::new(Kind::ClientCreated).client(id).detail("cli");
        audit::record(&mut tx, event, now).await?;
        let client = clients::by_id(&mut tx, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("client {id} vanished"))?;
        tx.commit().await?;
        let mut json = summary(&client);
        json["api_secret"] = secret.into();
        Ok(report(json))
    }

    pub async fn list_clients(&self) -> anyhow::Result<Report> {
        let clients = clients::list(&mut *self.db.pool().acquire().await?).await?;
        Ok(Report::lines(clients.iter().map(summary).collect(), line))
    }

    pub async fn show_client(&self, id: i64) -> anyhow::Result<Report> {
        let client = clients::by_id(&mut *self.db.pool().acquire().await?, id)
            .await?
            .ok_or_else(|| no_client(id))?;
        Ok(report(summary(&client)))
    }

    /// Changes a client. Disabling it and rotating its secret end its
    /// sessions, so its outstanding tokens stop working at once. A new
    /// secret is in the answer, shown only then.
    pub async fn change_client(&self, id: i64, change: ClientChange) -> anyhow::Result<Report> {
        let now = SystemClock.now();
        let mut tx = self.db.begin().await?;
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
                let secrets = self.secrets()?;
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
        let mut json = summary(&client);
        if let Some((secret, _)) = secret {
            json["api_secret"] = secret.into();
        }
        Ok(report(json))
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

fn summary(client: &clients::Client) -> Value {
    json!({
        "client_id": client.id,
        "name": client.name,
        "api_key": client.api_key,
        "status": if client.active { "active" } else { "disabled" },
        "scopes": client.scopes,
        "allowed_ips": client.allowed_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "created_at": rfc3339(client.created_at),
    })
}

/// One client as a report; a secret, when there is one, spelled out.
fn report(json: Value) -> Report {
    let mut text = line(&json);
    if let Some(secret) = json["api_secret"].as_str() {
        text.push_str(&format!(
            "\napi_key    {}\napi_secret {secret}\n(the secret is shown only this once)",
            text_of(&json["api_key"])
        ));
    }
    Report::new(json, text)
}

/// One client, as a line of text.
fn line(c: &Value) -> String {
    format!(
        "{}\t{}\t{}\tscopes {}\tallow {}",
        c["client_id"],
        text_of(&c["name"]),
        text_of(&c["status"]),
        joined(&c["scopes"]),
        joined(&c["allowed_ips"]),
    )
}
