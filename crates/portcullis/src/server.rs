//! Serving HTTP/1.1 with the limits that keep slow or numerous clients from
//! starving the server (SPEC §6): a deadline for each request's head and one
//! for the whole request, and a cap on connections that still leaves room for
//! health probes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::http::{Admission, Api};

/// Connections taken past the cap, to answer health probes on them.
const PROBE_CONNECTIONS: usize = 32;
/// A probe sends its request at once; an over-cap connection that does not
/// is closed after this.
const PROBE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// What the server allows each client. `Default` is what `portcullis serve`
/// uses; tests shorten them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's head must arrive within this; a connection idle for as long is closed.
    pub header_timeout: Duration,
    /// Reading the body and answering must end within this; then the answer
    /// is 408 and the connection closes.
    pub request_timeout: Duration,
    /// Connections served at once; past them, only `/healthz` and `/readyz`
    /// are answered (a few more connections, one request each), and further
    /// connections are closed as soon as they are accepted.
    pub max_connections: usize,
    /// After a shutdown signal, requests in flight get this long to finish;
    /// the connections still open then are closed.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            drain: Duration::from_secs(10),
        }
    }
}

/// Descriptors the server holds besides its connections: the listener, the
/// database pool, mail and log files.
const OTHER_DESCRIPTORS: u64 = 128;

/// Serves `api` until `shutdown` completes, then stops accepting and
/// waits for the requests in flight, at most [`Limits::drain`].
pub async fn serve(
    listener: TcpListener,
    api: Api,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    make_room_for(limits.max_connections + PROBE_CONNECTIONS);
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "portcullis listening");
    }
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let probes = Arc::new(Semaphore::new(PROBE_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (place, probes_only) = match connections.clone().try_acquire_owned() {
            Ok(place) => (place, false),
            Err(_) => match probes.clone().try_acquire_owned() {
                Ok(place) => (place, true),
                // Dropping the stream closes it: no descriptor is held for it.
                Err(_) => continue,
            },
        };
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new());
        if probes_only {
            builder
                .header_read_timeout(limits.header_timeout.min(PROBE_HEADER_TIMEOUT))
                .keep_alive(false);
        } else {
            builder.header_read_timeout(limits.header_timeout);
        }
        let (api, request_timeout) = (api.clone(), limits.request_timeout);
        let service = hyper::service::service_fn(move |request| {
            answer(api.clone(), request, peer, probes_only, request_timeout)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection closed");
            }
            drop(place);
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; finishing the requests in flight");
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(drain = ?limits.drain, "requests still in flight after the drain time were cut off");
    }
}

/// Hands the request to the API with what its connection allows it; the
/// API enforces that, so its refusals carry a trace id.
async fn answer(
    api: Api,
    request: Request<Incoming>,
    peer: SocketAddr,
    probes_only: bool,
    deadline: Duration,
) -> Result<Response, Infallible> {
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(ConnectInfo(peer));
    request.extensions_mut().insert(Admission {
        probes_only,
        deadline,
    });
    Ok(api.answer(request).await)
}

/// Raises the soft limit on open files to what `connections` need, as far
/// as the hard limit allows: the common default of 1,024 would run out
/// before the cap, and then the probes' reserve could not be reached.
fn make_room_for(connections: usize) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let needed = connections as u64 + OTHER_DESCRIPTORS;
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current.is_some_and(|current| current < needed) {
            let allowed = limit.maximum.map_or(needed, |maximum| maximum.min(needed));
            limit.current = Some(allowed);
            if setrlimit(Resource::Nofile, limit).is_err() || allowed < needed {
                tracing::warn!(
                    needed,
                    allowed,
                    "the open-file limit is below what the connection cap needs: raise it (LimitNOFILE)"
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = connections;
}

/// A handshake the client gave up on is its business; anything else (out of
/// descriptors, say) is logged, and accepting pauses briefly instead of spinning.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
