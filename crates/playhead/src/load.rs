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
//! - media_collection ([`crate::viewer::media_collection::plan_session`]):
//!   an Adobe-instrumented player. `POST /api/v1/sessions` with the
//!   `sessionStart`, then each event to `{Location}/events`, one request at a
//!   time and in order, as a player does. A `404` or `410` to an event means
//!   "start a new session": the player sends a `sessionStart` with
//!   `media.resume` at that point (then `play` if content was playing) and
//!   goes on with the new session, the failed event first (at most
//!   [`MAX_RESTARTS`] times per planned session, then it stops tracking the
//!   view; counted in [`LoadReport::restarts`]). A `sessionStart` that is
//!   refused leaves the viewer watching untracked until the session's
//!   planned end.
//!
//! - player_messages ([`crate::player_messages_viewer::plan_session`]): an
//!   iframe player behind the SDK bridge, `POST /v1/player-messages`.
//!
//! All viewers share one keep-alive HTTP/1 client. A `503` is retried with
//! the same request after its `Retry-After`, as the SDK (or the browser's
//! beacon queue) does; other answers are counted and the session goes on.
//!
//! - [`run`]: a timed run that returns a [`LoadReport`] (requests, events,
//!   status counts, latency percentiles).
//! - [`run_demo_traffic`]: viewers that run until shutdown, for the demo:
//!   half native, a quarter pixel, a quarter Adobe.
//!
//! Stopping: once the run's time is up (or shutdown is signalled) no new
//! request starts; requests in flight get at most [`GRACE`] more.

use crate::ping_viewer;
use crate::user_activity_viewer;
use crate::viewer::{self, media_collection, pixel, plan_session, time_scale};
use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use playhead_model::Protocol;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
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
/// New sessions an Adobe player starts after `404`/`410` within one planned
/// session before it stops tracking it.
pub const MAX_RESTARTS: u32 = 3;

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
    /// Pixel beacons carry none (their pullzone `p` picks the property), nor
    /// do Adobe players (their report suite does), so it may be empty there.
    pub ingest_key: String,
    /// `analytics.reportSuite` of the Adobe players (media_collection);
    /// [`media_collection::DEFAULT_REPORT_SUITE`] unless told otherwise.
    pub report_suite: String,
    /// Schedule compression: 10 sends ten times faster than real players.
    /// Native and Adobe events keep their real-rate `ts`; pixel beacons are
    /// timed by the server at arrival, so pixel sessions come out `speed` ×
    /// shorter.
    pub speed: f64,
    /// Seeds the viewers; the same seed plans the same sessions.
    pub seed: u64,
    /// The admin key: ping runs configure their assets with it.
    pub admin_key: String,
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
    /// beacons answered with a 2xx; for media_collection, the events (one
    /// per request, `sessionStart` included) answered with a 2xx.
    pub events: u64,
    /// Sessions started (for pixel: page loads, i.e. `view` beacons planned;
    /// for media_collection: `sessionStart`s sent, restarts included).
    pub sessions: u64,
    /// media_collection: new sessions started because the server answered
    /// an event with `404` or `410`.
    pub restarts: u64,
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
        write!(
            f,
            "protocol  {}, {} viewers, {:.1} s, {} sessions",
            self.protocol,
            self.viewers,
            self.elapsed.as_secs_f64(),
            self.sessions
        )?;
        if self.restarts > 0 {
            write!(f, " ({} started over after 404/410)", self.restarts)?;
        }
        writeln!(f)?;
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
        Protocol::MediaCollection if opts.report_suite.is_empty() => {
            bail!("--report-suite must not be empty for --protocol media_collection")
        }
        Protocol::Ping if opts.admin_key.is_empty() => {
            bail!("--admin-key (or PLAYHEAD_ADMIN_KEY) is required for --protocol ping: the run configures its assets")
        }
        Protocol::UserActivity if opts.ingest_key.is_empty() => {
            bail!("--ingest-key (or PLAYHEAD_INGEST_KEY) is required for --protocol user_activity: it is the UAV token")
        }
        Protocol::PlayerMessages if opts.ingest_key.is_empty() => {
            bail!(
                "--ingest-key (or PLAYHEAD_INGEST_KEY) is required for --protocol player_messages"
            )
        }
        Protocol::Native
        | Protocol::Pixel
        | Protocol::MediaCollection
        | Protocol::Ping
        | Protocol::UserActivity
        | Protocol::PlayerMessages => {}
    }
    if opts.viewers == 0 {
        bail!("--viewers must be at least 1");
    }
    if opts.speed.is_nan() || opts.speed <= 0.0 {
        bail!("--speed must be a positive number, not {}", opts.speed);
    }
    let traffic = Traffic::new(
        &opts.target,
        opts.ingest_key,
        opts.report_suite,
        opts.viewers,
        opts.speed,
    )?;
    if opts.protocol == Protocol::Ping {
        configure_ping_assets(&traffic, &opts.admin_key).await?;
    }
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
/// which a zero-config server maps to its `default` property), a quarter
/// are Adobe players (`report_suite`, which a zero-config server maps there
/// too), the rest native with `ingest_key`, so the demo shows all three
/// protocols. Logs nothing per request: one line when it stops.
pub async fn run_demo_traffic(
    target: String,
    ingest_key: String,
    report_suite: String,
    admin_key: String,
    viewers: usize,
    speed: f64,
    shutdown: watch::Receiver<bool>,
) {
    let traffic = match Traffic::new(&target, ingest_key, report_suite, viewers.max(1), speed) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(target = %target, error = %e, "demo traffic not started");
            return;
        }
    };
    if let Err(e) = configure_ping_assets(&traffic, &admin_key).await {
        tracing::warn!(error = %e, "demo ping assets not configured; ping viewers get 404s");
    }
    let tally = traffic
        .drive(viewers, rand::random(), Mix::Demo, shutdown)
        .await;
    tracing::debug!(
        requests = tally.requests,
        events = tally.events,
        sessions = tally.sessions,
        restarts = tally.restarts,
        "demo traffic stopped"
    );
}

