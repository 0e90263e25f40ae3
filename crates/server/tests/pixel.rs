//! Pixel beacons end to end (`spec/protocols.md` §1, issue 3): the answers
//! the player expects, refusals, pullzone → property mapping, the vendor's
//! figures (retention, realtime users), sessionization across a restart,
//! and overload.
//!
//! Every test drives `app(state)` with `tower::ServiceExt::oneshot` (no
//! socket) on a real [`SqliteStore`] in a temporary directory, with a
//! [`ManualClock`] as the server's clock: pixel events carry no client time,
//! so each beacon is timed when the clock says.
//!
//! Run with: `cargo test -p playhead-server --test pixel`

mod common;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use common::{send, Reply};
use playhead_server::App;
use playhead_server::{app, AppState, ManualClock, Property, ServerConfig};
use playhead_store::{FsyncPolicy, SqliteStore};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use tempfile::TempDir;

/// The server clock's start: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60_000;
/// The pixel inactivity timeout (`spec/protocols.md` §1).
const TIMEOUT: i64 = 30 * MINUTE;

/// A pullzone of the shipped player's shape; the default property takes it.
const PZ: &str = "vz-a06a6f7b-986";
const INGEST: &str = "pixel-ingest-key";
const READ: &str = "pixel-read-key";

/// One server on a store in a temporary directory.
struct Server {
    router: App,
    state: AppState,
    clock: ManualClock,
    dir: TempDir,
}

/// A raw answer: the body as bytes (a GIF is not text).
struct RawReply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn catch_all_config() -> ServerConfig {
    ServerConfig::single("default", INGEST, READ)
}

fn server() -> Server {
    server_with(catch_all_config(), FsyncPolicy::Off)
}

fn server_with(config: ServerConfig, fsync: FsyncPolicy) -> Server {
    let dir = tempfile::tempdir().expect("temporary directory");
    Server::open(config, dir, ManualClock::new(T0), fsync)
}

impl Server {
    /// A server on the store in `dir` (new or not: open sessions are restored).
    fn open(config: ServerConfig, dir: TempDir, clock: ManualClock, fsync: FsyncPolicy) -> Server {
        let store = SqliteStore::open(dir.path(), fsync).expect("open sqlite store");
        let state = AppState::start(config, Arc::new(store), Arc::new(clock.clone()))
            .expect("server start");
        Server {
            router: app(state.clone()),
            state,
            clock,
            dir,
        }
    }

    /// Stop: drop every handle to the pipeline and the store; keep the data.
    fn stop(self) -> TempDir {
        self.dir
    }
}

/// Send a request and keep the body's bytes.
async fn send_raw(router: &App, req: Request<Body>) -> RawReply {
    let r = common::send(router, req).await;
    RawReply {
        status: r.status,
        headers: r.headers,
        body: r.bytes,
    }
}

fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request")
}

/// `/icon.gif?type=<kind>&v=..&p=PZ&u=..<extra>`.
fn icon(kind: &str, video: &str, viewer: &str, extra: &str) -> String {
    format!("/icon.gif?type={kind}&v={video}&p={PZ}&u={viewer}{extra}")
}

impl Server {
    /// Send a beacon at `T0 + at` and insist on the protocol's success answer.
    async fn beacon_at(&self, at: i64, method: Method, uri: &str) {
        self.clock.set(T0 + at);
        let want = if method == Method::POST {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        };
        let r = send_raw(&self.router, request(method.clone(), uri)).await;
        assert_eq!(r.status, want, "{method} {uri}: {}", r.text());
    }

    async fn view(&self, at: i64, video: &str, viewer: &str) {
        self.beacon_at(at, Method::GET, &icon("view", video, viewer, ""))
            .await;
    }

    async fn play(&self, at: i64, video: &str, viewer: &str) {
        self.beacon_at(at, Method::POST, &icon("play", video, viewer, ""))
            .await;
    }

    async fn check(&self, at: i64, video: &str, viewer: &str, position: i64) {
        let extra = format!("&current_time={position}");
        self.beacon_at(at, Method::POST, &icon("check", video, viewer, &extra))
            .await;
    }

    /// The player of one page load: view at `at`, play 1 s later, then a
    /// check every 5 s of position at 5-s wall intervals up to `furthest`
    /// (the first, at 0, with the play: the forced one).
    async fn watch(&self, at: i64, video: &str, viewer: &str, furthest: i64) {
        self.view(at, video, viewer).await;
        self.play(at + SECOND, video, viewer).await;
        for k in 0..=furthest / 5 {
            self.check(at + SECOND + k * 5 * SECOND, video, viewer, k * 5)
                .await;
        }
    }

