//! The HTTP API: one router per resource, each route declared with its
//! OpenAPI operation, and the request middleware.

mod api_keys;
mod auth;
mod check;
mod clients;
mod dev_login;
pub mod extract;
mod openapi;
mod ops;
mod password;
mod responses;
mod sessions;
mod two_factor;

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower::ServiceExt;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, RequestContext, REQUEST};
use extract::AppState;

/// Bodies over this are refused with 413 (SPEC §6).
pub const BODY_LIMIT: usize = 64 * 1024;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API as served: forward-auth's lane, then the router.
#[derive(Clone)]
pub struct Api {
    router: Router,
    state: AppState,
}

impl Api {
    pub fn new(state: AppState) -> anyhow::Result<Api> {
        let router = router(state.clone())?;
        Ok(Api { router, state })
    }

    /// Answers a request. Forward-auth is asked about every request of the
    /// team's API and needs nothing of the router and its layers, which cost
    /// more than the check itself (BENCHMARKS.md): its requests go in a lane
    /// of their own, in the same context as every other request.
    pub async fn answer(self, request: Request) -> Response {
        if check::in_lane(&request) {
            let lane = |request| check::answer(self.state.clone(), request);
            return in_context(&self.state, request, Some(check::PATH), lane).await;
        }
        match self.router.oneshot(request).await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        }
    }
}

/// Every route of the API, and the OpenAPI document built from them once.
fn router(state: AppState) -> anyhow::Result<Router> {
    let mut writes = OpenApiRouter::new()
        .merge(auth::router())
        .merge(sessions::writes())
        .merge(password::router())
        .merge(two_factor::router())
        .merge(api_keys::writes())
        .merge(clients::writes());
    // Off unless configured: then it does not exist, in the API or its document.
    if state.config.dev_login {
        writes = writes.merge(dev_login::router());
    }
    let writes = writes.route_layer(middleware::from_fn_with_state(
        state.clone(),
        beside_the_writer,
    ));
    let api = OpenApiRouter::with_openapi(openapi::base())
        .merge(writes)
        .merge(sessions::reads())
        .merge(api_keys::reads())
        .merge(clients::reads())
        .merge(check::router())
        .merge(ops::router());
    let (router, mut doc) = api.split_for_parts();
    // After routing, so that the route's template is known to the metrics.
    let router = router.route_layer(middleware::from_fn(name_the_route));
    openapi::add_common_answers(&mut doc);
    Ok(router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(Extension(openapi::Document::new(&doc)?))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state))
}

/// Hands the matched route's template to the request middleware, which
/// counts the answer under it.
async fn name_the_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Runs the handler of a request that writes where units of work run
/// fastest (see [`crate::store::Db::beside_the_writer`]), in the request's
/// span and context.
async fn beside_the_writer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let context = REQUEST.try_with(RequestContext::clone);
    let handler = async move {
        match context {
            Ok(context) => REQUEST.scope(context, next.run(req)).await,
            Err(_) => next.run(req).await,
        }
    };
    match s.db.beside_the_writer(handler.in_current_span()).await {
        Some(response) => response,
        None => ApiError::Unavailable("database closed").into_response(),
    }
}

/// What the connection a request came on allows it, set by the server.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// Past the connection cap: only the health probes are answered.
    pub probes_only: bool,
    /// Reading the body and answering must end within this.
    pub deadline: Duration,
}

/// Gives every request a trace id (in errors, in `X-Request-Id` and in its
/// log line) and the server's clock for the errors' timestamps, holds it to
/// its connection's [`Admission`], and logs one line per request.
///
/// Forward-auth is asked about every request of the team's API, which the
/// proxy in front logs already: its requests are logged at `debug`.
async fn request_context(State(s): State<AppState>, req: Request, next: Next) -> Response {
    in_context(&s, req, None, |req| next.run(req)).await
}

/// What [`request_context`] does, around `answer`. The request's route, for
/// the metrics, is `route` or else the one the router matched.
async fn in_context<F, A>(
    s: &AppState,
    req: Request,
    route: Option<&'static str>,
    answer: F,
) -> Response
where
    F: FnOnce(Request) -> A,
    A: Future<Output = Response>,
{
    let trace_id = trace_id();
    let forward_auth = req.uri().path() == check::PATH;
    let span = if forward_auth {
        tracing::debug_span!("request", trace_id = %trace_id, method = %req.method(), path = check::PATH)
    } else {
        tracing::info_span!("request", trace_id = %trace_id, method = %req.method(), path = %req.uri().path())
    };
    let started = Instant::now();
    let context = RequestContext {
        trace_id: trace_id.clone(),
        clock: s.clock.clone(),
    };
    let admission = req.extensions().get::<Admission>().copied();
    let admitted = async move {
        let Some(admission) = admission else {
            return answer(req).await;
        };
        if admission.probes_only && !matches!(req.uri().path(), "/healthz" | "/readyz") {
            return ApiError::Unavailable("connection limit reached").into_response();
        }
        match tokio::time::timeout(admission.deadline, answer(req)).await {
            Ok(response) => response,
            Err(_) => {
                let mut response = ApiError::RequestTimeout.into_response();
                let close = HeaderValue::from_static("close");
                response.headers_mut().insert(header::CONNECTION, close);
                response
            }
        }
    };
    let mut response = REQUEST
        .scope(context, admitted.instrument(span.clone()))
        .await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let latency_ms = took.as_millis() as u64;
    span.in_scope(|| {
        if forward_auth {
            tracing::debug!(status, latency_ms, "request")
        } else {
            tracing::info!(status, latency_ms, "request")
        }
    });
    let matched = response.extensions().get::<MatchedPath>();
    let route = route.or(matched.map(MatchedPath::as_str));
    let route = route.unwrap_or("unmatched");
    s.metrics.request(route, status, took);
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

/// A request's trace id: 96 bits of a keyed hash of a counter (SipHash, its
/// key drawn from the system once per process). Unique, unpredictable, and
/// telling nothing of how many requests came before, at no system call.
fn trace_id() -> String {
    static KEY: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut bits = [0; 12];
    bits[..8].copy_from_slice(&KEY.hash_one((n, 0u8)).to_le_bytes());
    bits[8..].copy_from_slice(&KEY.hash_one((n, 1u8)).to_le_bytes()[..4]);
    format!("req_{}", crate::crypto::hex(&bits))
}
