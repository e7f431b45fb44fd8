//! Storage: one query layer over SQLite and PostgreSQL.
//!
//! Queries are written once against sqlx's `Any` driver with `$n` placeholders,
//! which both backends accept; the backends differ only in their migration
//! folders and connection set-up. Times are Unix seconds, flags 0/1 integers.

pub mod api_keys;
pub mod audit_log;
mod batch;
pub mod budgets;
pub mod clients;
pub mod keys;
pub mod outbox;
pub mod refresh;
pub mod retention;
pub mod revocations;
pub mod sessions;
pub mod signing_keys;
pub mod totp;
mod unit;
pub mod users;
mod writer_thread;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use batch::{Batch, Bind};
pub use sqlx::AnyConnection as Conn;
pub use unit::Unit;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The database: a pool for reads (and PostgreSQL's units of work), SQLite's
/// writer, which backend it talks to, and its URL (for the revocation
/// listener's own connection; it may hold a password).
///
/// SQLite has one writer at a time, and a writer that finds the database
/// locked sleeps in its busy handler (1 ms, then 2, 5, 10, … up to 100 ms),
/// which collapses throughput when writers contend. So on SQLite units of
/// work queue in-process, in order, for one writer connection beside the
/// readers, and commit in groups (see [`unit`]); the writer has a thread of
/// its own (see [`writer_thread`]). PostgreSQL's writers run
/// side by side: one pool.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    writer: Option<Arc<unit::Group>>,
    backend: Backend,
    url: Arc<str>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Db {
    /// Connects (creating a SQLite file if needed) without migrating.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let (backend, url, sync) = if url.starts_with("sqlite:") {
            create_private(url)?;
            let (url, sync) = sqlite_sync(url)?;
            (Backend::Sqlite, sqlite_url(&url), sync)
        } else {
            (Backend::Postgres, url.to_owned(), "")
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let url = Arc::from(url);
        let connections = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        // The writer opens first: it turns a new file to WAL before any
        // reader opens (see `sqlite_pragmas`).
        let writer = match backend {
            Backend::Sqlite => {
                let pragmas = format!("PRAGMA journal_mode = WAL; {}", sqlite_pragmas(sync));
                Some(Arc::new(
                    unit::Group::start(options.clone(), pragmas).await?,
                ))
            }
            Backend::Postgres => None,
        };
        let pool = Self::pool_of(backend, &options, sync, connections).await?;
        Ok(Db {
            pool,
            writer,
            backend,
            url,
        })
    }

    async fn pool_of(
        backend: Backend,
        options: &AnyConnectOptions,
        sync: &'static str,
        connections: u32,
    ) -> sqlx::Result<AnyPool> {
        let mut pool = AnyPoolOptions::new()
            .max_connections(connections)
            // sqlx pings each connection as it comes back to the pool; a
            // second ping as it is taken again would cost every request a
            // round trip more. One that died idle fails its first statement.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5));
        if backend == Backend::Sqlite {
            // SQLite's readers are all opened now, from this thread, and
            // kept: one opened later from the writer's thread would inherit
            // its pin to one CPU (see `writer_thread`).
            pool = pool
                .min_connections(connections)
                .max_lifetime(None)
                .idle_timeout(None);
        }
        pool.after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute(sqlite_pragmas(sync).as_str()).await?;
                }
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Reachable within a second, and every embedded migration applied.
    pub async fn ready(&self) -> bool {
        let latest = self.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let applied = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1",
        )
        .bind(true)
        .fetch_one(&self.pool);
        matches!(
            tokio::time::timeout(Duration::from_secs(1), applied).await,
            Ok(Ok(Some(v))) if v >= latest
        )
    }

    /// For reads. Writes go through units of work ([`Db::begin`]), except
    /// the signing key a first start generates.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a unit of work (see [`Db`] for why SQLite's queue in-process).
    pub async fn begin(&self) -> sqlx::Result<Unit> {
        match &self.writer {
            Some(writer) => writer.begin().await,
            None => Ok(self.pool.begin().await?.into()),
        }
    }

    /// A unit of work whose statements need not stand or fall together: on
    /// PostgreSQL a pooled connection on which each statement commits by
    /// itself, saving the round trips of BEGIN and COMMIT (a [`Batch`] is
    /// one statement, so it still commits whole); on SQLite a unit like any
    /// other, since its units cost no round trips.
    pub async fn autocommit(&self) -> sqlx::Result<Unit> {
        match &self.writer {
            Some(writer) => writer.begin().await,
            None => Ok(self.pool.acquire().await?.into()),
        }
    }

    /// Runs `work`, which takes units of work, where they run fastest: on
    /// SQLite, on the writer's own thread (see [`writer_thread`]). `None`
    /// if that thread has stopped.
    pub async fn beside_the_writer<F>(&self, work: F) -> Option<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.thread.run(work).await,
            None => Some(work.await),
        }
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }
}

/// Every SQLite connection's set-up: the busy timeout makes writers of other
/// processes queue instead of failing; see `sqlite_sync` for the synchronous
/// mode. WAL, which lets readers run beside the one writer, is not here: it
/// is kept in the file, and only the writer asks for it, before any reader
/// opens. Turning a new file to WAL takes a lock that the busy timeout cannot
/// wait for, so readers asking for it beside each other failed.
fn sqlite_pragmas(sync: &str) -> String {
    format!("PRAGMA synchronous = {sync}; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")
}

