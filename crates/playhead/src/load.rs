//! The load generator behind `playhead load` (and the traffic of `playhead demo`).
//!
//! Each simulated viewer is a task that loops: plan a session, send its
//! requests on the session's schedule (compressed by `speed`), start the
//! next one. A viewer speaks one protocol:
//! - native ([`crate::viewer::plan_session`]): `POST /v1/events` batches;
//! - pixel ([`crate::viewer::pixel::plan_session`]): `GET`/`POST /icon.gif`
//!   and `GET /realtime/icon.gif` beacons, one visit after another, the next
//!   once the viewer has left the page. Pixel beacons carry no client time,
//!   so at `speed` ≠ 1 the server sees those sessions compressed in time.
//!
//! All viewers share one keep-alive HTTP/1 client. A `503` is retried with
//! the same request after its `Retry-After`, as the SDK (or the browser's
//! beacon queue) does; other answers are counted and the session goes on.
//!
//! - [`run`]: a timed run that returns a [`LoadReport`] (requests, events,
//!   status counts, latency percentiles).
//! - [`run_demo_traffic`]: viewers that run until shutdown, for the demo:
//!   three native viewers for each pixel one.
//!
//! Stopping: once the run's time is up (or shutdown is signalled) no new
//! request starts; requests in flight get at most [`GRACE`] more.

use crate::viewer::{self, pixel, plan_session, time_scale};
use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use playhead_model::Protocol;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long requests in flight may still take once the run is over.
pub const GRACE: Duration = Duration::from_secs(5);
/// The longest a single request may take before it counts as `timeout`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per batch when the server keeps answering `503`, as an SDK gives up.
const MAX_ATTEMPTS: u32 = 5;
/// The wait after a `503` without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Latencies are recorded in µs up to this; longer ones count as this.
const MAX_LATENCY_US: u64 = 60_000_000;

/// What `playhead load` was asked to do.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Base URL of the server, like `http://127.0.0.1:8080`.
    pub target: String,
    pub protocol: Protocol,
    /// Concurrent simulated viewers.
    pub viewers: usize,
    /// How long to run.
    pub duration: Duration,
    /// Sent as the native `property`; required by the native protocol.
    /// Pixel beacons carry none (their pullzone `p` picks the property), so
    /// it may be empty there.
    pub ingest_key: String,
    /// Schedule compression: 10 sends ten times faster than real players.
    /// Native events keep their real-rate `ts`; pixel beacons are timed by
    /// the server at arrival, so pixel sessions come out `speed` × shorter.
    pub speed: f64,
    /// Seeds the viewers; the same seed plans the same sessions.
    pub seed: u64,
}

/// Request latency percentiles, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What a load run did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub protocol: Protocol,
    pub viewers: usize,
    /// From the first viewer's start to the last one's end (grace included).
    pub elapsed: Duration,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Events in bodies the server answered with a 2xx; for pixel, the
    /// beacons answered with a 2xx.
    pub events: u64,
    /// Sessions started (for pixel: page loads, i.e. `view` beacons planned).
    pub sessions: u64,
    /// Answers by status code (`"202"`, `"503"`, …), plus `"error"` for
    /// connection errors and `"timeout"` for requests that took too long.
    pub statuses: BTreeMap<String, u64>,
    /// Over requests that got an HTTP answer.
    pub latency: Latency,
}

impl LoadReport {
    pub fn requests_per_s(&self) -> f64 {
        per_second(self.requests, self.elapsed)
    }

    pub fn events_per_s(&self) -> f64 {
        per_second(self.events, self.elapsed)
    }
}

