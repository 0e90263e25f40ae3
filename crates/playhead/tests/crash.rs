//! Crash test (issue #2, durability): the real binary under load is killed
//! with SIGKILL; after a restart, every event it acknowledged with a 2xx is
//! stored, and the sessions that were open are open again and go on where
//! they stopped.

mod common;
use common::{start, t0};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const INGEST: &str = "crash-ingest-key";
const READ: &str = "crash-read-key-0123456789";
const SESSIONS: usize = 48;
const WRITERS: usize = 12;
const EVENTS_PER_BATCH: u64 = 5;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The events of session `s`'s batch starting at `seq` (play, playing, then
/// one heartbeat per second of playing).
fn batch(session: usize, first_seq: u64) -> Value {
    let events: Vec<Value> = (first_seq..first_seq + EVENTS_PER_BATCH)
        .map(|seq| {
            let (ty, ts, playhead) = match seq {
                1 => ("play", t0(), 0.0),
                2 => ("playing", t0() + 100, 0.0),
                k => (
                    "heartbeat",
                    t0() + 100 + (k as i64 - 2) * 1000,
                    (k - 2) as f64,
                ),
            };
            json!({"seq": seq, "ts": ts, "type": ty, "playhead": playhead})
        })
        .collect();
    json!({
        "property": INGEST,
        "session": {"id": format!("crash-{session}"), "video_id": "v", "viewer_id": format!("u{session}")},
        "events": events,
    })
}

async fn post(client: &HttpClient, url: &str, body: &Value) -> Option<u16> {
    let req = Request::post(format!("{url}/v1/events"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Some(status)
}

async fn get_json(client: &HttpClient, url: &str) -> Value {
    let req = Request::get(url)
        .header("authorization", format!("Bearer {READ}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.expect("GET");
    assert_eq!(resp.status(), 200, "GET {url}");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[derive(Default)]
struct Ledger {
    /// Session → seqs acknowledged with a 2xx.
    acked: BTreeMap<usize, BTreeSet<u64>>,
    /// Session → highest seq ever sent (acknowledged or not).
    sent: BTreeMap<usize, u64>,
    answers_2xx: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start(dir.path(), INGEST, READ);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    // Load: WRITERS tasks, each owning SESSIONS / WRITERS sessions, one batch
    // in flight per session, until the server dies.
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (client, url, ledger) = (client.clone(), url.clone(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            let mine: Vec<usize> = (0..SESSIONS).filter(|s| s % WRITERS == w).collect();
            let mut next_seq: BTreeMap<usize, u64> = mine.iter().map(|s| (*s, 1)).collect();
            loop {
                for s in &mine {
                    let first = next_seq[s];
                    let body = batch(*s, first);
                    ledger
                        .lock()
                        .unwrap()
                        .sent
                        .insert(*s, first + EVENTS_PER_BATCH - 1);
                    match post(&client, &url, &body).await {
                        Some(status) if (200..300).contains(&status) => {
                            let mut l = ledger.lock().unwrap();
                            l.answers_2xx += 1;
                            l.acked
                                .entry(*s)
                                .or_default()
                                .extend(first..first + EVENTS_PER_BATCH);
                            next_seq.insert(*s, first + EVENTS_PER_BATCH);
                        }
                        Some(status) => assert!(status == 503, "unexpected status {status}"),
                        None => return, // the server is gone
                    }
                }
            }
        }));
    }
    // Let the load run until a good number of batches were acknowledged.
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if ledger.lock().unwrap().answers_2xx >= 400 {
            break;
        }
    }
    child.0.kill().expect("kill -9"); // SIGKILL on unix
    child.0.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(
        ledger.answers_2xx >= 100,
        "too little load before the kill: {}",
        ledger.answers_2xx
    );
    eprintln!("acknowledged {} batches before kill -9", ledger.answers_2xx);

    let (child, url) = start(dir.path(), INGEST, READ);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    for (s, acked) in &ledger.acked {
        let events = get_json(&client, &format!("{url}/data/v1/sessions/crash-{s}/events")).await;
        let stored: BTreeSet<u64> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"]["seq"].as_u64().unwrap())
            .collect();
        let lost: Vec<&u64> = acked.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "session crash-{s}: acknowledged seqs lost: {lost:?}"
        );
        let session = get_json(&client, &format!("{url}/data/v1/sessions/crash-{s}")).await;
        assert_eq!(
            session["open"], true,
            "session crash-{s} should be open after restart"
        );
    }
    // The open sessions go on where they stopped: one more heartbeat and a
    // viewend, after every seq ever sent; playing time then spans from the
    // first frame to that heartbeat, which needs the restored fold.
    for (s, max_sent) in &ledger.sent {
        if !ledger.acked.contains_key(s) {
            continue;
        }
        let hb = max_sent + 1;
        let hb_ts = t0() + 100 + (hb as i64 - 2) * 1000;
        let body = json!({
            "property": INGEST,
            "session": {"id": format!("crash-{s}")},
            "events": [
                {"seq": hb, "ts": hb_ts, "type": "heartbeat", "playhead": (hb - 2) as f64},
                {"seq": hb + 1, "ts": hb_ts, "type": "viewend"},
            ],
        });
        assert_eq!(post(&client, &url, &body).await, Some(202));
        let session = get_json(&client, &format!("{url}/data/v1/sessions/crash-{s}")).await;
        assert_eq!(session["open"], false, "crash-{s}");
        let m = &session["metrics"];
        assert_eq!(m["played"], true, "crash-{s}");
        assert_eq!(m["startup_time_ms"], 100.0, "crash-{s}");
        assert_eq!(
            m["playing_time_ms"].as_f64().unwrap(),
            (hb_ts - (t0() + 100)) as f64,
            "crash-{s}: playing time must run from the first frame, before the crash"
        );
    }
    drop(child);
}