    async fn get(&self, path: &str, read_key: &str) -> Reply {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {read_key}"))
            .body(Body::empty())
            .expect("request");
        send(&self.router, req).await
    }

    async fn get_ok(&self, path: &str) -> Value {
        let r = self.get(path, READ).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        r.body
    }

    /// The pixel sessions of (video, viewer), oldest first, read with `read_key`.
    async fn sessions_with(&self, video: &str, viewer: &str, read_key: &str) -> Vec<Value> {
        let query = serde_urlencoded::to_string([
            ("protocol", "pixel"),
            ("video_id", video),
            ("viewer_id", viewer),
            ("from", &(T0 - 24 * 60 * MINUTE).to_string()),
            ("to", &(T0 + 24 * 60 * MINUTE).to_string()),
            ("limit", "1000"),
        ])
        .expect("query");
        let r = self
            .get(&format!("/data/v1/sessions?{query}"), read_key)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let mut list = r.body["sessions"].as_array().expect("sessions").clone();
        list.reverse();
        list
    }

    async fn sessions(&self, video: &str, viewer: &str) -> Vec<Value> {
        self.sessions_with(video, viewer, READ).await
    }

    /// Every session of the property in [T0 − 1 day, T0 + 1 day).
    async fn all_sessions(&self, read_key: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!(
                    "/data/v1/sessions?from={}&to={}&limit=1000",
                    T0 - 24 * 60 * MINUTE,
                    T0 + 24 * 60 * MINUTE
                ),
                read_key,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.body["next_cursor"].is_null(), "more than one page");
        r.body["sessions"].as_array().expect("sessions").clone()
    }

    /// `/data/v1/metrics` over [T0, T0 + 1 h) with extra query parameters.
    async fn metrics(&self, extra: &str) -> Value {
        let body = self
            .get_ok(&format!(
                "/data/v1/metrics?from={T0}&to={}{extra}",
                T0 + 60 * MINUTE
            ))
            .await;
        body["metrics"].clone()
    }

    async fn expire(&self) {
        self.state.pipeline.expire_now().await.expect("expire");
    }
}

