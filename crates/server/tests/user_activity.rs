//! User Activity Vault breakdowns (issue 6): a generated population of UAV
//! viewings posted through `POST /useractivityvault/v1/useractivity/...`,
//! then `GET /data/v1/metrics/breakdown?by=contentType` (and `programmeId`,
//! the other UAV dimensions, the built-in `content_type`) and filters
//! checked against values computed by hand.
//!
//! Every viewing follows a closed-form plan ([`plan`]): a content type, a
//! programme, a device, how many 60-s `playback_metrics` reports it sends,
//! and how it ends (stop, `playerError`, or a stop before any progress). Its
//! per-session values (playing time, played, failed, exit before start) are
//! known from the plan without running the engine; the expected breakdowns
//! are sums and counts over the plans, in plain arithmetic.
//!
//! App activities (no `playbackSessionId`: `appStart`, `railView`, ...) are
//! kept in app sessions, which are no views: a population that mixes them
//! with the viewings must show the viewings' figures only, in every
//! aggregate ([`app_sessions_count_in_no_aggregate`]).
//!
//! Run with: `cargo test -p playhead-server --test user_activity`

mod common;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use playhead_server::ServerConfig;
use playhead_store::FsyncPolicy;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const INGEST_KEY: &str = "uav-ingest";
const READ_KEY: &str = "uav-read";
/// 2023-11-14T23:00:00Z. Viewings start after it.
const BASE: i64 = 1_700_002_800_000;
const HOUR: i64 = 3_600_000;
/// Viewings generated.
const N: usize = 96;
const CONTENT_TYPES: [&str; 6] = [
    "live-event",
    "live-stcu-event",
    "start-over",
    "ltcu",
    "npvr-event",
    "vod-ed",
];
const PROGRAMMES: [&str; 4] = ["prog-news", "prog-derby", "prog-quiz", "prog-drama"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Stopped 30 s after the last report, 30 s further on.
    Stop,
    /// A `playerError` 20 s after the last report, then a stop 10 s later.
    Error,
    /// Stopped 30 s after `playbackStart`, with no report: exit before start.
    StopBeforeProgress,
}

/// One viewing, in closed form.
#[derive(Debug, Clone)]
struct Plan {
    id: String,
    content_type: &'static str,
    source: &'static str,
    editorial: String,
    technical: Option<String>,
    programme: Option<&'static str>,
    device: String,
    start: i64,
    /// `playback_metrics` reports, one every 60 s at 60 s more each.
    reports: i64,
    end: End,
}

impl Plan {
    /// Each report adds 60 s; a stop after reports adds its 30 s.
    fn playing_ms(&self) -> i64 {
        match self.end {
            End::StopBeforeProgress => 0,
            End::Error => self.reports * 60_000,
            End::Stop => self.reports * 60_000 + 30_000,
        }
    }
    fn played(&self) -> bool {
        self.end != End::StopBeforeProgress
    }
    fn failed(&self) -> bool {
        self.end == End::Error
    }
    fn exit_before_start(&self) -> bool {
        self.end == End::StopBeforeProgress
    }
    /// The six UAV dimensions, by name (absent ones left out).
    fn dimension(&self, name: &str) -> Option<String> {
        match name {
            "contentType" => Some(self.content_type.to_owned()),
            "contentSource" => Some(self.source.to_owned()),
            "editorialId" => Some(self.editorial.clone()),
            "technicalId" => self.technical.clone(),
            "programmeId" => self.programme.map(str::to_owned),
            "deviceId" => Some(self.device.clone()),
            // The built-in dimension: live for the two live types.
            "content_type" => Some(
                if self.content_type.starts_with("live") {
                    "live"
                } else {
                    "vod"
                }
                .to_owned(),
            ),
            other => panic!("no dimension `{other}`"),
        }
    }

