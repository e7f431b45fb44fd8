//! SQLite's writer thread.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, and every
//! statement is a round trip to it. When the task that awaits the statement
//! and that worker run on different CPUs, each round trip wakes a CPU that
//! went idle while it waited, and on a virtual machine whose idle CPUs halt
//! that costs tens of microseconds: more than the statement (BENCHMARKS.md).
//! Since the writer runs one unit of work at a time, those wake-ups are what
//! bounds the writes per second.
//!
//! So the writer's connection is opened from a thread pinned to one CPU, and
//! sqlx's worker inherits the pin; the requests that write run on that thread
//! ([`WriterThread::run`]). A round trip is then a switch between two threads
//! of one CPU. Everything else (the readers, hashing, the rest of the server)
//! keeps every CPU.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The thread, with a single-threaded runtime; it ends when this is dropped.
pub(super) struct WriterThread {
    runtime: Handle,
    _stop: oneshot::Sender<()>,
}

impl WriterThread {
    /// Starts the thread, pins it, and runs `open` on it.
    pub(super) async fn start<T, F>(open: F) -> anyhow::Result<(WriterThread, T)>
    where
        F: Future<Output = anyhow::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (started, opened) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                pin_to_this_cpu();
                runtime.block_on(async move {
                    let _ = started.send(open.await.map(|opened| (Handle::current(), opened)));
                    // Runs the writer's tasks until the last handle is dropped.
                    let _ = stopped.await;
                });
            })?;
        let (runtime, opened) = opened.await??;
        let thread = WriterThread {
            runtime,
            _stop: stop,
        };
        Ok((thread, opened))
    }

    /// Runs `task` on the thread, for as long as the thread runs.
    pub(super) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(task)
    }

    /// Runs `work` on the thread and returns what it gives; dropped, the
    /// work is dropped too (at its next await, as a request's handler is
    /// when its client hangs up). `None` if the thread has ended.
    pub(super) async fn run<F>(&self, work: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut task = AbortOnDrop(self.spawn(work));
        match (&mut task.0).await {
            Ok(done) => Some(done),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pins the calling thread to the CPU it runs on; threads it starts inherit
/// the pin. Where that fails the writer still works, only slower.
fn pin_to_this_cpu() {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{sched_getcpu, sched_setaffinity, CpuSet};
        let mut one = CpuSet::new();
        one.set(sched_getcpu());
        if let Err(e) = sched_setaffinity(None, &one) {
            tracing::warn!(error = %e, "the SQLite writer's thread could not be pinned to a CPU");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::WriterThread;

    #[tokio::test]
    async fn work_runs_on_the_pinned_thread_and_is_dropped_with_its_caller() {
        let (thread, ()) = WriterThread::start(async { Ok(()) }).await.unwrap();
        let name = thread
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await;
        assert_eq!(name.flatten().as_deref(), Some("sqlite-writer"));
        #[cfg(target_os = "linux")]
        {
            let cpus = thread
                .run(async { rustix::thread::sched_getaffinity(None).map(|set| set.count()) })
                .await;
            assert_eq!(cpus.map(Result::ok), Some(Some(1)));
        }

        // Work that waits forever, whose caller gives up.
        let (mut release, wait) = oneshot::channel::<()>();
        let cut = tokio::time::timeout(Duration::from_millis(20), thread.run(wait)).await;
        assert!(cut.is_err());
        let dropped = tokio::time::timeout(Duration::from_secs(10), release.closed()).await;
        assert!(dropped.is_ok(), "the work outlived its caller");
    }
}
