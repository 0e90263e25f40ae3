//! Scenario tests: transcripts of requests (native events, pixel beacons,
//! Media Collection API calls) replayed against a whole server (`app(state)`
//! through `tower::ServiceExt::oneshot`, a [`ManualClock`], a real store),
//! then the sessions read back through
//! `GET /data/v1/sessions/{id}` and compared with metrics computed by hand
//! from `spec/metrics.md`.
//!
//! Run with: `cargo test -p playhead-server --test scenarios`
//!
//! # Files
//! Every `tests/scenarios/*.json` at the repository root is one scenario. A run
//! that finds none fails. One `#[test]` per store backend runs every file
//! ([`run_every_scenario`]); a new backend is one more `#[test]` that says how
//! to open it.
//!
//! # Format
//! ```json
//! {"name": "clean play to end",
//!  "notes": ["how every expected value was computed, step by step"],
//!  "known_divergence": [{"session": "s1", "field": "metrics.watch_time_ms",
//!                        "spec": 3000, "engine": 0, "reading": "why"}],
//!  "steps": [
//!    {"at_ms": 0, "post": {"session": {"id": "s1"}, "events": [
//!        {"seq": 1, "ts_offset": 0, "type": "play"}]},
//!     "expect_status": 202, "expect_body": {"accepted": 1, "duplicates": 0, "late": 0}},
//!    {"advance_ms": 600001}, {"expire": true},
//!    {"check": {"s1": {"open": false}}}],
//!  "expect": {"s1": {"open": false, "state": "closed", "ended_at": "2023-11-14T22:13:20Z",
//!                    "metrics": {"watch_time_ms": 0, "startup_score": null}}}}
//! ```
//! - Times: the server clock starts at `T0` = 1700000000000 ms
//!   (2023-11-14T22:13:20Z). An event may give `ts_offset` (ms after `T0`, may
//!   be negative) instead of `ts`; the runner writes `ts = T0 + ts_offset`.
//! - A step may move the clock first: `at_ms` sets it to `T0 + at_ms`,
//!   `advance_ms` moves it forward. Then it does at most one thing:
//!   - `post`: `POST /v1/events` with that body, `property` (the ingest key)
//!     added by the runner. `expect_status` defaults to 202; `expect_body`,
//!     when given, must equal the answer exactly.
//!   - `expire: true`: `state.pipeline.expire_now()` (close timed-out sessions).
//!   - `check`: compare sessions now, same shape as `expect`.
//! - `expect` (and `check`): by session id, a subset of the session view's
//!   fields; its `metrics` is a subset of the per-session metrics. Numbers
//!   are equal within 1e-6, `null` must be `null`, arrays and nested objects
//!   (`errors`, `ad_quartiles`) must match exactly.
//! - `known_divergence`: fields where the engine disagrees with the spec. The
//!   file keeps the spec's value; the runner skips exactly those (session,
//!   field) comparisons and prints a warning with both values.
//!
//! ## Pixel beacons (`spec/protocols.md` §1)
//! ```json
//! {"steps": [
//!    {"at_ms": 1000, "beacon": "/icon.gif?type=check&v=vid&p=vz-1&u=viewer&current_time=35",
//!     "method": "POST", "expect_status": 204},
//!    {"check_pixel": [{"video_id": "vid", "viewer_id": "viewer", "nth": 0, "open": true}]}],
//!  "expect_pixel": [{"name": "first", "video_id": "vid", "viewer_id": "viewer", "nth": 0,
//!                    "sessions": 1, "open": false, "metrics": {"seek_count": 0}}],
//!  "expect_metrics": {"from_ms": 0, "to_ms": 3600000, "query": "video_id=vid",
//!                     "metrics": {"views": 1, "unique_plays": 1}}}
//! ```
//! - `beacon`: sent as is (path and query) with `method` (`GET`, the
//!   default, or `POST` with an empty body, as `navigator.sendBeacon`).
//!   Pixel events take the server's receive time, so `at_ms` is when the
//!   beacon happens. `expect_status` defaults to 200 (GET) or 204 (POST);
//!   `expect_body` compares the text of the answer.
//! - Pixel sessions get server-made ids, so `expect_pixel` (and a step's
//!   `check_pixel`) names them by (`video_id`, `viewer_id`, `nth`): the
//!   `nth` oldest (from 0, by `started_at`) pixel session of that pair in
//!   `GET /data/v1/sessions`. `sessions`, when given, is how many that pair
//!   must have (alone, only the count is checked: `"sessions": 0`). Every
//!   other field is compared like an `expect` entry. In
//!   `known_divergence`, `session` is the entry's `name`, or
//!   `<video_id>/<viewer_id>#<nth>` without one.
//! - `expect_metrics` (one object or a list; a step's `check_metrics`):
//!   `GET /data/v1/metrics?from=T0+from_ms&to=T0+to_ms&<query>`, its
//!   `metrics` compared with the given subset. In `known_divergence`, its
//!   `session` is `metrics` (or the entry's `name`).
//! - `expect` may be empty when `expect_pixel`, `expect_adobe` or
//!   `expect_metrics` is not.
//!
//! ## Media Collection API (`spec/protocols.md` §2, Adobe compatible)
//! ```json
//! {"steps": [
//!    {"at_ms": 0, "adobe_start": {"eventType": "sessionStart",
//!        "playerTime": {"playhead": 0, "ts_offset": 0}, "params": {..}},
//!     "name": "s1", "expect_status": 201},
//!    {"at_ms": 2000, "adobe_event": {"session": "s1", "event": {"eventType": "play",
//!        "playerTime": {"playhead": 0, "ts_offset": 2000}}}, "expect_status": 204},
//!    {"adobe_event": {"sid": "<64 hex>", "event": {..}}, "expect_status": 404,
//!     "expect_body": "unknown session"},
//!    {"adobe_downloaded": [{"eventType": "sessionStart", ..}, .., {"eventType": "sessionEnd", ..}],
//!     "name": "d1"},
//!    {"check_adobe": {"s1": {"open": true}}}],
//!  "expect_adobe": {"s1": {"open": false, "state": "closed", "metrics": {"ad_breaks": 1}}}}
//! ```
//! - Every event (and every event of an array) may give
//!   `playerTime.ts_offset` instead of `playerTime.ts`: `ts = T0 + ts_offset`.
//! - `adobe_start`: `POST /api/v1/sessions` with that body (one
//!   `sessionStart`, or the deprecated downloaded array); default
//!   `expect_status` 201. `adobe_downloaded`: `POST /api/v1/downloaded` with
//!   that array; default 201. A `201` must have an empty body and
//!   `Location: /api/v1/sessions/{64 hex}`; with `name`, the sid is remembered
//!   under it (a name is given once).
//! - `adobe_event`: `POST /api/v1/sessions/{sid}/events` with `event`, the
//!   sid being the one remembered under `session`, or `sid` as is (an unknown
//!   sid, for a `404`); default 204.
//! - On Adobe steps, `expect_body` as a string must be a substring of the
//!   answer's `message`; any other JSON is compared with the whole answer.
//! - `expect_adobe` (and a step's `check_adobe`): by name, compared like an
//!   `expect` entry with `GET /data/v1/sessions/{sid}`. In
//!   `known_divergence`, `session` is the name.
//!
//! ## Any other route (ping, User Activity Vault, player messages, admin)
//! ```json
//! {"steps": [
//!    {"at_ms": 0, "request": {"method": "POST",
//!        "path": "/useractivityvault/v1/useractivity/playbackStart?token={ingest_key}",
//!        "headers": {"User-Agent": "..."}, "body": {"accountId": "a"}},
//!     "expect_status": 200, "expect_body": {"status": "ok"}}]}
//! ```
//! - `request`: `method` (default `GET`), `path` (path and query), optional
//!   `headers` (name → string) and `body` (JSON sent as `application/json`;
//!   a JSON string is sent as is, as `text/plain`, unless `headers` names a
//!   `Content-Type`). In `path`, header values and every string of `body`,
//!   `{ingest_key}`, `{read_key}` and `{admin_key}` are replaced by the
//!   scenario server's keys. `expect_status` defaults to 200; `expect_body`
//!   compares like a `post`'s (JSON) or, for a non-JSON answer, its text.
//!   With `name`, the answer's JSON field `sid` (or `session_id`) is
//!   remembered under that name, and `{sid:<name>}` in a later `path` or
//!   body string is replaced by it; `expect_named` (like `expect`) compares
//!   `GET /data/v1/sessions/{sid}` for each name.

