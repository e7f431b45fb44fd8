//! Email (SPEC §7): messages are rendered from templates, written encrypted
//! to the outbox in the caller's transaction, and delivered by a background
//! worker with retries, so a mail outage delays mail but loses none.
//!
//! A message is handed to this instance's worker as its transaction commits,
//! and stored leased to that worker, so it is sent without being read back;
//! the outbox is polled for the rest: retries, messages queued while the
//! worker's queue was full, and those whose worker stopped before sending.

mod templates;
mod transport;
mod worker;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use templates::Template;
pub use templates::Templates;
pub use transport::Transport;
pub use worker::{Worker, SENDS_AT_ONCE};

use crate::clock::Timestamp;
use crate::crypto::Secrets;
use crate::store::{outbox, Batch};

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

/// How long a worker holds a message it is to send: stored with one when
/// handed over, or leased from the outbox.
const LEASE_SECS: i64 = 60;

/// Messages handed to the worker and not yet taken; past that, a message
/// waits in the outbox for the worker's next look.
const HANDOFFS: usize = 256;

/// A message handed to the worker, already leased to it.
pub struct Handed {
    id: String,
    recipient: String,
    template: &'static str,
    rendered: Rendered,
    leased_until: Timestamp,
}

/// What a unit of work hands the worker once it commits: a message to send,
/// or none for a withheld one (the same handoff, at the same cost).
pub struct Handoff {
    place: mpsc::OwnedPermit<Option<Handed>>,
    message: Option<Handed>,
}

impl Handoff {
    pub fn send(self) {
        self.place.send(self.message);
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
    worker: mpsc::Sender<Option<Handed>>,
}

impl Mailer {
    /// The mailer, and the queue of messages handed to the [`Worker`].
    pub fn new(
        templates: Templates,
        secrets: Arc<Secrets>,
        issuer: String,
    ) -> (Self, mpsc::Receiver<Option<Handed>>) {
        let (worker, handed) = mpsc::channel(HANDOFFS);
        let mailer = Self {
            templates,
            secrets,
            issuer,
            worker,
        };
        (mailer, handed)
    }

    /// Writes a message to the outbox as part of `batch` (the caller's unit
    /// of work); send the handoff once that has committed. A withheld
    /// message is rendered, stored and handed over like any other, at the
    /// same cost, but never sent: the decoy of one to an address with no
    /// account. With the worker's queue full, there is no handoff: the
    /// message waits in the outbox for the worker's next look.
    pub fn enqueue(
        &self,
        batch: &mut Batch,
        to: &str,
        message: Message<'_>,
        withheld: bool,
        now: Timestamp,
    ) -> anyhow::Result<Option<Handoff>> {
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
        // A place in the worker's queue, taken first: the row says who sends it.
        let place = self.worker.clone().try_reserve_owned().ok();
        let leased_until = match place {
            Some(_) => now + LEASE_SECS,
            None => now,
        };
        let row = outbox::NewMessage {
            id: &id,
            recipient: to,
            template: template.name(),
            message: &sealed,
            withheld,
            next_attempt_at: leased_until,
        };
        outbox::insert(batch, &row, now);
        Ok(place.map(|place| Handoff {
            place,
            message: (!withheld).then(|| Handed {
                id,
                recipient: to.to_owned(),
                template: template.name(),
                rendered,
                leased_until,
            }),
        }))
    }
}
