//! The ping protocol end to end, in process (`spec/protocols.md` §3): the
//! admin API configures an asset, preplay creates a session, pings move it
//! along, and a local HTTP receiver standing in for the ad servers records
//! every beacon Playhead fires.
//!
//! The schedule (`schedule()`): 60 s of content; a preroll of one 10-s ad;
//! at content 30 s a midroll of two 15-s ads. On the player timeline
//! (hand-computed): preroll 0–10 (quartiles 2.5/5/7.5), content 10–40,
//! midroll 40–70 (ad m1 40–55: 43.75/47.5/51.25; ad m2 55–70:
//! 58.75/62.5/66.25), content 70–100, end 100.
//!
//! The sender runs with concurrency 1, so beacons arrive in the order owed.

mod common;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::Router;
use playhead_server::beacons::BeaconConfig;
use playhead_server::ServerConfig;
use playhead_store::FsyncPolicy;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000;
const ADMIN: &str = "admin-key";
const READ: &str = "read-key";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// One request the fake ad server received.
#[derive(Debug, Clone)]
struct Hit {
    path_and_query: String,
    user_agent: Option<String>,
    forwarded_for: Option<String>,
}

/// A local HTTP server standing in for the ad servers. Paths under
/// `/hang/` never answer in time (30 s).
struct Receiver {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new().fallback(record).with_state(hits.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver { base, hits }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.hits().into_iter().map(|h| h.path_and_query).collect()
    }

    /// Wait until `n` requests arrived (a hang guard of 20 s, not a timing check).
    async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.hits().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.paths()
    }
}

