//! Server-side ad beacons survive `kill -9` (`spec/protocols.md` §3): a
//! player pings through a preroll while the ad server is down, so every
//! beacon is owed (attempted, failed, waiting for its retry) when the real
//! binary is killed. After a restart, with the ad server up, each URL
//! arrives exactly once.

mod common;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Router;
use common::{start, ADMIN_KEY};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Method;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INGEST: &str = "ping-e2e-ingest";
const READ: &str = "ping-e2e-read-0123456789";

type HttpClient = Client<HttpConnector, Full<Bytes>>;
/// What the fake ad server received: (path, User-Agent).
type Hits = Arc<Mutex<Vec<(String, Option<String>)>>>;

async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("user-agent", "E2E-Player/1.0");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Full::new(Bytes::from(b.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = tokio::time::timeout(
        Duration::from_secs(30),
        client.request(req.body(body).unwrap()),
    )
    .await
    .expect("answer in time")
    .expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn record(State(hits): State<Hits>, req: Request) -> StatusCode {
    let ua = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    hits.lock().unwrap().push((req.uri().path().to_owned(), ua));
    StatusCode::NO_CONTENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owed_beacons_are_fired_once_after_kill_9() {
    // The ad server's address, not listening yet (connections refused).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ad = |p: &str| format!("http://127.0.0.1:{port}/{p}");
    let dir = tempfile::tempdir().unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let (server, url) = start(dir.path(), INGEST, READ);
    let schedule = json!([{"timeOffset": 0,
        "events": {"impressions": [ad("break-start")], "completes": [ad("break-end")]},
        "ads": [{"creative": "pre", "duration": 10, "events": {
            "impressions": [ad("impression"), ad("start")],
            "firstquartiles": [ad("q1")], "midpoints": [ad("q2")],
            "thirdquartiles": [ad("q3")], "completes": [ad("complete")]}}]}]);
    let (status, body) = call(
        &client,
        Method::PUT,
        &format!("{url}/admin/v1/assets/clip"),
        Some(ADMIN_KEY),
        Some(json!({"duration_s": 30, "play_url": "https://cdn.test/clip.m3u8", "ad_schedule": schedule})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &client,
        Method::GET,
        &format!("{url}/preplay/clip.json?ad.cping=1"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sid = body["sid"].as_str().unwrap().to_owned();
    // Through the whole preroll (the player pings at each next_time).
    let mut query = "pt=0&ev=start".to_owned();
    let mut next_times = Vec::new();
    for _ in 0..5 {
        let (status, body) = call(
            &client,
            Method::GET,
            &format!("{url}/session/ping/{sid}.json?v=3&{query}"),
            None,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let next = body["next_time"].as_f64().unwrap();
        next_times.push(next);
        query = format!("pt={next}");
    }
    assert_eq!(next_times, vec![2.5, 5.0, 7.5, 10.0, 30.0 + 10.0]);
    let expected = [
        "break-start",
        "impression",
        "start",
        "q1",
        "q2",
        "q3",
        "complete",
        "break-end",
    ];
    // Every beacon is owed and has failed at least once (refused).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, log) = call(
            &client,
            Method::GET,
            &format!("{url}/admin/v1/beacons?session={sid}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
        let beacons = log["beacons"].as_array().unwrap().clone();
        let tried = beacons
            .iter()
            .filter(|b| b["attempts"].as_u64() >= Some(1))
            .count();
        if beacons.len() == expected.len() && tried == expected.len() {
            assert!(beacons.iter().all(|b| b["state"] == "pending"), "{log}");
            assert!(beacons[0]["log"][0]["error"].as_str().is_some(), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "beacons never attempted: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server); // SIGKILL
                  // The ad server comes up; Playhead restarts on the same data.
    let hits: Hits = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let router = Router::new().fallback(record).with_state(hits.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (_server, url) = start(dir.path(), INGEST, READ);
    let deadline = Instant::now() + Duration::from_secs(30);
    while hits.lock().unwrap().len() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a duplicate time to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = hits.lock().unwrap().clone();
    let mut paths: Vec<String> = got
        .iter()
        .map(|(p, _)| p.trim_start_matches('/').to_owned())
        .collect();
    paths.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(paths, want, "each owed URL exactly once");
    assert!(got
        .iter()
        .all(|(_, ua)| ua.as_deref() == Some("E2E-Player/1.0")));
    let (_, log) = call(
        &client,
        Method::GET,
        &format!("{url}/admin/v1/beacons?session={sid}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert!(
        log["beacons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["state"] == "delivered"),
        "{log}"
    );
    assert_eq!(log["counts"]["delivered"], expected.len());
    // The session survived too, with its ads counted.
    let (status, v) = call(
        &client,
        Method::GET,
        &format!("{url}/data/v1/sessions/{sid}"),
        Some(READ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["metrics"]["ads_completed"], 1);
}
