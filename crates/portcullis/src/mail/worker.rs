//! The outbox worker: delivers due messages, retrying with backoff.

use std::sync::Arc;

use crate::metrics::Metrics;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::{Rendered, Transport};
use crate::clock::Clock;
use crate::crypto::Secrets;
use crate::store::{outbox, Db};

/// How long a worker holds a message while sending it.
const LEASE_SECS: i64 = 60;
const BATCH: i64 = 16;

pub struct Worker {
    pub db: Db,
    pub secrets: Arc<Secrets>,
    pub transport: Transport,
    pub from: String,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "outbox: cannot read due messages");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Each message's lease, then its outcome, is a unit of work of its own:
    /// short, and never held across a send.
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
            let sealed = msg.message.as_deref();
            let plain =
                sealed.and_then(|m| self.secrets.decrypt(m, &super::outbox_context(&msg.id)));
            let result = match plain {
                Some(plain) => match serde_json::from_slice::<Rendered>(&plain) {
                    Ok(rendered) => {
                        self.transport
                            .send(&self.from, &msg.recipient, &rendered)
                            .await
                    }
                    Err(e) => Err(e.into()),
                },
                None => Err(anyhow::anyhow!("message cannot be decrypted")),
            };
            let now = self.clock.now();
            let mut unit = self.db.begin().await?;
            match result {
                Ok(()) => {
                    outbox::mark_sent(&mut unit, &msg.id, now).await?;
                    tracing::info!(id = %msg.id, template = %msg.template, "email sent");
                }
                Err(e) if is_permanent(&e) => {
                    self.metrics.mail_failed();
                    tracing::warn!(id = %msg.id, error = %e, "email refused permanently; not retrying");
                    outbox::mark_refused(&mut unit, &msg.id, &e.to_string(), now).await?;
                }
                Err(e) => {
                    self.metrics.mail_failed();
                    let retry_at = now + backoff(msg.attempts);
                    tracing::warn!(id = %msg.id, attempts = msg.attempts + 1, error = %e, "email delivery failed; will retry");
                    outbox::mark_failed(&mut unit, &msg.id, &e.to_string(), retry_at).await?;
                }
            }
            unit.commit().await?;
        }
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
