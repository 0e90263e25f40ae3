//! The HTTP API's rules (`spec/api.md`, `spec/protocols.md` §6), one test per
//! rule, each checking the status and what the body says.
//!
//! Every test drives `app(state)` with `tower::ServiceExt::oneshot` (no
//! socket) on a real [`SqliteStore`] in a temporary directory, with a
//! [`ManualClock`] as the server's clock.
//!
//! Run with: `cargo test -p playhead-server --test api`

mod common;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{send, Reply};
use playhead_server::{Property, ServerConfig};
use playhead_store::FsyncPolicy;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The server clock's start: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
/// 2023-11-15T00:00:00Z, a whole day (and hour, and minute).
const DAY: i64 = 1_700_006_400_000;
const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

const INGEST_A: &str = "ingest-key-alpha";
const READ_A: &str = "read-key-alpha";
const INGEST_B: &str = "ingest-key-beta";
const READ_B: &str = "read-key-beta";

/// One server on a fresh store.
type Server = common::TestServer;

/// Two properties, `alpha` and `beta`, each with its own keys.
fn two_properties() -> ServerConfig {
    let mut config = ServerConfig::single("alpha", INGEST_A, READ_A);
    config.properties.push(Property {
        name: "beta".into(),
        ingest_key: INGEST_B.into(),
        read_keys: vec![READ_B.into()],
        pullzones: vec!["vz-beta".into()],
        report_suites: Vec::new(),
        catch_all: false,
    });
    config
}

fn server() -> Server {
    server_with(two_properties(), FsyncPolicy::Off)
}

fn server_with(config: ServerConfig, fsync: FsyncPolicy) -> Server {
    common::TestServer::with(config, T0, fsync)
}

impl Server {
    async fn post_raw(&self, content_type: Option<&str>, body: impl Into<Body>) -> Reply {
        let mut req = Request::post("/v1/events");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        send(&self.router, req.body(body.into()).expect("request")).await
    }

    async fn post(&self, body: &Value) -> Reply {
        self.post_raw(Some("application/json"), body.to_string())
            .await
    }

    /// Post and insist on `202` with every event accepted.
    async fn ingest(&self, body: &Value) {
        let r = self.post(body).await;
        let n = body["events"].as_array().map_or(0, Vec::len);
        assert_eq!(r.status, StatusCode::ACCEPTED, "ingest: {}", r.text);
        assert_eq!(
            r.body,
            json!({"accepted": n, "duplicates": 0, "late": 0}),
            "ingest of {body}"
        );
    }

    async fn get(&self, path: &str, read_key: &str) -> Reply {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {read_key}"))
            .body(Body::empty())
            .expect("request");
        send(&self.router, req).await
    }

    async fn get_ok(&self, path: &str, read_key: &str) -> Value {
        let r = self.get(path, read_key).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        r.body
    }

    async fn get_anonymous(&self, path: &str) -> Reply {
        send(
            &self.router,
            Request::get(path).body(Body::empty()).expect("request"),
        )
        .await
    }
}

/// A native batch (`spec/protocols.md` §6) for one session.
fn batch(key: &str, session: Value, events: &[Value]) -> Value {
    json!({"property": key, "session": session, "events": events})
}

fn ev(seq: u64, ts: i64, kind: &str) -> Value {
    json!({"seq": seq, "ts": ts, "type": kind})
}

/// A session that starts at `t` (play, first frame 500 ms later) and is left open.
fn opened(key: &str, id: &str, video: &str, viewer: &str, t: i64) -> Value {
    batch(
        key,
        json!({"id": id, "video_id": video, "viewer_id": viewer}),
        &[ev(1, t, "play"), ev(2, t + 500, "playing")],
    )
}

/// A session that starts at `t`, plays 10 s and ends with `viewend`.
fn closed(key: &str, id: &str, video: &str, viewer: &str, t: i64) -> Value {
    batch(
        key,
        json!({"id": id, "video_id": video, "viewer_id": viewer}),
        &[
            ev(1, t, "play"),
            ev(2, t + 500, "playing"),
            ev(3, t + 10_500, "viewend"),
        ],
    )
}

/// A session that starts at `t` and ends with a fatal error.
fn failed(key: &str, id: &str, video: &str, t: i64) -> Value {
    batch(
        key,
        json!({"id": id, "video_id": video, "viewer_id": "u-failed"}),
        &[
            ev(1, t, "play"),
            ev(2, t + 500, "playing"),
            json!({"seq": 3, "ts": t + 1_500, "type": "error", "code": "E42",
                   "message": "decode", "fatal": true}),
            ev(4, t + 2_000, "viewend"),
        ],
    )
}

fn ids(list: &Value) -> Vec<String> {
    list["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no `sessions` array: {list}"))
        .iter()
        .map(|s| s["id"].as_str().expect("session id").to_owned())
        .collect()
}

fn ms_of(rfc: &str) -> i64 {
    let t = OffsetDateTime::parse(rfc, &Rfc3339).unwrap_or_else(|e| panic!("`{rfc}`: {e}"));
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn rfc(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("time in range")
        .format(&Rfc3339)
        .expect("format")
}

/// Percent-encode a query value (RFC 3339 has `:` and `+`).
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn assert_bad_request(r: &Reply, mentions: &[&str]) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "body: {}", r.text);
    let msg = r.error();
    for m in mentions {
        assert!(msg.contains(m), "`{msg}` should mention `{m}`");
    }
}

// ---------------------------------------------------------------------------
// Native ingest: POST /v1/events
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ingest_answers_202_with_accepted_duplicates_and_late() {
    let s = server();
    let body = closed(INGEST_A, "s1", "v1", "u1", T0);
    let r = s.post(&body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 3, "duplicates": 0, "late": 0}));
    // A retry of an open session's events: acknowledged, ignored.
    let open = opened(INGEST_A, "s2", "v1", "u1", T0);
    s.ingest(&open).await;
    let r = s.post(&open).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 0, "duplicates": 2, "late": 0}));
    // Events for a session that ended with `viewend`: late.
    let after = batch(
        INGEST_A,
        json!({"id": "s1"}),
        &[ev(9, T0 + 20_000, "heartbeat")],
    );
    let r = s.post(&after).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 0, "duplicates": 0, "late": 1}));
}