    /// The activities it sends: (time, activity name, metadata).
    fn activities(&self) -> Vec<(i64, &'static str, Value)> {
        let mut base = json!({
            "appSessionId": format!("app-{}", self.id),
            "playbackSessionId": self.id,
            "contentSource": self.source,
            "contentType": self.content_type,
            "editorialId": self.editorial,
        });
        if let Some(t) = &self.technical {
            base["technicalId"] = json!(t);
        }
        if let Some(p) = self.programme {
            base["programmeId"] = json!(p);
        }
        let with = |extra: Value| {
            let mut m = base.clone();
            for (k, v) in extra.as_object().unwrap() {
                m[k] = v.clone();
            }
            m
        };
        let mut out = vec![(self.start, "playbackStart", with(json!({})))];
        let last = self.start + self.reports * 60_000;
        match self.end {
            End::StopBeforeProgress => {
                out.push((self.start + 30_000, "playbackStop", with(json!({}))));
                return out;
            }
            End::Stop | End::Error => {}
        }
        for r in 1..=self.reports {
            out.push((
                self.start + r * 60_000,
                "playback_metrics",
                with(
                    json!({"playbackProgress": r * 60, "selectedBitrate": 2_500_000,
                            "bytesDownloaded": r * 18_750_000, "bufferedDuration": 20}),
                ),
            ));
        }
        match self.end {
            End::Stop => out.push((
                last + 30_000,
                "playbackStop",
                with(json!({"playbackProgress": self.reports * 60 + 30})),
            )),
            End::Error => {
                out.push((
                    last + 20_000,
                    "playerError",
                    with(json!({"errorCode": "4012", "errorMsg": "licence refused"})),
                ));
                out.push((last + 30_000, "playbackStop", with(json!({}))));
            }
            End::StopBeforeProgress => unreachable!(),
        }
        out
    }
}

/// Viewing `i`'s plan.
fn plan(i: usize) -> Plan {
    let ct = CONTENT_TYPES[i % 6];
    let ii = i as i64;
    let programme = match ct {
        // A live event names its programme (required) ...
        "live-event" => Some(PROGRAMMES[i % 4]),
        // ... live start-over and start-over usually do; the rest do not.
        "live-stcu-event" | "start-over" => Some(PROGRAMMES[(i / 6) % 3]),
        _ => None,
    };
    let end = if i % 7 == 3 {
        End::StopBeforeProgress
    } else if i % 11 == 5 {
        End::Error
    } else {
        End::Stop
    };
    Plan {
        id: format!("pb-{i:03}"),
        content_type: ct,
        source: ["IPTV", "OTT", "Blend"][i % 3],
        editorial: if ct.starts_with("live") {
            format!("ch-{}", i % 2)
        } else {
            format!("ed-{}", i % 5)
        },
        technical: (ct == "live-event" || i % 4 == 2).then(|| format!("tech-{}", i % 3)),
        programme,
        device: format!("stb-{}", i % 10),
        // 7 min apart, plus a few seconds of jitter.
        start: BASE + 60_000 + ii * 420_000 + (ii * 7_919) % 9_000,
        reports: 1 + ii % 5,
        end,
    }
}

type Server = common::TestServer;

impl Server {
    fn start() -> Server {
        common::TestServer::with(
            ServerConfig::single("uav", INGEST_KEY, READ_KEY),
            BASE,
            FsyncPolicy::Off,
        )
    }

    async fn post(&self, activity: &str, body: Value) -> common::Reply {
        let req = Request::builder()
            .method("POST")
            .uri(format!("/useractivityvault/v1/useractivity/{activity}"))
            .header(header::AUTHORIZATION, format!("Bearer {INGEST_KEY}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        common::send(&self.router, req).await
    }

    async fn get(&self, uri: &str) -> Value {
        let req = Request::builder()
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {READ_KEY}"))
            .body(Body::empty())
            .unwrap();
        let reply = common::send(&self.router, req).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text);
        reply.body
    }
}

/// Post every plan's activities in time order, the server clock at each.
async fn populate(server: &Server, plans: &[Plan]) {
    let mut all: Vec<(i64, &'static str, Value, &Plan)> = plans
        .iter()
        .flat_map(|p| {
            p.activities()
                .into_iter()
                .map(move |(t, a, m)| (t, a, m, p))
        })
        .collect();
    all.sort_by_key(|(t, _, _, _)| *t);
    for (t, activity, metadata, p) in all {
        server.clock.set(t);
        let body = json!({
            "accountId": "acc-1", "userId": "", "deviceId": p.device, "key": "",
            "name": activity,
            "timestamp": time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t) * 1_000_000)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            "metadata": metadata,
        });
        let reply = server.post(activity, body).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{activity} of {}: {}",
            p.id,
            reply.text
        );
        assert_eq!(
            reply.body,
            json!({"status": "ok"}),
            "{activity} of {}",
            p.id
        );
    }
}