mod common;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use playhead_server::App;
use playhead_server::{app, AppState, ManualClock, ServerConfig};
use playhead_store::{FsyncPolicy, SqliteStore, Store};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The server clock's start, and the base of every `ts_offset`.
const T0: i64 = 1_700_000_000_000;
const INGEST_KEY: &str = "scenario-ingest-key";
const READ_KEY: &str = "scenario-read-key";
const ADMIN_KEY: &str = "scenario-admin-key";
/// Tolerance for every number compared.
const EPSILON: f64 = 1e-6;
/// The range pixel sessions are listed in: `T0` ± this (a year).
const LIST_MARGIN_MS: i64 = 365 * 24 * 3600 * 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    notes: Vec<String>,
    #[serde(default)]
    known_divergence: Vec<Divergence>,
    steps: Vec<Step>,
    #[serde(default)]
    expect: BTreeMap<String, Value>,
    #[serde(default)]
    expect_pixel: Vec<PixelExpectation>,
    /// Media Collection sessions by the `name` their creating step gave.
    #[serde(default)]
    expect_adobe: BTreeMap<String, Value>,
    #[serde(default)]
    expect_metrics: Option<OneOrMany<MetricsExpectation>>,
    /// Sessions remembered by a `request` step's `name`.
    #[serde(default)]
    expect_named: BTreeMap<String, Value>,
}

