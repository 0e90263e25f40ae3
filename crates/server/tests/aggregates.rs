//! Aggregates over sessions (`spec/metrics.md`, "Aggregates over sessions")
//! checked against values computed by hand, over 300 generated sessions.
//!
//! Every session is built from a closed-form plan ([`plan`]): its events are
//! posted through the native protocol (`POST /v1/events`) and its
//! per-session values (startup, playing, rebuffer, watch time, failed, …)
//! are known without running the engine. The expected aggregates are then
//! plain arithmetic over those plans ([`Expected::of`]): sorting for
//! nearest-rank percentiles, a `HashSet` for unique viewers, sums and ratios.
//! They are compared with what `GET /data/v1/metrics`, `/metrics/breakdown`
//! and `/metrics/timeseries` answer, exactly (floats within 1e-9 relative):
//! - over a range aligned to minutes (closed sessions come from rollups),
//! - over a range cut inside minutes, filtered by `video_id` (rollups for the
//!   whole minutes, session rows at the edges),
//! - filtered by `viewer_id` (not a rollup dimension: session rows only),
//! - then with three more sessions, first open (session rows next to the
//!   rollups), then one closed by `viewend`, one by inactivity timeout and one
//!   still open: nothing counted twice or lost between rows and rollups.
//!
//! Run with: `cargo test -p playhead-server --test aggregates`

mod common;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use playhead_server::ServerConfig;
use playhead_store::FsyncPolicy;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const INGEST_KEY: &str = "aggregates-ingest";
const READ_KEY: &str = "aggregates-read";
/// 2023-11-14T23:00:00Z: whole hour. Sessions start after it.
const BASE: i64 = 1_700_002_800_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
/// Sessions generated.
const N: usize = 300;
const VIDEOS: usize = 5;
/// Relative tolerance of float comparisons.
const REL: f64 = 1e-9;

/// How a planned session goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `viewinit`, then `viewend` 1.5 s later: a view without a play request.
    NoPlay,
    /// `play`, then `viewend` 2 s later: exit before start.
    ExitBeforeStart,
    /// First frame, 5 s of playing, then a fatal error; `viewend` 1 s later.
    Failed,
    /// First frame, playing (maybe a stall, a pause, a warning), maybe `ended`.
    Played,
}

/// One session: what is sent, and its per-session values by construction.
#[derive(Debug, Clone)]
struct Plan {
    id: String,
    video: String,
    viewer: Option<String>,
    kind: Kind,
    start: i64,
    /// `(ts offset from start, type, extra fields)`, in time order; `seq` is the index + 1.
    events: Vec<(i64, &'static str, Value)>,
    /// Events sent in the first request; the rest in a second one.
    first_request: usize,
    startup_ms: Option<i64>,
    playing_ms: i64,
    rebuffer_ms: i64,
    rebuffer_count: u64,
    completed: bool,
    /// Error codes, each once.
    errors: Vec<String>,
}

impl Plan {
    fn play_requested(&self) -> bool {
        self.kind != Kind::NoPlay
    }
    fn played(&self) -> bool {
        matches!(self.kind, Kind::Failed | Kind::Played)
    }
    fn failed(&self) -> bool {
        self.kind == Kind::Failed
    }
    fn exit_before_start(&self) -> bool {
        self.kind == Kind::ExitBeforeStart
    }
    /// startup + playing + rebuffer (no ads, no seeks; pauses excluded).
    fn watch_ms(&self) -> i64 {
        self.startup_ms.unwrap_or(0) + self.playing_ms + self.rebuffer_ms
    }
    fn end(&self) -> i64 {
        self.start + self.events.last().map_or(0, |e| e.0)
    }
}

/// Whether `i` is a multiple of `n`.
// `usize::is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn every(i: usize, n: usize) -> bool {
    i % n == 0
}