fn per_second(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let statuses = if self.statuses.is_empty() {
            "none".to_owned()
        } else {
            self.statuses
                .iter()
                .map(|(status, n)| format!("{status}: {n}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        let l = &self.latency;
        writeln!(
            f,
            "protocol  {}, {} viewers, {:.1} s, {} sessions",
            self.protocol,
            self.viewers,
            self.elapsed.as_secs_f64(),
            self.sessions
        )?;
        writeln!(
            f,
            "requests  {:>10}  {:>10.1}/s",
            self.requests,
            self.requests_per_s()
        )?;
        writeln!(
            f,
            "events    {:>10}  {:>10.1}/s",
            self.events,
            self.events_per_s()
        )?;
        writeln!(f, "status    {statuses}")?;
        write!(
            f,
            "latency   p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        )
    }
}

/// Run `opts.viewers` simulated viewers against `opts.target` for
/// `opts.duration`, then report.
pub async fn run(opts: LoadOptions) -> anyhow::Result<LoadReport> {
    match opts.protocol {
        Protocol::Native if opts.ingest_key.is_empty() => {
            bail!("--ingest-key (or PLAYHEAD_INGEST_KEY) is required for --protocol native")
        }
        Protocol::Native | Protocol::Pixel => {}
        other => bail!(
            "protocol `{other}` is not implemented yet in `playhead load` (only `native` and `pixel` are)"
        ),
    }
    if opts.viewers == 0 {
        bail!("--viewers must be at least 1");
    }
    if opts.speed.is_nan() || opts.speed <= 0.0 {
        bail!("--speed must be a positive number, not {}", opts.speed);
    }
    let traffic = Traffic::new(&opts.target, opts.ingest_key, opts.viewers, opts.speed)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mix = Mix::All(opts.protocol);
    let viewers = tokio::spawn(traffic.drive(opts.viewers, opts.seed, mix, stop_rx));
    tokio::time::sleep(opts.duration).await;
    // The receivers live in the viewer tasks; if they are all gone there is
    // nobody left to tell.
    let _ = stop_tx.send(true);
    let tally = viewers.await.context("load viewers panicked")?;
    Ok(tally.report(opts.protocol, opts.viewers, started.elapsed()))
}

/// Keep `viewers` simulated viewers running against `target` until
/// `shutdown` turns true (or its sender is dropped); for `playhead demo`.
/// A quarter of them speak pixel (pullzone [`pixel::DEFAULT_PULLZONE`],
/// which a zero-config server maps to its `default` property), the rest
/// native with `ingest_key`, so the demo shows both protocols. Logs nothing
/// per request: one line when it stops.
pub async fn run_demo_traffic(
    target: String,
    ingest_key: String,
    viewers: usize,
    speed: f64,
    shutdown: watch::Receiver<bool>,
) {
    let traffic = match Traffic::new(&target, ingest_key, viewers.max(1), speed) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(target = %target, error = %e, "demo traffic not started");
            return;
        }
    };
    let tally = traffic
        .drive(viewers, rand::random(), Mix::Demo, shutdown)
        .await;
    tracing::debug!(
        requests = tally.requests,
        events = tally.events,
        sessions = tally.sessions,
        "demo traffic stopped"
    );
}

/// Which protocol each simulated viewer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    All(Protocol),
    /// The demo's: the second of every four viewers speaks pixel, the others
    /// native (so even two viewers show both).
    Demo,
}

impl Mix {
    fn protocol_of(self, viewer: usize) -> Protocol {
        match self {
            Mix::All(p) => p,
            Mix::Demo if viewer % 4 == 1 => Protocol::Pixel,
            Mix::Demo => Protocol::Native,
        }
    }
}

/// What every viewer shares: where and how to send.
struct Traffic {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The target without its trailing `/`: pixel beacon URLs start with it.
    base: String,
    /// `POST /v1/events`.
    native_uri: Uri,
    ingest_key: String,
    pullzone: String,
    speed: f64,
}

/// One HTTP request as a viewer sends it; after a `503` it is sent again as is.
struct Outgoing {
    method: Method,
    uri: Uri,
    user_agent: &'static str,
    /// None for pixel beacons: `navigator.sendBeacon(url)` sends no body.
    content_type: Option<&'static str>,
    body: Bytes,
    /// What a 2xx answer adds to `events`.
    events: u64,
}