/// Which protocol each simulated viewer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    All(Protocol),
    /// The demo's: of every four viewers the second speaks pixel, the third
    /// is an Adobe player, the others native (so three viewers show all three).
    Demo,
}

/// The demo's viewers, in turn: every protocol `load` speaks, native twice.
const DEMO_MIX: &[Protocol] = &[
    Protocol::Native,
    Protocol::Pixel,
    Protocol::MediaCollection,
    Protocol::Native,
    Protocol::Ping,
    Protocol::UserActivity,
    Protocol::PlayerMessages,
];

impl Mix {
    fn protocol_of(self, viewer: usize) -> Protocol {
        match self {
            Mix::All(p) => p,
            Mix::Demo => DEMO_MIX[viewer % DEMO_MIX.len()],
        }
    }
}

/// What every viewer shares: where and how to send.
struct Traffic {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The target without its trailing `/`: pixel beacon and Adobe event
    /// URLs start with it.
    base: String,
    /// `POST /v1/events`.
    native_uri: Uri,
    /// `POST /api/v1/sessions`.
    sessions_uri: Uri,
    ingest_key: String,
    pullzone: String,
    report_suite: String,
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

/// How a delivered request ended (after any `503` retries).
struct Delivered {
    /// The last answer's status; `None` after a connection error or timeout.
    status: Option<u16>,
    /// Its `Location` header.
    location: Option<String>,
    /// Its body.
    body: Option<Bytes>,
}

impl Traffic {
    fn new(
        target: &str,
        ingest_key: String,
        report_suite: String,
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
        let base = target.trim_end_matches('/').to_owned();
        let sessions_uri = format!("{base}/api/v1/sessions")
            .parse()
            .with_context(|| format!("bad target URL `{target}`"))?;
        Ok(Arc::new(Traffic {
            client,
            base,
            native_uri,
            sessions_uri,
            ingest_key,
            pullzone: pixel::DEFAULT_PULLZONE.to_owned(),
            report_suite,
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
                Protocol::UserActivity => self.uav_sessions(rng, &mut tally, &mut signals).await,
                Protocol::MediaCollection => {
                    self.media_sessions(rng, &mut tally, &mut signals).await;
                }
                Protocol::Ping => self.ping_sessions(rng, &mut tally, &mut signals).await,
                Protocol::PlayerMessages => {
                    self.player_messages_sessions(rng, &mut tally, &mut signals)
                        .await;
                }
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
                if self.deliver(&outgoing, tally, signals).await.is_none() {
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
                if self.deliver(&outgoing, tally, signals).await.is_none() {
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

    /// NAGRA OpenTV apps ([`crate::user_activity_viewer`]): one app session
    /// after the other, its activities posted in order with the token in
    /// the query. `sessions` counts the viewings (`playbackStart`s sent).
    async fn uav_sessions(&self, mut rng: StdRng, tally: &mut Tally, signals: &mut Signals) {
        loop {
            let started = Instant::now();
            let plan = user_activity_viewer::plan_session(&mut rng, epoch_ms());
            for activity in &plan.activities {
                if !signals
                    .sleep_until(started + activity.send_at(self.speed))
                    .await
                {
                    return;
                }
                let uri = format!("{}{}", self.base, activity.path_and_query(&self.ingest_key));
                let Ok(uri) = uri.parse::<Uri>() else {
                    tally.count("error");
                    continue;
                };
                tally.sessions += u64::from(activity.name == "playbackStart");
                let outgoing = Outgoing {
                    method: Method::POST,
                    uri,
                    user_agent: plan.user_agent,
                    content_type: Some("application/json"),
                    body: Bytes::from(activity.body.to_string()),
                    events: 1,
                };
                if self.deliver(&outgoing, tally, signals).await.is_none() {
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

    /// Iframe players behind the SDK bridge (`POST /v1/player-messages`):
    /// one view after the other, each batch sent when the bridge would.
    async fn player_messages_sessions(
        &self,
        mut rng: StdRng,
        tally: &mut Tally,
        signals: &mut Signals,
    ) {
        let Ok(uri) = format!("{}/v1/player-messages", self.base).parse::<Uri>() else {
            tally.count("error");
            return;
        };
        loop {
            let started = Instant::now();
            let plan =
                crate::player_messages_viewer::plan_session(&mut rng, epoch_ms(), &self.ingest_key);
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
                    uri: uri.clone(),
                    user_agent: plan.user_agent,
                    content_type: Some("text/plain"),
                    body: Bytes::from(request.body.to_string()),
                    events: request.messages() as u64,
                };
                if self.deliver(&outgoing, tally, signals).await.is_none() {
                    return;
                }
            }
        }
    }

    /// Adobe-instrumented players: one session after the other, each one's
    /// events sent in order with one request in flight, until stopped.
    async fn media_sessions(&self, mut rng: StdRng, tally: &mut Tally, signals: &mut Signals) {
        loop {
            let started = Instant::now();
            let mut plan = media_collection::plan_session(&mut rng, epoch_ms());
            plan.set_report_suite(&self.report_suite);
            let user_agent = plan.user_agent;
            let mut events_uri: Option<Uri> = None;
            let mut restarts_left = MAX_RESTARTS;
            for (i, event) in plan.events.iter().enumerate() {
                if !signals
                    .sleep_until(started + event.send_at(self.speed))
                    .await
                {
                    return;
                }
                if i == 0 {
                    tally.sessions += 1;
                    match self
                        .start_media_session(&event.body, user_agent, tally, signals)
                        .await
                    {
                        None => return,
                        Some(None) => break,
                        Some(uri) => events_uri = uri,
                    }
                    continue;
                }
                let Some(uri) = events_uri.clone() else {
                    break;
                };
                let outgoing = media_event(uri, &event.body, user_agent);
                let Some(answer) = self.deliver(&outgoing, tally, signals).await else {
                    return;
                };
                let gone = matches!(answer.status, Some(404 | 410));
                if !gone || event.is_close() {
                    continue;
                }
                if restarts_left == 0 {
                    // Gives up tracking this view.
                    break;
                }
                // The server lost or closed the session: start a new one here.
                restarts_left -= 1;
                tally.sessions += 1;
                tally.restarts += 1;
                let restart = plan.restart_body(event);
                let uri = match self
                    .start_media_session(&restart, user_agent, tally, signals)
                    .await
                {
                    None => return,
                    Some(None) => break,
                    Some(Some(uri)) => uri,
                };
                events_uri = Some(uri.clone());
                if event.content_playing && event.event_type() != "play" {
                    let play = media_event(uri.clone(), &plan.restart_play_body(event), user_agent);
                    if self.deliver(&play, tally, signals).await.is_none() {
                        return;
                    }
                }
                if self
                    .deliver(&outgoing_to(outgoing, uri), tally, signals)
                    .await
                    .is_none()
                {
                    return;
                }
            }
            // The viewer stays until the session's planned end, tracked or not.
            if !signals
                .sleep_until(started + time_scale(plan.end_ms(), self.speed))
                .await
            {
                return;
            }
        }
    }

    /// Ping players (`crate::ping_viewer`), one session after another:
    /// preplay, `ev=start`, then a ping at each `next_time` (a seek or a
    /// departure as planned). A failed preplay or ping ends the session;
    /// the viewer waits a minute of player time before the next one.
    async fn ping_sessions(&self, mut rng: StdRng, tally: &mut Tally, signals: &mut Signals) {
        loop {
            let plan = ping_viewer::plan(&mut rng);
            tally.sessions += 1;
            let preplay = self.get(
                &format!(
                    "/preplay/{}.json?ad.cping=1&ad.pingf=3&ad.sssb=1",
                    plan.asset
                ),
                plan.user_agent,
            );
            let Some(answer) = self.deliver_json(&preplay, tally, signals).await else {
                return;
            };
            let sid = answer
                .as_ref()
                .and_then(|v| v["sid"].as_str().map(str::to_owned));
            if let Some(sid) = sid {
                let mut query = "v=3&pt=0&ev=start".to_owned();
                let mut pt = 0.0;
                let mut seeked = false;
                loop {
                    let ping = self.get(
                        &format!("/session/ping/{sid}.json?{query}"),
                        plan.user_agent,
                    );
                    let Some(answer) = self.deliver_json(&ping, tally, signals).await else {
                        return;
                    };
                    let Some(next) = answer.and_then(|v| v["next_time"].as_f64()) else {
                        break;
                    };
                    seeked |= query.contains("ev=seek");
                    if let Some(to) = query.split("&pt=").nth(1).and_then(|r| r.split('&').next()) {
                        pt = to.parse().unwrap_or(pt);
                    }
                    let Some((q, wait_s)) = ping_viewer::next_ping(&plan, pt, next, seeked) else {
                        break;
                    };
                    let wait = time_scale((wait_s * 1000.0).round() as i64, self.speed);
                    if !signals.sleep_until(Instant::now() + wait).await {
                        return;
                    }
                    query = q;
                }
            }
            if !signals
                .sleep_until(Instant::now() + time_scale(60_000, self.speed))
                .await
            {
                return;
            }
        }
    }

    fn get(&self, path_and_query: &str, user_agent: &'static str) -> Option<Outgoing> {
        Some(Outgoing {
            method: Method::GET,
            uri: format!("{}{path_and_query}", self.base).parse().ok()?,
            user_agent,
            content_type: None,
            body: Bytes::new(),
            events: 1,
        })
    }

    /// Deliver a GET and parse its JSON answer: `None` once stopped,
    /// `Some(None)` without a 2xx JSON answer.
    async fn deliver_json(
        &self,
        out: &Option<Outgoing>,
        tally: &mut Tally,
        signals: &mut Signals,
    ) -> Option<Option<Value>> {
        let Some(out) = out else {
            return Some(None);
        };
        let delivered = self.deliver(out, tally, signals).await?;
        let ok = delivered.status.is_some_and(|s| (200..300).contains(&s));
        Some(
            delivered
                .body
                .filter(|_| ok)
                .and_then(|b| serde_json::from_slice(&b).ok()),
        )
    }

    /// `POST /api/v1/sessions` with a `sessionStart`: the URI of the new
    /// session's events, from `Location`; `Some(None)` when the server did
    /// not open one; `None` once stopped.
    async fn start_media_session(
        &self,
        body: &Value,
        user_agent: &'static str,
        tally: &mut Tally,
        signals: &mut Signals,
    ) -> Option<Option<Uri>> {
        let outgoing = Outgoing {
            method: Method::POST,
            uri: self.sessions_uri.clone(),
            user_agent,
            content_type: Some("application/json"),
            body: Bytes::from(body.to_string()),
            events: 1,
        };
        let answer = self.deliver(&outgoing, tally, signals).await?;
        let opened = answer.status.is_some_and(|s| (200..300).contains(&s));
        Some(
            answer
                .location
                .filter(|_| opened)
                .and_then(|l| self.events_uri(&l)),
        )
    }

    /// `{Location}/events`, the `Location` relative to the target or absolute.
    fn events_uri(&self, location: &str) -> Option<Uri> {
        let location = location.trim_end_matches('/');
        let url = if location.starts_with("http://") || location.starts_with("https://") {
            format!("{location}/events")
        } else if location.starts_with('/') {
            format!("{}{location}/events", self.base)
        } else {
            format!("{}/{location}/events", self.base)
        };
        url.parse().ok()
    }

    /// Send one request, retrying it after a `503` as told. `None` once stopped.
    async fn deliver(
        &self,
        out: &Outgoing,
        tally: &mut Tally,
        signals: &mut Signals,
    ) -> Option<Delivered> {
        let mut last = Delivered {
            status: None,
            location: None,
            body: None,
        };
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
                Outcome::Answered {
                    status: 503,
                    retry_after,
                    ..
                } => {
                    last.status = Some(503);
                    let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                    if !signals.sleep_until(Instant::now() + wait).await {
                        return None;
                    }
                }
                Outcome::Answered {
                    status,
                    location,
                    body,
                    ..
                } => {
                    if (200..300).contains(&status) {
                        tally.events += out.events;
                    }
                    return Some(Delivered {
                        status: Some(status),
                        location,
                        body: Some(body),
                    });
                }
                Outcome::Timeout if signals.is_aborted() => return None,
                Outcome::Error | Outcome::Timeout => return Some(last),
            }
        }
        Some(last)
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
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.into_body().collect().await.ok()?.to_bytes();
            Some((status, retry_after, location, body))
        };
        tokio::select! {
            biased;
            answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange) => match answer {
                Ok(Some((status, retry_after, location, body))) => Outcome::Answered {
                    status,
                    retry_after,
                    location,
                    body,
                    latency: started.elapsed(),
                },
                Ok(None) => Outcome::Error,
                Err(_) => Outcome::Timeout,
            },
            () = fired(&mut signals.abort) => Outcome::Timeout,
        }
    }
}

/// `PUT /admin/v1/assets/{id}` for every asset the ping players watch.
async fn configure_ping_assets(traffic: &Traffic, admin_key: &str) -> anyhow::Result<()> {
    for (id, body) in ping_viewer::assets() {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("{}/admin/v1/assets/{id}", traffic.base))
            .header(CONTENT_TYPE, "application/json")
            .header(hyper::header::AUTHORIZATION, format!("Bearer {admin_key}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .context("building an admin request")?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, traffic.client.request(request))
            .await
            .context("the admin API did not answer in time")?
            .context("the admin API is unreachable")?;
        let status = response.status();
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if !status.is_success() {
            bail!(
                "configuring ping asset `{id}`: {status} {}",
                String::from_utf8_lossy(&text)
            );
        }
    }
    Ok(())
}

/// One Adobe event (not `sessionStart`) to its session's events URI.
fn media_event(uri: Uri, body: &Value, user_agent: &'static str) -> Outgoing {
    Outgoing {
        method: Method::POST,
        uri,
        user_agent,
        content_type: Some("application/json"),
        body: Bytes::from(body.to_string()),
        events: 1,
    }
}

/// The same request, to another URI.
fn outgoing_to(out: Outgoing, uri: Uri) -> Outgoing {
    Outgoing { uri, ..out }
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
        location: Option<String>,
        body: Bytes,
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
    restarts: u64,
    statuses: BTreeMap<String, u64>,
    latency_us: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            requests: 0,
            events: 0,
            sessions: 0,
            restarts: 0,
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
        self.restarts += other.restarts;
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
            restarts: self.restarts,
            statuses: self.statuses.clone(),
            latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::real_server::RealServer;
    use hyper::header::HeaderValue;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use playhead_server::ServerConfig;
    use std::collections::{HashMap, HashSet};
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use tokio::net::TcpListener;

    const KEY: &str = "ik_load_test";
    /// The Adobe players' `analytics.reportSuite`.
    const SUITE: &str = "rs-load-test";
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
        media: MediaSeen,
        ping: PingSeen,
    }

    /// What the test server saw of the ping protocol.
    #[derive(Default)]
    struct PingSeen {
        assets: u64,
        preplays: u64,
        pings: u64,
    }

    /// What the test server saw of the Media Collection API.
    #[derive(Default)]
    struct MediaSeen {
        /// Requests to `/api/v1/...`.
        requests: u64,
        /// Sessions opened (`201`), restarts included.
        sessions: u64,
        /// Of those, a player starting over after a `410`: `media.resume`,
        /// same viewer and video, at the refused event's time.
        restarted: u64,
        /// Refused with `410`, not started over yet: (viewer, video, ts).
        gone: HashSet<(String, String, i64)>,
        /// Events answered 201 or 204.
        accepted: u64,
        answered_410: u64,
        answered_503: u64,
        /// Requests that repeated a request answered 503.
        retried: u64,
        /// Requests answered 503 and not repeated yet (path and body).
        shed: HashSet<(String, Bytes)>,
        /// By sid.
        sessions_by_sid: HashMap<String, MediaSession>,
        /// Requests being answered, by sid: a player has at most one.
        in_flight: HashMap<String, u32>,
        /// Events by `eventType`.
        by_type: HashMap<String, u64>,
        /// For each restart, the first event posted to the new session.
        after_restart: Vec<String>,
    }

    #[derive(Default)]
    struct MediaSession {
        /// Events posted to it (not counting `sessionStart`).
        events: u64,
        last_ts: i64,
        closed: bool,
        /// Opened by a player starting over.
        restart: bool,
        /// `visitor.marketingCloudUserId` and `media.id`.
        viewer: String,
        video: String,
    }

    /// How the test server answers.
    #[derive(Clone, Copy, Default)]
    struct Mode {
        /// The first delivery of every body (native, Adobe) or URL (pixel)
        /// is answered `503 Retry-After: 0`.
        shed_first_try: bool,
        /// The n-th event posted to a session a player opened (not one it
        /// started over with) is answered `410`, unless it closes the session.
        gone_at: Option<u64>,
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

    /// A server on 127.0.0.1:0 with `POST /v1/events` (`202`), the pixel
    /// routes (`200` + GIF for GET, `204` for POST) and the Media Collection
    /// API (`201` + `Location`, `204`). With `shed_first_try`, the first
    /// delivery of every body (native, Adobe) or URL (pixel) is answered
    /// `503 Retry-After: 0`.
    async fn server(shed_first_try: bool) -> (SocketAddr, Arc<Mutex<Seen>>) {
        server_with(Mode {
            shed_first_try,
            ..Mode::default()
        })
        .await
    }

    async fn server_with(mode: Mode) -> (SocketAddr, Arc<Mutex<Seen>>) {
        let shed_first_try = mode.shed_first_try;
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
                            let json_ok = req
                                .headers()
                                .get(CONTENT_TYPE)
                                .is_some_and(|v| v == "application/json");
                            let sid = media_sid(&path).map(str::to_owned);
                            if let Some(sid) = &sid {
                                let mut seen = state.lock().unwrap();
                                let n = seen.media.in_flight.entry(sid.clone()).or_default();
                                *n += 1;
                                if *n > 1 {
                                    seen.bad.push(format!("two requests in flight on {sid}"));
                                }
                            }
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut seen = state.lock().unwrap();
                            let ping_answer =
                                if method == Method::PUT && path.starts_with("/admin/v1/assets/") {
                                    seen.ping.assets += 1;
                                    Some("{}")
                                } else if path.starts_with("/preplay/") && ua_ok {
                                    seen.ping.preplays += 1;
                                    Some(r#"{"sid": "fake"}"#)
                                } else if path == "/session/ping/fake.json" && ua_ok {
                                    seen.ping.pings += 1;
                                    Some(r#"{"next_time": -1.0}"#)
                                } else {
                                    None
                                };
                            if let Some(answer) = ping_answer {
                                return Ok::<_, Infallible>(Response::new(Full::new(
                                    Bytes::from_static(answer.as_bytes()),
                                )));
                            }
                            if path.starts_with("/api/v1/") {
                                let request_ok = method == Method::POST && ua_ok && json_ok;
                                let (status, location) =
                                    media(&mut seen, mode, request_ok, &path, body);
                                if let Some(sid) = &sid {
                                    if let Some(n) = seen.media.in_flight.get_mut(sid) {
                                        *n -= 1;
                                    }
                                }
                                let mut resp = Response::new(Full::new(Bytes::new()));
                                *resp.status_mut() = status;
                                if let Some(l) = location {
                                    resp.headers_mut()
                                        .insert(LOCATION, HeaderValue::from_str(&l).unwrap());
                                }
                                if status == StatusCode::SERVICE_UNAVAILABLE {
                                    resp.headers_mut()
                                        .insert(RETRY_AFTER, HeaderValue::from_static("0"));
                                }
                                return Ok::<_, Infallible>(resp);
                            }
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

    /// The sid of `/api/v1/sessions/{sid}/events`.
    fn media_sid(path: &str) -> Option<&str> {
        path.strip_prefix("/api/v1/sessions/")?
            .strip_suffix("/events")
    }

    /// `POST /api/v1/sessions` and `/api/v1/sessions/{sid}/events`: every
    /// body must be an event the real decoder accepts, each session's events
    /// in `ts` order and none after its close.
    fn media(
        seen: &mut Seen,
        mode: Mode,
        request_ok: bool,
        path: &str,
        body: Bytes,
    ) -> (StatusCode, Option<String>) {
        use playhead_protocols::media_collection::decode_event;
        let text = String::from_utf8_lossy(&body).into_owned();
        let json: Value = serde_json::from_slice(&body).unwrap_or_default();
        let m = &mut seen.media;
        m.requests += 1;
        if let Err(e) = decode_event(&json, 0, 0) {
            seen.bad.push(format!("{path}: {e}: {text}"));
            return (StatusCode::BAD_REQUEST, None);
        }
        if !request_ok {
            seen.bad
                .push(format!("{path}: not a JSON POST with a User-Agent"));
        }
        let kind = json["eventType"].as_str().unwrap_or("").to_owned();
        if mode.shed_first_try {
            let key = (path.to_owned(), body);
            if !m.shed.remove(&key) {
                m.shed.insert(key);
                m.answered_503 += 1;
                return (StatusCode::SERVICE_UNAVAILABLE, None);
            }
            m.retried += 1;
        }
        *m.by_type.entry(kind.clone()).or_default() += 1;
        let ts = json["playerTime"]["ts"].as_i64().unwrap_or_default();
        if path == "/api/v1/sessions" {
            if kind != "sessionStart" {
                seen.bad.push(format!("{kind} to /api/v1/sessions"));
                return (StatusCode::BAD_REQUEST, None);
            }
            if json["params"]["analytics.reportSuite"] != SUITE {
                seen.bad.push(format!("report suite: {text}"));
            }
            m.sessions += 1;
            let param = |k: &str| json["params"][k].as_str().unwrap_or("").to_owned();
            let (viewer, video) = (param("visitor.marketingCloudUserId"), param("media.id"));
            let restart = json["params"]["media.resume"] == true
                && m.gone.remove(&(viewer.clone(), video.clone(), ts));
            m.restarted += u64::from(restart);
            let sid = format!("{:064x}", m.sessions);
            m.sessions_by_sid.insert(
                sid.clone(),
                MediaSession {
                    last_ts: ts,
                    restart,
                    viewer,
                    video,
                    ..MediaSession::default()
                },
            );
            m.accepted += 1;
            return (StatusCode::CREATED, Some(format!("/api/v1/sessions/{sid}")));
        }
        let Some(session) = media_sid(path).and_then(|sid| m.sessions_by_sid.get_mut(sid)) else {
            seen.bad.push(format!("unknown session: {path}"));
            return (StatusCode::NOT_FOUND, None);
        };
        if kind == "sessionStart" || session.closed || ts < session.last_ts {
            seen.bad.push(format!("{path}: out of turn: {text}"));
        }
        session.last_ts = ts;
        session.events += 1;
        if session.restart && session.events == 1 {
            m.after_restart.push(kind.clone());
        }
        let closes = kind == "sessionComplete" || kind == "sessionEnd";
        if !session.restart && !closes && mode.gone_at == Some(session.events) {
            session.closed = true;
            m.answered_410 += 1;
            m.gone
                .insert((session.viewer.clone(), session.video.clone(), ts));
            return (StatusCode::GONE, None);
        }
        session.closed |= closes;
        m.accepted += 1;
        (StatusCode::NO_CONTENT, None)
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
            report_suite: SUITE.to_owned(),
            speed: 50.0,
            seed: 1,
            admin_key: String::new(),
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

    fn media_options(addr: SocketAddr, duration: Duration) -> LoadOptions {
        LoadOptions {
            protocol: Protocol::MediaCollection,
            // Adobe players need no ingest key: the report suite picks the property.
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
    async fn ping_needs_an_admin_key() {
        let mut opts = options("127.0.0.1:9".parse().unwrap(), Duration::from_secs(1));
        opts.protocol = Protocol::Ping;
        let err = run(opts).await.unwrap_err().to_string();
        assert!(err.contains("--admin-key"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_players_against_the_real_server() {
        const READ: &str = "rk_ping_load_0123456789";
        let mut config = ServerConfig::single("default", KEY, READ);
        config.admin_key = Some("ak_ping_load".into());
        let server = RealServer::start(config, READ).await;

        let mut opts = options(server.addr, Duration::from_secs(3));
        opts.protocol = Protocol::Ping;
        opts.admin_key = "ak_ping_load".into();
        opts.viewers = 10;
        opts.speed = 200.0;
        let report = bounded(run(opts)).await.unwrap();
        // Preplays and pings, all answered 200.
        assert_eq!(
            report.statuses.keys().collect::<Vec<_>>(),
            ["200"],
            "{report}"
        );
        assert!(report.sessions >= 10, "{report}");
        assert!(
            report.requests > 2 * report.sessions,
            "pings follow each preplay: {report}"
        );

        let breakdown = server
            .get_json("/data/v1/metrics/breakdown?metric=views&by=protocol")
            .await;
        let ping = breakdown["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == "ping")
            .unwrap_or_else(|| panic!("no ping views: {breakdown}"));
        // Sessions the run counted but whose preplay was cut by the end of
        // the run may be missing; every view the server has was a preplay.
        let views = ping["views"].as_u64().unwrap();
        assert!(
            views >= 10 && views <= report.sessions,
            "{views} vs {report}"
        );
    }

    #[tokio::test]
    async fn media_collection_needs_a_report_suite() {
        let mut opts = media_options("127.0.0.1:9".parse().unwrap(), Duration::from_secs(1));
        opts.report_suite = String::new();
        let err = run(opts).await.unwrap_err().to_string();
        assert!(err.contains("--report-suite"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_media_collection_run_opens_sessions_and_posts_events() {
        let (addr, seen) = server(false).await;
        let report = bounded(run(media_options(addr, Duration::from_secs(2))))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let m = &seen.media;

        assert!(seen.bad.is_empty(), "bad requests: {:?}", seen.bad.first());
        assert_eq!(seen.requests + seen.pixel.requests, 0, "other protocols");
        assert_eq!(m.requests, report.requests, "{report}");
        let status = |s: &str| report.statuses.get(s).copied().unwrap_or(0);
        assert_eq!(
            report.statuses.keys().collect::<Vec<_>>(),
            ["201", "204"],
            "{report}"
        );
        // One sessionStart per session, answered 201 with a Location the
        // player followed.
        assert!(report.sessions >= 20, "{report}");
        assert_eq!(status("201"), report.sessions, "{report}");
        assert_eq!(m.sessions, report.sessions);
        assert_eq!(report.restarts, 0);
        // One event per request, every one answered 2xx.
        assert_eq!(report.events, report.requests, "{report}");
        assert_eq!(report.events, m.accepted);
        for kind in ["sessionStart", "play", "ping", "bitrateChange"] {
            assert!(m.by_type.get(kind).is_some_and(|n| *n > 0), "no `{kind}`");
        }
        let closes = ["sessionEnd", "sessionComplete"]
            .iter()
            .filter_map(|k| m.by_type.get(*k))
            .sum::<u64>();
        assert!(closes > 0, "{:?}", m.by_type);
        // Pings (every 10 s of content, every second of ads) dominate.
        assert!(m.by_type["ping"] > m.by_type["play"], "{:?}", m.by_type);
        assert!(report.to_string().contains("201: "), "{report}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_player_starts_a_new_session_after_410() {
        let (addr, seen) = server_with(Mode {
            gone_at: Some(3),
            ..Mode::default()
        })
        .await;
        let report = bounded(run(media_options(addr, Duration::from_secs(2))))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let m = &seen.media;

        assert!(seen.bad.is_empty(), "bad requests: {:?}", seen.bad.first());
        let status = |s: &str| report.statuses.get(s).copied().unwrap_or(0);
        assert!(report.restarts > 0, "{report}");
        // Every 410 made the player start over, with `media.resume`, once.
        assert_eq!(status("410"), m.answered_410, "{report}");
        assert_eq!(report.restarts, m.answered_410, "{report}");
        assert_eq!(report.restarts, m.restarted, "{report}");
        assert!(m.gone.is_empty(), "410s not followed by a new session");
        assert_eq!(report.sessions, m.sessions, "{report}");
        assert_eq!(status("201"), m.sessions, "{report}");
        // The new session goes on where the old one stopped.
        assert!(!m.after_restart.is_empty());
        assert!(
            m.after_restart.iter().all(|k| k != "sessionStart"),
            "{:?}",
            m.after_restart
        );
        // Only 2xx answers count as events.
        assert_eq!(report.events, status("201") + status("204"), "{report}");
        assert_eq!(report.events, m.accepted);
        assert_eq!(report.requests, report.events + status("410"), "{report}");
        assert!(report.to_string().contains("started over"), "{report}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_503_is_retried_with_the_same_event() {
        let (addr, seen) = server(true).await;
        let report = bounded(run(media_options(addr, Duration::from_secs(1))))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let m = &seen.media;

        assert!(seen.bad.is_empty(), "bad requests: {:?}", seen.bad.first());
        let shed = report.statuses.get("503").copied().unwrap_or(0);
        assert_eq!(shed, m.answered_503, "{report}");
        assert!(m.retried > 0, "{report}");
        // Every answered event was first shed, then sent again as is.
        assert_eq!(m.retried, m.accepted, "{report}");
        assert_eq!(report.events, m.accepted);
        // At most one request per viewer was left unretried when the run stopped.
        assert!(shed - m.retried <= 20, "{report}");
    }

    /// The real server (`playhead_server::app` on a SQLite store): every
    /// request the Adobe players send is accepted, and their sessions show
    /// up as `media_collection` views.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn adobe_players_against_the_real_server() {
        const READ: &str = "rk_load_test_0123456789";
        let server = RealServer::start(ServerConfig::single("default", KEY, READ), READ).await;

        let mut opts = media_options(server.addr, Duration::from_secs(3));
        opts.viewers = 10;
        opts.speed = 100.0;
        let report = bounded(run(opts)).await.unwrap();
        let status = |s: &str| report.statuses.get(s).copied().unwrap_or(0);
        assert_eq!(
            report.statuses.keys().collect::<Vec<_>>(),
            ["201", "204"],
            "{report}"
        );
        assert_eq!(report.events, report.requests, "{report}");
        assert_eq!(status("201"), report.sessions, "{report}");
        assert!(report.sessions >= 10, "{report}");

        let breakdown = server
            .get_json("/data/v1/metrics/breakdown?metric=views&by=protocol")
            .await;
        let rows = breakdown["rows"].as_array().unwrap();
        let media = rows
            .iter()
            .find(|r| r["key"] == "media_collection")
            .unwrap_or_else(|| panic!("no media_collection views: {breakdown}"));
        assert_eq!(
            media["views"].as_u64(),
            Some(report.sessions),
            "{breakdown}"
        );
    }

    #[tokio::test]
    async fn a_bad_target_is_refused() {
        let mut opts = options("127.0.0.1:9".parse().unwrap(), Duration::from_secs(1));
        opts.target = "https://example.com".to_owned();
        assert!(run(opts).await.is_err());
    }

    #[test]
    fn the_demo_mixes_every_protocol_native_twice() {
        let per_round = 8;
        let viewers = per_round * DEMO_MIX.len();
        let count = |p: Protocol| {
            (0..viewers)
                .filter(|i| Mix::Demo.protocol_of(*i) == p)
                .count()
        };
        assert_eq!(count(Protocol::Native), 2 * per_round);
        assert_eq!(count(Protocol::Pixel), per_round);
        assert_eq!(count(Protocol::MediaCollection), per_round);
        assert_eq!(count(Protocol::Ping), per_round);
        // The first viewers show every protocol.
        let first: std::collections::BTreeSet<Protocol> = (0..DEMO_MIX.len())
            .map(|i| Mix::Demo.protocol_of(i))
            .collect();
        assert_eq!(first.len(), DEMO_MIX.len() - 1);
        assert_eq!(Mix::All(Protocol::Pixel).protocol_of(0), Protocol::Pixel);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn demo_traffic_speaks_every_protocol_until_shutdown() {
        let (addr, seen) = server(false).await;
        let (tx, rx) = watch::channel(false);
        let demo = tokio::spawn(run_demo_traffic(
            format!("http://{addr}"),
            KEY.to_owned(),
            SUITE.to_owned(),
            "admin".to_owned(),
            5,
            1000.0,
            rx,
        ));
        // Wait (bounded) until every protocol arrived, then shut down.
        bounded(async {
            loop {
                {
                    let seen = seen.lock().unwrap();
                    if seen.requests > 0
                        && seen.pixel.requests > 0
                        && seen.media.requests > 0
                        && seen.ping.pings > 0
                    {
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
