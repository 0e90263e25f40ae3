//! Prometheus metrics of the server itself (`GET /metrics`).

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub protocol: &'static str,
    /// `accepted`, or why not: `duplicate`, `session_closed`, `invalid`, `overloaded`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BeaconLabels {
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
}

/// Every metric the server exports.
pub struct Telemetry {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub events: Family<EventLabels, Counter>,
    pub commit_seconds: Histogram,
    pub commit_group_size: Histogram,
    pub fsync_seconds: Histogram,
    pub queue_depth: Gauge,
    pub open_sessions: Gauge,
    pub beacon_attempts: Family<BeaconLabels, Counter>,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("playhead");
        let requests = Family::<RouteLabels, Counter>::default();
        let events = Family::<EventLabels, Counter>::default();
        let commit_seconds = Histogram::new(exponential_buckets(0.0002, 2.0, 16));
        let commit_group_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let fsync_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let queue_depth = Gauge::default();
        let open_sessions = Gauge::default();
        let beacon_attempts = Family::<BeaconLabels, Counter>::default();
        registry.register(
            "ad_beacon_attempts",
            "Outbound ad-beacon attempts by outcome",
            beacon_attempts.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "events",
            "Ingested events by protocol and outcome",
            events.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time from the start of a group of ingest requests until it is durable",
            commit_seconds.clone(),
        );
        registry.register(
            "commit_group_size",
            "Ingest requests committed together",
            commit_group_size.clone(),
        );
        registry.register(
            "fsync_seconds",
            "Time of one fsync making committed groups durable (pipelined group commit)",
            fsync_seconds.clone(),
        );
        registry.register(
            "ingest_queue_depth",
            "Ingest requests waiting for the writer",
            queue_depth.clone(),
        );
        registry.register(
            "open_sessions",
            "Sessions open in the engine",
            open_sessions.clone(),
        );
        Telemetry {
            registry,
            requests,
            events,
            commit_seconds,
            commit_group_size,
            fsync_seconds,
            queue_depth,
            open_sessions,
            beacon_attempts,
        }
    }
}

impl Telemetry {
    /// Static labels: counting allocates nothing (it runs per request on
    /// the writer).
    pub fn count_events(&self, protocol: &'static str, outcome: &'static str, n: u64) {
        if n > 0 {
            self.events
                .get_or_create(&EventLabels { protocol, outcome })
                .inc_by(n);
        }
    }

    /// Count one answer of `route` (a route pattern, `unmatched` when none).
    pub fn count_request(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    pub fn beacon_attempt(&self, outcome: &str) {
        self.beacon_attempts
            .get_or_create(&BeaconLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts every answer in [`Telemetry::requests`] by matched route and
/// status. A tower layer rather than axum's `from_fn`, which boxed the
/// rest of the stack and its future and cloned the whole app state for
/// each request (`bench/RESULTS.md`, seventh pass).
#[derive(Clone)]
pub struct CountRequestsLayer(pub Arc<Telemetry>);

impl<S> tower::Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> CountRequests<S> {
        CountRequests {
            inner,
            telemetry: self.0.clone(),
        }
    }
}

/// The service of [`CountRequestsLayer`].
#[derive(Clone)]
pub struct CountRequests<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
}

impl<S> tower::Service<Request> for CountRequests<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Counted<S::Future> {
        // Set by the router before the route's layers run.
        let route = req.extensions().get::<MatchedPath>().cloned();
        Counted {
            inner: self.inner.call(req),
            route,
            telemetry: Some(self.telemetry.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response on its way, counted once ready.
    pub struct Counted<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
        telemetry: Option<Arc<Telemetry>>,
    }
}

impl<F, E> Future for Counted<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let (Ok(resp), Some(telemetry)) = (&out, this.telemetry.take()) {
            let route = this.route.as_ref().map_or("unmatched", |p| p.as_str());
            telemetry.count_request(route, resp.status().as_u16());
        }
        Poll::Ready(out)
    }
}