/// The aggregates a breakdown row is checked on, for a group of plans.
fn expected(plans: &[&Plan], metric: &str) -> f64 {
    let n = |f: &dyn Fn(&Plan) -> bool| plans.iter().filter(|p| f(p)).count() as f64;
    // Every viewing asks to play (playbackStart).
    let requested = plans.len() as f64;
    match metric {
        "views" => plans.len() as f64,
        "plays" => n(&|p| p.played()),
        // No startup time on UAV: watch time is the playing time.
        "playing_time_ms" | "watch_time_ms" => {
            plans.iter().map(|p| p.playing_ms()).sum::<i64>() as f64
        }
        "playback_failure_percentage" => 100.0 * n(&|p| p.failed()) / requested,
        "exit_before_start_percentage" => 100.0 * n(&|p| p.exit_before_start()) / requested,
        // One bitrate for every report.
        "bitrate_avg_bps" => 2_500_000.0,
        other => panic!("no expectation for `{other}`"),
    }
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}

/// `/metrics/breakdown?metric&by` against the plans grouped by `by`.
async fn check_breakdown(
    server: &Server,
    plans: &[Plan],
    by: &str,
    dimension: &str,
    metric: &str,
    failures: &mut Vec<String>,
) -> Value {
    let range = format!("from={BASE}&to={}", BASE + 13 * HOUR);
    let body = server
        .get(&format!(
            "/data/v1/metrics/breakdown?metric={metric}&by={by}&limit=1000&{range}"
        ))
        .await;
    let mut groups: BTreeMap<String, Vec<&Plan>> = BTreeMap::new();
    for p in plans {
        if let Some(v) = p.dimension(dimension) {
            groups.entry(v).or_default().push(p);
        }
    }
    let rows = body["rows"].as_array().expect("rows");
    let got: BTreeMap<String, (f64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                (r["value"].as_f64().unwrap(), r["views"].as_u64().unwrap()),
            )
        })
        .collect();
    if got.keys().collect::<Vec<_>>() != groups.keys().collect::<Vec<_>>() {
        failures.push(format!(
            "by={by} metric={metric}: keys {:?}, expected {:?}",
            got.keys().collect::<Vec<_>>(),
            groups.keys().collect::<Vec<_>>()
        ));
    }
    for (key, members) in &groups {
        let want = expected(members, metric);
        match got.get(key) {
            Some((value, views)) => {
                if !close(*value, want) || *views != members.len() as u64 {
                    failures.push(format!(
                        "by={by} metric={metric} key={key}: value {value} views {views}, expected {want} and {}",
                        members.len()
                    ));
                }
            }
            None => failures.push(format!("by={by} metric={metric}: no row `{key}`")),
        }
    }
    // Largest first.
    let values: Vec<f64> = rows.iter().map(|r| r["value"].as_f64().unwrap()).collect();
    if values.windows(2).any(|w| w[0] < w[1]) {
        failures.push(format!("by={by} metric={metric}: rows not largest first"));
    }
    body
}

