//! Email (SPEC §7): messages are rendered from templates, written encrypted
//! to the outbox in the caller's transaction, and delivered by a background
//! worker with retries, so a mail outage delays mail but loses none.

mod templates;
mod transport;
mod worker;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use templates::Template;
pub use templates::Templates;
pub use transport::Transport;
pub use worker::Worker;

use crate::clock::Timestamp;
use crate::crypto::Secrets;
use crate::store::{outbox, Conn};

/// A rendered message, as stored (encrypted) in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Every message the server sends, with what its template needs.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    RegisterCode {
        code: &'a str,
        minutes: i64,
    },
    LoginCode {
        code: &'a str,
        minutes: i64,
    },
    ResetCode {
        code: &'a str,
        minutes: i64,
    },
    /// Someone tried to register an address that already has an account.
    AccountExists,
    /// Too many wrong codes in a row: code flows are locked for so many hours.
    CodesLocked {
        hours: i64,
    },
}

impl<'a> Message<'a> {
    fn template(self) -> Template {
        match self {
            Message::RegisterCode { .. } => Template::RegisterCode,
            Message::LoginCode { .. } => Template::LoginCode,
            Message::ResetCode { .. } => Template::ResetCode,
            Message::AccountExists => Template::AccountExists,
            Message::CodesLocked { .. } => Template::CodesLocked,
        }
    }

    /// The template's placeholders: `{{code}}` and `{{minutes}}` of a code,
    /// `{{hours}}` of a lock.
    fn vars(self) -> Vec<(&'static str, String)> {
        match self {
            Message::RegisterCode { code, minutes }
            | Message::LoginCode { code, minutes }
            | Message::ResetCode { code, minutes } => {
                vec![("code", code.to_owned()), ("minutes", minutes.to_string())]
            }
            Message::AccountExists => vec![],
            Message::CodesLocked { hours } => vec![("hours", hours.to_string())],
        }
    }
}

/// What an outbox message's ciphertext is bound to: its row.
fn outbox_context(id: &str) -> String {
    format!("outbox:{id}")
}

/// Queues mail; the worker delivers it.
pub struct Mailer {
    templates: Templates,
    secrets: Arc<Secrets>,
    issuer: String,
    wake: Arc<Notify>,
}

impl Mailer {
    pub fn new(
        templates: Templates,
        secrets: Arc<Secrets>,
        issuer: String,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            templates,
            secrets,
            issuer,
            wake,
        }
    }

    /// Writes a message to the outbox on `conn` (inside the caller's
    /// transaction); call [`Mailer::wake`] once that has committed. A
    /// withheld message is rendered and stored like any other, at the same
    /// cost, but never sent: the decoy of one to an address with no account.
    pub async fn enqueue(
        &self,
        conn: &mut Conn,
        to: &str,
        message: Message<'_>,
        withheld: bool,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let mut vars = message.vars();
        vars.push(("email", to.to_owned()));
        vars.push(("issuer", self.issuer.clone()));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let template = message.template();
        let rendered = self.templates.render(template, &vars);
        let id = self.secrets.random_id("msg_");
        let sealed = self
            .secrets
            .encrypt(&serde_json::to_vec(&rendered)?, &outbox_context(&id));
        outbox::insert(conn, &id, to, template.name(), &sealed, withheld, now).await?;
        Ok(())
    }

    /// Tells the worker there is mail to send.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
