//! What the dashboard needs from the server: its embedded files served at
//! `/` (its pages, hashed assets, cache headers, content types) without
//! taking any API path, and the two read routes added for it
//! (`/data/v1/property`, `/data/v1/errors`).
//!
//! Run with: `cargo nextest run -p playhead-server --test dashboard`

mod common;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{send, Reply};
use playhead_server::App;
use playhead_server::{app, assets, AppState, ManualClock, ServerConfig};
use playhead_store::{FsyncPolicy, SqliteStore};
use serde_json::{json, Value};
use std::sync::Arc;
use tempfile::TempDir;

/// The server clock: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

const INGEST_A: &str = "ingest-key-alpha";
const READ_A: &str = "read-key-alpha";
const INGEST_B: &str = "ingest-key-beta";
const READ_B: &str = "read-key-beta";

struct Server {
    router: App,
    _dir: TempDir,
}

fn server() -> Server {
    let mut config = ServerConfig::single("alpha", INGEST_A, READ_A);
    let mut beta = config.properties[0].clone();
    beta.name = "beta".into();
    beta.ingest_key = INGEST_B.into();
    beta.read_keys = vec![READ_B.into()];
    beta.catch_all = false;
    config.properties.push(beta);
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).expect("open sqlite store");
    let state = AppState::start(config, Arc::new(store), Arc::new(ManualClock::new(T0)))
        .expect("server start");
    Server {
        router: app(state),
        _dir: dir,
    }
}

impl Server {
    async fn request(&self, method: Method, path: &str, key: Option<&str>) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
        }
        send(&self.router, req.body(Body::empty()).expect("request")).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None).await
    }

    async fn read(&self, path: &str, key: &str) -> Value {
        let r = self.request(Method::GET, path, Some(key)).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        r.body
    }

    async fn ingest(&self, body: Value) {
        let req = Request::post("/v1/events")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let r = send(&self.router, req).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "ingest: {}", r.text);
    }
}

/// The hashed file index.html loads with `attr="/assets/…"`.
fn asset_named_in(index: &str, attr: &str) -> String {
    let start = index
        .find(&format!("{attr}=\"/assets/"))
        .unwrap_or_else(|| panic!("no {attr}=\"/assets/…\" in index.html:\n{index}"))
        + attr.len()
        + 2;
    let end = start + index[start..].find('"').expect("closing quote");
    index[start..end].to_owned()
}

#[tokio::test]
async fn pages_of_the_dashboard_answer_index_html_uncached() {
    let s = server();
    let root = s.get("/").await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(
        root.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(root.header("cache-control"), Some("no-cache"));
    let csp = root.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        root.text.contains("<div id=\"app\"></div>"),
        "{}",
        root.text
    );
    assert_eq!(root.bytes, assets::file("index.html").expect("embedded"));
    // Every page of the single-page app, even with a dot in a session id.
    for path in [
        "/index.html",
        "/quality",
        "/errors",
        "/ads",
        "/realtime",
        "/videos",
        "/videos/intro%20video",
        "/sessions",
        "/sessions/abc.def",
        "/login?next=%2F",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.bytes, root.bytes, "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
    }
    // HEAD too (browsers and proxies probe with it).
    let head = s.request(Method::HEAD, "/errors", None).await;
    assert_eq!(head.status, StatusCode::OK);
}