/// Session `i`'s plan, in closed form.
fn plan(i: usize) -> Plan {
    let ii = i as i64;
    // 41 s apart plus up to 13 s of jitter: about 3.4 hours in all, each
    // session over before the next starts.
    let start = BASE + 30_000 + ii * 41_000 + (ii * 7_919) % 13_000;
    let kind = if i % 23 == 7 {
        Kind::NoPlay
    } else if every(i, 11) {
        Kind::ExitBeforeStart
    } else if every(i, 13) {
        Kind::Failed
    } else {
        Kind::Played
    };
    // Distinct for every session (`i % 61` and `i / 61` give back `i`), so
    // that a percentile one rank off shows.
    let startup = 200 + 37 * (ii % 61) + ii / 61;
    let mut p = Plan {
        id: format!("s{i:03}"),
        video: format!("v{}", i % VIDEOS),
        viewer: (i % 29 != 3).then(|| format!("u{}", i % 97)),
        kind,
        start,
        events: Vec::new(),
        first_request: 1,
        startup_ms: None,
        playing_ms: 0,
        rebuffer_ms: 0,
        rebuffer_count: 0,
        completed: false,
        errors: Vec::new(),
    };
    let none = || json!({});
    match kind {
        Kind::NoPlay => {
            p.events = vec![(0, "viewinit", none()), (1_500, "viewend", none())];
        }
        Kind::ExitBeforeStart => {
            p.events = vec![(0, "play", none()), (2_000, "viewend", none())];
        }
        Kind::Failed => {
            let code = format!("MEDIA_ERR_{}", i % 3);
            p.events = vec![
                (0, "play", none()),
                (startup, "playing", none()),
                (
                    startup + 5_000,
                    "error",
                    json!({"code": code, "message": "decode failed", "fatal": true}),
                ),
                (startup + 6_000, "viewend", none()),
            ];
            p.first_request = 2;
            p.startup_ms = Some(startup);
            p.playing_ms = 5_000;
            p.errors = vec![code];
        }
        Kind::Played => {
            let play = 10_000 + 1_000 * (ii % 17);
            let mut t = startup;
            let mut events = vec![(0, "play", none()), (t, "playing", none())];
            if i % 17 == 1 {
                // A warning: counted in `errors`, does not fail the session.
                events.push((
                    t + 1_000,
                    "error",
                    json!({"code": "NET_WARN", "fatal": false}),
                ));
                p.errors = vec!["NET_WARN".to_owned()];
            }
            t += play / 2;
            if every(i, 7) {
                let stall = 500 + 250 * (ii % 9);
                events.push((t, "waiting", none()));
                t += stall;
                events.push((t, "playing", none()));
                p.rebuffer_ms = stall;
                p.rebuffer_count = 1;
            }
            if i % 5 == 2 {
                // Three seconds paused in the second half: not watch time.
                t += play / 4;
                events.push((t, "pause", none()));
                t += 3_000;
                events.push((t, "playing", none()));
                t += play / 4;
            } else {
                t += play / 2;
            }
            if every(i, 3) {
                // Time after the end of content is not watch time either.
                events.push((t, "ended", none()));
                events.push((t + 1_000, "viewend", none()));
                p.completed = true;
            } else {
                events.push((t, "viewend", none()));
            }
            p.events = events;
            p.first_request = 2;
            p.startup_ms = Some(startup);
            p.playing_ms = play;
        }
    }
    p
}

/// Nearest-rank percentile: the value at rank ⌈pct/100 × n⌉ of the sorted values.
fn nearest_rank(sorted: &[i64], pct: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1] as f64)
}

/// The aggregates of a set of plans, by hand.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    views: u64,
    unique_viewers: u64,
    plays: u64,
    play_rate: f64,
    watch_time_ms: f64,
    playing_time_ms: f64,
    avg_watch_time_ms: f64,
    p50: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    rebuffer_percentage: f64,
    rebuffer_frequency: f64,
    playback_failure_percentage: f64,
    exit_before_start_percentage: f64,
    completion_rate: f64,
    startup_score: Option<f64>,
    playback_success_score: Option<f64>,
    errors: BTreeMap<String, u64>,
}