#[tokio::test]
async fn ingest_accepts_text_plain_as_sent_by_send_beacon() {
    let s = server();
    let body = opened(INGEST_A, "beacon", "v1", "u1", T0);
    let r = s
        .post_raw(Some("text/plain;charset=UTF-8"), body.to_string())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 2, "duplicates": 0, "late": 0}));
    let view = s.get_ok("/data/v1/sessions/beacon", READ_A).await;
    assert_eq!(view["protocol"], "native");
    assert_eq!(view["state"], "playing");
}

#[tokio::test]
async fn ingest_cors_preflight_allows_any_origin_post_and_content_type() {
    let s = server();
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/events")
        .header(header::ORIGIN, "https://player.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Body::empty())
        .expect("request");
    let r = send(&s.router, req).await;
    assert!(r.status.is_success(), "preflight: {} {}", r.status, r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let methods = r
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(
        methods.split(',').any(|m| m.trim() == "POST"),
        "allow-methods: {methods}"
    );
    let headers = r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        headers.split(',').any(|h| h.trim() == "content-type"),
        "allow-headers: {headers}"
    );
    assert!(r.text.is_empty(), "a preflight has no body: {}", r.text);
}

#[tokio::test]
async fn ingest_post_with_origin_gets_allow_origin() {
    let s = server();
    let req = Request::post("/v1/events")
        .header(header::ORIGIN, "https://player.example.com")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            opened(INGEST_A, "cors", "v1", "u1", T0).to_string(),
        ))
        .expect("request");
    let r = send(&s.router, req).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.body["accepted"], 2);
    // A refusal too: a page's fetch() can read why.
    let req = Request::post("/v1/events")
        .header(header::ORIGIN, "https://player.example.com")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("nope"))
        .expect("request");
    let r = send(&s.router, req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.body["field"], "body");
}

