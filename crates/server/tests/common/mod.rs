//! Helpers shared by the server's integration tests.

#![allow(dead_code)] // each test file uses a different subset

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use playhead_server::App;
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;

/// The longest one request may take before the test fails (a hang guard,
/// not a timing assertion).
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// An answer: status, headers, and the body as JSON (or as a JSON string
/// holding the text when it is not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
    /// The body as received (a GIF is not text).
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error` message of a JSON error body (fails when there is none).
    pub fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no `error` in the body: {}", self.text))
    }
}

/// Send one request to the app, without a socket.
pub async fn send(router: &App, req: Request<Body>) -> Reply {
    let resp = tokio::time::timeout(HANG_GUARD, router.clone().oneshot(req))
        .await
        .expect("the server answered in time")
        .expect("infallible router");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text.clone()));
    Reply {
        status,
        headers,
        body,
        text,
        bytes: bytes.to_vec(),
    }
}

/// A whole server in process, on a fresh SQLite store in a temporary
/// directory, with a manual clock (tests call its router without a socket).
pub struct TestServer {
    pub router: App,
    pub state: playhead_server::AppState,
    pub clock: playhead_server::ManualClock,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Start with `config`, the clock at `t0` ms, and the given fsync policy.
    pub fn with(
        config: playhead_server::ServerConfig,
        t0: i64,
        fsync: playhead_store::FsyncPolicy,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store =
            playhead_store::SqliteStore::open(dir.path(), fsync).expect("open sqlite store");
        let clock = playhead_server::ManualClock::new(t0);
        let state = playhead_server::AppState::start(
            config,
            std::sync::Arc::new(store),
            std::sync::Arc::new(clock.clone()),
        )
        .expect("server start");
        TestServer {
            router: playhead_server::app(state.clone()),
            state,
            clock,
            _dir: dir,
        }
    }
}
