//! End to end (issue #4): a real HTTP client against the real binary speaks
//! the Media Collection API (`spec/protocols.md` §2) as an Adobe-built
//! player does: CORS preflight, a session created with `201` + `Location`,
//! events answered `204`, `410` once the session ended, `404` for an
//! unknown sid, `400` naming the bad field, the served JSON Schemas; and,
//! after a restart on the same data directory, the closed session still
//! answers `410` while an open one goes on.

mod common;
use common::{start, t0};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::time::Duration;

const INGEST: &str = "e2e-ingest-key";
const READ: &str = "e2e-read-key-0123456789";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// An answer: status, headers, body bytes.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// The only value of header `name` (fails when absent or repeated).
    fn header(&self, name: &str) -> &str {
        let values: Vec<_> = self.headers.get_all(name).iter().collect();
        assert_eq!(
            values.len(),
            1,
            "header {name} must appear exactly once: {:?}",
            self.headers
        );
        values[0].to_str().expect("ASCII header")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body).into_owned()
            )
        })
    }

    /// The `message` of a `{"message": ...}` error body, the only key.
    fn message(&self) -> String {
        let body = self.json();
        let obj = body.as_object().expect("an error body is an object");
        assert_eq!(obj.len(), 1, "only `message` in an error body: {body}");
        obj["message"]
            .as_str()
            .expect("message is a string")
            .to_owned()
    }

    /// The vendor's CORS headers, exactly (`spec/protocols.md` §2).
    fn assert_cors(&self) {
        assert_eq!(self.header("access-control-allow-origin"), "*");
        assert_eq!(
            self.header("access-control-allow-methods"),
            "OPTIONS,POST,PUT"
        );
        assert_eq!(self.header("access-control-allow-headers"), "Content-Type");
        assert_eq!(self.header("access-control-expose-headers"), "Location");
    }
}

struct Player {
    client: HttpClient,
    url: String,
}

impl Player {
    fn new(url: String) -> Player {
        Player {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url,
        }
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Answer {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer in time"))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        let req = Request::post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        self.send(req).await
    }

    async fn event(&self, location: &str, body: &Value) -> Answer {
        self.post(&format!("{location}/events"), body).await
    }

    async fn get(&self, path: &str, read_key: bool) -> Answer {
        let mut req = Request::get(format!("{}{path}", self.url));
        if read_key {
            req = req.header("authorization", format!("Bearer {READ}"));
        }
        self.send(req.body(Full::new(Bytes::new())).expect("request"))
            .await
    }

    /// `POST /api/v1/sessions`: checks the `201` and returns the `Location`.
    async fn start_session(&self, media_id: &str) -> String {
        let answer = self
            .post("/api/v1/sessions", &session_start(media_id))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert!(answer.body.is_empty(), "201 has an empty body");
        answer.assert_cors();
        let location = answer.header("location").to_owned();
        let sid = location
            .strip_prefix("/api/v1/sessions/")
            .unwrap_or_else(|| panic!("Location `{location}`"));
        assert_eq!(sid.len(), 64, "sid `{sid}`");
        assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()), "sid `{sid}`");
        location
    }
}

fn session_start(media_id: &str) -> Value {
    json!({
        "eventType": "sessionStart",
        "playerTime": {"playhead": 0, "ts": t0()},
        "params": {
            "analytics.trackingServer": "metrics.example.com",
            "analytics.reportSuite": "example-prod",
            "visitor.marketingCloudOrgId": "0123456789ABCDEF01234567@AdobeOrg",
            "media.id": media_id,
            "media.length": 600,
            "media.contentType": "VOD",
            "media.playerName": "html5-player",
            "media.channel": "web",
            "visitor.marketingCloudUserId": "e2e-viewer"
        }
    })
}

/// An event `dt_ms` after `t0()` at `playhead` seconds.
fn event(event_type: &str, dt_ms: i64, playhead: f64) -> Value {
    json!({"eventType": event_type, "playerTime": {"playhead": playhead, "ts": t0() + dt_ms}})
}

