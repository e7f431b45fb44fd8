//! Building and running the server: what `portcullis serve` and the tests start.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::Secrets;
use crate::mail::{Handed, Mailer, Templates, Transport, Worker};
use crate::metrics::Metrics;
use crate::password::{Gauge, Hasher};
use crate::revocations::{self, Revocations};
use crate::server::{self, Limits};
use crate::services::Services;
use crate::store::{api_keys, retention, Db};
use crate::tokens::Tokens;

pub struct App {
    listener: TcpListener,
    services: Arc<Services>,
    worker: Worker,
    /// The messages handed to the worker as their units of work commit.
    handed: mpsc::Receiver<Option<Handed>>,
    limits: Limits,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Connects and migrates the database, loads or creates the keys, binds
    /// the listener (port 0 picks a free one).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        let db = Db::connect(&config.database_url)
            .await
            .context("cannot connect to the database")?;
        db.migrate()
            .await
            .context("cannot apply database migrations")?;
        let secrets = Arc::new(Secrets::load(&config)?);
        let access_ttl = config.access_ttl.as_secs() as i64;
        let tokens = Tokens::load(
            &db,
            &secrets,
            &config.issuer,
            &config.audience,
            access_ttl,
            clock.now(),
        )
        .await?;
        let hasher = Hasher::new(config.hash_concurrency, config.hash_queue)?;
        let templates = Templates::load(config.template_dir.as_deref())?;
        let (mailer, handed) = Mailer::new(templates, secrets.clone(), config.issuer.clone());
        let metrics = Arc::new(Metrics::default());
        let token_ttl = config.access_ttl.max(config.client_access_ttl).as_secs() as i64;
        let revocations = Arc::new(Revocations::load(&db, token_ttl, clock.now()).await?);
        let worker = Worker {
            db: db.clone(),
            secrets: secrets.clone(),
            transport: Transport::from_config(&config)?,
            from: config.mail_from.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let services = Arc::new(Services {
            config,
            db,
            secrets,
            tokens,
            hasher,
            mailer,
            clock,
            key_usage: Default::default(),
            metrics,
            revocations,
        });
        Ok(App {
            listener,
            services,
            worker,
            handed,
            limits: Limits::default(),
        })
    }

    /// Serves with other connection limits than the defaults (tests shorten them).
    pub fn with_limits(self, limits: Limits) -> App {
        App { limits, ..self }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// How many password hashes run at once, and the most so far.
    pub fn hashing(&self) -> Arc<Gauge> {
        self.services.hasher.gauge()
    }

    /// Serves until `shutdown` completes, then drains requests and stops the
    /// mail worker (each within the drain time), writes what is pending and
    /// closes the pool.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let api = crate::http::Api::new(self.services.clone())?;
        let (stop, stopped) = watch::channel(false);
        let retention = tokio::spawn(retention::run(
            self.services.db.clone(),
            self.services.clock.clone(),
            self.services.config.unverified_ttl,
            stopped.clone(),
        ));
        let key_usage = tokio::spawn(api_keys::write_usage(
            self.services.key_usage.clone(),
            self.services.db.clone(),
            self.services.config.api_key_usage_flush,
            stopped.clone(),
        ));
        let keys = tokio::spawn(keep_keys_current(self.services.clone(), stopped.clone()));
        let revocations = tokio::spawn(revocations::follow(
            self.services.revocations.clone(),
            self.services.db.clone(),
            self.services.clock.clone(),
            stopped.clone(),
        ));
        let worker = tokio::spawn(self.worker.run(self.handed, stopped));
        let drain = self.limits.drain;
        server::serve(self.listener, api, self.limits, shutdown).await;
        let _ = stop.send(true);
        // The mail worker sends what was handed to it; a message still
        // unsent then stays leased in the outbox and is sent after a restart.
        if tokio::time::timeout(drain, worker).await.is_err() {
            tracing::warn!("the mail worker did not stop in time; its messages are retried later");
        }
        let _ = retention.await;
        let _ = key_usage.await;
        let _ = keys.await;
        let _ = revocations.await;
        self.services.db.close().await;
        Ok(())
    }
}

/// How often the signing keys are re-read: a key rotated on any instance
/// signs here, and verifies here, within this long.
const KEY_RELOAD: Duration = Duration::from_secs(2);

/// Re-reads the signing keys every [`KEY_RELOAD`] until `stop` turns true.
async fn keep_keys_current(s: Arc<Services>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(KEY_RELOAD) => {}
            _ = stop.changed() => return,
        }
        match s.tokens.reload(&s.db, &s.secrets, s.now()).await {
            Ok(true) => tracing::info!("signing keys changed; reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "signing keys not reloaded; will retry"),
        }
    }
}