#[tokio::test]
async fn ingest_400_names_the_bad_field_for_each_class_of_bad_body() {
    let s = server();
    let cases: [(&str, String, &str); 5] = [
        ("not JSON", "{\"property\": ".to_owned(), "body"),
        (
            "missing session.id",
            json!({"property": INGEST_A, "session": {"video_id": "v"},
                   "events": [ev(1, T0, "play")]})
            .to_string(),
            "session.id",
        ),
        (
            "unknown event type",
            json!({"property": INGEST_A, "session": {"id": "x"},
                   "events": [ev(1, T0, "play"), ev(2, T0, "teleport")]})
            .to_string(),
            "events[1].type",
        ),
        (
            "negative seq",
            json!({"property": INGEST_A, "session": {"id": "x"},
                   "events": [{"seq": -1, "ts": T0, "type": "play"}]})
            .to_string(),
            "events[0].seq",
        ),
        (
            "seq not a number",
            json!({"property": INGEST_A, "session": {"id": "x"},
                   "events": [{"seq": "one", "ts": T0, "type": "play"}]})
            .to_string(),
            "events[0].seq",
        ),
    ];
    for (what, body, field) in cases {
        let r = s.post_raw(Some("application/json"), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert_eq!(r.body["field"], field, "{what}: {}", r.text);
        assert!(
            r.error().contains(field),
            "{what}: the message should name `{field}`: {}",
            r.text
        );
        assert_eq!(
            r.body.as_object().map(|o| o.len()),
            Some(2),
            "{what}: exactly `error` and `field`: {}",
            r.text
        );
    }
    // Nothing of the refused batches was stored.
    let r = s.get("/data/v1/sessions/x", READ_A).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn ingest_401_for_an_unknown_ingest_key_names_property() {
    let s = server();
    let r = s.post(&opened("no-such-key", "s1", "v1", "u1", T0)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.body["field"], "property");
    assert!(r.error().contains("ingest key"), "{}", r.text);
    // A read key is not an ingest key.
    let r = s.post(&opened(READ_A, "s1", "v1", "u1", T0)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.body["field"], "property");
}

#[tokio::test]
async fn ingest_415_for_an_xml_body() {
    let s = server();
    let r = s
        .post_raw(Some("application/xml"), "<events><play/></events>")
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    assert!(r.error().contains("application/xml"), "{}", r.text);
}

#[tokio::test]
async fn ingest_413_for_a_body_over_the_configured_limit() {
    let mut config = two_properties();
    config.body_limit_bytes = 2048;
    let s = server_with(config, FsyncPolicy::Off);
    let padded = |id: &str, pad: usize| {
        batch(
            INGEST_A,
            json!({"id": id, "custom": {"pad": "x".repeat(pad)}}),
            &[ev(1, T0, "play")],
        )
        .to_string()
    };
    // Just under the limit: accepted.
    let small = padded("small", 1_800);
    assert!(small.len() <= 2048, "{}", small.len());
    let r = s.post_raw(Some("application/json"), small).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    // Over it: 413 (as JSON and as sendBeacon text), never a 5xx, nothing stored.
    for ct in ["application/json", "text/plain"] {
        let big = padded("big", 4_000);
        assert!(big.len() > 2048);
        let r = s.post_raw(Some(ct), big).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{ct}: {}", r.text);
        assert!(
            r.text.to_ascii_lowercase().contains("limit")
                || r.text.to_ascii_lowercase().contains("large"),
            "{ct}: the body should say the request is too large: {}",
            r.text
        );
    }
    let r = s.get("/data/v1/sessions/big", READ_A).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

/// `spec/api.md`: "All JSON"; `STYLE.md`: one error funnel. The 413 comes
/// from axum's `Bytes` rejection (the `DefaultBodyLimit` layer in `app.rs`)
/// and bypasses `ApiError`: `text/plain` "Failed to buffer the request body:
/// length limit exceeded" (`ErrorCode::PayloadTooLarge` is never used).
#[tokio::test]
// Regression (issue #2): was a bug: 413 body is axum's text/plain rejection, not a JSON {\"error\"} (app.rs DefaultBodyLimit + native_ingest.rs Bytes extractor bypass ApiError)
async fn ingest_413_body_is_a_json_error() {
    let mut config = two_properties();
    config.body_limit_bytes = 2048;
    let s = server_with(config, FsyncPolicy::Off);
    let big = batch(
        INGEST_A,
        json!({"id": "big", "custom": {"pad": "x".repeat(4_000)}}),
        &[ev(1, T0, "play")],
    );
    let r = s.post(&big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "content-type {:?}, body {:?}",
        r.header("content-type"),
        r.text
    );
    assert!(r.error().contains("2048"), "name the limit: {}", r.text);
}

/// `spec/api.md`: "All JSON". axum's default 405 has an empty body.
#[tokio::test]
// Regression (issue #2): was a bug: 405 Method Not Allowed has an empty, non-JSON body (no method_not_allowed_fallback in app.rs)
async fn wrong_method_is_405_json() {
    let s = server();
    for (method, path) in [
        (Method::GET, "/v1/events"),
        (Method::DELETE, "/data/v1/sessions"),
    ] {
        let req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {READ_A}"))
            .body(Body::empty())
            .expect("request");
        let r = send(&s.router, req).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            r.error().contains(method.as_str()),
            "{method} {path}: {}",
            r.text
        );
    }
}

// ---------------------------------------------------------------------------
// Read API: keys and properties
// ---------------------------------------------------------------------------

#[tokio::test]
async fn read_api_401_without_with_malformed_or_unknown_key() {
    let s = server();
    s.ingest(&closed(INGEST_A, "s1", "v1", "u1", T0 - 60_000))
        .await;
    for path in [
        "/data/v1/sessions",
        "/data/v1/sessions/s1",
        "/data/v1/sessions/s1/events",
        "/data/v1/metrics",
        "/data/v1/metrics/timeseries?metric=views",
        "/data/v1/metrics/breakdown?metric=views&by=video_id",
        "/data/v1/realtime",
    ] {
        let r = s.get_anonymous(path).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
        assert!(r.error().contains("missing"), "{path}: {}", r.text);

        for malformed in [format!("Basic {READ_A}"), READ_A.to_owned()] {
            let req = Request::get(path)
                .header(header::AUTHORIZATION, malformed)
                .body(Body::empty())
                .expect("request");
            let r = send(&s.router, req).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
            assert!(r.error().contains("malformed"), "{path}: {}", r.text);
        }

        let r = s.get(path, "not-a-read-key").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
        assert!(r.error().contains("unknown read key"), "{path}: {}", r.text);
        // An ingest key does not read.
        let r = s.get(path, INGEST_A).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn a_read_key_never_sees_another_propertys_data() {
    let s = server();
    s.ingest(&closed(INGEST_A, "a1", "va", "ua", T0 - 120_000))
        .await;
    s.ingest(&opened(INGEST_A, "a2", "va", "ua2", T0 - 10_000))
        .await;
    s.ingest(&closed(INGEST_B, "b1", "vb", "ub", T0 - 60_000))
        .await;

    // A's sessions are 404 to B, for the summary and the events.
    for path in ["/data/v1/sessions/a1", "/data/v1/sessions/a1/events"] {
        let r = s.get(path, READ_B).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert!(r.error().contains("a1"), "{path}: {}", r.text);
        assert_eq!(s.get(path, READ_A).await.status, StatusCode::OK, "{path}");
    }
    // Lists: each sees its own only, even when asking for the other property.
    let list = s.get_ok("/data/v1/sessions", READ_B).await;
    assert_eq!(ids(&list), ["b1"]);
    let list = s.get_ok("/data/v1/sessions?property=alpha", READ_B).await;
    assert_eq!(ids(&list), ["b1"]);
    let list = s.get_ok("/data/v1/sessions?video_id=va", READ_B).await;
    assert_eq!(ids(&list), Vec::<String>::new());
    let list = s.get_ok("/data/v1/sessions", READ_A).await;
    assert_eq!(ids(&list), ["a2", "a1"]);
    // Metrics.
    let m = s.get_ok("/data/v1/metrics", READ_B).await;
    assert_eq!(m["metrics"]["views"], 1);
    assert_eq!(m["metrics"]["unique_viewers"], 1);
    let m = s.get_ok("/data/v1/metrics", READ_A).await;
    assert_eq!(m["metrics"]["views"], 2);
    let b = s
        .get_ok(
            "/data/v1/metrics/breakdown?metric=views&by=video_id",
            READ_B,
        )
        .await;
    assert_eq!(b["rows"], json!([{"key": "vb", "value": 1.0, "views": 1}]));
    let b = s
        .get_ok(
            "/data/v1/metrics/breakdown?metric=views&by=property",
            READ_B,
        )
        .await;
    assert_eq!(
        b["rows"],
        json!([{"key": "beta", "value": 1.0, "views": 1}])
    );
    let rt = s.get_ok("/data/v1/realtime", READ_B).await;
    assert_eq!(rt["concurrent_viewers"], 0, "{rt}");
    let rt = s.get_ok("/data/v1/realtime", READ_A).await;
    assert_eq!(rt["concurrent_viewers"], 1, "{rt}");
}

#[tokio::test]
async fn unknown_session_is_404() {
    let s = server();
    for path in ["/data/v1/sessions/nope", "/data/v1/sessions/nope/events"] {
        let r = s.get(path, READ_A).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert!(r.error().contains("nope"), "{path}: {}", r.text);
    }
}

// ---------------------------------------------------------------------------
// Read API: sessions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn session_list_pages_with_limit_and_cursor_without_gaps_or_repeats() {
    let s = server();
    // 23 sessions; several share a start time, so the cursor must break ties.
    let mut expected: Vec<(i64, String)> = Vec::new();
    for i in 0..23i64 {
        let t = T0 - 3_600_000 + (i / 3) * 60_000;
        let id = format!("p{i:02}");
        s.ingest(&closed(INGEST_A, &id, "v1", "u1", t)).await;
        expected.push((t, id));
    }
    // Newest first (then id, descending).
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/data/v1/sessions?limit=5".to_owned(),
            Some(c) => format!("/data/v1/sessions?limit=5&cursor={}", enc(c)),
        };
        let page = s.get_ok(&path, READ_A).await;
        let got = ids(&page);
        assert!(got.len() <= 5, "page {pages}: {got:?}");
        seen.extend(got);
        pages += 1;
        assert!(pages <= 10, "paging does not end");
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor: {other}"),
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, expected, "every session once, newest first");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 23);
    // A page that holds everything has no cursor.
    let all = s.get_ok("/data/v1/sessions?limit=1000", READ_A).await;
    assert_eq!(ids(&all), expected);
    assert_eq!(all["next_cursor"], Value::Null);
}