fn sid_of(location: &str) -> &str {
    location.trim_start_matches("/api/v1/sessions/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_speaks_the_media_collection_api_to_the_real_binary() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (server, url) = start(dir.path(), INGEST, READ);
    let player = Player::new(url);

    // CORS preflight, as a browser sends it before the first POST.
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri(format!("{}/api/v1/sessions", player.url))
        .header("origin", "https://player.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let answer = player.send(preflight).await;
    assert!(answer.status.is_success(), "preflight: {}", answer.status);
    answer.assert_cors();

    // A session: 201, empty body, Location (exposed to scripts).
    let location = player.start_session("e2e-video").await;

    // Events, one per request: 204 each, empty body.
    let timeline = [
        event("play", 1000, 0.0),
        event("ping", 11000, 10.0),
        event("pauseStart", 15000, 14.0),
        event("play", 20000, 14.0),
    ];
    for ev in &timeline {
        let answer = player.event(&location, ev).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{ev}");
        assert!(answer.body.is_empty(), "204 has no body");
        answer.assert_cors();
    }

    // A bad event: 400 naming the field; the session is unharmed.
    let mut bad = event("ping", 22000, 16.0);
    bad["playerTime"]["ts"] = json!("soon");
    let answer = player.event(&location, &bad).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    answer.assert_cors();
    let message = answer.message();
    assert!(message.contains("playerTime.ts"), "{message}");
    // And a sessionStart missing a required param.
    let mut bad_start = session_start("e2e-video");
    bad_start["params"]
        .as_object_mut()
        .expect("params")
        .remove("media.id");
    let answer = player.post("/api/v1/sessions", &bad_start).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let message = answer.message();
    assert!(message.contains("params.\"media.id\""), "{message}");

    // sessionEnd closes at once; the next event is refused with 410.
    let answer = player
        .event(&location, &event("sessionEnd", 25000, 19.0))
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let answer = player.event(&location, &event("ping", 30000, 19.0)).await;
    assert_eq!(
        answer.status,
        StatusCode::GONE,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.assert_cors();
    assert!(answer.message().contains("closed"));

    // The session as the API shows it, from the players' own times.
    let view = player
        .get(&format!("/data/v1/sessions/{}", sid_of(&location)), true)
        .await;
    assert_eq!(view.status, StatusCode::OK);
    let view = view.json();
    assert_eq!(view["protocol"], "media_collection");
    assert_eq!(view["open"], false);
    assert_eq!(view["video_id"], "e2e-video");
    let m = &view["metrics"];
    // startup 1000; playing [1000, 15000) + [20000, 25000); paused [15000, 20000).
    assert_eq!(m["startup_time_ms"], 1000.0);
    assert_eq!(m["playing_time_ms"], 19000.0);
    assert_eq!(m["paused_time_ms"], 5000.0);
    assert_eq!(m["completed"], false);

    // An unknown sid: 404 with a message (the player starts a new session),
    // both a sid of no property and one of this property never created.
    let prefix = &sid_of(&location)[..16];
    for sid in ["0".repeat(64), format!("{prefix}{}", "0".repeat(48))] {
        let answer = player
            .event(
                &format!("/api/v1/sessions/{sid}"),
                &event("ping", 1000, 1.0),
            )
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "sid {sid}");
        answer.assert_cors();
        assert!(!answer.message().is_empty());
    }

    // The JSON Schema an event is validated with.
    let answer = player.get("/api/v1/schemas/play", false).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .header("content-type")
            .starts_with("application/json"),
        "{:?}",
        answer.headers
    );
    let schema = answer.json();
    assert!(
        schema["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("draft-04")),
        "{schema}"
    );

    // A second session left open across the restart.
    let open = player.start_session("e2e-video-2").await;
    let answer = player.event(&open, &event("play", 1000, 0.0)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);

    // Restart on the same data directory: the close is durable (410), the
    // open session goes on (204), unknown stays unknown (404).
    drop(server);
    let (server, url) = start(dir.path(), INGEST, READ);
    let player = Player::new(url);
    let answer = player.event(&location, &event("ping", 40000, 19.0)).await;
    assert_eq!(
        answer.status,
        StatusCode::GONE,
        "after a restart: {}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.message().contains("closed"));
    let answer = player.event(&open, &event("ping", 11000, 10.0)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let answer = player.event(&open, &event("sessionEnd", 12000, 11.0)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let view = player
        .get(&format!("/data/v1/sessions/{}", sid_of(&open)), true)
        .await
        .json();
    assert_eq!(view["open"], false);
    // Playing from the first frame before the restart: [1000, 12000).
    assert_eq!(view["metrics"]["playing_time_ms"], 11000.0);
    let answer = player
        .event(
            &format!("/api/v1/sessions/{}", "0".repeat(64)),
            &event("ping", 1000, 1.0),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    drop(server);
}