impl Traffic {
    fn new(
        target: &str,
        ingest_key: String,
        viewers: usize,
        speed: f64,
    ) -> anyhow::Result<Arc<Traffic>> {
        let url = format!("{}/v1/events", target.trim_end_matches('/'));
        let native_uri: Uri = url
            .parse()
            .with_context(|| format!("bad target URL `{target}`"))?;
        if native_uri.scheme_str() != Some("http") || native_uri.authority().is_none() {
            bail!("target must be an http:// URL with a host, not `{target}`");
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(viewers)
            .build(connector);
        let speed = if speed > 0.0 { speed } else { 1.0 };
        Ok(Arc::new(Traffic {
            client,
            base: target.trim_end_matches('/').to_owned(),
            native_uri,
            ingest_key,
            pullzone: pixel::DEFAULT_PULLZONE.to_owned(),
            speed,
        }))
    }

    /// Run the viewers until `stop`, then give requests in flight [`GRACE`].
    async fn drive(
        self: Arc<Self>,
        viewers: usize,
        seed: u64,
        mix: Mix,
        stop: watch::Receiver<bool>,
    ) -> Tally {
        let (abort_tx, abort_rx) = watch::channel(false);
        let mut stop_timer = stop.clone();
        let grace = tokio::spawn(async move {
            fired(&mut stop_timer).await;
            tokio::time::sleep(GRACE).await;
            let _ = abort_tx.send(true);
        });

        let mut tasks = JoinSet::new();
        for i in 0..viewers {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // Start the viewers spread over one flush interval, as real page
            // loads are, so their batches do not all leave together.
            let offset_ms = rng.random_range(0..viewer::FLUSH_INTERVAL_MS);
            let first = time_scale(offset_ms, self.speed);
            let signals = Signals {
                stop: stop.clone(),
                abort: abort_rx.clone(),
            };
            let protocol = mix.protocol_of(i);
            tasks.spawn(Arc::clone(&self).viewer(protocol, rng, first, signals));
        }
        let mut tally = Tally::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(t) => tally.merge(&t),
                Err(e) => tracing::warn!(error = %e, "load viewer failed"),
            }
        }
        grace.abort();
        tally
    }

    /// One simulated viewer: session after session until stopped.
    async fn viewer(
        self: Arc<Self>,
        protocol: Protocol,
        rng: StdRng,
        first: Duration,
        mut signals: Signals,
    ) -> Tally {
        let mut tally = Tally::new();
        if signals.sleep_until(Instant::now() + first).await {
            match protocol {
                Protocol::Pixel => self.pixel_visits(rng, &mut tally, &mut signals).await,
                _ => self.native_sessions(rng, &mut tally, &mut signals).await,
            }
        }
        tally
    }

    /// Native sessions, one after the other, until stopped.
    async fn native_sessions(&self, mut rng: StdRng, tally: &mut Tally, signals: &mut Signals) {
        loop {
            let started = Instant::now();
            let mut plan = plan_session(&mut rng, epoch_ms());
            plan.set_property(&self.ingest_key);
            tally.sessions += 1;
            for request in &plan.requests {
                if !signals
                    .sleep_until(started + request.send_at(self.speed))
                    .await
                {
                    return;
                }
                let outgoing = Outgoing {
                    method: Method::POST,
                    uri: self.native_uri.clone(),
                    user_agent: request.user_agent,
                    content_type: Some("application/json"),
                    body: Bytes::from(request.body.to_string()),
                    events: request.events().len() as u64,
                };
                if !self.deliver(&outgoing, tally, signals).await {
                    return;
                }
            }
        }
    }

    /// Pixel visits, one after the other (the next once the viewer has left
    /// the page), until stopped.
    async fn pixel_visits(&self, mut rng: StdRng, tally: &mut Tally, signals: &mut Signals) {
        loop {
            let started = Instant::now();
            let mut plan = pixel::plan_session(&mut rng);
            plan.set_pullzone(&self.pullzone);
            tally.sessions += plan.views() as u64;
            for beacon in &plan.beacons {
                if !signals
                    .sleep_until(started + beacon.send_at(self.speed))
                    .await
                {
                    return;
                }
                let uri = format!("{}{}", self.base, plan.path_and_query(beacon));
                let Ok(uri) = uri.parse::<Uri>() else {
                    // Cannot happen: every value is percent-encoded.
                    tally.count("error");
                    continue;
                };
                let outgoing = Outgoing {
                    method: if beacon.kind.method() == "POST" {
                        Method::POST
                    } else {
                        Method::GET
                    },
                    uri,
                    user_agent: plan.user_agent,
                    content_type: None,
                    body: Bytes::new(),
                    events: 1,
                };
                if !self.deliver(&outgoing, tally, signals).await {
                    return;
                }
            }
            if !signals
                .sleep_until(started + time_scale(plan.end_ms, self.speed))
                .await
            {
                return;
            }
        }
    }

    /// Send one request, retrying it after a `503` as told. False once stopped.
    async fn deliver(&self, out: &Outgoing, tally: &mut Tally, signals: &mut Signals) -> bool {
        for _ in 0..MAX_ATTEMPTS {
            let outcome = self.send(out, signals).await;
            let label = match &outcome {
                Outcome::Answered {
                    status, latency, ..
                } => {
                    tally.record_latency(*latency);
                    status.to_string()
                }
                Outcome::Error => "error".to_owned(),
                Outcome::Timeout => "timeout".to_owned(),
            };
            tally.count(&label);
            match outcome {
                Outcome::Answered { status, .. } if (200..300).contains(&status) => {
                    tally.events += out.events;
                    return true;
                }
                Outcome::Answered {
                    status: 503,
                    retry_after,
                    ..
                } => {
                    let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                    if !signals.sleep_until(Instant::now() + wait).await {
                        return false;
                    }
                }
                Outcome::Timeout if signals.is_aborted() => return false,
                _ => return true,
            }
        }
        true
    }

    /// One HTTP attempt, body read to the end so the connection is reused.
    async fn send(&self, out: &Outgoing, signals: &mut Signals) -> Outcome {
        let mut request = Request::builder()
            .method(out.method.clone())
            .uri(out.uri.clone())
            .header(USER_AGENT, out.user_agent);
        if let Some(content_type) = out.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let Ok(request) = request.body(Full::new(out.body.clone())) else {
            return Outcome::Error;
        };
        let started = Instant::now();
        let exchange = async {
            let response = self.client.request(request).await.ok()?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            response.into_body().collect().await.ok()?;
            Some((status, retry_after))
        };
        tokio::select! {
            biased;
            answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange) => match answer {
                Ok(Some((status, retry_after))) => Outcome::Answered {
                    status,
                    retry_after,
                    latency: started.elapsed(),
                },
                Ok(None) => Outcome::Error,
                Err(_) => Outcome::Timeout,
            },
            () = fired(&mut signals.abort) => Outcome::Timeout,
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Playhead).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