#[tokio::test]
async fn session_list_filters_by_video_id_and_failed() {
    let s = server();
    s.ingest(&closed(INGEST_A, "ok-v1", "v1", "u1", T0 - 50_000))
        .await;
    s.ingest(&closed(INGEST_A, "ok-v2", "v2", "u2", T0 - 40_000))
        .await;
    s.ingest(&failed(INGEST_A, "bad-v1", "v1", T0 - 30_000))
        .await;
    s.ingest(&failed(INGEST_A, "bad-v3", "v3", T0 - 20_000))
        .await;

    let l = s.get_ok("/data/v1/sessions?video_id=v1", READ_A).await;
    assert_eq!(ids(&l), ["bad-v1", "ok-v1"]);
    let l = s
        .get_ok("/data/v1/sessions?video_id=v1&video_id=v3", READ_A)
        .await;
    assert_eq!(ids(&l), ["bad-v3", "bad-v1", "ok-v1"]);
    let l = s.get_ok("/data/v1/sessions?failed=true", READ_A).await;
    assert_eq!(ids(&l), ["bad-v3", "bad-v1"]);
    for session in l["sessions"].as_array().expect("sessions") {
        assert_eq!(session["metrics"]["failed"], true, "{session}");
    }
    let l = s.get_ok("/data/v1/sessions?failed=false", READ_A).await;
    assert_eq!(ids(&l), ["ok-v2", "ok-v1"]);
    let l = s
        .get_ok("/data/v1/sessions?failed=true&video_id=v1", READ_A)
        .await;
    assert_eq!(ids(&l), ["bad-v1"]);
    let r = s.get("/data/v1/sessions?failed=maybe", READ_A).await;
    assert_bad_request(&r, &["failed", "maybe"]);
}

#[tokio::test]
async fn session_list_400_for_a_bad_limit_or_cursor() {
    let s = server();
    s.ingest(&closed(INGEST_A, "s1", "v1", "u1", T0 - 60_000))
        .await;
    for bad in ["0", "5000", "x", "-1", "1001"] {
        let r = s
            .get(&format!("/data/v1/sessions?limit={bad}"), READ_A)
            .await;
        assert_bad_request(&r, &["limit", bad]);
    }
    assert_eq!(
        ids(&s.get_ok("/data/v1/sessions?limit=1000", READ_A).await),
        ["s1"]
    );
    for bad in ["zz", "not-a-cursor", "41"] {
        let r = s
            .get(&format!("/data/v1/sessions?cursor={bad}"), READ_A)
            .await;
        assert_bad_request(&r, &["cursor"]);
    }
}

#[tokio::test]
async fn time_range_accepts_rfc3339_and_epoch_ms() {
    let s = server();
    let starts = [DAY - 3 * HOUR, DAY - 2 * HOUR, DAY - HOUR];
    s.clock.set(DAY);
    for (i, t) in starts.iter().enumerate() {
        s.ingest(&closed(INGEST_A, &format!("r{i}"), "v1", "u1", *t))
            .await;
    }
    // [DAY - 2h, DAY - 1h): only r1; `from` inclusive, `to` exclusive.
    let (from, to) = (DAY - 2 * HOUR, DAY - HOUR);
    let as_ms = format!("from={from}&to={to}");
    let as_rfc = format!("from={}&to={}", enc(&rfc(from)), enc(&rfc(to)));
    assert_eq!(rfc(from), "2023-11-14T22:00:00Z");
    let offset = format!(
        "from={}&to={}",
        enc("2023-11-14T23:00:00+01:00"),
        enc("2023-11-14T23:00:00Z")
    );
    for q in [&as_ms, &as_rfc, &offset] {
        let l = s.get_ok(&format!("/data/v1/sessions?{q}"), READ_A).await;
        assert_eq!(ids(&l), ["r1"], "{q}");
        let m = s.get_ok(&format!("/data/v1/metrics?{q}"), READ_A).await;
        assert_eq!(m["metrics"]["views"], 1, "{q}: {m}");
        assert_eq!(ms_of(m["from"].as_str().expect("from")), from, "{q}");
        assert_eq!(ms_of(m["to"].as_str().expect("to")), to, "{q}");
    }
    // Default: the last 24 h up to now.
    let l = s.get_ok("/data/v1/sessions", READ_A).await;
    assert_eq!(ids(&l), ["r2", "r1", "r0"]);
    let r = s.get("/data/v1/sessions?from=yesterday", READ_A).await;
    assert_bad_request(&r, &["from", "yesterday"]);
}

#[tokio::test]
async fn from_not_before_to_is_400() {
    let s = server();
    for path in [
        format!("/data/v1/sessions?from={T0}&to={T0}"),
        format!("/data/v1/sessions?from={}&to={T0}", T0 + 1),
        format!("/data/v1/metrics?from={}&to={T0}", T0 + HOUR),
        format!("/data/v1/metrics/timeseries?metric=views&from={T0}&to={T0}"),
        format!("/data/v1/metrics/breakdown?metric=views&by=os&from={T0}&to={T0}"),
    ] {
        let r = s.get(&path, READ_A).await;
        assert_bad_request(&r, &["from", "to"]);
    }
}

#[tokio::test]
async fn unknown_filter_dimension_is_400_listing_the_valid_ones() {
    let s = server();
    for path in [
        "/data/v1/sessions?colour=red",
        "/data/v1/metrics?colour=red",
        "/data/v1/metrics/timeseries?metric=views&colour=red",
        "/data/v1/metrics/breakdown?metric=views&by=os&colour=red",
        "/data/v1/realtime?colour=red",
    ] {
        let r = s.get(path, READ_A).await;
        assert_bad_request(
            &r,
            &[
                "colour",
                "video_id",
                "viewer_id",
                "browser",
                "country",
                "cdn",
            ],
        );
    }
    // A known dimension and a custom key are filters, not errors.
    for path in [
        "/data/v1/metrics?browser=Chrome",
        "/data/v1/metrics?custom.show=news",
    ] {
        let m = s.get_ok(path, READ_A).await;
        assert_eq!(m["metrics"]["views"], 0, "{path}");
    }
}

#[tokio::test]
async fn session_events_are_in_timestamp_order_with_state_after() {
    let s = server();
    let t = T0 - 60_000;
    let session = json!({"id": "timeline", "video_id": "v1"});
    // Sent out of order, over two requests.
    s.ingest(&batch(
        INGEST_A,
        session.clone(),
        &[
            ev(5, t + 9_000, "pause"),
            ev(2, t + 1_000, "playing"),
            ev(6, t + 10_000, "seeking"),
        ],
    ))
    .await;
    s.ingest(&batch(
        INGEST_A,
        session,
        &[
            ev(8, t + 15_000, "ended"),
            ev(1, t, "play"),
            ev(7, t + 10_400, "seeked"),
            ev(4, t + 6_000, "playing"),
            ev(3, t + 5_000, "waiting"),
        ],
    ))
    .await;
    let events = s.get_ok("/data/v1/sessions/timeline/events", READ_A).await;
    let got: Vec<(i64, String, String)> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                ms_of(e["t"].as_str().expect("t")) - t,
                e["type"].as_str().expect("type").to_owned(),
                e["state_after"].as_str().expect("state_after").to_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, String, String)> = [
        (0, "play", "starting"),
        (1_000, "playing", "playing"),
        (5_000, "waiting", "buffering"),
        (6_000, "playing", "playing"),
        (9_000, "pause", "paused"),
        (10_000, "seeking", "seeking"),
        (10_400, "seeked", "paused"),
        (15_000, "ended", "ended"),
    ]
    .into_iter()
    .map(|(t, k, st)| (t, k.to_owned(), st.to_owned()))
    .collect();
    assert_eq!(got, want, "{events}");
    let seqs: Vec<u64> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["data"]["seq"].as_u64().expect("data.seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7, 8]);
}