/// The only session of a (video, viewer) pair.
async fn only_session(s: &Server, video: &str, viewer: &str) -> Value {
    let list = s.sessions(video, viewer).await;
    assert_eq!(list.len(), 1, "sessions of ({video}, {viewer}): {list:?}");
    list[0].clone()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

/// The 1×1 transparent GIF the player's `<img>` loads.
fn assert_gif(r: &RawReply, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("image/gif"), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(r.body.len(), 43, "{what}: {:?}", r.body);
    assert!(r.body.starts_with(b"GIF89a"), "{what}: {:?}", r.body);
    // Logical screen 1×1 (little-endian), and the trailer byte.
    assert_eq!(&r.body[6..10], &[1, 0, 1, 0], "{what}");
    assert_eq!(r.body.last(), Some(&0x3b), "{what}");
}

#[tokio::test]
async fn get_answers_the_43_byte_gif_and_post_answers_204_empty() {
    let s = server();
    for kind in ["view", "play"] {
        let uri = icon(kind, "v1", "u1", "");
        assert_gif(&send_raw(&s.router, request(Method::GET, &uri)).await, &uri);
    }
    let uri = icon("check", "v1", "u1", "&current_time=0");
    assert_gif(&send_raw(&s.router, request(Method::GET, &uri)).await, &uri);
    let uri = format!("/realtime/icon.gif?v=live&p={PZ}&u=u1&quality=720&time=1.00");
    assert_gif(&send_raw(&s.router, request(Method::GET, &uri)).await, &uri);

    // navigator.sendBeacon: POST, data in the query; the body is ignored.
    s.clock.advance(5 * SECOND);
    let uri = icon("check", "v1", "u1", "&current_time=5");
    let req = Request::post(&uri)
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Body::from("ignored"))
        .expect("request");
    let r = send_raw(&s.router, req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(r.body.is_empty(), "{:?}", r.body);
    let r = send_raw(
        &s.router,
        request(Method::POST, &icon("play", "v2", "u1", "")),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(r.body.is_empty(), "{:?}", r.body);

    // The POSTed check landed in the same session as the GETs: 0 → 5 in 5 s.
    let v1 = only_session(&s, "v1", "u1").await;
    assert_eq!(num(&v1["metrics"]["playing_time_ms"]), 5000.0, "{v1}");
    assert_eq!(only_session(&s, "v2", "u1").await["protocol"], "pixel");
}

/// `GET` beacons are answered without the router (`Rest`'s dispatch); a
/// `HEAD` of the same URL still goes through it. Both get the same status
/// and headers (the common CORS layer's included), and every answer is
/// counted under its route.
#[tokio::test]
async fn get_beacons_answer_like_the_router_and_are_counted() {
    let s = server();
    let with_origin = |method: Method, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ORIGIN, "https://player.example.com")
            .body(Body::empty())
            .expect("request")
    };
    let live = format!("/realtime/icon.gif?v=live&p={PZ}&u=u1&quality=720&time=1.00");
    let bad_type = icon("nope", "v1", "u1", "");
    for uri in [icon("view", "v1", "u1", ""), live, bad_type] {
        let get = send_raw(&s.router, with_origin(Method::GET, &uri)).await;
        let head = send_raw(&s.router, with_origin(Method::HEAD, &uri)).await;
        assert_eq!(get.status, head.status, "{uri}: {}", get.text());
        for name in [
            "content-type",
            "cache-control",
            "access-control-allow-origin",
            "vary",
        ] {
            assert_eq!(get.header(name), head.header(name), "{uri}: {name}");
        }
        assert_eq!(
            get.header("access-control-allow-origin"),
            Some("*"),
            "{uri}"
        );
    }
    let r = send_raw(&s.router, request(Method::GET, "/metrics")).await;
    let text = r.text();
    for (route, status) in [
        ("/icon.gif", "200"),
        ("/realtime/icon.gif", "200"),
        ("/icon.gif", "400"),
    ] {
        // One GET and one HEAD each.
        let wanted = [format!("route=\"{route}\""), format!("status=\"{status}\"")];
        assert!(
            text.lines()
                .any(|l| l.starts_with("playhead_http_requests_total{")
                    && wanted.iter().all(|w| l.contains(w.as_str()))
                    && l.ends_with(" 2")),
            "no count of 2 for {route} {status} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn both_visibility_spellings_are_accepted() {
    let s = server();
    // The shipped player spells it `visibily`.
    s.beacon_at(0, Method::GET, &icon("view", "v1", "u1", "&visibily=true"))
        .await;
    s.beacon_at(
        SECOND,
        Method::POST,
        &icon("play", "v1", "u1", "&visibility=false"),
    )
    .await;
    let session = only_session(&s, "v1", "u1").await;
    let id = session["id"].as_str().expect("id");
    let events = s.get_ok(&format!("/data/v1/sessions/{id}/events")).await;
    let seen: Vec<(String, Value)> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().expect("type").to_owned(),
                e["data"]["visibility"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("viewinit".to_owned(), json!(true)),
            ("play".to_owned(), json!(false)),
            ("playing".to_owned(), json!(false)),
        ]
    );
    // Neither spelling is a custom dimension.
    assert_eq!(session["custom"], json!({}), "{session}");
}

#[tokio::test]
async fn utm_custom_name_and_unknown_params_are_custom_dimensions() {
    let s = server();
    let extra =
        "&utm_source=x&utm_medium=email&utm_campaign=launch&utm_term=aula&utm_content=banner\
                 &custom_name=Aula%201%20intro&plan=pro";
    s.beacon_at(0, Method::GET, &icon("view", "v1", "u1", extra))
        .await;
    s.play(SECOND, "v1", "u1").await;
    s.beacon_at(
        SECOND,
        Method::GET,
        &icon("view", "v1", "u2", "&utm_source=y"),
    )
    .await;
    s.view(2 * SECOND, "v1", "u3").await;

    let session = only_session(&s, "v1", "u1").await;
    assert_eq!(
        session["custom"],
        json!({"utm_source": "x", "utm_medium": "email", "utm_campaign": "launch",
               "utm_term": "aula", "utm_content": "banner", "custom_name": "Aula 1 intro",
               "plan": "pro"}),
        "{session}"
    );
    // The play beacon carried none of them: the session keeps the view's.
    assert_eq!(session["metrics"]["played"], true);

    let m = s.metrics("").await;
    assert_eq!(m["views"], 3, "{m}");
    let m = s.metrics("&custom.utm_source=x").await;
    assert_eq!(
        (m["views"].clone(), m["plays"].clone()),
        (json!(1), json!(1))
    );
    let m = s.metrics("&custom.utm_source=x&custom.utm_source=y").await;
    assert_eq!(m["views"], 2, "ORed within one dimension: {m}");
    let m = s.metrics("&custom.utm_source=z").await;
    assert_eq!(m["views"], 0, "{m}");
    let m = s.metrics("&custom.plan=pro").await;
    assert_eq!(m["views"], 1, "an unknown param filters too: {m}");
    let m = s
        .metrics("&custom.custom_name=Aula%201%20intro&custom.utm_medium=email")
        .await;
    assert_eq!(m["views"], 1, "{m}");
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bad_beacons_get_400_text_naming_the_parameter_and_store_nothing() {
    let s = server();
    let ids = format!("v=v1&p={PZ}&u=u1");
    let cases: Vec<(Method, String, &str)> = vec![
        // type
        (Method::GET, format!("/icon.gif?{ids}"), "type"),
        (Method::GET, format!("/icon.gif?type=stop&{ids}"), "type"),
        (Method::POST, format!("/icon.gif?type=VIEW&{ids}"), "type"),
        (Method::GET, "/icon.gif".to_owned(), "type"),
        // v, p, u missing or empty
        (Method::GET, format!("/icon.gif?type=view&p={PZ}&u=u1"), "v"),
        (
            Method::GET,
            format!("/icon.gif?type=view&v=&p={PZ}&u=u1"),
            "v",
        ),
        (Method::GET, "/icon.gif?type=view&v=v1&u=u1".to_owned(), "p"),
        (
            Method::POST,
            "/icon.gif?type=play&v=v1&p=&u=u1".to_owned(),
            "p",
        ),
        (Method::GET, format!("/icon.gif?type=view&v=v1&p={PZ}"), "u"),
        (
            Method::GET,
            format!("/icon.gif?type=check&v=v1&p={PZ}&current_time=5"),
            "u",
        ),
        // current_time
        (
            Method::GET,
            format!("/icon.gif?type=check&{ids}&current_time=abc"),
            "current_time",
        ),
        (
            Method::POST,
            format!("/icon.gif?type=check&{ids}&current_time=-5"),
            "current_time",
        ),
        (
            Method::GET,
            format!("/icon.gif?type=check&{ids}&current_time=NaN"),
            "current_time",
        ),
        (
            Method::GET,
            format!("/icon.gif?type=check&{ids}"),
            "current_time",
        ),
        (
            Method::POST,
            format!("/icon.gif?type=check&{ids}&current_time="),
            "current_time",
        ),
        // visibility flags
        (
            Method::GET,
            format!("/icon.gif?type=view&{ids}&visibily=yes"),
            "visibily",
        ),
        (
            Method::GET,
            format!("/icon.gif?type=view&{ids}&visibility=1"),
            "visibility",
        ),
        // an id over the limit
        (
            Method::GET,
            format!("/icon.gif?type=view&v={}&p={PZ}&u=u1", "x".repeat(300)),
            "v",
        ),
        // live
        (Method::GET, format!("/realtime/icon.gif?p={PZ}&u=u1"), "v"),
        (Method::GET, "/realtime/icon.gif?v=l&u=u1".to_owned(), "p"),
        (Method::GET, format!("/realtime/icon.gif?v=l&p={PZ}"), "u"),
        (
            Method::GET,
            format!("/realtime/icon.gif?{ids}&quality=hd"),
            "quality",
        ),
        (
            Method::GET,
            format!("/realtime/icon.gif?{ids}&time=x"),
            "time",
        ),
        (
            Method::GET,
            format!("/realtime/icon.gif?{ids}&bandwidth=fast"),
            "bandwidth",
        ),
        (
            Method::GET,
            format!("/realtime/icon.gif?{ids}&errors=1.5"),
            "errors",
        ),
    ];
    for (method, uri, param) in &cases {
        let r = send_raw(&s.router, request(method.clone(), uri)).await;
        let text = r.text();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {uri}: {text}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/plain")),
            "{method} {uri}: {:?}",
            r.header("content-type")
        );
        assert!(
            text.starts_with(&format!("{param}: ")),
            "{method} {uri}: the body should name `{param}`: {text:?}"
        );
        assert!(text.len() < 200, "{method} {uri}: a short reason: {text:?}");
    }
    assert!(
        s.all_sessions(READ).await.is_empty(),
        "a refused beacon stored something"
    );
    let m = s.metrics("").await;
    assert_eq!(m["views"], 0, "{m}");
    let rt = s.get_ok("/data/v1/realtime").await;
    assert_eq!(rt["viewers_last_5m"], 0, "{rt}");
}

#[tokio::test]
async fn malformed_query_strings_never_get_a_5xx() {
    let s = server();
    let queries = [
        "%",
        "%ZZ",
        "&&&",
        "type",
        "type=",
        "=view",
        "type=view&v=%FF%FE&p=b&u=c",
        "type=check&v=a&p=b&u=c&current_time=1e309",
        "type=check&v=a&p=b&u=c&current_time=%00",
        "type=check&v=a&p=b&u=c&current_time=99999999999999999999999",
        "type=view&v=a&p=b&u=c&referrer=%%%",
        "type=view&v=a&p=b&u=c&utm_source=%F0%9F%8E%AC",
    ];
    for q in queries {
        // The live beacon is GET only (a POST there is a 405 like any route's).
        let routes = [
            ("/icon.gif", Method::GET),
            ("/icon.gif", Method::POST),
            ("/realtime/icon.gif", Method::GET),
        ];
        for (path, method) in routes {
            {
                let uri = format!("{path}?{q}");
                let r = send_raw(&s.router, request(method.clone(), &uri)).await;
                assert!(
                    !r.status.is_server_error(),
                    "{method} {uri}: {} {}",
                    r.status,
                    r.text()
                );
                if r.status.is_client_error() {
                    assert!(
                        r.header("content-type")
                            .is_some_and(|c| c.starts_with("text/plain")),
                        "{method} {uri}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Pullzone → property
// ---------------------------------------------------------------------------

const READ_A: &str = "read-key-a";
const READ_B: &str = "read-key-b";

/// Property `a` (not catch-all) owns `vz-a`; property `b` owns `vz-b`.
fn two_properties() -> ServerConfig {
    let mut config = ServerConfig::single("a", "ingest-a", READ_A);
    config.properties[0].pullzones = vec!["vz-a".into()];
    config.properties[0].catch_all = false;
    config.properties.push(Property {
        name: "b".into(),
        ingest_key: "ingest-b".into(),
        read_keys: vec![READ_B.into()],
        pullzones: vec!["vz-b".into()],
        report_suites: Vec::new(),
        catch_all: false,
    });
    config
}

#[tokio::test]
async fn pullzones_map_beacons_to_their_property() {
    let s = server_with(two_properties(), FsyncPolicy::Off);
    for pz in ["vz-a", "vz-b"] {
        let r = send_raw(
            &s.router,
            request(
                Method::GET,
                &format!("/icon.gif?type=view&v=v-{pz}&p={pz}&u=u1"),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{pz}: {}", r.text());
    }

    let in_b = s.sessions_with("v-vz-b", "u1", READ_B).await;
    assert_eq!(in_b.len(), 1, "{in_b:?}");
    assert_eq!(in_b[0]["property"], "b");
    assert_eq!(in_b[0]["dimensions"]["pullzone"], "vz-b");
    let in_a = s.sessions_with("v-vz-a", "u1", READ_A).await;
    assert_eq!(in_a.len(), 1, "{in_a:?}");
    assert_eq!(in_a[0]["property"], "a");

    // Neither read key sees the other property's session.
    assert!(s.sessions_with("v-vz-b", "u1", READ_A).await.is_empty());
    assert!(s.sessions_with("v-vz-a", "u1", READ_B).await.is_empty());
    let b_id = in_b[0]["id"].as_str().expect("id");
    let r = s.get(&format!("/data/v1/sessions/{b_id}"), READ_A).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = s.get(&format!("/data/v1/sessions/{b_id}"), READ_B).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // No catch-all property: an unmapped pullzone is refused, naming `p`.
    for uri in [
        "/icon.gif?type=view&v=v1&p=vz-unknown&u=u1",
        "/realtime/icon.gif?v=v1&p=vz-unknown&u=u1&time=1",
    ] {
        let r = send_raw(&s.router, request(Method::GET, uri)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text());
        assert!(r.text().starts_with("p: "), "{uri}: {}", r.text());
        assert!(r.text().contains("vz-unknown"), "{uri}: {}", r.text());
    }
    assert_eq!(s.all_sessions(READ_A).await.len(), 1);
    assert_eq!(s.all_sessions(READ_B).await.len(), 1);
}

#[tokio::test]
async fn the_same_viewer_and_video_in_two_pullzones_are_two_sessions() {
    // Sessions are keyed by (p, v, u): the pullzone is part of the key.
    let mut config = two_properties();
    config.properties[1].pullzones.push("vz-b2".into());
    let s = server_with(config, FsyncPolicy::Off);
    for pz in ["vz-b", "vz-b2"] {
        let uri = format!("/icon.gif?type=check&v=v1&p={pz}&u=u1&current_time=0");
        let r = send_raw(&s.router, request(Method::GET, &uri)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let list = s.sessions_with("v1", "u1", READ_B).await;
    let zones: BTreeSet<&str> = list
        .iter()
        .map(|x| x["dimensions"]["pullzone"].as_str().expect("pullzone"))
        .collect();
    assert_eq!(zones, BTreeSet::from(["vz-b", "vz-b2"]), "{list:?}");
}

// ---------------------------------------------------------------------------
// Vendor figures: retention, realtime
// ---------------------------------------------------------------------------

#[tokio::test]
async fn retention_curve_matches_hand_computed_shares() {
    let s = server();
    // Five plays of `ret` whose furthest checks are 0, 10, 20, 20 and 35 s
    // (a check every 5 s of position at 5-s wall intervals).
    for (i, furthest) in [0, 10, 20, 20, 35].into_iter().enumerate() {
        s.watch(i as i64 * 100, "ret", &format!("u{i}"), furthest)
            .await;
    }
    // Not plays of `ret`: a view that never played, and another video.
    s.view(1000, "ret", "u-no-play").await;
    s.watch(2000, "other", "u0", 50).await;
    s.clock.set(T0 + 10 * MINUTE);

    // Share of the 5 plays whose furthest check reached each 5-s position:
    //   0: every play            5/5 = 1.0
    //   5: 10, 20, 20, 35        4/5 = 0.8
    //  10: 10, 20, 20, 35        4/5 = 0.8
    //  15: 20, 20, 35            3/5 = 0.6
    //  20: 20, 20, 35            3/5 = 0.6
    //  25: 35                    1/5 = 0.2
    //  30: 35                    1/5 = 0.2
    //  35: 35                    1/5 = 0.2
    // and nothing past the furthest position (35).
    let want = [
        (0, 1.0),
        (5, 0.8),
        (10, 0.8),
        (15, 0.6),
        (20, 0.6),
        (25, 0.2),
        (30, 0.2),
        (35, 0.2),
    ];
    let check = |r: &Value| {
        assert_eq!(r["bucket_s"], 5, "{r}");
        assert_eq!(r["plays"], 5, "{r}");
        let points: Vec<(u64, f64)> = r["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|p| {
                (
                    p["position_s"].as_u64().expect("position_s"),
                    num(&p["share"]),
                )
            })
            .collect();
        assert_eq!(points.len(), want.len(), "{r}");
        for ((pos, share), (wpos, wshare)) in points.iter().zip(want) {
            assert_eq!(*pos, wpos, "{r}");
            assert!(
                (share - wshare).abs() < 1e-9,
                "at {pos}: {share} ≠ {wshare}: {r}"
            );
        }
    };
    check(&s.get_ok("/data/v1/videos/ret/retention").await);
    let ranged = format!(
        "/data/v1/videos/ret/retention?from={T0}&to={}",
        T0 + 60 * MINUTE
    );
    check(&s.get_ok(&ranged).await);
    // The same once the sessions closed.
    s.clock.set(T0 + 10 * MINUTE + TIMEOUT);
    s.expire().await;
    check(&s.get_ok(&ranged).await);

    // The other video's curve: one play to 50 s, 11 points of share 1.
    let other = s
        .get_ok(&format!(
            "/data/v1/videos/other/retention?from={T0}&to={}",
            T0 + 60 * MINUTE
        ))
        .await;
    assert_eq!(other["plays"], 1, "{other}");
    assert_eq!(
        other["points"].as_array().expect("points").len(),
        11,
        "{other}"
    );
    // A video without plays: no points.
    let none = s
        .get_ok(&format!(
            "/data/v1/videos/nothing/retention?from={T0}&to={}",
            T0 + 60 * MINUTE
        ))
        .await;
    assert_eq!(
        (none["plays"].clone(), none["points"].clone()),
        (json!(0), json!([]))
    );
}

#[tokio::test]
async fn realtime_counts_recent_viewers_and_concurrent_sessions() {
    let s = server();
    s.view(0, "a", "u1").await;
    s.view(4 * MINUTE, "a", "u2").await;
    s.view(4 * MINUTE + 30 * SECOND, "a", "u3").await;
    s.view(4 * MINUTE + 30 * SECOND, "b", "u3").await;

    // At 5:10: beacons in the last 5 min (since 0:10) from u2 and u3 (one
    // viewer, two sessions): viewers_last_5m = 2. In the last 60 s (since
    // 4:10): u3's two sessions -> concurrent_viewers 2, one per video.
    s.clock.set(T0 + 5 * MINUTE + 10 * SECOND);
    let rt = s.get_ok("/data/v1/realtime").await;
    assert_eq!(rt["viewers_last_5m"], 2, "{rt}");
    assert_eq!(rt["concurrent_viewers"], 2, "{rt}");
    assert_eq!(
        rt["by_video"],
        json!([{"video_id": "a", "viewers": 1}, {"video_id": "b", "viewers": 1}]),
        "{rt}"
    );
    let rt = s.get_ok("/data/v1/realtime?video_id=b").await;
    assert_eq!(
        (
            rt["viewers_last_5m"].clone(),
            rt["concurrent_viewers"].clone()
        ),
        (json!(1), json!(1)),
        "{rt}"
    );

    // u1 comes back (a check in its still-open session): 3 viewers, 3 concurrent.
    s.check(5 * MINUTE + 10 * SECOND, "a", "u1", 0).await;
    let rt = s.get_ok("/data/v1/realtime").await;
    assert_eq!(rt["viewers_last_5m"], 3, "{rt}");
    assert_eq!(rt["concurrent_viewers"], 3, "{rt}");
    assert_eq!(
        only_session(&s, "a", "u1").await["started_at"],
        "2023-11-14T22:13:20Z"
    );

    // 6 min later, nobody sent anything: no recent viewers, nothing concurrent.
    s.clock.set(T0 + 11 * MINUTE + 11 * SECOND);
    let rt = s.get_ok("/data/v1/realtime").await;
    assert_eq!(rt["viewers_last_5m"], 0, "{rt}");
    assert_eq!(rt["concurrent_viewers"], 0, "{rt}");
}

// ---------------------------------------------------------------------------
// Sessionization
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_check_in_the_same_millisecond_counts_once() {
    let s = server();
    s.watch(0, "v1", "u1", 10).await;
    // The same check again, same receive time: a duplicate delivery.
    s.check(SECOND + 10 * SECOND, "v1", "u1", 10).await;
    let one = only_session(&s, "v1", "u1").await;
    assert_eq!(num(&one["metrics"]["playing_time_ms"]), 10_000.0, "{one}");
    let id = one["id"].as_str().expect("id");
    let events = s.get_ok(&format!("/data/v1/sessions/{id}/events")).await;
    // viewinit, play, playing, 3 checks.
    assert_eq!(
        events["events"].as_array().expect("events").len(),
        6,
        "{events}"
    );
}

#[tokio::test]
async fn sessionization_survives_a_restart() {
    let s = server_with(catch_all_config(), FsyncPolicy::Always);
    s.watch(0, "v1", "u1", 5).await; // checks 0 @ 1 s, 5 @ 6 s
    assert_eq!(s.sessions("v1", "u1").await.len(), 1);
    let dir = s.stop();

    // A new server on the same data directory, 5 s after the last check.
    let s = Server::open(
        catch_all_config(),
        dir,
        ManualClock::new(T0 + 6 * SECOND),
        FsyncPolicy::Always,
    );
    let before = only_session(&s, "v1", "u1").await;
    assert_eq!(before["open"], true, "{before}");

    s.check(11 * SECOND, "v1", "u1", 10).await;
    let after = only_session(&s, "v1", "u1").await;
    assert_eq!(after["id"], before["id"], "the check opened a new session");
    // 0 → 5 → 10 at 5-s intervals: 10 s playing, across the restart.
    assert_eq!(
        num(&after["metrics"]["playing_time_ms"]),
        10_000.0,
        "{after}"
    );
    assert_eq!(num(&after["metrics"]["max_playhead_s"]), 10.0, "{after}");

    // A new page load still opens a new session, and its checks go there.
    s.view(20 * SECOND, "v1", "u1").await;
    s.check(21 * SECOND, "v1", "u1", 0).await;
    let list = s.sessions("v1", "u1").await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["id"], before["id"]);
    assert_eq!(num(&list[0]["metrics"]["max_playhead_s"]), 10.0);
    assert_eq!(
        num(&list[1]["metrics"]["max_playhead_s"]),
        0.0,
        "{}",
        list[1]
    );
}

/// Issue 3 (`spec/protocols.md` §1: "A session closes after 30 min without
/// beacons"): a beacon that comes more than 30 min after the previous one
/// must open a new session, whether or not the writer's periodic expiry
/// has run in between.
#[tokio::test]
// Regression (issue #3), was a bug: ingest.rs `Writer::resolve` attaches a beacon to the key's latest session while the tracker still holds it open, without checking its 30-min timeout; `transaction` applies submissions before `expire`, so a beacon arriving after the timeout but before the next expiry pass (up to 1 s later, or in the first second after a restart) revives the stale session (its gap counted as paused) instead of opening a new one
async fn a_beacon_after_the_timeout_opens_a_new_session_before_any_expiry_pass() {
    let s = server();
    s.watch(0, "v1", "u1", 5).await; // last beacon at 6 s
                                     // 31 min of silence, then a check: no expiry pass in between.
    s.check(6 * SECOND + TIMEOUT + MINUTE, "v1", "u1", 10).await;
    let list = s.sessions("v1", "u1").await;
    assert_eq!(
        list.len(),
        2,
        "the late check joined the timed-out session: {list:?}"
    );
    s.expire().await;
    let list = s.sessions("v1", "u1").await;
    assert_eq!(list[0]["open"], false);
    assert_eq!(list[0]["ended_at"], "2023-11-14T22:13:26Z");
    assert_eq!(
        num(&list[0]["metrics"]["paused_time_ms"]),
        0.0,
        "{}",
        list[0]
    );
}

/// The same bug after a restart: a server that was down longer than the
/// timeout takes the first second's beacons into sessions that timed out.
#[tokio::test]
// Regression (issue #3), was a bug: ingest.rs restores open sessions and `Writer::resolve` reuses them before the first expiry pass (1 s after start), so after a downtime over 30 min a beacon joins a session that timed out during the downtime
async fn after_a_long_downtime_a_beacon_opens_a_new_session() {
    let s = server();
    s.watch(0, "v1", "u1", 5).await; // last beacon at 6 s
    let dir = s.stop();
    // Back two hours later.
    let s = Server::open(
        catch_all_config(),
        dir,
        ManualClock::new(T0 + 2 * 60 * MINUTE),
        FsyncPolicy::Off,
    );
    s.check(2 * 60 * MINUTE, "v1", "u1", 10).await;
    let list = s.sessions("v1", "u1").await;
    assert_eq!(
        list.len(),
        2,
        "the check joined a session that timed out: {list:?}"
    );
}

// ---------------------------------------------------------------------------
// Overload
// ---------------------------------------------------------------------------

/// The bursts tried before giving up on seeing a `503`.
const MAX_BURSTS: usize = 5;
const BURST: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_answers_200_or_503_and_keeps_every_accepted_beacon() {
    let mut config = catch_all_config();
    config.ingest_queue_capacity = 1;
    config.max_group_commit = 1;
    // fsync on every commit: the writer is as slow as it gets.
    let s = server_with(config, FsyncPolicy::Always);
    let mut accepted: Vec<String> = Vec::new();
    let mut shed: Vec<String> = Vec::new();
    for burst in 0..MAX_BURSTS {
        let mut tasks = Vec::with_capacity(BURST);
        for j in 0..BURST {
            let router = s.router.clone();
            let viewer = format!("o{burst}-{j:03}");
            // Half image GETs (view), half sendBeacon POSTs (check).
            let (method, uri) = if j % 2 == 0 {
                (Method::GET, icon("view", "load", &viewer, ""))
            } else {
                (
                    Method::POST,
                    icon("check", "load", &viewer, "&current_time=5"),
                )
            };
            tasks.push(tokio::spawn(async move {
                let ok = if method == Method::GET {
                    StatusCode::OK
                } else {
                    StatusCode::NO_CONTENT
                };
                let r = send_raw(&router, request(method.clone(), &uri)).await;
                (viewer, ok, method, r)
            }));
        }
        for task in tasks {
            let (viewer, ok, method, r) = task.await.expect("request task");
            if r.status == ok {
                accepted.push(viewer);
            } else if r.status == StatusCode::SERVICE_UNAVAILABLE {
                let retry = r
                    .header("retry-after")
                    .unwrap_or_else(|| panic!("{viewer}: 503 without Retry-After: {}", r.text()));
                assert!(
                    retry.parse::<u64>().is_ok_and(|s| s >= 1),
                    "{viewer}: Retry-After `{retry}`"
                );
                assert!(
                    r.header("content-type")
                        .is_some_and(|c| c.starts_with("text/plain")),
                    "{viewer}: {:?}",
                    r.header("content-type")
                );
                shed.push(viewer);
            } else {
                panic!(
                    "{viewer}: {method} answered {} (only {ok} or 503 under load): {}",
                    r.status,
                    r.text()
                );
            }
        }
        if !shed.is_empty() {
            break;
        }
    }
    assert!(
        !shed.is_empty(),
        "{} beacons in {MAX_BURSTS} bursts with a queue of 1 and no 503",
        accepted.len()
    );
    assert!(!accepted.is_empty(), "every beacon was shed");

    // Each accepted beacon is one stored session of its viewer; a shed one left nothing.
    let sessions = s.all_sessions(READ).await;
    let stored: Vec<&str> = sessions
        .iter()
        .map(|x| x["viewer_id"].as_str().expect("viewer_id"))
        .collect();
    let stored_set: BTreeSet<&str> = stored.iter().copied().collect();
    assert_eq!(stored.len(), stored_set.len(), "a viewer with two sessions");
    let accepted_set: BTreeSet<&str> = accepted.iter().map(String::as_str).collect();
    assert_eq!(stored_set, accepted_set);
}