/// A pixel session named by its (video, viewer) pair and rank, and what it
/// must look like (a subset of the session view, as in `expect`).
#[derive(Debug, Deserialize)]
struct PixelExpectation {
    /// The label in messages and `known_divergence`.
    name: Option<String>,
    video_id: String,
    viewer_id: String,
    /// 0 = the pair's oldest session (by `started_at`).
    #[serde(default)]
    nth: usize,
    /// How many pixel sessions the pair must have.
    sessions: Option<usize>,
    /// Every other field: compared with the session view.
    #[serde(flatten)]
    fields: Map<String, Value>,
}

impl PixelExpectation {
    fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}/{}#{}", self.video_id, self.viewer_id, self.nth))
    }
}

/// Aggregates over a range, `GET /data/v1/metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsExpectation {
    /// The label in messages and `known_divergence` (default `metrics`).
    name: Option<String>,
    /// `from`, ms after `T0`.
    from_ms: i64,
    /// `to`, ms after `T0`.
    to_ms: i64,
    /// More query parameters (filters), URL-encoded: `video_id=a&custom.k=v`.
    query: Option<String>,
    /// A subset of the response's `metrics`.
    metrics: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(x) => std::slice::from_ref(x),
            OneOrMany::Many(v) => v,
        }
    }
}

/// A field where the engine is known to disagree with the spec.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Divergence {
    session: String,
    /// Path inside the session view, e.g. `metrics.watch_time_ms`.
    field: String,
    /// The spec's value (the one in `expect`).
    spec: Value,
    /// What the engine gave when the divergence was recorded.
    engine: Value,
    /// How the spec was read.
    reading: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at_ms: Option<i64>,
    advance_ms: Option<i64>,
    post: Option<Value>,
    /// A pixel beacon: path and query, sent as is.
    beacon: Option<String>,
    /// The beacon's method: `GET` (default) or `POST`.
    method: Option<String>,
    expect_status: Option<u16>,
    expect_body: Option<Value>,
    #[serde(default)]
    expire: bool,
    check: Option<BTreeMap<String, Value>>,
    check_pixel: Option<Vec<PixelExpectation>>,
    check_metrics: Option<OneOrMany<MetricsExpectation>>,
    /// Media Collection: `POST /api/v1/sessions` (a `sessionStart`, or the
    /// deprecated downloaded array).
    adobe_start: Option<Value>,
    /// Media Collection: `POST /api/v1/sessions/{sid}/events`.
    adobe_event: Option<AdobeEvent>,
    /// Media Collection: `POST /api/v1/downloaded` (an array).
    adobe_downloaded: Option<Value>,
    /// The name the session created by `adobe_start`/`adobe_downloaded` is
    /// remembered under (its sid comes from `Location`).
    name: Option<String>,
    check_adobe: Option<BTreeMap<String, Value>>,
    /// Any route: method, path, headers and body (see the module docs).
    request: Option<GenericRequest>,
    /// Compare sessions remembered by a `request`'s `name`, now.
    check_named: Option<BTreeMap<String, Value>>,
    #[allow(dead_code)]
    note: Option<String>,
}

/// A request to any route (the `request` step).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericRequest {
    method: Option<String>,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<Value>,
}

/// One event for an Adobe session: named, or by a literal sid.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdobeEvent {
    /// The `name` of the step that created the session.
    session: Option<String>,
    /// A sid sent as is (an unknown one, for a `404`).
    sid: Option<String>,
    event: Value,
}

/// What one scenario run found.
#[derive(Debug, Default)]
struct Outcome {
    /// Mismatches: each names the scenario, the session and the field.
    failures: Vec<String>,
    /// Comparisons skipped as known divergences.
    warnings: Vec<String>,
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

/// Every scenario file, sorted by path.
fn load_scenarios() -> Vec<(PathBuf, Scenario)> {
    let dir = scenario_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no scenario files (*.json) in {}",
        dir.display()
    );
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let s: Scenario = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a valid scenario: {e}", p.display()));
            assert!(
                !s.notes.is_empty(),
                "{}: `notes` must show how the expectations were computed",
                p.display()
            );
            assert!(
                !s.expect.is_empty()
                    || !s.expect_pixel.is_empty()
                    || !s.expect_adobe.is_empty()
                    || s.expect_metrics.is_some(),
                "{}: `expect`, `expect_pixel`, `expect_adobe` and `expect_metrics` are all empty",
                p.display()
            );
            (p, s)
        })
        .collect()
}

