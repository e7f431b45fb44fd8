//! Units of work. On PostgreSQL each is a transaction of the pool's. On
//! SQLite they take the one writer connection in turn, each in a savepoint of
//! a shared transaction, and commit in groups: SQLite syncs the disk once per
//! commit, so a group of units shares one sync instead of paying one each.
//!
//! A unit that commits leaves its savepoint to be released with the next
//! statement the writer sends (the next unit's savepoint, or the group's
//! commit, which ends it too), hands the connection to the next unit in the
//! queue, and waits until its group is committed: only then does its flow
//! answer. A unit dropped before it commits is rolled back to
//! its savepoint by whoever takes the connection next. The committer task
//! queues for the connection behind the units already waiting, so a group is
//! every unit that queued while the one before it ran; then it commits. The
//! queue is FIFO (tokio's mutex is fair), and a group is never longer than
//! the queue was when the committer joined it.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, ConnectOptions, Executor, Transaction};
use tokio::sync::{watch, Mutex, Notify, OwnedMutexGuard};

use super::writer_thread::WriterThread;

/// How long a unit waits for the connection before it gives up, as a pool's
/// acquire would.
const ACQUIRE: Duration = Duration::from_secs(5);

/// How a group's commit ended: `None` until it has.
type Outcome = Option<Result<(), Arc<str>>>;

/// One unit of work: use it as a connection, then [`Unit::commit`]; dropped
/// uncommitted, it leaves no trace.
pub struct Unit(Inner);

enum Inner {
    Transaction(Transaction<'static, Any>),
    /// Each statement commits by itself (see [`super::Db::autocommit`]).
    Autocommit(PoolConnection<Any>),
    Grouped(Grouped),
}

impl From<Transaction<'static, Any>> for Unit {
    fn from(tx: Transaction<'static, Any>) -> Self {
        Unit(Inner::Transaction(tx))
    }
}

impl From<PoolConnection<Any>> for Unit {
    fn from(conn: PoolConnection<Any>) -> Self {
        Unit(Inner::Autocommit(conn))
    }
}

impl Unit {
    /// Commits; on SQLite, returns once the unit's group is committed.
    pub async fn commit(self) -> sqlx::Result<()> {
        match self.0 {
            Inner::Transaction(tx) => tx.commit().await,
            Inner::Autocommit(_) => Ok(()),
            Inner::Grouped(unit) => unit.commit().await,
        }
    }
}

impl Deref for Unit {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match &self.0 {
            Inner::Transaction(tx) => tx,
            Inner::Autocommit(conn) => conn,
            Inner::Grouped(unit) => &unit.writer.conn,
        }
    }
}

impl DerefMut for Unit {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            Inner::Transaction(tx) => tx,
            Inner::Autocommit(conn) => conn,
            Inner::Grouped(unit) => &mut unit.writer.conn,
        }
    }
}

/// SQLite's writer: the connection, the committer's wake-up, and the thread
/// they run best on, which ends once the last [`Db`](super::Db) is gone.
pub(super) struct Group {
    writer: Arc<Mutex<Writer>>,
    wake: Arc<Notify>,
    pub(super) thread: WriterThread,
}

struct Writer {
    conn: AnyConnection,
    /// The open group's outcome, for its units to wait on; `None` when no
    /// transaction is open.
    open: Option<watch::Sender<Outcome>>,
    savepoint: Savepoint,
    closed: bool,
}

impl Group {
    /// Opens the writer's connection on its own thread (see
    /// [`writer_thread`](super::writer_thread)), and starts the committer there.
    pub(super) async fn start(
        options: AnyConnectOptions,
        pragmas: String,
    ) -> anyhow::Result<Group> {
        let open = async move {
            let mut conn = options.connect().await?;
            conn.execute(pragmas.as_str()).await?;
            Ok(conn)
        };
        let (thread, conn) = WriterThread::start(open).await?;
        let writer = Arc::new(Mutex::new(Writer {
            conn,
            open: None,
            savepoint: Savepoint::None,
            closed: false,
        }));
        let wake = Arc::new(Notify::new());
        thread.spawn(commit_groups(Arc::downgrade(&writer), wake.clone()));
        Ok(Group {
            writer,
            wake,
            thread,
        })
    }

    pub(super) async fn begin(&self) -> sqlx::Result<Unit> {
        let queued = self.writer.clone().lock_owned();
        let writer = tokio::time::timeout(ACQUIRE, queued)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        let unit = Grouped {
            writer,
            _wake: WakeOnDrop(self.wake.clone()),
        };
        Ok(Unit(Inner::Grouped(uncancelled(unit.open()).await?)))
    }