fn ratio(n: f64, d: f64) -> f64 {
    if d > 0.0 {
        n / d
    } else {
        0.0
    }
}

impl Expected {
    fn of(plans: &[&Plan]) -> Expected {
        let views = plans.len() as u64;
        let viewers: HashSet<&str> = plans.iter().filter_map(|p| p.viewer.as_deref()).collect();
        let plays = plans.iter().filter(|p| p.played()).count() as u64;
        let requested = plans.iter().filter(|p| p.play_requested()).count() as u64;
        let failed = plans.iter().filter(|p| p.failed()).count() as u64;
        let ebvs = plans.iter().filter(|p| p.exit_before_start()).count() as u64;
        let completed = plans.iter().filter(|p| p.completed).count() as u64;
        let watch: i64 = plans.iter().map(|p| p.watch_ms()).sum();
        let playing: i64 = plans.iter().map(|p| p.playing_ms).sum();
        let rebuffer: i64 = plans.iter().map(|p| p.rebuffer_ms).sum();
        let rebuffers: u64 = plans.iter().map(|p| p.rebuffer_count).sum();
        let mut startups: Vec<i64> = plans.iter().filter_map(|p| p.startup_ms).collect();
        startups.sort_unstable();
        // startup_score = 100 × 8 / (8 + startup s), mean where defined.
        let scores: Vec<f64> = startups
            .iter()
            .map(|ms| 800.0 / (8.0 + *ms as f64 / 1000.0))
            .collect();
        // playback_success_score: 0 failed, 50 exit before start, 100 played.
        let success: Vec<f64> = plans
            .iter()
            .filter_map(|p| match p.kind {
                Kind::Failed => Some(0.0),
                Kind::ExitBeforeStart => Some(50.0),
                Kind::Played => Some(100.0),
                Kind::NoPlay => None,
            })
            .collect();
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let mut errors = BTreeMap::new();
        for code in plans.iter().flat_map(|p| &p.errors) {
            *errors.entry(code.clone()).or_default() += 1;
        }
        Expected {
            views,
            unique_viewers: viewers.len() as u64,
            plays,
            play_rate: ratio(plays as f64, views as f64),
            watch_time_ms: watch as f64,
            playing_time_ms: playing as f64,
            avg_watch_time_ms: ratio(watch as f64, plays as f64),
            p50: nearest_rank(&startups, 50),
            p90: nearest_rank(&startups, 90),
            p95: nearest_rank(&startups, 95),
            rebuffer_percentage: ratio(rebuffer as f64, watch as f64),
            rebuffer_frequency: ratio(rebuffers as f64, watch as f64 / 60_000.0),
            playback_failure_percentage: ratio(100.0 * failed as f64, requested as f64),
            exit_before_start_percentage: ratio(100.0 * ebvs as f64, requested as f64),
            completion_rate: ratio(completed as f64, plays as f64),
            startup_score: mean(&scores),
            playback_success_score: mean(&success),
            errors,
        }
    }

    /// A metric by its API name, as a number (`None`: null).
    fn get(&self, name: &str) -> Option<f64> {
        match name {
            "views" => Some(self.views as f64),
            "unique_viewers" => Some(self.unique_viewers as f64),
            "plays" => Some(self.plays as f64),
            "play_rate" => Some(self.play_rate),
            "watch_time_ms" => Some(self.watch_time_ms),
            "playing_time_ms" => Some(self.playing_time_ms),
            "avg_watch_time_ms" => Some(self.avg_watch_time_ms),
            "startup_time_ms_p50" => self.p50,
            "startup_time_ms_p90" => self.p90,
            "startup_time_ms_p95" => self.p95,
            "rebuffer_percentage" => Some(self.rebuffer_percentage),
            "rebuffer_frequency" => Some(self.rebuffer_frequency),
            "playback_failure_percentage" => Some(self.playback_failure_percentage),
            "exit_before_start_percentage" => Some(self.exit_before_start_percentage),
            "completion_rate" => Some(self.completion_rate),
            "startup_score" => self.startup_score,
            "playback_success_score" => self.playback_success_score,
            other => panic!("no expectation for `{other}`"),
        }
    }
}

