//! The outbox worker: sends the messages handed to it as they come, and
//! every [`POLL`] those due in the outbox, retrying with backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::{Handed, Rendered, Transport, LEASE_SECS};
use crate::clock::Clock;
use crate::crypto::Secrets;
use crate::metrics::Metrics;
use crate::store::{outbox, Db};

/// How often the outbox is read for due messages.
const POLL: Duration = Duration::from_secs(1);
const BATCH: i64 = 16;

/// A handed message is sent only with this long left of its lease, the
/// longest a send may take (the SMTP timeout) with room to spare; one held up
/// longer in the queue is left to whichever worker leases it next.
const LEASE_LEFT_TO_SEND: i64 = LEASE_SECS / 2;

pub struct Worker {
    pub db: Db,
    pub secrets: Arc<Secrets>,
    pub transport: Transport,
    pub from: String,
    pub clock: Arc<dyn Clock>,
    pub handed: mpsc::Receiver<Option<Handed>>,
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// Runs until `stop` turns true, then sends what was handed to it. The
    /// outbox is read first, before any handed message is taken.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = poll.tick() => {
                    if let Err(e) = self.deliver_due().await {
                        tracing::warn!(error = %e, "outbox: cannot read due messages");
                    }
                }
                Some(handed) = self.handed.recv() => self.deliver_handed(handed).await,
            }
        }
        self.handed.close();
        while let Some(handed) = self.handed.recv().await {
            self.deliver_handed(handed).await;
        }
    }

    /// Sends a message handed over with its lease; a withheld one is none.
    async fn deliver_handed(&self, handed: Option<Handed>) {
        let Some(msg) = handed else {
            return;
        };
        if self.clock.now() + LEASE_LEFT_TO_SEND > msg.leased_until {
            return;
        }
        let sent = self.deliver(&msg.id, &msg.recipient, msg.template, 0, Ok(msg.rendered));
        if let Err(e) = sent.await {
            tracing::warn!(id = %msg.id, error = %e, "outbox: delivery not recorded; retried later");
        }
    }

    /// Each due message's lease, then its outcome, is a unit of work of its
    /// own: short, and never held across a send.
    async fn deliver_due(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let due = outbox::due(&mut *self.db.pool().acquire().await?, now, BATCH).await?;
        for msg in due {
            let now = self.clock.now();
            let mut unit = self.db.begin().await?;
            let leased = outbox::lease(&mut unit, &msg, now + LEASE_SECS).await?;
            unit.commit().await?;
            if !leased {
                continue;
            }
            let rendered = self.unseal(&msg);
            self.deliver(
                &msg.id,
                &msg.recipient,
                &msg.template,
                msg.attempts,
                rendered,
            )
            .await?;
        }
        Ok(())
    }

    /// The rendered message a queued row holds, encrypted.
    fn unseal(&self, msg: &outbox::Queued) -> anyhow::Result<Rendered> {
        let sealed = msg.message.as_deref();
        let plain = sealed.and_then(|m| self.secrets.decrypt(m, &super::outbox_context(&msg.id)));
        let plain = plain.ok_or_else(|| anyhow::anyhow!("message cannot be decrypted"))?;
        Ok(serde_json::from_slice(&plain)?)
    }

    /// Sends a leased message (one that could not be read fails), and records
    /// the outcome in a unit of work of its own.
    async fn deliver(
        &self,
        id: &str,
        recipient: &str,
        template: &str,
        attempts: i64,
        rendered: anyhow::Result<Rendered>,
    ) -> anyhow::Result<()> {
        let result = match rendered {
            Ok(rendered) => self.transport.send(&self.from, recipient, &rendered).await,
            Err(e) => Err(e),
        };
        let now = self.clock.now();
        let mut unit = self.db.begin().await?;
        match result {
            Ok(()) => {
                outbox::mark_sent(&mut unit, id, now).await?;
                tracing::info!(id = %id, template = %template, "email sent");
            }
            Err(e) if is_permanent(&e) => {
                self.metrics.mail_failed();
                tracing::warn!(id = %id, error = %e, "email refused permanently; not retrying");
                outbox::mark_refused(&mut unit, id, &e.to_string(), now).await?;
            }
            Err(e) => {
                self.metrics.mail_failed();
                let retry_at = now + backoff(attempts);
                tracing::warn!(id = %id, attempts = attempts + 1, error = %e, "email delivery failed; will retry");
                outbox::mark_failed(&mut unit, id, &e.to_string(), retry_at).await?;
            }
        }
        unit.commit().await?;
        Ok(())
    }
}

/// A refusal that retrying cannot change: the SMTP server's 5xx answer.
fn is_permanent(e: &anyhow::Error) -> bool {
    e.downcast_ref::<lettre::transport::smtp::Error>()
        .is_some_and(lettre::transport::smtp::Error::is_permanent)
}

/// 10 s, 20 s, 40 s, … capped at an hour.
fn backoff(attempts: i64) -> i64 {
    10i64.saturating_mul(1 << attempts.clamp(0, 9)).min(3600)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(super::backoff(0), 10);
        assert_eq!(super::backoff(1), 20);
        assert_eq!(super::backoff(50), 3600);
    }
}