/// How SQLite syncs a commit, taken out of the URL (sqlx does not know the
/// parameter). `FULL`, the default, syncs every commit: not even a power cut
/// loses one (units of work that queue together share a commit, see
/// [`unit`]). `?synchronous=normal` syncs only at
/// checkpoints: a crash of the process still loses nothing, but a power cut
/// or a crash of the machine may undo the last commits (a logout, a password
/// change) while leaving the database consistent.
fn sqlite_sync(url: &str) -> anyhow::Result<(String, &'static str)> {
    let Some((path, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), "FULL"));
    };
    let mut sync = "FULL";
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("synchronous=") {
            Some(value) if value.eq_ignore_ascii_case("full") => sync = "FULL",
            Some(value) if value.eq_ignore_ascii_case("normal") => sync = "NORMAL",
            Some(value) => {
                anyhow::bail!("synchronous={value} in the SQLite URL: expected `full` or `normal`")
            }
            None => kept.push(pair),
        }
    }
    let url = match kept.is_empty() {
        true => path.to_owned(),
        false => format!("{path}?{}", kept.join("&")),
    };
    Ok((url, sync))
}

/// SQLite URLs create their file unless the operator chose a mode.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Creates the SQLite file readable by its owner only: SQLite gives its
/// `-wal` and `-shm` files the database file's permissions. A file an older
/// version left readable by others is made private.
fn create_private(url: &str) -> std::io::Result<()> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

fn is_postgres(conn: &Conn) -> bool {
    conn.backend_name().eq_ignore_ascii_case("postgresql")
}

/// One statement's text that runs `statements` in turn, in one round trip:
/// on SQLite they are sent together, on PostgreSQL all but the last become
/// data-modifying CTEs. They share one numbering of `$n` placeholders. Rows
/// come back from every statement on SQLite, from the last on PostgreSQL
/// (where the others' are for the statements after them, as `s0`, `s1`, …).
/// On PostgreSQL each sees the database as it was before the statement, so
/// none may depend on another's changes, except through a foreign key: those
/// are checked once the whole statement has run.
fn together(conn: &Conn, statements: &[&str]) -> String {
    let Some((last, before)) = statements.split_last() else {
        return String::new();
    };
    if !is_postgres(conn) || before.is_empty() {
        return statements.join(";\n");
    }
    let ctes: Vec<String> = before
        .iter()
        .enumerate()
        .map(|(n, statement)| format!("s{n} AS ({statement})"))
        .collect();
    format!("WITH {} {last}", ctes.join(", "))
}

/// `count` numbered placeholders from `$first` on, for an `IN (…)` list.
fn placeholders(first: usize, count: usize) -> String {
    let numbered: Vec<String> = (first..first + count).map(|n| format!("${n}")).collect();
    numbered.join(", ")
}

/// Which unique constraint a failed insert hit, if that is why it failed.
pub fn unique_violation(e: &sqlx::Error) -> Option<&'static str> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    let text = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
    ["username", "email"]
        .into_iter()
        .find(|field| text.contains(field))
        .or(Some("unknown"))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::{sqlite_sync, Db};

    /// Everything logged, as text.
    #[derive(Clone, Default)]
    struct Logged(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Logged {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A new file starts in rollback-journal mode, and a change to WAL takes
    /// a lock SQLite's busy timeout cannot wait for: if every connection of
    /// the pool asked for WAL as it opened, those opening beside the first
    /// failed their set-up (sqlx logs an error and retries). It happened in
    /// a few starts of the CLI in a hundred.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_new_sqlite_file_opens_without_a_failed_connection() {
        let logged = Logged::default();
        let writer = logged.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || writer.clone())
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let dir = tempfile::tempdir().unwrap();
        for n in 0..100 {
            let url = format!("sqlite://{}/{n}.db", dir.path().display());
            let db = Db::connect(&url).await.unwrap();
            db.migrate().await.unwrap();
            // The pool opens its other readers in the background.
            while db.pool.size() < 8 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(db.pool())
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            db.close().await;
        }
        let logged = String::from_utf8(logged.0.lock().unwrap().clone()).unwrap();
        assert!(logged.is_empty(), "{logged}");
    }

    #[test]
    fn the_sqlite_url_chooses_how_commits_are_synced() {
        let sync = |url| sqlite_sync(url).map_err(|e| e.to_string());
        assert_eq!(sync("sqlite://a.db"), Ok(("sqlite://a.db".into(), "FULL")));
        assert_eq!(
            sync("sqlite://a.db?synchronous=normal"),
            Ok(("sqlite://a.db".into(), "NORMAL"))
        );
        assert_eq!(
            sync("sqlite://a.db?mode=rwc&synchronous=FULL"),
            Ok(("sqlite://a.db?mode=rwc".into(), "FULL"))
        );
        let refused = sync("sqlite://a.db?synchronous=off").unwrap_err();
        assert!(refused.contains("expected `full` or `normal`"), "{refused}");
    }
}