/// Every metric [`Expected::get`] knows.
const CHECKED: [&str; 17] = [
    "views",
    "unique_viewers",
    "plays",
    "play_rate",
    "watch_time_ms",
    "playing_time_ms",
    "avg_watch_time_ms",
    "startup_time_ms_p50",
    "startup_time_ms_p90",
    "startup_time_ms_p95",
    "rebuffer_percentage",
    "rebuffer_frequency",
    "playback_failure_percentage",
    "exit_before_start_percentage",
    "completion_rate",
    "startup_score",
    "playback_success_score",
];

fn close_enough(got: f64, want: f64) -> bool {
    got == want || (got - want).abs() <= REL * want.abs().max(got.abs())
}

/// Compare one number (or null) and describe a mismatch.
fn check_number(what: &str, got: &Value, want: Option<f64>, out: &mut Vec<String>) {
    match (got.as_f64(), want) {
        (Some(g), Some(w)) if close_enough(g, w) => {}
        (None, None) if got.is_null() => {}
        _ => out.push(format!("{what}: expected {want:?}, got {got}")),
    }
}

/// Compare a `metrics` object with the expectation; every mismatch listed.
fn check_overview(what: &str, metrics: &Value, want: &Expected) -> Vec<String> {
    let mut out = Vec::new();
    for name in CHECKED {
        check_number(
            &format!("{what}: {name}"),
            &metrics[name],
            want.get(name),
            &mut out,
        );
    }
    let errors: BTreeMap<String, u64> =
        serde_json::from_value(metrics["errors"].clone()).unwrap_or_default();
    if errors != want.errors {
        out.push(format!(
            "{what}: errors: expected {:?}, got {}",
            want.errors, metrics["errors"]
        ));
    }
    out
}

type Server = common::TestServer;

impl Server {
    fn start() -> Server {
        common::TestServer::with(
            ServerConfig::single("agg", INGEST_KEY, READ_KEY),
            BASE,
            FsyncPolicy::Off,
        )
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let reply = common::send(&self.router, req).await;
        (reply.status, reply.body)
    }

    async fn post(&self, body: &Value) -> Value {
        let req = Request::post("/v1/events")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let (status, answer) = self.send(req).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}: {answer}");
        answer
    }

    async fn get(&self, path: &str) -> Value {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {READ_KEY}"))
            .body(Body::empty())
            .expect("request");
        let (status, body) = self.send(req).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Post a plan's events in two requests (one when it has two events),
    /// the clock set to each request's last event first.
    async fn play(&self, p: &Plan) {
        let mut session = json!({"id": p.id, "video_id": p.video,
                                 "video_duration_s": 600, "content_type": "vod"});
        if let Some(v) = &p.viewer {
            session["viewer_id"] = json!(v);
        }
        let events: Vec<Value> = p
            .events
            .iter()
            .enumerate()
            .map(|(k, (offset, kind, extra))| {
                let mut e = json!({"seq": k + 1, "ts": p.start + offset, "type": kind,
                                   "playhead": (*offset as f64) / 1000.0});
                if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
                    e.extend(extra.clone());
                }
                e
            })
            .collect();
        let (first, rest) = events.split_at(p.first_request);
        for (part, chunk) in [first, rest].into_iter().enumerate() {
            if chunk.is_empty() {
                continue;
            }
            let last_ts = chunk
                .iter()
                .filter_map(|e| e["ts"].as_i64())
                .max()
                .expect("ts");
            self.clock.set(last_ts);
            let body = json!({"property": INGEST_KEY, "session": session, "events": chunk});
            let answer = self.post(&body).await;
            assert_eq!(
                answer,
                json!({"accepted": chunk.len(), "duplicates": 0, "late": 0}),
                "{} part {part}",
                p.id
            );
            // Some sessions retry their first request (sendBeacon after a
            // lost answer): acknowledged, ignored.
            if part == 0 && p.id.ends_with('4') {
                let answer = self.post(&body).await;
                assert_eq!(
                    answer,
                    json!({"accepted": 0, "duplicates": chunk.len(), "late": 0}),
                    "{} retry",
                    p.id
                );
            }
        }
    }
}

