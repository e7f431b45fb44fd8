//! `GET /metrics` (SPEC §3.4): counters and histograms in the Prometheus
//! (OpenMetrics) text format. Requests by route and status and their
//! latency; every security event by kind (logins and their outcomes, codes
//! sent, reuse detections, budget hits); refreshes; mail delivery failures;
//! and, read when scraped, the outbox's depth and the hashing queue's.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::audit::Kind;

/// Request latency buckets, in seconds: from a token check to a slow hash.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route's template (`/v1/auth/sessions/{device_id}`), or `unmatched`.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HolderLabels {
    /// `user` or `client`.
    holder: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    events: Family<EventLabels, Counter>,
    refreshes: Family<HolderLabels, Counter>,
    mail_failures: Counter,
    outbox_depth: Gauge,
    hashing: Gauge,
}

/// Whose refresh token was exchanged.
#[derive(Debug, Clone, Copy)]
pub enum Holder {
    User,
    Client,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let latency =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS)
            });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request",
            latency.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "security_events",
            "Security events by kind, as written to the audit log",
            events.clone(),
        );
        let refreshes = Family::<HolderLabels, Counter>::default();
        registry.register(
            "refreshes",
            "Refresh tokens exchanged for new tokens",
            refreshes.clone(),
        );
        let mail_failures = Counter::default();
        registry.register(
            "mail_delivery_failures",
            "Attempts to deliver a message that failed",
            mail_failures.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_depth",
            "Messages waiting to be delivered",
            outbox_depth.clone(),
        );
        let hashing = Gauge::default();
        registry.register(
            "hashing_queue_depth",
            "Password hashes running or waiting",
            hashing.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            events,
            refreshes,
            mail_failures,
            outbox_depth,
            hashing,
        }
    }
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        let route = route.to_owned();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    pub fn event(&self, kind: Kind) {
        let event = kind.as_str();
        self.events.get_or_create(&EventLabels { event }).inc();
    }

    pub fn refreshed(&self, holder: Holder) {
        let holder = match holder {
            Holder::User => "user",
            Holder::Client => "client",
        };
        self.refreshes.get_or_create(&HolderLabels { holder }).inc();
    }

    pub fn mail_failed(&self) {
        self.mail_failures.inc();
    }

    /// The text to serve, with the gauges read just now.
    pub fn render(&self, outbox_depth: i64, hashing: usize) -> String {
        self.outbox_depth.set(outbox_depth);
        self.hashing.set(i64::try_from(hashing).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