    /// Commits the open group, then refuses new units.
    pub(super) async fn close(&self) {
        let mut writer = self.writer.lock().await;
        writer.commit().await;
        writer.closed = true;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The committer finds the writer gone and ends.
        self.wake.notify_one();
    }
}

/// The last unit's savepoint.
#[derive(PartialEq)]
enum Savepoint {
    None,
    /// Open: held by a unit, or left by one dropped uncommitted.
    Held,
    /// Its unit committed; released on the writer's next trip.
    Done,
}

/// A unit holding the writer; dropped, it wakes the committer.
struct Grouped {
    writer: OwnedMutexGuard<Writer>,
    _wake: WakeOnDrop,
}

/// Wakes the committer when the unit ends, committed or not (dropped).
struct WakeOnDrop(Arc<Notify>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

impl Grouped {
    /// Opens the unit's savepoint, and the group's transaction first if none is.
    async fn open(mut self) -> sqlx::Result<Grouped> {
        let writer = &mut self.writer;
        if writer.closed {
            return Err(sqlx::Error::PoolClosed);
        }
        writer.settle().await;
        // In the same trip: the group's transaction first if none is open, or
        // the release of the last unit's savepoint. IMMEDIATE: take the write
        // lock now, waiting out other processes.
        let opening = match (&writer.open, &writer.savepoint) {
            (None, _) => "BEGIN IMMEDIATE; SAVEPOINT unit",
            (Some(_), Savepoint::Done) => "RELEASE unit; SAVEPOINT unit",
            (Some(_), _) => "SAVEPOINT unit",
        };
        if let Err(e) = writer.conn.execute(opening).await {
            writer.abort(&e).await;
            return Err(e);
        }
        writer.open.get_or_insert_with(|| watch::channel(None).0);
        writer.savepoint = Savepoint::Held;
        Ok(self)
    }

    async fn commit(self) -> sqlx::Result<()> {
        let mut outcome = self.release()?;
        let committed = outcome.wait_for(Option::is_some).await;
        match committed.as_deref() {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(why))) => Err(lost(why)),
            Ok(None) | Err(_) => Err(lost("the writer closed")),
        }
    }

    /// Leaves the unit's savepoint to its group, whose outcome it returns.
    /// Then the next unit may run, and the committer commits once none waits.
    fn release(self) -> sqlx::Result<watch::Receiver<Outcome>> {
        let Grouped { mut writer, _wake } = self;
        writer.savepoint = Savepoint::Done;
        match &writer.open {
            Some(group) => Ok(group.subscribe()),
            None => Err(lost("no group was open")),
        }
    }
}

/// Runs `step` to its end even if the request awaiting it is dropped: a
/// control statement cut off half-way would leave the writer's state unknown
/// (a savepoint opened, or a transaction begun, or not).
async fn uncancelled<T: Send + 'static>(
    step: impl Future<Output = sqlx::Result<T>> + Send + 'static,
) -> sqlx::Result<T> {
    match tokio::spawn(step).await {
        Ok(done) => done,
        Err(e) => Err(lost(&e.to_string())),
    }
}

impl Writer {
    /// Rolls back the savepoint of a unit that was dropped uncommitted.
    async fn settle(&mut self) {
        if self.savepoint != Savepoint::Held {
            return;
        }
        match self.conn.execute("ROLLBACK TO unit; RELEASE unit").await {
            Ok(_) => self.savepoint = Savepoint::None,
            Err(e) => self.abort(&e).await,
        }
    }

    /// Commits the open group, if any, and tells its units how it went.
    /// COMMIT ends the last unit's savepoint with the transaction.
    async fn commit(&mut self) {
        self.settle().await;
        let Some(group) = self.open.take() else {
            return;
        };
        match self.conn.execute("COMMIT").await {
            Ok(_) => {
                self.savepoint = Savepoint::None;
                group.send_replace(Some(Ok(())));
            }
            Err(e) => {
                self.open = Some(group);
                self.abort(&e).await;
            }
        }
    }

    /// Gives up the open group after `e`: its transaction is rolled back (if
    /// SQLite has not already), and its units are told it failed.
    async fn abort(&mut self, e: &sqlx::Error) {
        tracing::error!(error = %e, "a group of SQLite units of work was rolled back");
        if let Err(e) = self.conn.execute("ROLLBACK").await {
            tracing::debug!(error = %e, "rollback after a failed group");
        }
        self.savepoint = Savepoint::None;
        if let Some(group) = self.open.take() {
            group.send_replace(Some(Err(e.to_string().into())));
        }
    }
}