/// Generate, post and check every session; returns the server and the plans.
async fn populated() -> (Server, Vec<Plan>) {
    let plans: Vec<Plan> = (0..N).map(plan).collect();
    // The plan covers every kind, and sessions never overlap.
    for kind in [
        Kind::NoPlay,
        Kind::ExitBeforeStart,
        Kind::Failed,
        Kind::Played,
    ] {
        assert!(plans.iter().any(|p| p.kind == kind), "{kind:?}");
    }
    for w in plans.windows(2) {
        assert!(w[0].end() < w[1].start, "{} overlaps {}", w[0].id, w[1].id);
    }
    let server = Server::start();
    for p in &plans {
        server.play(p).await;
    }
    // Per-session values first, so that a mismatch in the aggregates below
    // is the aggregation's and not the session fold's.
    let mut wrong = Vec::new();
    for p in &plans {
        let s = server.get(&format!("/data/v1/sessions/{}", p.id)).await;
        let m = &s["metrics"];
        let what = |f: &str| format!("session {} ({:?}): {f}", p.id, p.kind);
        if s["open"] != json!(false) {
            wrong.push(what(&format!("open = {}", s["open"])));
        }
        let startup = p.startup_ms.map(|v| v as f64);
        check_number(
            &what("startup_time_ms"),
            &m["startup_time_ms"],
            startup,
            &mut wrong,
        );
        for (field, want) in [
            ("playing_time_ms", p.playing_ms),
            ("rebuffer_time_ms", p.rebuffer_ms),
            ("watch_time_ms", p.watch_ms()),
            ("rebuffer_count", p.rebuffer_count as i64),
        ] {
            check_number(&what(field), &m[field], Some(want as f64), &mut wrong);
        }
        for (field, want) in [
            ("play_requested", p.play_requested()),
            ("played", p.played()),
            ("failed", p.failed()),
            ("exit_before_start", p.exit_before_start()),
            ("completed", p.completed),
        ] {
            if m[field] != json!(want) {
                wrong.push(what(&format!("{field}: expected {want}, got {}", m[field])));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "per-session values:\n{}",
        wrong.join("\n")
    );
    (server, plans)
}

fn in_range(plans: &[Plan], from: i64, to: i64) -> Vec<&Plan> {
    plans
        .iter()
        .filter(|p| p.start >= from && p.start < to)
        .collect()
}

fn rfc(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("time in range")
        .format(&Rfc3339)
        .expect("format")
}

fn ms_of(s: &str) -> i64 {
    let t = OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("`{s}`: {e}"));
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The first `k` in `range` whose session starts in the same minute as session `k + 1`'s.
fn shares_minute_with_next(plans: &[Plan], range: std::ops::Range<usize>) -> usize {
    range
        .clone()
        .find(|&k| plans[k].start / MINUTE == plans[k + 1].start / MINUTE)
        .unwrap_or_else(|| panic!("no two sessions share a minute in {range:?}"))
}

/// Check `/metrics/breakdown?by=video_id` row by row against `plans`.
async fn check_breakdown(server: &Server, query: &str, plans: &[&Plan], wrong: &mut Vec<String>) {
    for metric in [
        "views",
        "unique_viewers",
        "startup_time_ms_p50",
        "startup_time_ms_p95",
        "playback_failure_percentage",
        "exit_before_start_percentage",
        "rebuffer_percentage",
        "avg_watch_time_ms",
    ] {
        let path = format!("/data/v1/metrics/breakdown?metric={metric}&by=video_id&{query}");
        let b = server.get(&path).await;
        let rows = b["rows"].as_array().expect("rows");
        let mut by_video: BTreeMap<&str, Vec<&Plan>> = BTreeMap::new();
        for p in plans {
            by_video.entry(p.video.as_str()).or_default().push(p);
        }
        let keys: Vec<&str> = rows.iter().filter_map(|r| r["key"].as_str()).collect();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        if sorted_keys != by_video.keys().copied().collect::<Vec<_>>() {
            wrong.push(format!(
                "{path}: keys {keys:?}, expected {:?}",
                by_video.keys()
            ));
            continue;
        }
        let values: Vec<f64> = rows
            .iter()
            .map(|r| r["value"].as_f64().unwrap_or(f64::NEG_INFINITY))
            .collect();
        if !values.windows(2).all(|w| w[0] >= w[1]) {
            wrong.push(format!("{path}: rows not largest first: {values:?}"));
        }
        for row in rows {
            let video = row["key"].as_str().expect("key");
            let want = Expected::of(&by_video[video]);
            check_number(
                &format!("{path}: row {video} value"),
                &row["value"],
                want.get(metric),
                wrong,
            );
            if row["views"] != json!(want.views) {
                wrong.push(format!(
                    "{path}: row {video} views: expected {}, got {}",
                    want.views, row["views"]
                ));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_match_hand_computed_values() {
    let (server, plans) = populated().await;
    let mut wrong = Vec::new();

    // 1. A range aligned to minutes holding every session: closed sessions
    //    are read from the rollups. Given as epoch ms.
    let (from, to) = (BASE, BASE + 4 * HOUR);
    assert!(plans.iter().all(|p| p.start >= from && p.end() < to));
    let all = in_range(&plans, from, to);
    assert_eq!(all.len(), N);
    let want = Expected::of(&all);
    // The generated data is not degenerate.
    assert!(want.plays > 200 && want.views == N as u64, "{want:?}");
    assert!(want.rebuffer_percentage > 0.0 && want.completion_rate > 0.0);
    assert!(want.unique_viewers > 90 && want.unique_viewers <= 97);
    let m = server
        .get(&format!("/data/v1/metrics?from={from}&to={to}"))
        .await;
    assert_eq!(ms_of(m["from"].as_str().expect("from")), from);
    assert_eq!(ms_of(m["to"].as_str().expect("to")), to);
    wrong.extend(check_overview("aligned, all", &m["metrics"], &want));

    // The same range as RFC 3339.
    let m = server
        .get(&format!(
            "/data/v1/metrics?from={}&to={}",
            rfc(from),
            rfc(to)
        ))
        .await;
    wrong.extend(check_overview("aligned, RFC 3339", &m["metrics"], &want));

    // 2. A range cut inside minutes at both ends, filtered by `video_id`
    //    (ORed values): rollups for the whole minutes, session rows at the
    //    edges. `from` is a session's start (inclusive) that shares its
    //    minute with the session before; `to` is 1 ms after a session's
    //    start that shares its minute with the session after (exclusive).
    let k = shares_minute_with_next(&plans, 40..120) + 1;
    let m_end = shares_minute_with_next(&plans, 200..280);
    let (cut_from, cut_to) = (plans[k].start, plans[m_end].start + 1);
    assert_ne!(cut_from % MINUTE, 0);
    assert_ne!(cut_to % MINUTE, 0);
    let mut videos: Vec<&str> = [k - 1, k, m_end, m_end + 1]
        .iter()
        .map(|&i| plans[i].video.as_str())
        .collect();
    videos.sort_unstable();
    videos.dedup();
    assert!(videos.len() < VIDEOS, "the filter must leave a video out");
    let filter: String = videos.iter().map(|v| format!("&video_id={v}")).collect();
    let cut: Vec<&Plan> = in_range(&plans, cut_from, cut_to)
        .into_iter()
        .filter(|p| videos.contains(&p.video.as_str()))
        .collect();
    assert!(cut.iter().any(|p| p.id == plans[k].id));
    assert!(cut.iter().any(|p| p.id == plans[m_end].id));
    let want_cut = Expected::of(&cut);
    let query = format!("from={cut_from}&to={cut_to}{filter}");
    let m = server.get(&format!("/data/v1/metrics?{query}")).await;
    wrong.extend(check_overview(
        &format!("cut range, {query}"),
        &m["metrics"],
        &want_cut,
    ));

    // 3. Filtered by `viewer_id`, not a rollup dimension: session rows only.
    let viewers = ["u5", "u10", "u42"];
    let by_viewer: Vec<&Plan> = all
        .iter()
        .copied()
        .filter(|p| p.viewer.as_deref().is_some_and(|v| viewers.contains(&v)))
        .collect();
    assert!(by_viewer.len() >= 6);
    let query = format!("from={from}&to={to}&viewer_id=u5&viewer_id=u10&viewer_id=u42");
    let m = server.get(&format!("/data/v1/metrics?{query}")).await;
    wrong.extend(check_overview(
        &format!("by viewer, {query}"),
        &m["metrics"],
        &Expected::of(&by_viewer),
    ));

    // 4. Breakdown by `video_id`, row by row, on both kinds of range.
    check_breakdown(&server, &format!("from={from}&to={to}"), &all, &mut wrong).await;
    let unfiltered_cut = in_range(&plans, cut_from, cut_to);
    check_breakdown(
        &server,
        &format!("from={cut_from}&to={cut_to}"),
        &unfiltered_cut,
        &mut wrong,
    )
    .await;

    // 5. Timeseries by hour: every hour present, each bucket by hand, and
    //    the views add up to the total.
    for metric in ["views", "plays", "startup_time_ms_p95", "watch_time_ms"] {
        let path =
            format!("/data/v1/metrics/timeseries?metric={metric}&interval=1h&from={from}&to={to}");
        let ts = server.get(&path).await;
        let points = ts["points"].as_array().expect("points");
        if points.len() != 4 {
            wrong.push(format!("{path}: {} points, expected 4", points.len()));
            continue;
        }
        for (h, point) in points.iter().enumerate() {
            let bucket = from + h as i64 * HOUR;
            if ms_of(point["t"].as_str().expect("t")) != bucket {
                wrong.push(format!("{path}: point {h} at {}", point["t"]));
            }
            let want = Expected::of(&in_range(&plans, bucket, bucket + HOUR));
            check_number(
                &format!("{path}: hour {h}"),
                &point["value"],
                want.get(metric),
                &mut wrong,
            );
        }
        if metric == "views" {
            let total: f64 = points.iter().filter_map(|p| p["value"].as_f64()).sum();
            if total != N as f64 {
                wrong.push(format!("{path}: views add up to {total}, expected {N}"));
            }
        }
    }

    assert!(
        wrong.is_empty(),
        "{} mismatch(es):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    open_and_timed_out_sessions_join_the_aggregates(&server, &plans).await;
}

/// A session outside the generated plan: play, first frame after
/// `startup_ms`, then `playing_ms` of playing so far.
fn extra(j: usize, start: i64, startup_ms: i64, playing_ms: i64) -> Plan {
    Plan {
        id: format!("x{j}"),
        video: "v-extra".to_owned(),
        viewer: Some(format!("ux{j}")),
        kind: Kind::Played,
        start,
        events: Vec::new(),
        first_request: 0,
        startup_ms: Some(startup_ms),
        playing_ms,
        rebuffer_ms: 0,
        rebuffer_count: 0,
        completed: false,
        errors: Vec::new(),
    }
}

/// Three more sessions after the generated ones: open ones are read from
/// session rows next to the rollups, then one closes with `viewend`, one
/// by inactivity timeout and one stays open; no session may be counted
/// twice or lost on the way from session rows to rollups.
async fn open_and_timed_out_sessions_join_the_aggregates(server: &Server, plans: &[Plan]) {
    let (from, to) = (BASE, BASE + 4 * HOUR);
    // x0 in a minute the range below cuts; x1 and x2 in the next, whole, minute.
    let starts = [
        BASE + 220 * MINUTE + 15_000,
        BASE + 221 * MINUTE + 5_000,
        BASE + 221 * MINUTE + 55_000,
    ];
    let startups = [1_000, 1_500, 2_000];
    assert!(plans.iter().all(|p| p.end() < starts[0]));
    let session = |j: usize| json!({"id": format!("x{j}"), "video_id": "v-extra", "viewer_id": format!("ux{j}")});
    let post = |j: usize, events: Vec<(u64, i64, &str)>| {
        let events: Vec<Value> = events
            .into_iter()
            .map(|(seq, ts, kind)| json!({"seq": seq, "ts": ts, "type": kind}))
            .collect();
        json!({"property": INGEST_KEY, "session": session(j), "events": events})
    };
    for j in 0..3 {
        let (t, s) = (starts[j], startups[j]);
        server.clock.set(t + s + 4_000);
        server
            .post(&post(
                j,
                vec![
                    (1, t, "play"),
                    (2, t + s, "playing"),
                    (3, t + s + 4_000, "heartbeat"),
                ],
            ))
            .await;
    }
    let cut_from = starts[0] - 1;
    let check = |stage: &'static str, extras: Vec<Plan>| async move {
        let mut wrong = Vec::new();
        let everything: Vec<&Plan> = plans.iter().chain(extras.iter()).collect();
        let m = server
            .get(&format!("/data/v1/metrics?from={from}&to={to}"))
            .await;
        wrong.extend(check_overview(
            &format!("{stage}, aligned"),
            &m["metrics"],
            &Expected::of(&everything),
        ));
        let m = server
            .get(&format!("/data/v1/metrics?from={cut_from}&to={to}"))
            .await;
        let tail: Vec<&Plan> = extras.iter().collect();
        wrong.extend(check_overview(
            &format!("{stage}, from {cut_from}"),
            &m["metrics"],
            &Expected::of(&tail),
        ));
        let ts = server
            .get(&format!(
                "/data/v1/metrics/timeseries?metric=views&interval=1h&from={from}&to={to}"
            ))
            .await;
        let total: f64 = ts["points"]
            .as_array()
            .expect("points")
            .iter()
            .filter_map(|p| p["value"].as_f64())
            .sum();
        if total != everything.len() as f64 {
            wrong.push(format!(
                "{stage}: timeseries views add up to {total}, expected {}",
                everything.len()
            ));
        }
        assert!(
            wrong.is_empty(),
            "{} mismatch(es):\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    };
    // All three open, 4 s of playing each.
    check(
        "open",
        (0..3)
            .map(|j| extra(j, starts[j], startups[j], 4_000))
            .collect(),
    )
    .await;

    // x0 ends with `viewend` 2 s later.
    let end0 = starts[0] + startups[0] + 6_000;
    server.clock.set(end0);
    server.post(&post(0, vec![(4, end0, "viewend")])).await;
    // x2 keeps sending: a heartbeat 6 min after it started.
    let beat = starts[2] + 6 * MINUTE;
    server.clock.set(beat);
    server.post(&post(2, vec![(4, beat, "heartbeat")])).await;
    // 10 min after x1's last request: x1 times out, x2 (heard 4 min ago) does not.
    server
        .clock
        .set(starts[1] + startups[1] + 4_000 + 10 * MINUTE);
    server.state.pipeline.expire_now().await.expect("expire");
    let x1 = server.get("/data/v1/sessions/x1").await;
    assert_eq!(x1["open"], json!(false), "x1 timed out: {x1}");
    assert_eq!(
        x1["ended_at"].as_str().map(ms_of),
        Some(starts[1] + startups[1] + 4_000),
        "a timed-out session ends at its last event: {x1}"
    );
    let x2 = server.get("/data/v1/sessions/x2").await;
    assert_eq!(x2["open"], json!(true), "x2 is still open: {x2}");
    check(
        "closed, timed out, open",
        vec![
            extra(0, starts[0], startups[0], 6_000),
            extra(1, starts[1], startups[1], 4_000),
            extra(2, starts[2], startups[2], beat - starts[2] - startups[2]),
        ],
    )
    .await;
}
