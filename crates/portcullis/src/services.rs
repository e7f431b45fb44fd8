//! Everything a request needs, built once at start, and the one way a flow
//! runs a unit of work against the store.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::Any;

use crate::audit::{self, Event};
use crate::clock::{Clock, Timestamp};
use crate::config::Config;
use crate::crypto::Secrets;
use crate::mail::{Handoff, Mailer, Message};
use crate::metrics::Metrics;
use crate::password::Hasher;
use crate::revocations::Revocations;
use crate::store::audit_log::NewEntry;
use crate::store::{api_keys, Batch, Conn, Db, Unit};
use crate::tokens::Tokens;

pub struct Services {
    pub config: Config,
    pub db: Db,
    pub secrets: Arc<Secrets>,
    pub tokens: Tokens,
    pub hasher: Hasher,
    pub mailer: Mailer,
    pub clock: Arc<dyn Clock>,
    /// When API keys were last used, written in batches.
    pub key_usage: Arc<api_keys::Usage>,
    pub metrics: Arc<Metrics>,
    /// Revoked sessions and remembered API keys, kept current from the store.
    pub revocations: Arc<Revocations>,
}

impl Services {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A connection for reads outside a unit of work.
    pub async fn read(&self) -> sqlx::Result<PoolConnection<Any>> {
        self.db.pool().acquire().await
    }

    /// Starts a unit of work: one transaction, in which mail may be queued.
    pub async fn begin(&self) -> sqlx::Result<Work<'_>> {
        Ok(self.work(self.db.begin().await?))
    }

    /// Starts a unit of work whose statements need not stand or fall
    /// together: on PostgreSQL each commits by itself, and the writes kept
    /// for the end (see [`Work`]) go as one statement, whole or not at all.
    pub async fn autocommit(&self) -> sqlx::Result<Work<'_>> {
        Ok(self.work(self.db.autocommit().await?))
    }

    fn work(&self, tx: Unit) -> Work<'_> {
        Work {
            tx,
            s: self,
            later: Batch::default(),
            handoffs: Vec::new(),
            ends_access: false,
        }
    }
}

/// A transaction that knows about the mail it queued and the access it
/// ended: committing it hands the mail to the worker, and applies the
/// revocations on this instance before the flow answers. Writes that need no
/// answer (audit rows, mail, those flows add to [`Work::later`]) wait for the
/// commit and go with it in one round trip, after every statement sent
/// directly.
pub struct Work<'s> {
    tx: Unit,
    s: &'s Services,
    later: Batch,
    handoffs: Vec<Handoff>,
    ends_access: bool,
}

impl Work<'_> {
    /// Queues a message, sent once this unit of work commits.
    pub fn mail(&mut self, to: &str, message: Message<'_>, now: Timestamp) -> anyhow::Result<()> {
        self.queue(to, message, false, now)
    }

    /// Stores a message that is never sent, at the cost of a real one: the
    /// decoy of a message to an address with no account. Committing hands
    /// the mail worker an empty message as a real one is handed over: the
    /// handoff is part of what the answer costs.
    pub fn withhold(
        &mut self,
        to: &str,
        message: Message<'_>,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        self.queue(to, message, true, now)
    }

    fn queue(
        &mut self,
        to: &str,
        message: Message<'_>,
        withheld: bool,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let mailer = &self.s.mailer;
        let handoff = mailer.enqueue(&mut self.later, to, message, withheld, now)?;
        self.handoffs.extend(handoff);
        Ok(())
    }

    /// Records a security event with the change it belongs to.
    pub fn audit(&mut self, event: Event<'_>, now: Timestamp) {
        self.s.metrics.event(event.kind);
        audit::write(&mut self.later, event, now);
    }

    /// Writes sent at commit (see [`Work`]); on PostgreSQL they run as one
    /// statement, so none may touch a row another touches.
    pub fn later(&mut self) -> &mut Batch {
        &mut self.later
    }

    /// Counts and logs an event that a store function writes in the same
    /// statement as the change it records; returns the row to write.
    pub fn announce<'a>(&self, event: Event<'a>, now: Timestamp) -> NewEntry<'a> {
        self.s.metrics.event(event.kind);
        audit::log(&event);
        audit::entry(&event, now)
    }

    /// Marks this unit of work as revoking sessions or keys (the store's
    /// triggers log them): once committed, this instance refuses them at once.
    pub fn ends_access(&mut self) {
        self.ends_access = true;
    }

    pub async fn commit(mut self) -> sqlx::Result<()> {
        std::mem::take(&mut self.later).run(&mut self.tx).await?;
        self.tx.commit().await?;
        for handoff in self.handoffs {
            handoff.send();
        }
        if self.ends_access {
            // Committed already: a failed read is retried by the follower within a second.
            if let Err(e) = self.s.revocations.catch_up(&self.s.db, self.s.now()).await {
                tracing::warn!(error = %e, "revocations not applied at once");
            }
        }
        Ok(())
    }
}

impl Deref for Work<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.tx
    }
}

impl DerefMut for Work<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.tx
    }
}
