//! The outbox worker: sends the messages handed to it (taken on a [`GRID`]
//! of 10 ms), and every [`POLL`] those due in the outbox, retrying with
//! backoff. Up to
//! [`SENDS_AT_ONCE`] messages are on their way at once: an SMTP conversation
//! is several round trips to the mail server, and one at a time a worker
//! would send no more than those round trips allow (about 22 a second on
//! loopback, where lettre's writes wait out the peer's delayed ACK; fewer to
//! a distant relay) however many logins ask for codes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Handed, Rendered, Transport, LEASE_SECS};
use crate::clock::Clock;
use crate::crypto::Secrets;
use crate::metrics::Metrics;
use crate::store::{outbox, Db};

/// How often the outbox is read for due messages.
const POLL: Duration = Duration::from_secs(1);

/// The most messages being sent at once; the SMTP transport keeps as many
/// connections.
pub const SENDS_AT_ONCE: usize = 16;

/// Handed messages are taken on a grid of this step, not as they come. A
/// send's work would otherwise follow at once the answer of the request that
/// queued it, and a decoy's handoff costs nothing after it: on a machine
/// with little else to do, that told a known address's answers from an
/// unknown one's. On the grid, the send falls on whatever is being answered
/// then.
const GRID: Duration = Duration::from_millis(10);