#[tokio::test]
async fn hashed_assets_have_their_type_and_are_cached_for_good() {
    let s = server();
    let index = s.get("/").await.text;
    for (attr, content_type) in [
        ("src", "text/javascript; charset=utf-8"),
        ("href", "text/css; charset=utf-8"),
    ] {
        let path = asset_named_in(&index, attr);
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            r.bytes,
            assets::file(path.trim_start_matches('/')).expect("embedded"),
            "{path}"
        );
        assert!(!r.bytes.is_empty());
    }
    // A hashed name that does not exist is a 404, not the page.
    let missing = s.get("/assets/index-00000000.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_paths_keep_their_json_404() {
    let s = server();
    for path in [
        "/data/v1/nope",
        "/data",
        "/admin/v1/assets",
        "/api/nope",
        "/v1/nope",
        "/metrics/extra",
        "/healthz/x",
        "/realtime/icon.gif/x",
        // Not a page of the dashboard either.
        "/nope",
        "/favicon.ico",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert_eq!(r.body, json!({"error": "no such route"}), "{path}");
    }
    // Only GET and HEAD reach the dashboard.
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let r = s.request(method.clone(), "/quality", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(r.body, json!({"error": "no such route"}), "{method}");
    }
    // And the API itself still answers.
    assert_eq!(s.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(
        s.get("/data/v1/metrics").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn property_names_the_read_keys_property() {
    let s = server();
    let a = s.read("/data/v1/property", READ_A).await;
    assert_eq!(a["name"], "alpha");
    let dims: Vec<&str> = a["dimensions"]
        .as_array()
        .expect("dimensions")
        .iter()
        .map(|d| d.as_str().expect("name"))
        .collect();
    assert!(dims.contains(&"browser") && dims.contains(&"error_code"));
    assert!(!dims.contains(&"property"), "the key scopes the property");
    let metrics = a["metrics"].as_array().expect("metrics");
    assert_eq!(
        metrics.len(),
        playhead_engine::rollup::METRIC_NAMES.len(),
        "{metrics:?}"
    );
    assert_eq!(s.read("/data/v1/property", READ_B).await["name"], "beta");
    let anonymous = s.get("/data/v1/property").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let wrong = s
        .request(Method::GET, "/data/v1/property", Some("nope"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.error(), "unknown read key");
}

fn error(seq: u64, ts: i64, code: &str, message: &str, fatal: bool) -> Value {
    json!({"seq": seq, "ts": ts, "type": "error", "code": code, "message": message, "fatal": fatal})
}

/// A session at `t` that plays, then has `errors` (a second apart), then ends.
fn session(key: &str, id: &str, video: &str, t: i64, errors: &[(&str, &str, bool)]) -> Value {
    let mut events = vec![
        json!({"seq": 1, "ts": t, "type": "play"}),
        json!({"seq": 2, "ts": t + 500, "type": "playing"}),
    ];
    for (i, (code, message, fatal)) in errors.iter().enumerate() {
        let i = i as i64;
        events.push(error(
            3 + i as u64,
            t + 1_000 * (i + 1),
            code,
            message,
            *fatal,
        ));
    }
    let n = events.len() as u64;
    events.push(json!({"seq": n + 1, "ts": t + 10_000, "type": "viewend"}));
    json!({"property": key, "session": {"id": id, "video_id": video, "viewer_id": id}, "events": events})
}

#[tokio::test]
async fn errors_are_grouped_by_code_and_message_with_their_sessions() {
    let s = server();
    let t = T0 - 30 * MINUTE;
    s.ingest(session(
        INGEST_A,
        "s1",
        "v1",
        t,
        &[("E1", "timeout", false), ("E1", "timeout", false)],
    ))
    .await;
    s.ingest(session(
        INGEST_A,
        "s2",
        "v2",
        t + MINUTE,
        &[("E1", "timeout", false), ("E2", "<b>decode</b>", true)],
    ))
    .await;
    s.ingest(session(INGEST_A, "s3", "v1", t + 2 * MINUTE, &[]))
        .await;
    // Another property's errors are never counted here.
    s.ingest(session(
        INGEST_B,
        "b1",
        "v1",
        t,
        &[("E9", "elsewhere", true)],
    ))
    .await;
    let range = format!("from={}&to={}", T0 - 60 * MINUTE, T0);

    let all = s.read(&format!("/data/v1/errors?{range}"), READ_A).await;
    assert_eq!(all["affected_sessions"], 2);
    assert_eq!(all["truncated"], false);
    let groups: Vec<(String, String, u64, u64, u64, String)> = all["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|g| {
            (
                g["code"].as_str().expect("code").to_owned(),
                g["message"].as_str().expect("message").to_owned(),
                g["count"].as_u64().expect("count"),
                g["sessions"].as_u64().expect("sessions"),
                g["fatal"].as_u64().expect("fatal"),
                g["last_session_id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    // E1 "timeout": twice in s1, once in s2 (the latest); E2 once, fatal.
    assert_eq!(
        groups,
        vec![
            ("E1".into(), "timeout".into(), 3, 2, 0, "s2".into()),
            ("E2".into(), "<b>decode</b>".into(), 1, 1, 1, "s2".into()),
        ]
    );
    // The last E1 happened 1 s after s2 started (t + 1 min + 1 s).
    assert_eq!(all["errors"][0]["last_seen"], "2023-11-14T21:44:21Z");

    // Filters narrow the sessions; an `error_code` filter, the codes too.
    let v1 = s
        .read(&format!("/data/v1/errors?{range}&video_id=v1"), READ_A)
        .await;
    assert_eq!(v1["affected_sessions"], 1);
    assert_eq!(v1["errors"].as_array().map(Vec::len), Some(1));
    assert_eq!(v1["errors"][0]["count"], 2);
    let e2 = s
        .read(&format!("/data/v1/errors?{range}&error_code=E2"), READ_A)
        .await;
    assert_eq!(e2["affected_sessions"], 1);
    assert_eq!(e2["errors"].as_array().map(Vec::len), Some(1));
    assert_eq!(e2["errors"][0]["code"], "E2");

    // Outside the range: nothing.
    let before = s
        .read(
            &format!("/data/v1/errors?from={}&to={}", T0 - 120 * MINUTE, t),
            READ_A,
        )
        .await;
    assert_eq!(before["errors"], json!([]));
    assert_eq!(before["affected_sessions"], 0);

    // The other property sees only its own.
    let b = s.read(&format!("/data/v1/errors?{range}"), READ_B).await;
    assert_eq!(b["errors"][0]["code"], "E9");
    assert_eq!(b["errors"].as_array().map(Vec::len), Some(1));

    let bad = s
        .request(Method::GET, "/data/v1/errors?colour=red", Some(READ_A))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().contains("colour"), "{}", bad.error());
}

#[tokio::test]
async fn the_openapi_document_lists_the_dashboard_routes() {
    let s = server();
    let doc = s.get("/openapi.json").await.body;
    for path in ["/data/v1/property", "/data/v1/errors"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
}