// ---------------------------------------------------------------------------
// Read API: metrics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn timeseries_unknown_metric_is_400_naming_it_and_listing_valid_ones() {
    let s = server();
    let r = s
        .get("/data/v1/metrics/timeseries?metric=happiness", READ_A)
        .await;
    assert_bad_request(
        &r,
        &[
            "happiness",
            "views",
            "unique_viewers",
            "startup_time_ms_p95",
            "rebuffer_percentage",
            "playback_failure_percentage",
            "exit_before_start_percentage",
        ],
    );
    let r = s.get("/data/v1/metrics/timeseries", READ_A).await;
    assert_bad_request(&r, &["metric", "views"]);
    let r = s
        .get(
            "/data/v1/metrics/breakdown?metric=happiness&by=video_id",
            READ_A,
        )
        .await;
    assert_bad_request(&r, &["happiness", "views"]);
}

#[tokio::test]
async fn timeseries_unknown_interval_is_400() {
    let s = server();
    let r = s
        .get(
            "/data/v1/metrics/timeseries?metric=views&interval=2h",
            READ_A,
        )
        .await;
    assert_bad_request(&r, &["2h", "1m", "5m", "1h", "1d"]);
}

#[tokio::test]
async fn timeseries_with_too_many_points_is_400() {
    let s = server();
    // 30 days of minutes: 43,200 points.
    let path = format!(
        "/data/v1/metrics/timeseries?metric=views&interval=1m&from={}&to={DAY}",
        DAY - 30 * 24 * HOUR
    );
    let r = s.get(&path, READ_A).await;
    assert_bad_request(&r, &["1m", "points"]);
    // The same range by the day is fine.
    let path = format!(
        "/data/v1/metrics/timeseries?metric=views&interval=1d&from={}&to={DAY}",
        DAY - 30 * 24 * HOUR
    );
    let ts = s.get_ok(&path, READ_A).await;
    assert_eq!(ts["points"].as_array().map(Vec::len), Some(30));
}

/// `api/metrics.rs:176` checks `(to - start) / interval > MAX_POINTS` with
/// integer division, so a range of 10,000 intervals and 1 ms gives 10,001
/// points although `MAX_POINTS` (10,000) is "most points one timeseries answers".
#[tokio::test]
// Regression (issue #2): was a bug: timeseries answers MAX_POINTS + 1 points (api/metrics.rs:176 floors the point count)
async fn timeseries_never_answers_more_than_max_points() {
    let s = server();
    let from = DAY - 10_000 * MINUTE;
    let ok = format!("/data/v1/metrics/timeseries?metric=views&interval=1m&from={from}&to={DAY}");
    let ts = s.get_ok(&ok, READ_A).await;
    assert_eq!(ts["points"].as_array().map(Vec::len), Some(10_000));
    let over = format!(
        "/data/v1/metrics/timeseries?metric=views&interval=1m&from={from}&to={}",
        DAY + 1
    );
    let r = s.get(&over, READ_A).await;
    let points = r.body["points"].as_array().map(Vec::len);
    assert!(
        r.status == StatusCode::BAD_REQUEST,
        "10,001 intervals: expected 400, got {} with {points:?} points",
        r.status
    );
}

