//! Scenario tests: transcripts of native-protocol requests replayed against a
//! whole server (`app(state)` through `tower::ServiceExt::oneshot`, a
//! [`ManualClock`], a real store), then the sessions read back through
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

mod common;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
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
/// Tolerance for every number compared.
const EPSILON: f64 = 1e-6;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    notes: Vec<String>,
    #[serde(default)]
    known_divergence: Vec<Divergence>,
    steps: Vec<Step>,
    expect: BTreeMap<String, Value>,
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
    expect_status: Option<u16>,
    expect_body: Option<Value>,
    #[serde(default)]
    expire: bool,
    check: Option<BTreeMap<String, Value>>,
    #[allow(dead_code)]
    note: Option<String>,
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
            assert!(!s.expect.is_empty(), "{}: `expect` is empty", p.display());
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
    let state = AppState::start(
        ServerConfig::single("default", INGEST_KEY, READ_KEY),
        store,
        Arc::new(clock.clone()),
    )
    .map_err(|e| format!("server start: {e}"))?;
    let router = app(state.clone());
    let mut outcome = Outcome::default();
    for (i, step) in scenario.steps.iter().enumerate() {
        let at = format!("scenario `{}`, step {i}", scenario.name);
        if let Some(ms) = step.at_ms {
            clock.set(T0 + ms);
        }
        if let Some(ms) = step.advance_ms {
            clock.advance(ms);
        }
        let actions = [step.post.is_some(), step.expire, step.check.is_some()];
        if actions.iter().filter(|a| **a).count() > 1 {
            return Err(format!("{at}: one of `post`, `expire`, `check` per step"));
        }
        if (step.expect_status.is_some() || step.expect_body.is_some()) && step.post.is_none() {
            return Err(format!("{at}: `expect_status`/`expect_body` need a `post`"));
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
    }
    let at = format!("scenario `{}`, final", scenario.name);
    compare_sessions(&router, scenario, &at, &scenario.expect, &mut outcome).await;
    Ok(outcome)
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

async fn post_events(router: &Router, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/v1/events")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    send(router, req).await
}

async fn get_session(router: &Router, id: &str) -> (StatusCode, Value) {
    let req = Request::get(format!("/data/v1/sessions/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {READ_KEY}"))
        .body(Body::empty())
        .expect("request");
    send(router, req).await
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let reply = common::send(router, req).await;
    (reply.status, reply.body)
}

/// Read each expected session and compare it; known divergences are skipped.
async fn compare_sessions(
    router: &Router,
    scenario: &Scenario,
    at: &str,
    expected: &BTreeMap<String, Value>,
    outcome: &mut Outcome,
) {
    for (id, want) in expected {
        let (status, view) = get_session(router, id).await;
        if status != StatusCode::OK {
            outcome.failures.push(format!(
                "{at}, session `{id}`: GET answered {status}: {view}"
            ));
            continue;
        }
        let Some(want) = want.as_object() else {
            outcome.failures.push(format!(
                "{at}, session `{id}`: expectation is not an object"
            ));
            continue;
        };
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
                compare_field(field, value, &view, field, &mut diffs);
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
