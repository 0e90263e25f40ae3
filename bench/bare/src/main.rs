//! `bare-handler`: the reference of PERFORMANCE.md P2 and P3, the ceiling of
//! Playhead's own stack (tokio + hyper + axum + serde_json, the workspace's
//! versions, and Playhead's allocator, mimalloc). It serves
//! `POST /api/v1/sessions/{sid}/events`, parses the body as JSON the way
//! Playhead's Media Collection decoder does first (`serde_json::from_slice`
//! into a `Value`), checks that it is an event object (`eventType` a string,
//! `playerTime` an object) and answers `204`, or `400` when it is not.
//! Nothing is validated further, stored or
//! sessionized: what is left between this and Playhead is Playhead's work.
//!
//! Usage: `bare-handler [ADDR]` (default `127.0.0.1:0`); prints
//! `listening on http://ADDR` once ready, as `playhead serve` does, and runs
//! until SIGTERM or Ctrl-C. The runtime is tokio's multi-thread default, as
//! in `playhead serve`, so `taskset -c 0` gives both one worker thread.
//!
//! Run with: `cargo run --release -p playhead-bench-bare -- 127.0.0.1:8090`

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::io::Write;

/// The allocator `playhead` uses: the ceiling is measured on the same stack.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The sid is taken as the route gives it; like Playhead, a sid must be 64
/// characters (Playhead also checks its property prefix).
async fn post_event(Path(sid): Path<String>, body: Bytes) -> StatusCode {
    if sid.len() != 64 {
        return StatusCode::NOT_FOUND;
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let is_event = event.get("eventType").is_some_and(Value::is_string)
        && event.get("playerTime").is_some_and(Value::is_object);
    if is_event {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::BAD_REQUEST
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let app = Router::new().route("/api/v1/sessions/{sid}/events", post(post_event));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", listener.local_addr()?)?;
        out.flush()?;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        })
        .await
}