#[tokio::test]
async fn timeseries_has_every_interval_with_zero_for_empty_counts() {
    let s = server();
    s.clock.set(DAY);
    // Two sessions in hour 1, one in hour 4 of [DAY - 6h, DAY).
    let h = |n: i64| DAY - 6 * HOUR + n * HOUR;
    s.ingest(&closed(INGEST_A, "h1a", "v1", "u1", h(1) + 60_000))
        .await;
    s.ingest(&closed(INGEST_A, "h1b", "v1", "u2", h(1) + 30 * MINUTE))
        .await;
    s.ingest(&closed(INGEST_A, "h4", "v1", "u1", h(4) + 5 * MINUTE))
        .await;
    let path = format!(
        "/data/v1/metrics/timeseries?metric=views&interval=1h&from={}&to={DAY}",
        h(0)
    );
    let ts = s.get_ok(&path, READ_A).await;
    assert_eq!(ts["metric"], "views");
    assert_eq!(ts["interval"], "1h");
    let points = ts["points"].as_array().expect("points");
    let got: Vec<(i64, f64)> = points
        .iter()
        .map(|p| {
            (
                ms_of(p["t"].as_str().expect("t")),
                p["value"].as_f64().expect("a count is never null"),
            )
        })
        .collect();
    let want: Vec<(i64, f64)> = (0..6)
        .map(|n| (h(n), [0.0, 2.0, 0.0, 0.0, 1.0, 0.0][n as usize]))
        .collect();
    assert_eq!(got, want, "{ts}");
    // By 5 minutes over hour 1: 12 points, the sessions in points 0 and 6.
    let path = format!(
        "/data/v1/metrics/timeseries?metric=plays&interval=5m&from={}&to={}",
        h(1),
        h(2)
    );
    let ts = s.get_ok(&path, READ_A).await;
    let values: Vec<f64> = ts["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["value"].as_f64().expect("count"))
        .collect();
    let mut want = vec![0.0; 12];
    want[0] = 1.0;
    want[6] = 1.0;
    assert_eq!(values, want, "{ts}");
}

/// `api/metrics.rs` `timeseries` widens the query to `filters.from = start`
/// (`from` floored to the interval), so the first point counts sessions that
/// started before `from`: the points of `[23:30, 00:00)` by the hour count a
/// session of 23:10, which `/data/v1/metrics` over the same range does not.
/// (`to` is not widened the same way: the last bucket is cut at `to`.)
#[tokio::test]
// Regression (issue #2): was a bug: timeseries counts sessions before `from` in its first point (api/metrics.rs:182 `filters.from = start`)
async fn timeseries_counts_only_sessions_inside_the_range() {
    let s = server();
    s.clock.set(DAY);
    s.ingest(&closed(INGEST_A, "before", "v1", "u1", DAY - 50 * MINUTE))
        .await;
    s.ingest(&closed(INGEST_A, "inside", "v1", "u2", DAY - 20 * MINUTE))
        .await;
    let from = DAY - 30 * MINUTE;
    let m = s
        .get_ok(&format!("/data/v1/metrics?from={from}&to={DAY}"), READ_A)
        .await;
    assert_eq!(m["metrics"]["views"], 1, "{m}");
    let ts = s
        .get_ok(
            &format!("/data/v1/metrics/timeseries?metric=views&interval=1h&from={from}&to={DAY}"),
            READ_A,
        )
        .await;
    let total: f64 = ts["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .sum();
    assert_eq!(total, 1.0, "views over [from, to) by the hour: {ts}");
}

#[tokio::test]
async fn breakdown_unknown_by_is_400_listing_dimensions() {
    let s = server();
    let r = s
        .get("/data/v1/metrics/breakdown?metric=views&by=colour", READ_A)
        .await;
    assert_bad_request(&r, &["colour", "video_id", "browser", "os"]);
    let r = s
        .get("/data/v1/metrics/breakdown?metric=views", READ_A)
        .await;
    assert_bad_request(&r, &["by", "video_id"]);
}

#[tokio::test]
async fn breakdown_rows_are_largest_first_with_views() {
    let s = server();
    let mut n = 0;
    // v2: 3 views, v1: 2 views (one failed), v3: 1 view.
    for (video, count) in [("v1", 2), ("v2", 3), ("v3", 1)] {
        for _ in 0..count {
            n += 1;
            s.ingest(&closed(
                INGEST_A,
                &format!("b{n}"),
                video,
                &format!("u{n}"),
                T0 - 3_600_000 + n * 60_000,
            ))
            .await;
        }
    }
    s.ingest(&failed(INGEST_A, "bf", "v1", T0 - 60_000)).await;
    let b = s
        .get_ok(
            "/data/v1/metrics/breakdown?metric=views&by=video_id",
            READ_A,
        )
        .await;
    assert_eq!(b["metric"], "views");
    assert_eq!(b["by"], "video_id");
    let rows = b["rows"].as_array().expect("rows");
    // v1 and v2 tie: either may come first; v3 is last.
    let mut top: Vec<Value> = rows[..2].to_vec();
    top.sort_by_key(|r| r["key"].as_str().map(str::to_owned));
    assert_eq!(
        top,
        [
            json!({"key": "v1", "value": 3.0, "views": 3}),
            json!({"key": "v2", "value": 3.0, "views": 3}),
        ],
        "{b}"
    );
    assert_eq!(
        rows[2],
        json!({"key": "v3", "value": 1.0, "views": 1}),
        "{b}"
    );
    assert_eq!(rows.len(), 3, "{b}");
    let b = s
        .get_ok(
            "/data/v1/metrics/breakdown?metric=playback_failure_percentage&by=video_id",
            READ_A,
        )
        .await;
    let rows = b["rows"].as_array().expect("rows");
    assert_eq!(rows[0]["key"], "v1", "{b}");
    assert!(
        (rows[0]["value"].as_f64().expect("value") - 100.0 / 3.0).abs() < 1e-9,
        "{b}"
    );
    assert_eq!(rows[0]["views"], 3);
    let values: Vec<f64> = rows
        .iter()
        .map(|r| r["value"].as_f64().expect("value"))
        .collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "{b}");
    let b = s
        .get_ok(
            "/data/v1/metrics/breakdown?metric=views&by=video_id&limit=1",
            READ_A,
        )
        .await;
    assert_eq!(b["rows"].as_array().map(Vec::len), Some(1), "{b}");
}

#[tokio::test]
async fn realtime_counts_sessions_with_an_event_in_the_last_60_s() {
    let s = server();
    // `a` last heard at T0, `b` and `c` at T0 + 30 s, `d` closed at T0 + 40 s.
    s.ingest(&opened(INGEST_A, "a", "v1", "ua", T0)).await;
    s.clock.set(T0 + 30_000);
    s.ingest(&opened(INGEST_A, "b", "v1", "ub", T0 + 29_000))
        .await;
    s.ingest(&opened(INGEST_A, "c", "v2", "uc", T0 + 29_500))
        .await;
    s.clock.set(T0 + 40_000);
    s.ingest(&closed(INGEST_A, "d", "v2", "ud", T0 + 25_000))
        .await;

    s.clock.set(T0 + 50_000);
    let rt = s.get_ok("/data/v1/realtime", READ_A).await;
    assert_eq!(
        rt,
        json!({"concurrent_viewers": 3,
               "by_video": [{"video_id": "v1", "viewers": 2}, {"video_id": "v2", "viewers": 1}],
               "viewers_last_5m": 4})
    );
    // 61 s after `a`'s last event: `a` is no longer concurrent.
    s.clock.set(T0 + 61_000);
    let rt = s.get_ok("/data/v1/realtime", READ_A).await;
    assert_eq!(
        rt,
        json!({"concurrent_viewers": 2,
               "by_video": [{"video_id": "v1", "viewers": 1}, {"video_id": "v2", "viewers": 1}],
               "viewers_last_5m": 4})
    );
    let rt = s.get_ok("/data/v1/realtime?video_id=v2", READ_A).await;
    assert_eq!(
        rt,
        json!({"concurrent_viewers": 1,
               "by_video": [{"video_id": "v2", "viewers": 1}],
               "viewers_last_5m": 2})
    );
    // Six minutes later: nobody.
    s.clock.set(T0 + 30_000 + 6 * MINUTE);
    let rt = s.get_ok("/data/v1/realtime", READ_A).await;
    assert_eq!(
        rt,
        json!({"concurrent_viewers": 0, "by_video": [], "viewers_last_5m": 0})
    );
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let s = server();
    let r = s.get_anonymous("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text.trim(), "ok");
    let r = s.get_anonymous("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text.trim(), "ready");
}

#[tokio::test]
async fn prometheus_metrics_count_requests_and_events() {
    let s = server();
    s.ingest(&closed(INGEST_A, "m1", "v1", "u1", T0 - 60_000))
        .await;
    let r = s.post_raw(Some("application/json"), "nope").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = s.get_anonymous("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
    let text = &r.text;
    assert!(
        text.contains("# TYPE playhead_http_requests_total counter")
            || text.contains("# TYPE playhead_http_requests counter"),
        "{text}"
    );
    let line = |prefix: &str, needles: &[&str]| {
        text.lines()
            .find(|l| l.starts_with(prefix) && needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no `{prefix}` line with {needles:?} in:\n{text}"))
            .to_owned()
    };
    let ingest = line(
        "playhead_http_requests_total{",
        &["route=\"/v1/events\"", "status=\"202\""],
    );
    assert!(ingest.ends_with(" 1"), "{ingest}");
    line(
        "playhead_http_requests_total{",
        &["route=\"/v1/events\"", "status=\"400\""],
    );
    let accepted = line(
        "playhead_events_total{",
        &["protocol=\"native\"", "outcome=\"accepted\""],
    );
    assert!(accepted.ends_with(" 3"), "{accepted}");
    let invalid = line(
        "playhead_events_total{",
        &["protocol=\"native\"", "outcome=\"invalid\""],
    );
    assert!(invalid.ends_with(" 1"), "{invalid}");
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let s = server();
    let r = s.get_anonymous("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let version = r.body["openapi"].as_str().expect("`openapi` version");
    assert!(version.starts_with("3."), "{version}");
    let paths: BTreeSet<&str> = r.body["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    for route in [
        "/v1/events",
        "/data/v1/sessions",
        "/data/v1/sessions/{id}",
        "/data/v1/sessions/{id}/events",
        "/data/v1/metrics",
        "/data/v1/metrics/timeseries",
        "/data/v1/metrics/breakdown",
        "/data/v1/realtime",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains(route), "`{route}` missing from {paths:?}");
    }
    assert!(
        r.body["paths"]["/v1/events"]["post"].is_object(),
        "POST /v1/events"
    );
    assert!(
        r.body["paths"]["/data/v1/sessions"]["get"].is_object(),
        "GET /data/v1/sessions"
    );
}

#[tokio::test]
async fn unknown_route_is_404_json() {
    let s = server();
    for path in ["/nope", "/data/v1/nope", "/v1/event"] {
        let r = s.get(path, READ_A).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert!(
            r.header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{path}: {:?}",
            r.header("content-type")
        );
        assert!(r.error().contains("route"), "{path}: {}", r.text);
    }
}

// ---------------------------------------------------------------------------
// Overload
// ---------------------------------------------------------------------------

/// The bursts tried before giving up on seeing a `503`.
const MAX_BURSTS: usize = 5;
const BURST: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_sheds_with_503_retry_after_and_never_loses_accepted_events() {
    let mut config = two_properties();
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
            let id = format!("o{burst}-{j:03}");
            let body = closed(INGEST_A, &id, "v1", &format!("u{j}"), T0 - 60_000);
            tasks.push(tokio::spawn(async move {
                let req = Request::post("/v1/events")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .expect("request");
                (id, send(&router, req).await)
            }));
        }
        for task in tasks {
            let (id, r) = task.await.expect("request task");
            match r.status {
                StatusCode::ACCEPTED => {
                    assert_eq!(
                        r.body,
                        json!({"accepted": 3, "duplicates": 0, "late": 0}),
                        "{id}"
                    );
                    accepted.push(id);
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    let retry = r
                        .header("retry-after")
                        .unwrap_or_else(|| panic!("{id}: 503 without Retry-After: {}", r.text));
                    assert!(
                        retry.parse::<u64>().is_ok_and(|s| s >= 1),
                        "{id}: Retry-After `{retry}`"
                    );
                    assert!(r.error().contains("retry"), "{id}: {}", r.text);
                    shed.push(id);
                }
                other => panic!("{id}: {other} (only 202 or 503 under load): {}", r.text),
            }
        }
        if !shed.is_empty() {
            break;
        }
    }
    assert!(
        !shed.is_empty(),
        "{} requests in {MAX_BURSTS} bursts with a queue of 1 and no 503",
        accepted.len()
    );
    assert!(!accepted.is_empty(), "every request was shed");

    // Every accepted event is stored; nothing of a shed request is.
    for id in &accepted {
        let events = s
            .get_ok(&format!("/data/v1/sessions/{id}/events"), READ_A)
            .await;
        let kinds: Vec<&str> = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(kinds, ["play", "playing", "viewend"], "{id}");
    }
    for id in &shed {
        let r = s.get(&format!("/data/v1/sessions/{id}"), READ_A).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "shed {id}: {}", r.text);
    }
    let list = s.get_ok("/data/v1/sessions?limit=1000", READ_A).await;
    let mut listed = ids(&list);
    listed.sort();
    accepted.sort();
    assert_eq!(listed, accepted);
    // The queue drained: ready again.
    let r = s.get_anonymous("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A Media Collection `sessionStart` with every required param, at `T0`.
fn adobe_session_start() -> Value {
    json!({"eventType": "sessionStart", "playerTime": {"playhead": 0, "ts": T0},
        "params": {"analytics.reportSuite": "any", "analytics.trackingServer": "t.example",
                   "media.channel": "c", "media.contentType": "vod", "media.id": "m1",
                   "media.length": 60, "media.name": "n", "media.playerName": "p",
                   "visitor.marketingCloudOrgId": "org@AdobeOrg"}})
}

/// The sid in the `Location` of a `201` from `POST /api/v1/sessions`.
fn created_sid(r: &Reply) -> String {
    r.header("location")
        .expect("a Location header")
        .trim_start_matches("/api/v1/sessions/")
        .to_owned()
}

#[tokio::test]
async fn media_collection_sessions_get_user_agent_dimensions() {
    let s = server();
    let start = adobe_session_start();
    let req = Request::post("/api/v1/sessions")
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        )
        .body(Body::from(start.to_string()))
        .unwrap();
    let r = send(&s.router, req).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sid = created_sid(&r);
    let req = Request::get(format!("/data/v1/sessions/{sid}"))
        .header(header::AUTHORIZATION, format!("Bearer {READ_A}"))
        .body(Body::empty())
        .unwrap();
    let v = send(&s.router, req).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    assert_eq!(v.body["dimensions"]["browser"], "Chrome", "{}", v.text);
    assert_eq!(v.body["dimensions"]["os"], "Windows 10", "{}", v.text);
}

#[tokio::test]
async fn every_path_under_api_v1_is_the_media_collection_apis_and_no_other() {
    let s = server();
    let start = adobe_session_start();
    let r = send(
        &s.router,
        Request::post("/api/v1/sessions")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(start.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let location = r.header("location").unwrap().to_owned();
    let ping = json!({"eventType": "ping", "playerTime": {"playhead": 10, "ts": T0 + 10_000}});
    let r = send(
        &s.router,
        Request::post(format!("{location}/events"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(ping.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    // The vendor's answers: its CORS and `{"message"}` errors, on routes it
    // does not have too.
    let vendor = |r: &Reply, status: StatusCode| {
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("OPTIONS,POST,PUT")
        );
        assert!(r.body["message"].is_string(), "{}", r.text);
    };
    for path in ["/api/v1", "/api/v1/", "/api/v1/nope"] {
        let r = send(&s.router, Request::get(path).body(Body::empty()).unwrap()).await;
        vendor(&r, StatusCode::NOT_FOUND);
    }
    let r = send(
        &s.router,
        Request::get("/api/v1/sessions")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    vendor(&r, StatusCode::METHOD_NOT_ALLOWED);
    // A path that only begins like it is Playhead's own.
    let r = send(
        &s.router,
        Request::get("/api/v1x").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.header("access-control-allow-methods"), None);
    assert!(r.body["message"].is_null(), "{}", r.text);
    assert_eq!(r.error(), "no such route");

    // Requests are counted under their whole route.
    let r = send(
        &s.router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    for (route, status) in [
        ("/api/v1/sessions", "201"),
        ("/api/v1/sessions/{sid}/events", "204"),
    ] {
        let wanted = [format!("route=\"{route}\""), format!("status=\"{status}\"")];
        assert!(
            r.text
                .lines()
                .any(|l| l.starts_with("playhead_http_requests_total{")
                    && wanted.iter().all(|w| l.contains(w.as_str()))
                    && l.ends_with(" 1")),
            "no count of {route} {status} in:\n{}",
            r.text
        );
    }
}

/// The configured body limit holds on the Media Collection API too (its
/// router sits beside the others' layers, not under them): a `sessionStart`
/// over it is a `413` in the vendor's `{"message"}` naming the limit, and
/// no session is created.
#[tokio::test]
async fn media_collection_bodies_over_the_configured_limit_are_413() {
    let mut config = two_properties();
    config.body_limit_bytes = 2048;
    let s = server_with(config, FsyncPolicy::Off);
    let mut start = adobe_session_start();
    start["customMetadata"] = json!({"pad": "x".repeat(3_000)});
    let body = start.to_string();
    assert!(body.len() > 2048 && body.len() < 2 * 1024 * 1024);
    let r = send(
        &s.router,
        Request::post("/api/v1/sessions")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    let message = r.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("2048-byte limit"), "{}", r.text);
    assert!(r.header("location").is_none());
}

/// A session's events are answered without the router when their sid needs
/// no decoding, and through it otherwise (`App`'s dispatch). Both ways give
/// the same answers, CORS, body limit, request timeout and request count.
#[tokio::test]
async fn session_events_answer_alike_with_or_without_the_router() {
    let mut config = two_properties();
    config.body_limit_bytes = 2048;
    config.request_timeout = std::time::Duration::from_millis(300);
    let s = server_with(config, FsyncPolicy::Off);
    let r = send(
        &s.router,
        Request::post("/api/v1/sessions")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(adobe_session_start().to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sid = created_sid(&r);
    // The same sid with its first character percent-encoded: only the
    // router decodes it.
    let encoded = format!("%{:02X}{}", sid.as_bytes()[0], &sid[1..]);
    let post = |sid: &str, body: Body| {
        Request::post(format!("/api/v1/sessions/{sid}/events"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap()
    };
    let vendor = |r: &Reply, status: StatusCode, message: &str| {
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("OPTIONS,POST,PUT")
        );
        if !message.is_empty() {
            let got = r.body["message"].as_str().unwrap_or_default();
            assert!(got.contains(message), "{}", r.text);
        }
    };
    for (k, path_sid) in [sid.as_str(), encoded.as_str()].into_iter().enumerate() {
        let ts = T0 + 10_000 * (k as i64 + 1);
        let ping = json!({"eventType": "ping", "playerTime": {"playhead": 10 * (k + 1), "ts": ts}});
        let r = send(&s.router, post(path_sid, Body::from(ping.to_string()))).await;
        vendor(&r, StatusCode::NO_CONTENT, "");

        let big = json!({"eventType": "ping", "playerTime": {"playhead": 1, "ts": ts},
            "params": {"pad": "x".repeat(3_000)}});
        let r = send(&s.router, post(path_sid, Body::from(big.to_string()))).await;
        vendor(&r, StatusCode::PAYLOAD_TOO_LARGE, "2048-byte limit");

        let r = send(&s.router, post(path_sid, Body::from("{not json"))).await;
        vendor(&r, StatusCode::BAD_REQUEST, "not valid JSON");

        // A client that sends part of its body and then nothing.
        let stalled = futures_util::stream::StreamExt::chain(
            futures_util::stream::iter([Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
                b"{\"eventType\"",
            ))]),
            futures_util::stream::pending(),
        );
        let r = send(&s.router, post(path_sid, Body::from_stream(stalled))).await;
        vendor(&r, StatusCode::REQUEST_TIMEOUT, "");
    }
    let unknown = "0".repeat(64);
    let r = send(&s.router, post(&unknown, Body::from("{}"))).await;
    vendor(&r, StatusCode::NOT_FOUND, "unknown session");
    let r = send(
        &s.router,
        Request::get(format!("/api/v1/sessions/{sid}/events"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    vendor(&r, StatusCode::METHOD_NOT_ALLOWED, "not allowed");

    // Both pings are the session's.
    let r = send(
        &s.router,
        Request::get(format!("/data/v1/sessions/{sid}/events"))
            .header(header::AUTHORIZATION, format!("Bearer {READ_A}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let heartbeats = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "heartbeat")
        .count();
    assert_eq!(heartbeats, 2, "{}", r.text);

    // Counted alike under the route, whichever way they went.
    let r = send(
        &s.router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    for (status, n) in [("204", 2), ("413", 2), ("400", 2), ("408", 2), ("404", 1)] {
        let wanted = [
            "route=\"/api/v1/sessions/{sid}/events\"".to_owned(),
            format!("status=\"{status}\""),
        ];
        assert!(
            r.text
                .lines()
                .any(|l| l.starts_with("playhead_http_requests_total{")
                    && wanted.iter().all(|w| l.contains(w.as_str()))
                    && l.ends_with(&format!(" {n}"))),
            "no count of {n} with {status} in:\n{}",
            r.text
        );
    }
}