async fn record(State(hits): State<Arc<Mutex<Vec<Hit>>>>, req: Request) -> StatusCode {
    let (parts, _) = req.into_parts();
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let hit = Hit {
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        user_agent: header("user-agent"),
        forwarded_for: header("x-forwarded-for"),
    };
    if hit.path_and_query.starts_with("/hang/") {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    hits.lock().unwrap().push(hit);
    StatusCode::OK
}

/// The test's ad schedule, with tracking URLs on the receiver. `hang`
/// makes the preroll's impression URL hang.
fn schedule(base: &str, hang: bool) -> Value {
    let u = |p: &str| format!("{base}/{p}");
    let ad = |name: &str, duration: f64| {
        json!({"creative": name, "duration": duration, "events": {
            "impressions": [u(&format!("imp/{name}?t=[TIMESTAMP]")), u(&format!("start/{name}"))],
            "firstquartiles": [u(&format!("q1/{name}"))],
            "midpoints": [u(&format!("q2/{name}"))],
            "thirdquartiles": [u(&format!("q3/{name}"))],
            "completes": [u(&format!("complete/{name}?cp=[CONTENTPLAYHEAD]&ap=[ADPLAYHEAD]"))]}})
    };
    let mut pre = ad("pre", 10.0);
    if hang {
        pre["events"]["impressions"] = json!([u("hang/imp/pre")]);
    }
    json!([
        {"timeOffset": 0, "events": {"impressions": [u("break/pre/start")], "completes": [u("break/pre/end")]},
         "ads": [pre]},
        {"timeOffset": 30, "events": {"impressions": [u("break/mid/start")], "completes": [u("break/mid/end")]},
         "ads": [ad("m1", 15.0), ad("m2", 15.0)]}
    ])
}

type Server = common::TestServer;

async fn server(beacons: BeaconConfig) -> Server {
    let mut config = ServerConfig::single("default", "ingest-key", READ);
    config.admin_key = Some(ADMIN.into());
    config.beacons = beacons;
    common::TestServer::with(config, T0, FsyncPolicy::Always)
}

/// One attempt at a time, in order. The attempt's timeout is long: these
/// tests count every hit, and an answer later than the timeout (a loaded CI
/// machine right after a build) would be retried, so the receiver would see
/// the URL twice. With 300 ms, `straight_play_fires_every_url_once_in_order`
/// failed once in a full run after a build (its message was not kept); this
/// was the one timing dependency found in it. The test of timeouts sets its own.
fn sequential() -> BeaconConfig {
    BeaconConfig {
        timeout: Duration::from_secs(10),
        max_attempts: 3,
        concurrency: 1,
        backoff: Duration::from_millis(500),
    }
}

impl Server {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> common::Reply {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("user-agent", UA)
            .header("x-forwarded-for", "203.0.113.7");
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        common::send(&self.router, req.body(body).unwrap()).await
    }

    async fn put_asset(&self, schedule: Value) {
        let r = self
            .call(
                Method::PUT,
                "/admin/v1/assets/movie",
                Some(ADMIN),
                Some(json!({"duration_s": 60, "play_url": "https://cdn.test/movie.m3u8", "ad_schedule": schedule})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    async fn preplay(&self, query: &str) -> common::Reply {
        let r = self
            .call(
                Method::GET,
                &format!("/preplay/movie.json?{query}"),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r
    }

    /// A ping at `pt` (the clock moved to `T0 + at_s`); returns `next_time`.
    async fn ping(&self, sid: &str, at_s: f64, query: &str) -> f64 {
        self.clock.set(T0 + (at_s * 1000.0).round() as i64);
        let r = self
            .call(
                Method::GET,
                &format!("/session/ping/{sid}.json?v=3&{query}"),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "ping {query}: {}", r.text);
        r.body["next_time"].as_f64().expect("next_time")
    }

    async fn session(&self, sid: &str) -> Value {
        let r = self
            .call(
                Method::GET,
                &format!("/data/v1/sessions/{sid}"),
                Some(READ),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }

    async fn beacon_log(&self, sid: &str) -> Value {
        let r = self
            .call(
                Method::GET,
                &format!("/admin/v1/beacons?session={sid}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }
}

/// Everything a straight play fires, in order (hand-written).
fn straight_play_paths() -> Vec<&'static str> {
    vec![
        "/break/pre/start",
        "/imp/pre",
        "/start/pre",
        "/q1/pre",
        "/q2/pre",
        "/q3/pre",
        "/complete/pre",
        "/break/pre/end",
        "/break/mid/start",
        "/imp/m1",
        "/start/m1",
        "/q1/m1",
        "/q2/m1",
        "/q3/m1",
        "/complete/m1",
        "/imp/m2",
        "/start/m2",
        "/q1/m2",
        "/q2/m2",
        "/q3/m2",
        "/complete/m2",
        "/break/mid/end",
    ]
}

fn without_query(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.split('?').next().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn preplay_answers_the_schedule_on_the_player_timeline() {
    let rx = Receiver::start().await;
    let s = server(sequential()).await;
    s.put_asset(schedule(&rx.base, false)).await;
    let r = s.preplay("ad=fw&ad.cping=1&ad.pingf=3").await;
    let b = &r.body;
    assert_eq!(b["sid"].as_str().unwrap().len(), 32);
    assert_eq!(b["playURL"], "https://cdn.test/movie.m3u8");
    assert_eq!(b["drm"], Value::Null);
    assert!(b["prefix"].as_str().unwrap().starts_with("http://"));
    let breaks = b["ads"]["breaks"].as_array().unwrap();
    assert_eq!(breaks.len(), 2);
    assert_eq!(breaks[0]["position"], "preroll");
    assert_eq!(breaks[0]["timeOffset"], 0.0);
    assert_eq!(breaks[1]["position"], "midroll");
    // Content 30 s + the 10-s preroll before it.
    assert_eq!(breaks[1]["timeOffset"], 40.0);
    assert_eq!(breaks[1]["duration"], 30.0);
    assert_eq!(breaks[1]["ads"][0]["mimeType"], "uplynk/m3u8");
    assert_eq!(breaks[1]["ads"][1]["creative"], "m2");
    assert!(breaks[1]["ads"][0]["events"]["firstquartiles"][0]
        .as_str()
        .unwrap()
        .ends_with("/q1/m1"));
    assert_eq!(
        b["ads"]["breakOffsets"],
        json!([{"index": 0, "timeOffset": 0.0}, {"index": 1, "timeOffset": 40.0}])
    );
    assert_eq!(b["ads"]["placeholderOffsets"], json!([]));
    // The v3 route gives the same kind of answer.
    let r = s
        .call(
            Method::GET,
            "/api/v3/preplay/movie.json?ad.cping=1",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["ads"]["breaks"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn straight_play_fires_every_url_once_in_order() {
    let rx = Receiver::start().await;
    let s = server(sequential()).await;
    s.put_asset(schedule(&rx.base, false)).await;
    let sid = s.preplay("ad.cping=1&ad.pingf=1").await.body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The player pings at each next_time; the clock moves as it plays.
    let mut pt = 0.0;
    let mut next_times = Vec::new();
    let mut next = s.ping(&sid, 0.0, "pt=0&ev=start").await;
    while next >= 0.0 {
        next_times.push(next);
        pt = next;
        next = s.ping(&sid, pt, &format!("pt={pt}")).await;
    }
    assert_eq!(pt, 100.0);
    assert_eq!(
        next_times,
        vec![2.5, 5.0, 7.5, 10.0, 40.0, 43.75, 47.5, 51.25, 55.0, 58.75, 62.5, 66.25, 70.0, 100.0]
    );
    let want = straight_play_paths();
    let got = rx.wait_for(want.len()).await;
    assert_eq!(without_query(&got), want);
    // Nothing more arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits().len(), want.len());
    // The viewer's headers went along; macros were substituted.
    for h in rx.hits() {
        assert_eq!(h.user_agent.as_deref(), Some(UA));
        assert_eq!(h.forwarded_for.as_deref(), Some("203.0.113.7"));
    }
    // [TIMESTAMP] is the send time (the test clock: T0 + a few seconds).
    let stamp = got[1]
        .strip_prefix("/imp/pre?t=")
        .expect("impression first after break start");
    assert!(
        stamp.starts_with("2023-11-14T22%3A13%3A2") && stamp.ends_with('Z'),
        "{stamp}"
    );
    assert_eq!(stamp.len(), "2023-11-14T22%3A13%3A20.000Z".len(), "{stamp}");
    // m1 completes at player 55 = content 30 (the midroll's place), 15 s into the ad.
    assert!(
        got.contains(&"/complete/m1?cp=00%3A00%3A30.000&ap=00%3A00%3A15.000".to_owned()),
        "{got:?}"
    );
    // The delivery log agrees.
    let log = s.beacon_log(&sid).await;
    assert_eq!(log["beacons"].as_array().unwrap().len(), want.len());
    assert!(log["beacons"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["state"] == "delivered" && b["log"][0]["status"] == 200));
    // Analytics: 60 s of content, 40 s of ads, every ad and quartile.
    let v = s.session(&sid).await;
    let m = &v["metrics"];
    assert_eq!(v["protocol"], "ping");
    assert_eq!(v["video_id"], "movie");
    assert_eq!(v["open"], false, "content ended: the view is over");
    assert_eq!(m["played"], true);
    assert_eq!(m["completed"], true);
    assert_eq!(m["playing_time_ms"], 60_000.0);
    assert_eq!(m["watch_time_ms"], 100_000.0);
    assert_eq!(m["ad_breaks"], 2);
    assert_eq!(m["ads_started"], 3);
    assert_eq!(m["ads_completed"], 3);
    assert_eq!(m["ad_impressions"], 3);
    assert_eq!(m["ad_quartiles"], json!({"first": 3, "mid": 3, "third": 3}));
}

#[tokio::test]
async fn a_seek_over_the_midroll_fires_nothing_of_it() {
    let rx = Receiver::start().await;
    let s = server(sequential()).await;
    s.put_asset(schedule(&rx.base, false)).await;
    let sid = s.preplay("ad.cping=1").await.body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut next = s.ping(&sid, 0.0, "pt=0&ev=start").await;
    let mut nexts = vec![next];
    while next <= 10.0 {
        next = s.ping(&sid, next, &format!("pt={next}")).await;
        nexts.push(next);
    }
    // At 10 the preroll ended; the player was told 40 (the midroll).
    assert_eq!(nexts, vec![2.5, 5.0, 7.5, 10.0, 40.0]);
    // At player 20 the viewer seeks to 80 (content 50: past the midroll).
    let n = s.ping(&sid, 20.0, "pt=80&ev=seek&ft=20").await;
    assert_eq!(n, 100.0);
    assert_eq!(s.ping(&sid, 40.0, "pt=100").await, -1.0);
    let want = &straight_play_paths()[..8];
    let got = rx.wait_for(want.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        without_query(&rx.paths()),
        want,
        "only the preroll: {got:?}"
    );
    let m = &s.session(&sid).await["metrics"];
    assert_eq!(m["seek_count"], 1);
    assert_eq!(m["ad_breaks"], 1);
    assert_eq!(m["ads_started"], 1);
}

#[tokio::test]
async fn a_seek_into_an_ad_fires_nothing_of_that_ad() {
    let rx = Receiver::start().await;
    let s = server(sequential()).await;
    s.put_asset(schedule(&rx.base, false)).await;
    // ad.sssb=0 explicitly; preroll skipped by starting at content.
    let sid = s.preplay("ad.cping=1&ad.sssb=0").await.body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.ping(&sid, 0.0, "pt=20&ev=start").await, 40.0);
    // Seek from 25 into m1 (40–55) at 45: m1 was entered mid-way.
    assert_eq!(s.ping(&sid, 5.0, "pt=45&ev=seek&ft=25").await, 47.5);
    let mut next = 47.5;
    let mut wall = 7.5;
    let mut nexts = Vec::new();
    while next > 0.0 && next <= 70.0 {
        let n = s.ping(&sid, wall, &format!("pt={next}")).await;
        nexts.push(n);
        wall += n - next;
        next = n;
    }
    assert_eq!(nexts, vec![51.25, 55.0, 58.75, 62.5, 66.25, 70.0, 100.0]);
    let want = vec![
        "/imp/m2",
        "/start/m2",
        "/q1/m2",
        "/q2/m2",
        "/q3/m2",
        "/complete/m2",
    ];
    let got = rx.wait_for(want.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(without_query(&rx.paths()), want, "{got:?}");
    let m = &s.session(&sid).await["metrics"];
    assert_eq!(m["ads_started"], 1);
    assert_eq!(m["ads_completed"], 1);
}

#[tokio::test]
async fn a_retried_ping_fires_nothing_twice() {
    let rx = Receiver::start().await;
    let s = server(sequential()).await;
    s.put_asset(schedule(&rx.base, false)).await;
    let sid = s.preplay("ad.cping=1").await.body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.ping(&sid, 0.0, "pt=0&ev=start").await, 2.5);
    assert_eq!(s.ping(&sid, 2.5, "pt=2.5").await, 5.0);
    assert_eq!(s.ping(&sid, 5.0, "pt=5").await, 7.5);
    // The same ping, retried twice (a network retry), and a start retried.
    assert_eq!(s.ping(&sid, 5.2, "pt=5").await, 7.5);
    assert_eq!(s.ping(&sid, 5.4, "pt=5").await, 7.5);
    let want = &straight_play_paths()[..5];
    rx.wait_for(want.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(without_query(&rx.paths()), want);
    let m = &s.session(&sid).await["metrics"];
    assert_eq!(m["ads_started"], 1);
    assert_eq!(m["ad_quartiles"], json!({"first": 1, "mid": 1, "third": 0}));
}

#[tokio::test]
async fn a_hanging_ad_server_slows_no_ping_and_is_retried_and_logged() {
    let rx = Receiver::start().await;
    let s = server(BeaconConfig {
        timeout: Duration::from_millis(200),
        max_attempts: 3,
        concurrency: 4,
        backoff: Duration::from_millis(100),
    })
    .await;
    s.put_asset(schedule(&rx.base, true)).await;
    let sid = s.preplay("ad.cping=1").await.body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Pings answer while the impression hangs (the bound is a hang guard:
    // a ping waiting on the ad server would take its 30 s).
    let mut next = 0.0;
    let mut query = "pt=0&ev=start".to_owned();
    for _ in 0..5 {
        let started = Instant::now();
        next = s.ping(&sid, next, &query).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a ping waited for the ad server"
        );
        query = format!("pt={next}");
    }
    assert_eq!(next, 40.0);
    // The hanging URL: attempted, timed out, retried (the clock moves past
    // each backoff), finally failed after 3 attempts; the others delivered.
    let deadline = Instant::now() + Duration::from_secs(20);
    let hang = loop {
        s.clock.advance(1_000);
        let log = s.beacon_log(&sid).await;
        let hang = log["beacons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["url"].as_str().unwrap().contains("/hang/"))
            .cloned()
            .expect("the hanging beacon is owed");
        if hang["state"] == "failed" || Instant::now() > deadline {
            break hang;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hang["state"], "failed", "{hang}");
    assert_eq!(hang["attempts"], 3);
    let attempts = hang["log"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    for a in attempts {
        assert_eq!(a["status"], Value::Null);
        assert!(a["error"].as_str().unwrap().contains("timeout"), "{a}");
    }
    let log = s.beacon_log(&sid).await;
    let delivered = log["beacons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["state"] == "delivered")
        .count();
    // break start, q1–q3, complete, break end (the hanging URL replaced
    // both impression URLs of the preroll).
    assert_eq!(delivered, 6, "{log}");
    assert_eq!(log["counts"]["failed"], 1);
}

#[tokio::test]
async fn errors_of_the_ping_protocol() {
    let rx = Receiver::start().await;
    let s = server(sequential()).await;
    s.put_asset(schedule(&rx.base, false)).await;
    // Unknown session: 404 with next_time -1.
    let r = s
        .call(
            Method::GET,
            "/session/ping/0123456789abcdef0123456789abcdef.json?v=3&pt=0",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["next_time"], -1.0);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("unknown session"));
    // Ping not enabled at preplay: 200 with an error.
    let sid = s.preplay("").await.body["sid"].as_str().unwrap().to_owned();
    let r = s
        .call(
            Method::GET,
            &format!("/api/v3/ping/ad/{sid}.json?v=3&pt=0&ev=start"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["next_time"], -1.0);
    assert!(r.body["error"].as_str().unwrap().contains("ad.cping=1"));
    // Bad parameters: 400 naming them.
    let sid = s.preplay("ad.cping=1").await.body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    for (q, word) in [
        ("v=3", "pt"),
        ("pt=1", "v"),
        ("v=3&pt=x", "pt"),
        ("v=3&pt=1&ev=rewind", "ev"),
    ] {
        let r = s
            .call(
                Method::GET,
                &format!("/session/ping/{sid}.json?{q}"),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.body["next_time"], -1.0);
        assert!(
            r.body["error"].as_str().unwrap().starts_with(word),
            "{q}: {}",
            r.text
        );
    }
    // Unknown asset; bad preplay flags.
    let r = s
        .call(Method::GET, "/preplay/nope.json?ad.cping=1", None, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s
        .call(Method::GET, "/preplay/movie.json?ad.pingf=8", None, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("ad.pingf"));
}

#[tokio::test]
async fn admin_api_validates_schedules() {
    let s = server(sequential()).await;
    let put = |body: Value, key: Option<&'static str>| {
        let s = &s;
        async move {
            s.call(Method::PUT, "/admin/v1/assets/a1", key, Some(body))
                .await
        }
    };
    let ok = json!({"duration_s": 60, "play_url": "https://x/a.m3u8"});
    assert_eq!(put(ok.clone(), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        put(ok.clone(), Some("wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(put(ok.clone(), Some(ADMIN)).await.status, StatusCode::OK);
    let cases = [
        (json!({"play_url": "https://x"}), "duration_s"),
        (json!({"duration_s": 60}), "play_url"),
        (
            json!({"duration_s": 60, "play_url": "u", "colour": 1}),
            "colour",
        ),
        (
            json!({"duration_s": 60, "play_url": "u", "ad_schedule": [{"timeOffset": 90, "ads": [{"creative": "c", "duration": 5}]}]}),
            "ad_schedule[0].timeOffset",
        ),
        (
            json!({"duration_s": 60, "play_url": "u", "ad_schedule": [{"timeOffset": 0, "ads": []}]}),
            "ad_schedule[0].ads",
        ),
        (
            json!({"duration_s": 60, "play_url": "u", "ad_schedule": [{"timeOffset": 0, "ads": [{"creative": "c", "duration": 0}]}]}),
            "ad_schedule[0].ads[0].duration",
        ),
        (
            json!({"duration_s": 60, "play_url": "u", "ad_schedule": [{"timeOffset": 0, "ads": [{"creative": "c", "duration": 5, "events": {"impressions": ["not a url"]}}]}]}),
            "ad_schedule[0].ads[0].events.impressions[0]",
        ),
        (
            json!({"duration_s": 60, "play_url": "u", "vmap": "<VAST/>"}),
            "vmap",
        ),
        (
            json!({"duration_s": 60, "play_url": "u", "vmap": "<x>", "ad_schedule": []}),
            "vmap",
        ),
        (
            json!({"duration_s": 60, "play_url": "u", "property": "other"}),
            "property",
        ),
    ];
    for (body, field) in cases {
        let r = put(body.clone(), Some(ADMIN)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field, "{body}: {}", r.text);
    }
    // A VMAP document is parsed into breaks.
    let xml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../protocols/tests/data/ping/vmap/valid_preroll_midroll.xml"),
    )
    .unwrap();
    let r = put(
        json!({"duration_s": 60, "play_url": "u", "vmap": xml}),
        Some(ADMIN),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["breaks"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["breaks"][1]["ads"][0]["creative"], "cr-m1");
    let r = s
        .call(Method::GET, "/admin/v1/assets/a1", Some(ADMIN), None)
        .await;
    assert_eq!(r.body["breaks"][0]["ads"][0]["duration"], 10.0);
}

#[tokio::test]
async fn live_channel_announces_upcoming_breaks() {
    let rx = Receiver::start().await;
    let s = server(sequential()).await;
    let u = |p: &str| format!("{}/{p}", rx.base);
    // A break 100 s after the viewer starts (T0), length not known yet.
    let channel = |duration: Option<f64>| {
        let mut b = json!({"id": "b1", "start_ms": T0 + 100_000,
            "events": {"impressions": [u("live/start")], "completes": [u("live/end")]},
            "ads": [{"creative": "l1", "duration": 30, "events": {"impressions": [u("live/imp/l1")]}}]});
        if let Some(d) = duration {
            b["duration"] = json!(d);
        }
        json!({"play_url": "https://cdn.test/live.m3u8", "breaks": [b]})
    };
    let r = s
        .call(
            Method::PUT,
            "/admin/v1/channels/news",
            Some(ADMIN),
            Some(channel(None)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .call(
            Method::GET,
            "/preplay/channel/news.json?ad.cping=1&ad.pingf=4",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["playURL"], "https://cdn.test/live.m3u8");
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    s.clock.set(T0);
    let r = s
        .call(
            Method::GET,
            &format!("/session/ping/{sid}.json?v=3&pt=0&ev=start"),
            None,
            None,
        )
        .await;
    assert_eq!(r.body["next_time"], 60.0);
    let upcoming = &r.body["ads"]["breaks"][0];
    assert_eq!(upcoming["timeOffset"], 100.0);
    assert!(
        upcoming.get("breakEnd").is_none(),
        "end not known: {upcoming}"
    );
    assert!(r.body.get("currentBreakEnd").is_none());
    // In the break (end unknown): ping every 10 s at most, ads are announced.
    assert_eq!(s.ping(&sid, 60.0, "pt=60").await, 100.0);
    s.clock.set(T0 + 100_000);
    let r = s
        .call(
            Method::GET,
            &format!("/session/ping/{sid}.json?v=3&pt=100"),
            None,
            None,
        )
        .await;
    assert_eq!(r.body["next_time"], 107.5);
    assert!(r.body.get("currentBreakEnd").is_none());
    // The end becomes known (60 s): the next ping says so.
    let r = s
        .call(
            Method::PUT,
            "/admin/v1/channels/news",
            Some(ADMIN),
            Some(channel(Some(60.0))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    s.clock.set(T0 + 107_500);
    let r = s
        .call(
            Method::GET,
            &format!("/session/ping/{sid}.json?v=3&pt=107.5"),
            None,
            None,
        )
        .await;
    assert_eq!(r.body["currentBreakEnd"], 160.0);
    // v=2: no ad data.
    s.clock.set(T0 + 115_000);
    let r = s
        .call(
            Method::GET,
            &format!("/session/ping/{sid}.json?v=2&pt=115"),
            None,
            None,
        )
        .await;
    assert!(r.body.get("ads").is_none() && r.body.get("currentBreakEnd").is_none());
    // Beacons: break start, the ad's impression.
    let got = rx.wait_for(2).await;
    assert_eq!(without_query(&got), vec!["/live/start", "/live/imp/l1"]);
    let v = s.session(&sid).await;
    assert_eq!(v["content_type"], "live");
    assert_eq!(v["metrics"]["ad_breaks"], 1);
}

#[tokio::test]
async fn a_ping_credits_at_most_the_wall_time_elapsed_plus_one_second() {
    let s = server(sequential()).await;
    let r = s
        .call(
            Method::PUT,
            "/admin/v1/assets/plain",
            Some(ADMIN),
            Some(json!({"duration_s": 600, "play_url": "https://cdn.test/plain.m3u8"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .call(Method::GET, "/preplay/plain.json?ad.cping=1", None, None)
        .await;
    let sid = r.body["sid"].as_str().unwrap().to_owned();
    // No ads: every 60 s.
    assert_eq!(s.ping(&sid, 0.0, "pt=0&ev=start").await, 60.0);
    // A client claiming 60 s of play after 10 s of wall time: 10 + 1 s credited.
    assert_eq!(s.ping(&sid, 10.0, "pt=60").await, 120.0);
    assert_eq!(
        s.session(&sid).await["metrics"]["playing_time_ms"],
        11_000.0
    );
    // Then an honest minute: all of it.
    s.ping(&sid, 70.0, "pt=120").await;
    let v = s.session(&sid).await;
    assert_eq!(v["metrics"]["playing_time_ms"], 71_000.0);
    assert_eq!(v["metrics"]["max_playhead_s"], 120.0);
    assert_eq!(v["open"], true);
}

#[tokio::test]
async fn client_side_beaconing_and_features_without_impressions_fire_nothing() {
    let rx = Receiver::start().await;
    let s = server(sequential()).await;
    s.put_asset(schedule(&rx.base, false)).await;
    // `ad.sssb=1`: the client fires the beacons; `ad.pingf=2`: video views
    // only, no ad impressions by ping. Both still count the ads.
    for query in ["ad.cping=1&ad.sssb=1", "ad.cping=1&ad.pingf=2"] {
        let sid = s.preplay(query).await.body["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut next = s.ping(&sid, 0.0, "pt=0&ev=start").await;
        while next > 0.0 && next <= 10.0 {
            next = s.ping(&sid, next, &format!("pt={next}")).await;
        }
        let log = s.beacon_log(&sid).await;
        assert_eq!(log["beacons"], json!([]), "{query}");
        let m = &s.session(&sid).await["metrics"];
        assert_eq!(m["ads_completed"], 1, "{query}");
        assert_eq!(m["ad_breaks"], 1, "{query}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.hits().is_empty(), "{:?}", rx.paths());
}