enum Outcome {
    Answered {
        status: u16,
        retry_after: Option<Duration>,
        latency: Duration,
    },
    Error,
    Timeout,
}

/// A viewer's view of the run's end: `stop` (no new requests) and `abort`
/// (grace is over, drop what is in flight).
struct Signals {
    stop: watch::Receiver<bool>,
    abort: watch::Receiver<bool>,
}

impl Signals {
    /// Sleep until `at`; false (at once) if the run stops first.
    async fn sleep_until(&mut self, at: Instant) -> bool {
        if is_set(&self.stop) {
            return false;
        }
        tokio::select! {
            biased;
            () = fired(&mut self.stop) => false,
            () = tokio::time::sleep_until(at) => true,
        }
    }

    fn is_aborted(&self) -> bool {
        is_set(&self.abort)
    }
}

/// Whether the signal is on; a dropped sender counts as on.
fn is_set(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow() || rx.has_changed().is_err()
}

/// Resolves once the signal is on (or its sender is gone).
async fn fired(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|on| *on).await;
}

/// One viewer's counts, merged into the run's at the end.
struct Tally {
    requests: u64,
    events: u64,
    sessions: u64,
    statuses: BTreeMap<String, u64>,
    latency_us: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            requests: 0,
            events: 0,
            sessions: 0,
            statuses: BTreeMap::new(),
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// A request sent, and its answer's label (status, `error`, `timeout`).
    fn count(&mut self, label: &str) {
        self.requests += 1;
        *self.statuses.entry(label.to_owned()).or_default() += 1;
    }

    fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us.max(1));
    }

    fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.events += other.events;
        self.sessions += other.sessions;
        for (status, n) in &other.statuses {
            *self.statuses.entry(status.clone()).or_default() += n;
        }
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share their bounds");
    }

    fn report(&self, protocol: Protocol, viewers: usize, elapsed: Duration) -> LoadReport {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.latency_us;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50_ms: ms(h.value_at_quantile(0.5)),
                p90_ms: ms(h.value_at_quantile(0.9)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
            }
        };
        LoadReport {
            protocol,
            viewers,
            elapsed,
            requests: self.requests,
            events: self.events,
            sessions: self.sessions,
            statuses: self.statuses.clone(),
            latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use std::collections::{HashMap, HashSet};
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use tokio::net::TcpListener;

    const KEY: &str = "ik_load_test";
    /// The test server refuses pixel beacons of this (popular) video with a
    /// `400`, as Playhead refuses a bad beacon, so a run sees non-2xx answers.
    const REFUSED_VIDEO: &str = "football-highlights-w12";
    /// What the pixel routes answer a `GET` with.
    const GIF: &[u8] = &playhead_server::pixel_ingest::TRANSPARENT_GIF;

    /// What the test server saw.
    #[derive(Default)]
    struct Seen {
        /// `POST /v1/events` requests.
        requests: u64,
        /// Events in bodies answered 202.
        accepted_events: u64,
        /// Requests that are not what the protocol sends.
        bad: Vec<String>,
        /// How often each exact body arrived.
        bodies: HashMap<Bytes, u32>,
        answered_503: u64,
        pixel: PixelSeen,
    }

    /// What the test server saw of pixel beacons.
    #[derive(Default)]
    struct PixelSeen {
        requests: u64,
        /// Answered 200 (GET) or 204 (POST).
        answered_2xx: u64,
        /// Answered 400 ([`REFUSED_VIDEO`]).
        refused: u64,
        answered_503: u64,
        /// Requests that repeated a request answered 503.
        retried: u64,
        /// Requests answered 503 and not repeated yet (method, path and query).
        shed: HashSet<String>,
        /// Beacons by `type` (`live` for `/realtime/icon.gif`).
        by_type: HashMap<String, u64>,
    }

    /// Whether a request is a pixel beacon as the player sends it.
    fn is_good_beacon(method: &Method, path: &str, query: &str, body: &[u8]) -> bool {
        let params: HashMap<&str, &str> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let has = |k: &str| params.get(k).is_some_and(|v| !v.is_empty());
        let kind = if path == "/realtime/icon.gif" {
            "live"
        } else {
            params.get("type").copied().unwrap_or("")
        };
        let method_ok = match kind {
            "view" | "live" => method == Method::GET,
            "play" | "check" => method == Method::POST,
            _ => false,
        };
        let kind_ok = match kind {
            "check" => params
                .get("current_time")
                .is_some_and(|t| t.parse::<u32>().is_ok_and(|t| t % 5 == 0)),
            "live" => ["quality", "time", "bandwidth", "errors"]
                .iter()
                .all(|k| has(k)),
            _ => path == "/icon.gif",
        };
        method_ok
            && kind_ok
            && body.is_empty()
            && has("v")
            && has("u")
            && params.get("p") == Some(&pixel::DEFAULT_PULLZONE)
            && matches!(params.get("visibily"), Some(&"true" | &"false"))
            && params.contains_key("referrer")
    }

    /// A server on 127.0.0.1:0 with `POST /v1/events` (`202`) and the pixel
    /// routes (`200` + GIF for GET, `204` for POST). With `shed_first_try`,
    /// the first delivery of every body (native) or URL (pixel) is answered
    /// `503 Retry-After: 0`.
    async fn server(shed_first_try: bool) -> (SocketAddr, Arc<Mutex<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let method = req.method().clone();
                            let path = req.uri().path().to_owned();
                            let query = req.uri().query().unwrap_or("").to_owned();
                            let ua_ok = req.headers().contains_key(USER_AGENT);
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut seen = state.lock().unwrap();
                            let status = if path == "/v1/events" {
                                native(
                                    &mut seen,
                                    method == Method::POST && ua_ok,
                                    body,
                                    shed_first_try,
                                )
                            } else {
                                beacon(
                                    &mut seen,
                                    &method,
                                    &path,
                                    &query,
                                    ua_ok,
                                    &body,
                                    shed_first_try,
                                )
                            };
                            let body = match status {
                                StatusCode::OK => Bytes::from_static(GIF),
                                StatusCode::BAD_REQUEST => Bytes::from_static(b"v: refused\n"),
                                _ => Bytes::new(),
                            };
                            let mut resp = Response::new(Full::new(body));
                            *resp.status_mut() = status;
                            if status == StatusCode::SERVICE_UNAVAILABLE {
                                resp.headers_mut()
                                    .insert(RETRY_AFTER, HeaderValue::from_static("0"));
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, seen)
    }

    /// `POST /v1/events`.
    fn native(seen: &mut Seen, request_ok: bool, body: Bytes, shed_first_try: bool) -> StatusCode {
        seen.requests += 1;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if !request_ok || json["property"] != KEY {
            seen.bad.push(String::from_utf8_lossy(&body).into_owned());
        }
        let times = seen.bodies.entry(body).or_default();
        *times += 1;
        if shed_first_try && *times == 1 {
            seen.answered_503 += 1;
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            seen.accepted_events += json["events"].as_array().map_or(0, |e| e.len() as u64);
            StatusCode::ACCEPTED
        }
    }

    /// `GET|POST /icon.gif`, `GET /realtime/icon.gif`.
    fn beacon(
        seen: &mut Seen,
        method: &Method,
        path: &str,
        query: &str,
        ua_ok: bool,
        body: &[u8],
        shed_first_try: bool,
    ) -> StatusCode {
        let request = format!("{method} {path}?{query}");
        if !ua_ok || !is_good_beacon(method, path, query, body) {
            seen.bad.push(request.clone());
        }
        let p = &mut seen.pixel;
        p.requests += 1;
        let kind = if path == "/realtime/icon.gif" {
            "live"
        } else {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("type="))
                .unwrap_or("")
        };
        *p.by_type.entry(kind.to_owned()).or_default() += 1;
        if shed_first_try {
            if !p.shed.remove(&request) {
                p.shed.insert(request);
                p.answered_503 += 1;
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            p.retried += 1;
        }
        if query.contains(&format!("&v={REFUSED_VIDEO}&")) {
            p.refused += 1;
            return StatusCode::BAD_REQUEST;
        }
        p.answered_2xx += 1;
        if *method == Method::GET {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        }
    }

    fn options(addr: SocketAddr, duration: Duration) -> LoadOptions {
        LoadOptions {
            target: format!("http://{addr}/"),
            protocol: Protocol::Native,
            viewers: 20,
            duration,
            ingest_key: KEY.to_owned(),
            speed: 50.0,
            seed: 1,
        }
    }

    fn pixel_options(addr: SocketAddr, duration: Duration) -> LoadOptions {
        LoadOptions {
            protocol: Protocol::Pixel,
            // Pixel needs no ingest key.
            ingest_key: String::new(),
            ..options(addr, duration)
        }
    }

    /// Guards against a hang; not a timing assertion.
    async fn bounded<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("load run did not finish")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_run_sends_and_counts() {
        let (addr, seen) = server(false).await;
        let report = bounded(run(options(addr, Duration::from_secs(2))))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();

        assert!(report.requests > 0, "{report}");
        assert!(report.events > report.requests, "{report}");
        assert!(report.sessions >= 20, "{report}");
        assert_eq!(
            report.statuses.keys().collect::<Vec<_>>(),
            ["202"],
            "{report}"
        );
        assert_eq!(report.statuses["202"], report.requests);
        assert!(seen.bad.is_empty(), "bad requests: {:?}", seen.bad.first());
        assert_eq!(seen.requests, report.requests);
        assert_eq!(seen.pixel.requests, 0);
        assert_eq!(seen.accepted_events, report.events);
        assert!(report.latency.p50_ms <= report.latency.p99_ms);
        assert!(report.latency.p99_ms <= report.latency.max_ms);
        assert!(report.latency.max_ms > 0.0);

        let text = report.to_string();
        for needle in ["requests", "events", "202: ", "p50", "p99", "max"] {
            assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_503_is_retried_with_the_same_body() {
        let (addr, seen) = server(true).await;
        let report = bounded(run(options(addr, Duration::from_secs(1))))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();

        let accepted = report.statuses.get("202").copied().unwrap_or(0);
        let shed = report.statuses.get("503").copied().unwrap_or(0);
        assert!(accepted > 0, "{report}");
        assert_eq!(shed, seen.answered_503, "{report}");
        // Every accepted body was first shed, then sent again byte for byte.
        assert!(shed >= accepted, "{report}");
        assert_eq!(
            seen.bodies.values().filter(|n| **n == 2).count() as u64,
            accepted
        );
        assert!(seen.bodies.values().all(|n| *n <= 2));
        assert_eq!(seen.accepted_events, report.events);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_pixel_run_sends_beacons_and_counts_only_2xx() {
        let (addr, seen) = server(false).await;
        let report = bounded(run(pixel_options(addr, Duration::from_secs(2))))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let p = &seen.pixel;

        assert!(seen.bad.is_empty(), "bad requests: {:?}", seen.bad.first());
        assert_eq!(seen.requests, 0, "native requests in a pixel run");
        assert_eq!(p.requests, report.requests, "{report}");
        for kind in ["view", "play", "check", "live"] {
            assert!(
                p.by_type.get(kind).is_some_and(|n| *n > 0),
                "no `{kind}`: {report}"
            );
        }
        // Checks every 5 s of playing outnumber everything else.
        assert!(p.by_type["check"] > p.by_type["view"], "{:?}", p.by_type);
        assert!(report.sessions >= 20, "{report}");

        let status = |s: &str| report.statuses.get(s).copied().unwrap_or(0);
        assert!(status("200") > 0 && status("204") > 0, "{report}");
        assert!(status("400") > 0, "{report}");
        assert_eq!(status("400"), p.refused, "{report}");
        assert_eq!(
            status("200") + status("204") + status("400"),
            report.requests,
            "{report}"
        );
        // Only beacons answered 2xx count as events.
        assert_eq!(report.events, status("200") + status("204"), "{report}");
        assert_eq!(report.events, p.answered_2xx);
        assert_eq!(report.protocol, Protocol::Pixel);
        assert!(report.latency.max_ms > 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_503_is_retried_with_the_same_beacon() {
        let (addr, seen) = server(true).await;
        let report = bounded(run(pixel_options(addr, Duration::from_secs(1))))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let p = &seen.pixel;

        let shed = report.statuses.get("503").copied().unwrap_or(0);
        assert_eq!(shed, p.answered_503, "{report}");
        assert!(p.retried > 0, "{report}");
        // Every other answer went to a beacon sent again after its 503.
        assert_eq!(p.retried, p.answered_2xx + p.refused, "{report}");
        assert_eq!(report.events, p.answered_2xx);
        // At most one beacon per viewer was left unretried when the run stopped.
        assert!(shed - p.retried <= 20, "{report}");
        assert!(seen.bad.is_empty(), "bad requests: {:?}", seen.bad.first());
    }

    #[tokio::test]
    async fn native_needs_an_ingest_key() {
        let mut opts = options("127.0.0.1:9".parse().unwrap(), Duration::from_secs(1));
        opts.ingest_key = String::new();
        let err = run(opts).await.unwrap_err().to_string();
        assert!(err.contains("--ingest-key"), "{err}");
    }

    #[tokio::test]
    async fn other_protocols_are_not_implemented_yet() {
        let mut opts = options("127.0.0.1:9".parse().unwrap(), Duration::from_secs(1));
        opts.protocol = Protocol::MediaCollection;
        let err = run(opts).await.unwrap_err().to_string();
        assert!(
            err.contains("media_collection") && err.contains("not implemented"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_bad_target_is_refused() {
        let mut opts = options("127.0.0.1:9".parse().unwrap(), Duration::from_secs(1));
        opts.target = "https://example.com".to_owned();
        assert!(run(opts).await.is_err());
    }

    #[test]
    fn a_quarter_of_the_demo_viewers_speak_pixel() {
        let pixel = (0..40)
            .filter(|i| Mix::Demo.protocol_of(*i) == Protocol::Pixel)
            .count();
        assert_eq!(pixel, 10);
        assert_eq!(Mix::Demo.protocol_of(0), Protocol::Native);
        assert_eq!(Mix::Demo.protocol_of(1), Protocol::Pixel);
        assert_eq!(Mix::All(Protocol::Pixel).protocol_of(0), Protocol::Pixel);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn demo_traffic_speaks_native_and_pixel_until_shutdown() {
        let (addr, seen) = server(false).await;
        let (tx, rx) = watch::channel(false);
        let demo = tokio::spawn(run_demo_traffic(
            format!("http://{addr}"),
            KEY.to_owned(),
            5,
            1000.0,
            rx,
        ));
        // Wait (bounded) until both protocols arrived, then shut down.
        bounded(async {
            loop {
                {
                    let seen = seen.lock().unwrap();
                    if seen.requests > 0 && seen.pixel.requests > 0 {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        tx.send(true).unwrap();
        bounded(demo).await.unwrap();
        let seen = seen.lock().unwrap();
        assert!(seen.bad.is_empty(), "bad requests: {:?}", seen.bad.first());
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