#[tokio::test]
async fn breakdowns_by_uav_dimensions_match_hand_computed_values() {
    let server = Server::start();
    let plans: Vec<Plan> = (0..N).map(plan).collect();
    populate(&server, &plans).await;
    let mut failures = Vec::new();

    // The population has every kind of viewing, in every content type.
    for ct in CONTENT_TYPES {
        let of: Vec<&Plan> = plans.iter().filter(|p| p.content_type == ct).collect();
        assert_eq!(of.len(), N / 6, "{ct}");
    }
    assert!(plans.iter().any(|p| p.failed()) && plans.iter().any(|p| p.exit_before_start()));

    for metric in [
        "views",
        "plays",
        "playing_time_ms",
        "watch_time_ms",
        "playback_failure_percentage",
        "exit_before_start_percentage",
    ] {
        check_breakdown(
            &server,
            &plans,
            "contentType",
            "contentType",
            metric,
            &mut failures,
        )
        .await;
        check_breakdown(
            &server,
            &plans,
            "programmeId",
            "programmeId",
            metric,
            &mut failures,
        )
        .await;
    }
    // The other UAV dimensions, their `custom.` names, the built-in content type.
    for (by, dim) in [
        ("contentSource", "contentSource"),
        ("editorialId", "editorialId"),
        ("technicalId", "technicalId"),
        ("deviceId", "deviceId"),
        ("custom.contentType", "contentType"),
        ("content_type", "content_type"),
    ] {
        check_breakdown(&server, &plans, by, dim, "playing_time_ms", &mut failures).await;
    }
    let body = check_breakdown(
        &server,
        &plans,
        "programmeId",
        "programmeId",
        "bitrate_avg_bps",
        &mut failures,
    )
    .await;
    assert_eq!(
        body["by"], "custom.programmeId",
        "a bare name is its custom key"
    );

    // Filters: ORed within a dimension, ANDed across.
    let range = format!("from={BASE}&to={}", BASE + 13 * HOUR);
    for (query, keep) in [
        (
            "contentType=vod-ed&contentType=ltcu",
            Box::new(|p: &Plan| matches!(p.content_type, "vod-ed" | "ltcu"))
                as Box<dyn Fn(&Plan) -> bool>,
        ),
        (
            "programmeId=prog-news&contentSource=IPTV",
            Box::new(|p: &Plan| p.programme == Some("prog-news") && p.source == "IPTV"),
        ),
        (
            "content_type=live&deviceId=stb-3",
            Box::new(|p: &Plan| p.content_type.starts_with("live") && p.device == "stb-3"),
        ),
    ] {
        let members: Vec<&Plan> = plans.iter().filter(|p| keep(p)).collect();
        assert!(
            !members.is_empty(),
            "{query}: an empty group proves nothing"
        );
        let body = server
            .get(&format!("/data/v1/metrics?{query}&{range}"))
            .await;
        for metric in [
            "views",
            "plays",
            "playing_time_ms",
            "playback_failure_percentage",
        ] {
            let got = body["metrics"][metric].as_f64().unwrap();
            let want = expected(&members, metric);
            if !close(got, want) {
                failures.push(format!("{query}: {metric} {got}, expected {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Hand-computed spot values, so that the plans' arithmetic is itself checked.
#[test]
fn plans_add_up_as_written() {
    // Viewing 0: live-event, programme prog-news, 1 report, stopped:
    // 60 s + the stop's 30 s = 90 s of playing.
    let p = plan(0);
    assert_eq!(
        (p.content_type, p.programme, p.reports, p.end),
        ("live-event", Some("prog-news"), 1, End::Stop)
    );
    assert_eq!(p.playing_ms(), 90_000);
    // Viewing 3: start-over, stopped before any progress.
    let p = plan(3);
    assert_eq!(p.end, End::StopBeforeProgress);
    assert_eq!(p.playing_ms(), 0);
    // Viewing 5: vod-ed, 1 + 5 % 5 = 1 report, then a playerError: 60 s.
    let p = plan(5);
    assert_eq!(
        (p.content_type, p.end, p.reports),
        ("vod-ed", End::Error, 1)
    );
    assert_eq!(p.playing_ms(), 60_000);
    // live-event viewings are 0, 6, ..., 90: programmes i % 4 -> 0, 2, 0, 2, ...:
    // only prog-news and prog-quiz; 8 each.
    let live: Vec<Plan> = (0..N)
        .map(plan)
        .filter(|p| p.content_type == "live-event")
        .collect();
    assert_eq!(live.len(), 16);
    assert_eq!(
        live.iter()
            .filter(|p| p.programme == Some("prog-news"))
            .count(),
        8
    );
}

/// Unknown activities and extra metadata keys are kept, and shown in the
/// session's events; the route is in the OpenAPI document.
#[tokio::test]
async fn custom_activities_and_player_metrics_show_in_the_events() {
    let server = Server::start();
    let meta = |extra: Value| {
        let mut m = json!({"appSessionId": "app-x", "playbackSessionId": "pb-x",
            "contentSource": "OTT", "contentType": "vod-ed", "editorialId": "ed-x"});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    let steps = [
        (0, "playbackStart", meta(json!({}))),
        (
            20_000,
            "subtitleChange",
            meta(json!({"subtitleLanguage": "cy"})),
        ),
        (
            60_000,
            "playback_metrics",
            meta(json!({"playbackProgress": 60, "streamBitrate": 1_800_000,
                "bytesDownloaded": 13_500_000, "downloadBitRate": 4_100_000,
                "bufferedDuration": 22.5, "hdcpLevel": "2.2"})),
        ),
    ];
    for (at, activity, metadata) in steps {
        server.clock.set(BASE + at);
        let reply = server
            .post(
                activity,
                json!({"userId": "", "key": "", "deviceId": "stb-x", "timestamp": BASE + at,
                       "metadata": metadata}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{activity}: {}", reply.text);
    }
    let events = server.get("/data/v1/sessions/pb-x/events").await;
    let events = events["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["play", "progress", "custom", "progress"]);
    let custom = &events[2];
    assert_eq!(custom["data"]["name"], "subtitleChange");
    assert_eq!(custom["data"]["subtitleLanguage"], "cy");
    let report = &events[3];
    assert_eq!(report["playhead"], 60.0);
    assert_eq!(report["state_after"], "playing");
    assert_eq!(report["data"]["activity"], "playback_metrics");
    assert_eq!(report["data"]["bytesDownloaded"], 13_500_000);
    assert_eq!(report["data"]["downloadBitRate"], 4_100_000);
    assert_eq!(report["data"]["bufferedDuration"], 22.5);
    assert_eq!(report["data"]["hdcpLevel"], "2.2");
    assert_eq!(report["data"]["qoe"]["bitrate_bps"], 1_800_000);
    let session = server.get("/data/v1/sessions/pb-x").await;
    assert_eq!(session["metrics"]["bitrate_avg_bps"], 1_800_000.0);
    assert_eq!(session["metrics"]["playing_time_ms"], 60_000.0);

    let doc = server.get("/openapi.json").await;
    let route = &doc["paths"]["/useractivityvault/v1/useractivity/{activityName}"];
    assert!(route["post"].is_object(), "UAV route missing from OpenAPI");
}

/// One activity to post: time, name, `deviceId`, metadata.
type Activity = (i64, &'static str, String, Value);

/// Viewing `i`'s own activities (all with its `playbackSessionId`).
fn viewing_activities(p: &Plan) -> Vec<Activity> {
    p.activities()
        .into_iter()
        .map(|(t, a, m)| (t, a, p.device.clone(), m))
        .collect()
}

/// The app activities around viewing `i` (no `playbackSessionId`):
/// - its app session `app:app-<id>`, same device: `appStart` 20 s,
///   `railView` 10 s and `railSelection` 5 s before `playbackStart`; on even
///   viewings `appEnd` 10 s after the viewing's last activity (odd ones are
///   left to time out);
/// - on every third viewing, another household browsing during it
///   (`railView` 45 s after `playbackStart`) that never plays: the app
///   session `app:idle-<i>` of device `stb-idle-<i % 4>`.
fn app_activities(i: usize, p: &Plan) -> Vec<Activity> {
    let app = |extra: Value| {
        let mut m = json!({"appSessionId": format!("app-{}", p.id)});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    let device = p.device.clone();
    let mut out = vec![
        (
            p.start - 20_000,
            "appStart",
            device.clone(),
            app(json!({"appVersion": "7.4.2"})),
        ),
        (
            p.start - 10_000,
            "railView",
            device.clone(),
            app(json!({"railId": "continue-watching"})),
        ),
        (
            p.start - 5_000,
            "railSelection",
            device.clone(),
            app(json!({"railId": "continue-watching", "itemId": p.editorial})),
        ),
    ];
    if i.is_multiple_of(2) {
        let last = p.activities().last().expect("activities").0;
        out.push((last + 10_000, "appEnd", device, app(json!({}))));
    }
    if i.is_multiple_of(3) {
        out.push((
            p.start + 45_000,
            "railView",
            format!("stb-idle-{}", i % 4),
            json!({"appSessionId": format!("idle-{i}"), "railId": "new-releases"}),
        ));
    }
    out
}

/// Post activities in time order, the server clock at each.
async fn post_activities(server: &Server, mut all: Vec<Activity>) {
    all.sort_by_key(|a| a.0);
    for (t, activity, device, metadata) in all {
        server.clock.set(t);
        let body = json!({
            "accountId": "acc-1", "userId": "", "deviceId": device, "key": "",
            "name": activity, "timestamp": t, "metadata": metadata,
        });
        let reply = server.post(activity, body).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{activity}@{t}: {}",
            reply.text
        );
        assert_eq!(reply.body, json!({"status": "ok"}), "{activity}@{t}");
    }
}

/// The four figures a view count shows, from `/data/v1/metrics`.
fn headline(body: &Value) -> [u64; 4] {
    ["views", "plays", "unique_viewers", "concurrent_viewers"]
        .map(|m| body["metrics"][m].as_u64().unwrap_or_else(|| panic!("{m}")))
}

/// 96 viewings (from [`plan`]) and, around them, 96 app sessions of the
/// same devices, 32 app sessions of 4 devices that never play, and one
/// `device:` session (an activity with neither `playbackSessionId` nor
/// `appSessionId`): 225 sessions, of which the 96 viewings are the only
/// views. Checked mid-way (one viewing open: realtime and open sessions
/// from session rows) and at the end (all closed: rollups), on the rollup
/// path (whole minutes), with partial minutes at the edge, and on the
/// session-row path (a `viewer_id` filter, which rollups do not keep).
#[tokio::test]
async fn app_sessions_count_in_no_aggregate() {
    let server = Server::start();
    let plans: Vec<Plan> = (0..N).map(plan).collect();
    let mut all: Vec<Activity> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        all.extend(viewing_activities(p));
        all.extend(app_activities(i, p));
    }
    all.push((
        BASE + 30_000,
        "deepLinkTriggered",
        "stb-lonely".to_owned(),
        json!({"deepLink": "otv://home"}),
    ));

    // Mid-way: 90 s into viewing 6 (live-event on ch-0, 2 reports, device
    // stb-6), 30 s after its first report; idle-6 browsed 45 s ago.
    let six = &plans[6];
    assert_eq!(
        (
            six.content_type,
            six.editorial.as_str(),
            six.reports,
            six.end
        ),
        ("live-event", "ch-0", 2, End::Stop)
    );
    let cut = six.start + 90_000;
    let (before, after): (Vec<Activity>, Vec<Activity>) = all.into_iter().partition(|a| a.0 < cut);
    post_activities(&server, before).await;
    server.clock.set(cut);

    let range = |from: i64| format!("from={from}&to={}", BASE + 13 * HOUR);
    let every_viewer: String = (0..10)
        .map(|d| format!("viewer_id=stb-{d}&"))
        .chain((0..4).map(|d| format!("viewer_id=stb-idle-{d}&")))
        .chain(["viewer_id=stb-lonely".to_owned()])
        .collect();
    let paths = [
        ("whole minutes", range(BASE)),
        ("edge minute", range(BASE + 1)),
        ("session rows", format!("{}&{every_viewer}", range(BASE))),
    ];
    // Viewings 0..=6 have started; 3 stopped before any progress; devices
    // stb-0 .. stb-6; never two viewings at once (each at most 330 s long,
    // 420 s apart). Views, plays, unique viewers, concurrent viewers:
    for (path, query) in &paths {
        let body = server.get(&format!("/data/v1/metrics?{query}")).await;
        assert_eq!(headline(&body), [7, 6, 7, 1], "mid-way, {path}");
    }
    // Realtime: viewing 6 is the open session heard from in the last 60 s
    // (not app:idle-6, 45 s ago); the only viewer heard from in the last
    // 5 min is stb-6 (viewing 5 stopped at its start + 90 s, 419 s before).
    let realtime = server.get("/data/v1/realtime").await;
    assert_eq!(
        realtime,
        json!({"concurrent_viewers": 1, "by_video": [{"video_id": "ch-0", "viewers": 1}],
               "viewers_last_5m": 1})
    );
    let realtime = server.get("/data/v1/realtime?deviceId=stb-idle-2").await;
    assert_eq!(
        realtime,
        json!({"concurrent_viewers": 0, "by_video": [], "viewers_last_5m": 0})
    );

    // The end: everything posted, then every session closed.
    post_activities(&server, after).await;
    server.clock.set(BASE + 14 * HOUR);
    server.state.pipeline.expire_now().await.expect("expire");

    // 96 viewings; 14 stopped before progress (i % 7 == 3: 3, 10, ..., 94):
    // 82 plays; 10 devices stb-0 .. stb-9 watched, all of them played.
    for (path, query) in &paths {
        let body = server.get(&format!("/data/v1/metrics?{query}")).await;
        assert_eq!(headline(&body), [96, 82, 10, 1], "at the end, {path}");
        let m = &body["metrics"];
        assert_eq!(m["unique_plays"], 10, "{path}");
        assert!(
            close(m["play_rate"].as_f64().unwrap(), 82.0 / 96.0),
            "{path}"
        );
        // Every viewing asked to play: 14 of 96 exited before start.
        assert!(
            close(
                m["exit_before_start_percentage"].as_f64().unwrap(),
                100.0 * 14.0 / 96.0
            ),
            "{path}"
        );
        let playing: i64 = plans.iter().map(Plan::playing_ms).sum();
        assert_eq!(m["watch_time_ms"].as_f64(), Some(playing as f64), "{path}");
    }

    // Breakdowns: no `app` row; live-event and live-stcu-event are i % 6
    // in {0, 1}: 32 live, 64 vod. By viewer (session rows): the 10
    // devices, 10 viewings for stb-0 .. stb-5, 9 for stb-6 .. stb-9.
    let rows = |body: &Value| -> Vec<(String, u64)> {
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["key"].as_str().unwrap().to_owned(),
                    r["views"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let by_type = server
        .get(&format!(
            "/data/v1/metrics/breakdown?metric=views&by=content_type&{}",
            range(BASE)
        ))
        .await;
    assert_eq!(
        rows(&by_type),
        [("vod".to_owned(), 64), ("live".to_owned(), 32)]
    );
    let by_viewer = server
        .get(&format!(
            "/data/v1/metrics/breakdown?metric=views&by=viewer_id&limit=100&{}",
            range(BASE)
        ))
        .await;
    let want: Vec<(String, u64)> = (0..10)
        .map(|d| (format!("stb-{d}"), if d < 6 { 10 } else { 9 }))
        .collect();
    assert_eq!(rows(&by_viewer), want);

    // Timeseries: each hour's views are the viewings started in it (every
    // 420 s from BASE + 60 s: 9 in the first hour, then 8 or 9), and at
    // most one at a time.
    let series = |metric: &str| {
        let server = &server;
        let uri = format!(
            "/data/v1/metrics/timeseries?metric={metric}&interval=1h&{}",
            range(BASE)
        );
        async move {
            let body = server.get(&uri).await;
            body["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].as_f64().unwrap() as u64)
                .collect::<Vec<u64>>()
        }
    };
    let views = series("views").await;
    let mut want = vec![0u64; 13];
    for p in &plans {
        want[((p.start - BASE) / HOUR) as usize] += 1;
    }
    assert_eq!(views, want);
    assert_eq!(views.iter().sum::<u64>(), 96);
    assert_eq!(
        views[0], 9,
        "starts at 60 s + 420 s × 0..=8 in the first hour"
    );
    let concurrent = series("concurrent_viewers").await;
    let want: Vec<u64> = (0..13)
        .map(|h| {
            let (b, e) = (BASE + h * HOUR, BASE + (h + 1) * HOUR);
            let any = plans.iter().any(|p| {
                let end = p.activities().last().unwrap().0;
                p.start < e && end >= b
            });
            u64::from(any)
        })
        .collect();
    assert_eq!(concurrent, want);
    assert_eq!(&concurrent[..11], [1; 11], "viewings run until hour 11");

    // Still stored and listed, with their events: 96 + 32 + 1 app sessions.
    let listed = server
        .get(&format!(
            "/data/v1/sessions?content_type=app&limit=1000&{}",
            range(BASE)
        ))
        .await;
    let listed = listed["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 129);
    assert!(listed.iter().any(|s| s["id"] == "device:stb-lonely"));
    assert!(listed.iter().any(|s| s["id"] == "app:idle-93"));
    let events = server.get("/data/v1/sessions/app:app-pb-000/events").await;
    let events = events["events"].as_array().unwrap();
    let names: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["data"]["activity"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("custom", "appStart"),
            ("custom", "railView"),
            ("custom", "railSelection"),
            ("custom", "appEnd"),
            ("viewend", "appEnd"),
        ]
    );
}

/// `/data/v1/property` lists the UAV dimensions for the dashboard's
/// pickers, and breakdowns take every dimension it lists.
#[tokio::test]
async fn property_lists_the_uav_dimensions() {
    let server = Server::start();
    let body = server.get("/data/v1/property").await;
    let dims: Vec<&str> = body["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    for alias in playhead_model::Dimension::CUSTOM_ALIASES {
        assert!(dims.contains(&alias), "{alias} missing from {dims:?}");
    }
    assert!(dims.contains(&"content_type") && !dims.contains(&"property"));
    for dim in dims {
        server
            .get(&format!("/data/v1/metrics/breakdown?metric=views&by={dim}"))
            .await;
    }
}