/// Run every scenario file against a fresh store from `open_store` (given an
/// empty directory of its own) and fail with every mismatch found.
async fn run_every_scenario(backend: &str, open_store: impl Fn(&Path) -> Arc<dyn Store>) {
    let scenarios = load_scenarios();
    let mut failures = Vec::new();
    for (path, scenario) in &scenarios {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = open_store(dir.path());
        match run_scenario(store, scenario).await {
            Ok(outcome) => {
                for w in &outcome.warnings {
                    eprintln!("warning [{backend}]: {w}");
                }
                failures.extend(outcome.failures);
            }
            Err(e) => failures.push(format!(
                "scenario `{}` ({}): {e}",
                scenario.name,
                path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "[{backend}] {} mismatch(es) in {} scenario(s):\n{}",
        failures.len(),
        scenarios.len(),
        failures.join("\n")
    );
    eprintln!("[{backend}] {} scenarios passed", scenarios.len());
}

/// Replay one scenario against a server on `store`, compare what it serves.
async fn run_scenario(store: Arc<dyn Store>, scenario: &Scenario) -> Result<Outcome, String> {
    let clock = ManualClock::new(T0);
    let mut config = ServerConfig::single("default", INGEST_KEY, READ_KEY);
    config.admin_key = Some(ADMIN_KEY.into());
    let state = AppState::start(config, store, Arc::new(clock.clone()))
        .map_err(|e| format!("server start: {e}"))?;
    let router = app(state.clone());
    let mut outcome = Outcome::default();
    // Media Collection sessions: name → sid (from `Location`).
    let mut adobe: BTreeMap<String, String> = BTreeMap::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let at = format!("scenario `{}`, step {i}", scenario.name);
        if let Some(ms) = step.at_ms {
            clock.set(T0 + ms);
        }
        if let Some(ms) = step.advance_ms {
            clock.advance(ms);
        }
        let actions = [
            step.post.is_some(),
            step.beacon.is_some(),
            step.expire,
            step.check.is_some(),
            step.check_pixel.is_some(),
            step.check_metrics.is_some(),
            step.adobe_start.is_some(),
            step.adobe_event.is_some(),
            step.adobe_downloaded.is_some(),
            step.check_adobe.is_some(),
            step.request.is_some(),
            step.check_named.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() > 1 {
            return Err(format!(
                "{at}: one of `post`, `beacon`, `expire`, `check`, `check_pixel`, \
                 `check_metrics`, `adobe_start`, `adobe_event`, `adobe_downloaded`, \
                 `check_adobe`, `request`, `check_named` per step"
            ));
        }
        let sends = step.post.is_some()
            || step.beacon.is_some()
            || step.adobe_start.is_some()
            || step.adobe_event.is_some()
            || step.adobe_downloaded.is_some()
            || step.request.is_some();
        if (step.expect_status.is_some() || step.expect_body.is_some()) && !sends {
            return Err(format!(
                "{at}: `expect_status`/`expect_body` need a `post`, a `beacon`, a `request` or an Adobe step"
            ));
        }
        if step.method.is_some() && step.beacon.is_none() {
            return Err(format!("{at}: `method` needs a `beacon`"));
        }
        if step.name.is_some()
            && step.adobe_start.is_none()
            && step.adobe_downloaded.is_none()
            && step.request.is_none()
        {
            return Err(format!(
                "{at}: `name` needs an `adobe_start`, an `adobe_downloaded` or a `request`"
            ));
        }
        if let Some(body) = &step.post {
            let body = request_body(body).map_err(|e| format!("{at}: {e}"))?;
            let (status, answer) = post_events(&router, body).await;
            let want = step.expect_status.unwrap_or(202);
            if status.as_u16() != want {
                outcome.failures.push(format!(
                    "{at}: POST /v1/events answered {status}, expected {want}: {answer}"
                ));
            }
            if let Some(want) = &step.expect_body {
                let mut diffs = Vec::new();
                compare("body", want, &answer, true, &mut diffs);
                for d in diffs {
                    outcome.failures.push(format!("{at}: {d}"));
                }
            }
        }
        if let Some(target) = &step.beacon {
            let (method, default_status) = match step.method.as_deref().unwrap_or("GET") {
                "GET" => (Method::GET, 200),
                "POST" => (Method::POST, 204),
                other => return Err(format!("{at}: `method` must be GET or POST, got {other}")),
            };
            let req = Request::builder()
                .method(method.clone())
                .uri(target.as_str())
                .body(Body::empty())
                .map_err(|e| format!("{at}: bad beacon `{target}`: {e}"))?;
            let reply = common::send(&router, req).await;
            let want = step.expect_status.unwrap_or(default_status);
            if reply.status.as_u16() != want {
                outcome.failures.push(format!(
                    "{at}: {method} {target} answered {}, expected {want}: {}",
                    reply.status, reply.text
                ));
            }
            if let Some(want) = &step.expect_body {
                let mut diffs = Vec::new();
                compare("body", want, &reply.body, true, &mut diffs);
                for d in diffs {
                    outcome.failures.push(format!("{at}: {d}"));
                }
            }
        }
        let creation = [
            (&step.adobe_start, "/api/v1/sessions"),
            (&step.adobe_downloaded, "/api/v1/downloaded"),
        ];
        for (body, uri) in creation {
            let Some(body) = body else { continue };
            let body = adobe_body(body).map_err(|e| format!("{at}: {e}"))?;
            let reply = post_adobe(&router, uri, &body).await;
            let want = step.expect_status.unwrap_or(201);
            check_adobe_answer(&at, uri, step, want, &reply, &mut outcome);
            if reply.status == StatusCode::CREATED {
                match created_sid(&reply) {
                    Ok(sid) => {
                        if let Some(name) = &step.name {
                            if adobe.insert(name.clone(), sid).is_some() {
                                return Err(format!("{at}: the name `{name}` is given twice"));
                            }
                        }
                    }
                    Err(e) => outcome.failures.push(format!("{at}: POST {uri}: {e}")),
                }
            }
        }
        if let Some(ev) = &step.adobe_event {
            let sid = match (&ev.session, &ev.sid) {
                (Some(name), None) => adobe
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("{at}: no Adobe session named `{name}` was created"))?,
                (None, Some(sid)) => sid.clone(),
                _ => return Err(format!("{at}: `adobe_event` needs `session` or `sid`")),
            };
            let uri = format!("/api/v1/sessions/{sid}/events");
            let body = adobe_body(&ev.event).map_err(|e| format!("{at}: {e}"))?;
            let reply = post_adobe(&router, &uri, &body).await;
            let want = step.expect_status.unwrap_or(204);
            check_adobe_answer(&at, &uri, step, want, &reply, &mut outcome);
        }
        if let Some(request) = &step.request {
            let (label, reply) = send_request(&router, request, &adobe)
                .await
                .map_err(|e| format!("{at}: {e}"))?;
            let want = step.expect_status.unwrap_or(200);
            if reply.status.as_u16() != want {
                outcome.failures.push(format!(
                    "{at}: {label} answered {}, expected {want}: {}",
                    reply.status, reply.text
                ));
            }
            if let Some(want) = &step.expect_body {
                let mut diffs = Vec::new();
                compare("body", want, &reply.body, true, &mut diffs);
                for d in diffs {
                    outcome.failures.push(format!("{at}: {d}"));
                }
            }
            if let Some(name) = &step.name {
                let sid = ["sid", "session_id"]
                    .iter()
                    .find_map(|k| reply.body[*k].as_str());
                match sid {
                    Some(sid) => {
                        if adobe.insert(name.clone(), sid.to_owned()).is_some() {
                            return Err(format!("{at}: the name `{name}` is given twice"));
                        }
                    }
                    None => outcome.failures.push(format!(
                        "{at}: {label}: no `sid` or `session_id` in the answer to name `{name}`: {}",
                        reply.text
                    )),
                }
            }
        }
        if let Some(check) = &step.check_named {
            compare_adobe_sessions(&router, scenario, &at, &adobe, check, &mut outcome).await;
        }
        if step.expire {
            state
                .pipeline
                .expire_now()
                .await
                .map_err(|e| format!("{at}: expire: {e}"))?;
        }
        if let Some(check) = &step.check {
            compare_sessions(&router, scenario, &at, check, &mut outcome).await;
        }
        if let Some(check) = &step.check_pixel {
            compare_pixel_sessions(&router, scenario, &at, check, &mut outcome).await;
        }
        if let Some(check) = &step.check_metrics {
            compare_metrics(&router, scenario, &at, check.as_slice(), &mut outcome).await;
        }
        if let Some(check) = &step.check_adobe {
            compare_adobe_sessions(&router, scenario, &at, &adobe, check, &mut outcome).await;
        }
    }
    let at = format!("scenario `{}`, final", scenario.name);
    compare_sessions(&router, scenario, &at, &scenario.expect, &mut outcome).await;
    let expected = &scenario.expect_adobe;
    compare_adobe_sessions(&router, scenario, &at, &adobe, expected, &mut outcome).await;
    let expected = &scenario.expect_named;
    compare_adobe_sessions(&router, scenario, &at, &adobe, expected, &mut outcome).await;
    compare_pixel_sessions(&router, scenario, &at, &scenario.expect_pixel, &mut outcome).await;
    if let Some(expected) = &scenario.expect_metrics {
        compare_metrics(&router, scenario, &at, expected.as_slice(), &mut outcome).await;
    }
    Ok(outcome)
}

/// `{ingest_key}`, `{read_key}`, `{admin_key}` and `{sid:<name>}` replaced.
fn substitute(text: &str, named: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = text
        .replace("{ingest_key}", INGEST_KEY)
        .replace("{read_key}", READ_KEY)
        .replace("{admin_key}", ADMIN_KEY);
    while let Some(start) = out.find("{sid:") {
        let end = out[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| format!("unclosed `{{sid:` in `{text}`"))?;
        let name = &out[start + 5..end];
        let sid = named
            .get(name)
            .ok_or_else(|| format!("no session named `{name}` was remembered"))?;
        out.replace_range(start..=end, sid);
    }
    Ok(out)
}

/// Every string inside `value`, substituted.
fn substitute_json(value: &Value, named: &BTreeMap<String, String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(substitute(s, named)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_json(v, named))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute_json(v, named)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Send a `request` step; returns `METHOD path` for messages, and the answer.
async fn send_request(
    router: &App,
    request: &GenericRequest,
    named: &BTreeMap<String, String>,
) -> Result<(String, common::Reply), String> {
    let method: Method = request
        .method
        .as_deref()
        .unwrap_or("GET")
        .parse()
        .map_err(|e| format!("bad `method`: {e}"))?;
    let path = substitute(&request.path, named)?;
    let mut builder = Request::builder().method(method.clone()).uri(path.as_str());
    let mut has_content_type = false;
    for (name, value) in &request.headers {
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        builder = builder.header(name.as_str(), substitute(value, named)?);
    }
    let body = match &request.body {
        None => Body::empty(),
        Some(Value::String(text)) => {
            if !has_content_type {
                builder = builder.header(header::CONTENT_TYPE, "text/plain");
            }
            Body::from(substitute(text, named)?)
        }
        Some(json) => {
            if !has_content_type {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
            }
            Body::from(substitute_json(json, named)?.to_string())
        }
    };
    let req = builder
        .body(body)
        .map_err(|e| format!("bad request `{method} {path}`: {e}"))?;
    Ok((format!("{method} {path}"), common::send(router, req).await))
}

/// An Adobe body with every `playerTime.ts_offset` turned into `playerTime.ts`
/// (one event, or each event of an array).
fn adobe_body(body: &Value) -> Result<Value, String> {
    let mut body = body.clone();
    let events: Vec<&mut Value> = match &mut body {
        Value::Array(items) => items.iter_mut().collect(),
        one => vec![one],
    };
    for ev in events {
        let Some(pt) = ev.get_mut("playerTime").and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(offset) = pt.remove("ts_offset") {
            let offset = offset
                .as_i64()
                .ok_or("`playerTime.ts_offset` must be an integer")?;
            if pt.contains_key("ts") {
                return Err("an event gives both `playerTime.ts` and `ts_offset`".into());
            }
            pt.insert("ts".into(), Value::from(T0 + offset));
        }
    }
    Ok(body)
}

async fn post_adobe(router: &App, uri: &str, body: &Value) -> common::Reply {
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    common::send(router, req).await
}

/// Compare an Adobe answer with the step's `expect_status` (`want`) and
/// `expect_body` (a string: a substring of `message`).
fn check_adobe_answer(
    at: &str,
    uri: &str,
    step: &Step,
    want: u16,
    reply: &common::Reply,
    outcome: &mut Outcome,
) {
    if reply.status.as_u16() != want {
        outcome.failures.push(format!(
            "{at}: POST {uri} answered {}, expected {want}: {}",
            reply.status, reply.text
        ));
    }
    match &step.expect_body {
        None => {}
        Some(Value::String(part)) => {
            let message = reply.body["message"].as_str().unwrap_or_default();
            if !message.contains(part.as_str()) {
                outcome.failures.push(format!(
                    "{at}: POST {uri}: `message` should contain `{part}`: {}",
                    reply.text
                ));
            }
        }
        Some(want) => {
            let mut diffs = Vec::new();
            compare("body", want, &reply.body, true, &mut diffs);
            for d in diffs {
                outcome.failures.push(format!("{at}: {d}"));
            }
        }
    }
}

/// The sid of a `201`: empty body, `Location: /api/v1/sessions/{64 hex}`.
fn created_sid(reply: &common::Reply) -> Result<String, String> {
    if !reply.text.is_empty() {
        return Err(format!("201 with a body: {}", reply.text));
    }
    let location = reply
        .header("location")
        .ok_or("201 without a Location header")?;
    let sid = location
        .strip_prefix("/api/v1/sessions/")
        .filter(|sid| sid.len() == 64 && sid.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("Location `{location}` is not /api/v1/sessions/{{64 hex}}"))?;
    Ok(sid.to_owned())
}

/// The request body: the ingest key added, `ts_offset` turned into `ts`.
fn request_body(post: &Value) -> Result<Value, String> {
    let mut body = post
        .as_object()
        .cloned()
        .ok_or("`post` must be an object")?;
    body.insert("property".into(), Value::String(INGEST_KEY.into()));
    if let Some(Value::Array(events)) = body.get_mut("events") {
        for ev in events.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(offset) = ev.remove("ts_offset") {
                let offset = offset.as_i64().ok_or("`ts_offset` must be an integer")?;
                if ev.contains_key("ts") {
                    return Err("an event gives both `ts` and `ts_offset`".into());
                }
                ev.insert("ts".into(), Value::from(T0 + offset));
            }
        }
    }
    Ok(Value::Object(body))
}

async fn post_events(router: &App, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/v1/events")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    send(router, req).await
}

async fn get_session(router: &App, id: &str) -> (StatusCode, Value) {
    let req = Request::get(format!("/data/v1/sessions/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {READ_KEY}"))
        .body(Body::empty())
        .expect("request");
    send(router, req).await
}

async fn get_json(router: &App, uri: &str) -> (StatusCode, Value) {
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {READ_KEY}"))
        .body(Body::empty())
        .expect("request");
    send(router, req).await
}

async fn send(router: &App, req: Request<Body>) -> (StatusCode, Value) {
    let reply = common::send(router, req).await;
    (reply.status, reply.body)
}

/// Read each expected session and compare it; known divergences are skipped.
async fn compare_sessions(
    router: &App,
    scenario: &Scenario,
    at: &str,
    expected: &BTreeMap<String, Value>,
    outcome: &mut Outcome,
) {
    for (id, want) in expected {
        compare_session(router, scenario, at, id, id, want, outcome).await;
    }
}

/// The same for Media Collection sessions, named by the step that created
/// them (the name is the label in messages and `known_divergence`).
async fn compare_adobe_sessions(
    router: &App,
    scenario: &Scenario,
    at: &str,
    adobe: &BTreeMap<String, String>,
    expected: &BTreeMap<String, Value>,
    outcome: &mut Outcome,
) {
    for (name, want) in expected {
        match adobe.get(name) {
            Some(sid) => compare_session(router, scenario, at, name, sid, want, outcome).await,
            None => outcome.failures.push(format!(
                "{at}, Adobe session `{name}`: no step created a session of that name"
            )),
        }
    }
}

/// Read session `id` and compare it with `want`; `label` names it in
/// messages and `known_divergence`.
async fn compare_session(
    router: &App,
    scenario: &Scenario,
    at: &str,
    label: &str,
    id: &str,
    want: &Value,
    outcome: &mut Outcome,
) {
    let (status, view) = get_session(router, id).await;
    if status != StatusCode::OK {
        outcome.failures.push(format!(
            "{at}, session `{label}`: GET answered {status}: {view}"
        ));
        return;
    }
    let Some(want) = want.as_object() else {
        outcome.failures.push(format!(
            "{at}, session `{label}`: expectation is not an object"
        ));
        return;
    };
    compare_view(scenario, at, label, want, &view, outcome);
}

/// The pixel sessions of one (video, viewer) pair, oldest first.
async fn pixel_sessions(
    router: &App,
    video_id: &str,
    viewer_id: &str,
) -> Result<Vec<Value>, String> {
    // An explicit range: the default one ends at "now", exclusive, and
    // with a frozen clock a session that started this very millisecond
    // would not be listed.
    let query = serde_urlencoded::to_string([
        ("protocol", "pixel"),
        ("video_id", video_id),
        ("viewer_id", viewer_id),
        ("from", &(T0 - LIST_MARGIN_MS).to_string()),
        ("to", &(T0 + LIST_MARGIN_MS).to_string()),
        ("limit", "1000"),
    ])
    .map_err(|e| format!("query: {e}"))?;
    let (status, body) = get_json(router, &format!("/data/v1/sessions?{query}")).await;
    if status != StatusCode::OK {
        return Err(format!("GET /data/v1/sessions answered {status}: {body}"));
    }
    let mut sessions = body["sessions"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("no `sessions` in {body}"))?;
    if !body["next_cursor"].is_null() {
        return Err("more than 1000 sessions for one pair".into());
    }
    // Newest first in the API.
    sessions.reverse();
    Ok(sessions)
}

/// Find each expected pixel session by its pair and rank, and compare it.
async fn compare_pixel_sessions(
    router: &App,
    scenario: &Scenario,
    at: &str,
    expected: &[PixelExpectation],
    outcome: &mut Outcome,
) {
    for want in expected {
        let label = want.label();
        let sessions = match pixel_sessions(router, &want.video_id, &want.viewer_id).await {
            Ok(s) => s,
            Err(e) => {
                outcome
                    .failures
                    .push(format!("{at}, pixel session `{label}`: {e}"));
                continue;
            }
        };
        if let Some(n) = want.sessions {
            if sessions.len() != n {
                outcome.failures.push(format!(
                    "{at}, pixel session `{label}`: the pair has {} session(s), expected {n}",
                    sessions.len()
                ));
            }
        }
        if want.fields.is_empty() && want.sessions.is_some() {
            // Only the count was asked (`"sessions": 0`: the pair has none).
            continue;
        }
        let Some(view) = sessions.get(want.nth) else {
            outcome.failures.push(format!(
                "{at}, pixel session `{label}`: the pair has {} session(s), no #{}",
                sessions.len(),
                want.nth
            ));
            continue;
        };
        // The pair selects the session, and is part of the view too.
        let mut fields = want.fields.clone();
        fields.insert("video_id".into(), Value::String(want.video_id.clone()));
        fields.insert("viewer_id".into(), Value::String(want.viewer_id.clone()));
        compare_view(scenario, at, &label, &fields, view, outcome);
    }
}

/// Read the aggregates of each expected range and compare them.
async fn compare_metrics(
    router: &App,
    scenario: &Scenario,
    at: &str,
    expected: &[MetricsExpectation],
    outcome: &mut Outcome,
) {
    for want in expected {
        let label = want.name.as_deref().unwrap_or("metrics");
        let mut uri = format!(
            "/data/v1/metrics?from={}&to={}",
            T0 + want.from_ms,
            T0 + want.to_ms
        );
        if let Some(q) = &want.query {
            uri.push('&');
            uri.push_str(q);
        }
        let (status, body) = get_json(router, &uri).await;
        if status != StatusCode::OK {
            outcome.failures.push(format!(
                "{at}, `{label}`: GET {uri} answered {status}: {body}"
            ));
            continue;
        }
        let mut fields = Map::new();
        fields.insert("metrics".into(), Value::Object(want.metrics.clone()));
        compare_view(scenario, at, label, &fields, &body, outcome);
    }
}

/// Compare a view with the expected subset of its fields (`metrics`: a
/// subset of its metrics); known divergences of `id` (a session id or an
/// expectation's label) are skipped.
fn compare_view(
    scenario: &Scenario,
    at: &str,
    id: &str,
    want: &Map<String, Value>,
    view: &Value,
    outcome: &mut Outcome,
) {
    let mut diffs = Vec::new();
    for (field, value) in want {
        if field == "metrics" {
            let Some(metrics) = value.as_object() else {
                diffs.push(("metrics".to_owned(), "must be an object".to_owned()));
                continue;
            };
            for (name, value) in metrics {
                let path = format!("metrics.{name}");
                compare_field(&path, value, &view["metrics"], name, &mut diffs);
            }
        } else {
            compare_field(field, value, view, field, &mut diffs);
        }
    }
    let mut skipped: Vec<&str> = Vec::new();
    for (path, message) in diffs {
        let known = scenario.known_divergence.iter().find(|d| {
            d.session == *id && (path == d.field || path.starts_with(&format!("{}.", d.field)))
        });
        match known {
            Some(d) => {
                skipped.push(&d.field);
                outcome.warnings.push(format!(
                    "{at}, session `{id}`: known divergence skipped: {message} \
                     (spec {}, engine {} when recorded: {})",
                    d.spec, d.engine, d.reading
                ));
            }
            None => outcome
                .failures
                .push(format!("{at}, session `{id}`: {message}")),
        }
    }
    for d in scenario
        .known_divergence
        .iter()
        .filter(|d| d.session == *id)
    {
        if want_has(want, &d.field) && !skipped.contains(&d.field.as_str()) {
            outcome.warnings.push(format!(
                "{at}, session `{id}`: `{}` now agrees with the spec; \
                 remove its known_divergence",
                d.field
            ));
        }
    }
}

/// Whether an expectation mentions `field` (`metrics.x` or a top-level name).
fn want_has(want: &Map<String, Value>, field: &str) -> bool {
    match field.split_once('.') {
        Some(("metrics", name)) => want
            .get("metrics")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(name)),
        _ => want.contains_key(field),
    }
}

/// Compare one named field of `parent` (which must have it).
fn compare_field(
    path: &str,
    want: &Value,
    parent: &Value,
    name: &str,
    diffs: &mut Vec<(String, String)>,
) {
    let Some(actual) = parent.get(name) else {
        diffs.push((
            path.to_owned(),
            format!("`{path}` missing from the response"),
        ));
        return;
    };
    let mut found = Vec::new();
    compare(path, want, actual, true, &mut found);
    diffs.extend(found.into_iter().map(|m| (path.to_owned(), m)));
}

/// Compare `actual` with `want`: numbers within [`EPSILON`], everything else
/// exactly (objects must have the same keys when `exact_keys`).
fn compare(path: &str, want: &Value, actual: &Value, exact_keys: bool, out: &mut Vec<String>) {
    let mismatch = |out: &mut Vec<String>| {
        out.push(format!("`{path}`: expected {want}, got {actual}"));
    };
    match (want, actual) {
        (Value::Number(w), Value::Number(a)) => {
            let (w, a) = (
                w.as_f64().unwrap_or(f64::NAN),
                a.as_f64().unwrap_or(f64::NAN),
            );
            if (w - a).abs() > EPSILON || w.is_nan() || a.is_nan() {
                mismatch(out);
            }
        }
        (Value::Array(w), Value::Array(a)) => {
            if w.len() != a.len() {
                mismatch(out);
                return;
            }
            for (i, (w, a)) in w.iter().zip(a).enumerate() {
                compare(&format!("{path}[{i}]"), w, a, true, out);
            }
        }
        (Value::Object(w), Value::Object(a)) => {
            if exact_keys && w.len() != a.len() {
                mismatch(out);
                return;
            }
            for (k, wv) in w {
                match a.get(k) {
                    Some(av) => compare(&format!("{path}.{k}"), wv, av, true, out),
                    None => out.push(format!("`{path}.{k}`: expected {wv}, missing")),
                }
            }
        }
        (w, a) if w == a => {}
        _ => mismatch(out),
    }
}

#[tokio::test]
async fn scenarios_on_sqlite() {
    run_every_scenario("sqlite", |dir| {
        Arc::new(SqliteStore::open(dir, FsyncPolicy::Off).expect("open sqlite store"))
    })
    .await;
}