/// What a unit hears when its group was not committed: the database is
/// unavailable, and the client may retry.
fn lost(why: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!(
        "unit of work not committed: {why}"
    )))
}

/// The committer: woken whenever a unit ends, it queues for the writer behind
/// the units already waiting, then commits their group.
async fn commit_groups(writer: Weak<Mutex<Writer>>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        let mut writer = writer.lock().await;
        if writer.closed {
            return;
        }
        writer.commit().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Db;

    async fn db(dir: &tempfile::TempDir) -> Db {
        let url = format!("sqlite://{}", dir.path().join("units.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        db
    }

    async fn insert(conn: &mut sqlx::AnyConnection, bucket: &str) -> sqlx::Result<()> {
        sqlx::query("INSERT INTO budgets (bucket, window_start, spent) VALUES ($1, 0, 0)")
            .bind(bucket)
            .execute(conn)
            .await
            .map(drop)
    }

    async fn stored(db: &Db) -> Vec<String> {
        sqlx::query_scalar("SELECT bucket FROM budgets ORDER BY bucket")
            .fetch_all(db.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn of_units_sharing_a_group_only_the_committed_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir).await;
        let units = (0..40).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut unit = db.begin().await?;
                insert(&mut unit, &format!("b{n:02}")).await?;
                match n % 4 {
                    // Dropped uncommitted, with a write made.
                    0 => Ok(false),
                    // Failed half-way: its first write must go too.
                    1 => {
                        insert(&mut unit, &format!("b{n:02}")).await?;
                        Ok(false)
                    }
                    _ => unit.commit().await.map(|()| true),
                }
            })
        });
        let mut committed = Vec::new();
        for (n, unit) in units.collect::<Vec<_>>().into_iter().enumerate() {
            match unit.await.unwrap() {
                Ok(true) => committed.push(format!("b{n:02}")),
                Ok(false) => {}
                Err(e) => assert!(n % 4 == 1, "unit {n}: {e}"),
            }
        }
        assert_eq!(committed.len(), 20);
        assert_eq!(stored(&db).await, committed);
        db.close().await;
        assert!(db.begin().await.is_err(), "a closed database takes no unit");
    }

    #[tokio::test]
    async fn a_unit_is_not_acknowledged_when_its_group_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir).await;
        let mut first = db.begin().await.unwrap();
        insert(&mut first, "first").await.unwrap();
        // The second unit queues for the writer before the first commits, so
        // both are in one group.
        let second = tokio::spawn({
            let db = db.clone();
            async move {
                let mut unit = db.begin().await?;
                // Ends the group's transaction under the units' feet.
                sqlx::query("ROLLBACK").execute(&mut *unit).await?;
                unit.commit().await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let first = first.commit().await;
        assert!(first.is_err(), "the first unit's work is lost: {first:?}");
        assert!(second.await.unwrap().is_err());
        assert!(stored(&db).await.is_empty());
        // The writer goes on with a new group.
        let mut third = db.begin().await.unwrap();
        insert(&mut third, "third").await.unwrap();
        third.commit().await.unwrap();
        assert_eq!(stored(&db).await, ["third"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn units_cut_off_half_way_leave_the_writer_sound() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(&dir).await;
        let steady: Vec<_> = (0..8)
            .map(|task| {
                let db = db.clone();
                tokio::spawn(async move {
                    for n in 0..20 {
                        let mut unit = db.begin().await?;
                        insert(&mut unit, &format!("s{task}-{n:02}")).await?;
                        unit.commit().await?;
                    }
                    sqlx::Result::<()>::Ok(())
                })
            })
            .collect();
        // Requests that hang up at any point: queued, opening, writing, committing.
        for n in 0..1500u64 {
            let db = db.clone();
            let cut = Duration::from_micros(n % 40 * 25);
            let _ = tokio::time::timeout(cut, async move {
                let mut unit = db.begin().await?;
                insert(&mut unit, &format!("c{n:04}")).await?;
                unit.commit().await?;
                sqlx::Result::<()>::Ok(())
            })
            .await;
        }
        for task in steady {
            task.await
                .unwrap()
                .expect("no unit of a steady request fails");
        }
        let kept = stored(&db).await;
        assert_eq!(kept.iter().filter(|b| b.starts_with('s')).count(), 160);
    }
}