/// Sent messages are marked in the outbox together, in one unit of work, at
/// most this long after they went: one unit a message cost each login's
/// code a transaction of its own. A message not yet marked when the process
/// stops is sent again once its lease is over.
const MARK_EVERY: Duration = Duration::from_millis(100);

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
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// Runs until `stop` turns true, then sends what was handed to it. The
    /// outbox is read first, before any handed message is taken; neither is
    /// taken while [`SENDS_AT_ONCE`] messages are on their way.
    pub async fn run(
        self,
        mut handed: mpsc::Receiver<Option<Handed>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let worker = Arc::new(self);
        let started = Instant::now();
        let mut sending = JoinSet::new();
        let mut sent = Vec::new();
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut mark = tokio::time::interval(MARK_EVERY);
        mark.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let room = sending.len() < SENDS_AT_ONCE;
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(done) = sending.join_next() => sent.extend(ended(done)),
                _ = mark.tick(), if !sent.is_empty() => worker.mark_sent(std::mem::take(&mut sent)).await,
                _ = poll.tick(), if room => {
                    // What this worker has sent is marked first: with a clock
                    // that jumped past their leases, the poll would find them
                    // due and send them again.
                    worker.mark_sent(std::mem::take(&mut sent)).await;
                    if let Err(e) = worker.send_due(&mut sending).await {
                        tracing::warn!(error = %e, "outbox: cannot read due messages");
                    }
                }
                Some(message) = handed.recv(), if room => {
                    tokio::time::sleep_until(next_step(started)).await;
                    sending.spawn(worker.clone().deliver_handed(message));
                    while sending.len() < SENDS_AT_ONCE {
                        let Ok(message) = handed.try_recv() else { break };
                        sending.spawn(worker.clone().deliver_handed(message));
                    }
                }
            }
        }
        handed.close();
        while let Some(message) = handed.recv().await {
            if sending.len() >= SENDS_AT_ONCE {
                if let Some(done) = sending.join_next().await {
                    sent.extend(ended(done));
                }
            }
            sending.spawn(worker.clone().deliver_handed(message));
        }
        while let Some(done) = sending.join_next().await {
            sent.extend(ended(done));
        }
        worker.mark_sent(sent).await;
    }

    /// Sends a message handed over with its lease; a withheld one is none.
    async fn deliver_handed(self: Arc<Self>, handed: Option<Handed>) -> Option<Sent> {
        let msg = handed?;
        if self.clock.now() + LEASE_LEFT_TO_SEND > msg.leased_until {
            return None;
        }
        self.deliver(msg.id, &msg.recipient, msg.template, 0, Ok(msg.rendered))
            .await
    }

    /// Leases as many due messages as there is room for, each in a unit of
    /// work of its own (short, and never held across a send), and sets them
    /// on their way. Each of the worker's units is one statement, so none
    /// needs a transaction around it (see [`Db::autocommit`]).
    async fn send_due(self: &Arc<Self>, sending: &mut JoinSet<Option<Sent>>) -> anyhow::Result<()> {
        let room = SENDS_AT_ONCE.saturating_sub(sending.len()) as i64;
        let now = self.clock.now();
        let due = outbox::due(&mut *self.db.pool().acquire().await?, now, room).await?;
        for msg in due {
            let now = self.clock.now();
            let mut unit = self.db.autocommit().await?;
            let leased = outbox::lease(&mut unit, &msg, now + LEASE_SECS).await?;
            unit.commit().await?;
            if leased {
                sending.spawn(self.clone().deliver_due(msg));
            }
        }
        Ok(())
    }

    /// Sends a message leased from the outbox.
    async fn deliver_due(self: Arc<Self>, msg: outbox::Queued) -> Option<Sent> {
        let rendered = self.unseal(&msg);
        self.deliver(
            msg.id,
            &msg.recipient,
            &msg.template,
            msg.attempts,
            rendered,
        )
        .await
    }

    /// The rendered message a queued row holds, encrypted.
    fn unseal(&self, msg: &outbox::Queued) -> anyhow::Result<Rendered> {
        let sealed = msg.message.as_deref();
        let plain = sealed.and_then(|m| self.secrets.decrypt(m, &super::outbox_context(&msg.id)));
        let plain = plain.ok_or_else(|| anyhow::anyhow!("message cannot be decrypted"))?;
        Ok(serde_json::from_slice(&plain)?)
    }

    /// Sends a leased message (one that could not be read fails). A failure
    /// is recorded at once; a message sent is returned, to be marked with
    /// others (see [`MARK_EVERY`]).
    async fn deliver(
        &self,
        id: String,
        recipient: &str,
        template: &str,
        attempts: i64,
        rendered: anyhow::Result<Rendered>,
    ) -> Option<Sent> {
        let result = match rendered {
            Ok(rendered) => self.transport.send(&self.from, recipient, &rendered).await,
            Err(e) => Err(e),
        };
        let Err(e) = result else {
            return Some(Sent {
                id,
                template: template.to_owned(),
            });
        };
        self.metrics.mail_failed();
        if let Err(not) = self.record_failure(&id, attempts, e).await {
            tracing::warn!(id = %id, error = %not, "outbox: delivery not recorded; retried later");
        }
        None
    }

    /// A failed send's outcome, in a unit of work of its own.
    async fn record_failure(
        &self,
        id: &str,
        attempts: i64,
        e: anyhow::Error,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let mut unit = self.db.autocommit().await?;
        if is_permanent(&e) {
            tracing::warn!(id = %id, error = %e, "email refused permanently; not retrying");
            outbox::mark_refused(&mut unit, id, &e.to_string(), now).await?;
        } else {
            let retry_at = now + backoff(attempts);
            tracing::warn!(id = %id, attempts = attempts + 1, error = %e, "email delivery failed; will retry");
            outbox::mark_failed(&mut unit, id, &e.to_string(), retry_at).await?;
        }
        unit.commit().await?;
        Ok(())
    }

    /// Marks messages sent, in one unit of work. Those it cannot mark stay
    /// leased, and are sent again once their lease is over.
    async fn mark_sent(&self, sent: Vec<Sent>) {
        if sent.is_empty() {
            return;
        }
        let ids: Vec<&str> = sent.iter().map(|s| s.id.as_str()).collect();
        let marked = async {
            let mut unit = self.db.autocommit().await?;
            outbox::mark_sent(&mut unit, &ids, self.clock.now()).await?;
            unit.commit().await
        };
        match marked.await {
            Ok(()) => {
                for s in &sent {
                    tracing::info!(id = %s.id, template = %s.template, "email sent");
                }
            }
            Err(e) => {
                tracing::warn!(count = ids.len(), error = %e, "outbox: sent messages not recorded; sent again later");
            }
        }
    }
}

/// A message the SMTP server took, not yet marked in the outbox.
struct Sent {
    id: String,
    template: String,
}

/// The next point of the [`GRID`] laid from `started`.
fn next_step(started: Instant) -> Instant {
    let now = Instant::now();
    let into = (now - started).as_nanos() % GRID.as_nanos();
    now + GRID - Duration::from_nanos(into as u64)
}

/// What a send task ended with. One that panicked is logged; its message
/// stays leased, and is retried once the lease is over.
fn ended(done: Result<Option<Sent>, tokio::task::JoinError>) -> Option<Sent> {
    done.unwrap_or_else(|e| {
        tracing::error!(error = %e, "outbox: a send failed unexpectedly; retried later");
        None
    })
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
