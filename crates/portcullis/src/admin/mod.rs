//! Operator commands (the CLI's trees), over the same library and
//! configuration as `serve`. Each answers with a [`Report`]: a JSON value for
//! scripts (`--json`) and the same as readable text.

mod api_keys;
mod audit_log;
mod clients;
mod signing_keys;
mod users;

pub use clients::{cidr, ClientChange};

use serde_json::Value;

use crate::config::Config;
use crate::crypto::Secrets;
use crate::error::ApiError;
use crate::store::{users as accounts, Conn, Db};

pub struct Admin {
    config: Config,
    db: Db,
}

/// What a command answers: JSON for scripts, text for people.
pub struct Report {
    pub json: Value,
    pub text: String,
}

impl Report {
    fn new(json: Value, text: impl Into<String>) -> Self {
        Self {
            json,
            text: text.into(),
        }
    }

    /// A list, one line of text per item.
    fn lines(items: Vec<Value>, line: impl Fn(&Value) -> String) -> Self {
        let text = items.iter().map(line).collect::<Vec<_>>().join("\n");
        Self::new(Value::Array(items), text)
    }
}

impl Admin {
    /// Connects and migrates, as `serve` would.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        Ok(Self { config, db })
    }

    fn secrets(&self) -> anyhow::Result<Secrets> {
        Ok(Secrets::load(&self.config)?)
    }

    /// An account by email or id, or an error naming what was asked for.
    async fn account(&self, conn: &mut Conn, who: &str) -> anyhow::Result<accounts::User> {
        accounts::by_email_or_id(conn, &who.trim().to_lowercase())
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user with email or id `{who}`"))
    }
}

/// A validation error as one line: `field: what is wrong`.
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

/// A JSON list of text as `a,b`, or `-` when empty.
fn joined(value: &Value) -> String {
    let items: Vec<&str> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

/// A JSON text field, or `-`.
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}
