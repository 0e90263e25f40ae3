//! `bare-handler`: the reference of PERFORMANCE.md P2 and P3, the ceiling of
//! Playhead's own stack (tokio + hyper + axum + serde_json, the workspace's
//! versions, and Playhead's allocator, mimalloc). It serves
//! `POST /api/v1/sessions/{sid}/events`, parses the body as JSON the way
//! Playhead's Media Collection decoder does first (`serde_json::from_slice`
//! into a `Value`), checks that it is an event object (`eventType` a string,
//! `playerTime` an object) and answers `204`, or `400` when it is not.
//! It also serves `GET /icon.gif`: a query with `type` `view`, `play` or
//! `check` gets the 43-byte GIF, any other `400`.
//! Nothing is validated further, stored or
//! sessionized: what is left between this and Playhead is Playhead's work.
//!
//! With `--durable DIR` it is instead the floor of a server that keeps
//! Playhead's durability contract (DESIGN.md) on this stack and disk: it
//! also appends each accepted body (or pixel query) to a log file in DIR and
//! answers only once an `fdatasync` that began after the append has
//! returned. Group commit: one thread waits for a first request, lets more
//! gather for `--gather-us` µs (default [`GATHER_US`]; 0 takes only those
//! already queued), appends them all with one write, syncs, and hands the
//! group's answers to the runtime in one message, as Playhead's fsync thread
//! does. The log is a preallocated ring of [`RING_BYTES`], overwritten from
//! its start when full, so a sync never has to update the file's size: the
//! cheapest flush the disk offers. It is never read and sessionizes
//! nothing, so a real store pays at least this much. At exit it prints how
//! many bodies it stored in how many groups.
//!
//! Usage: `bare-handler [--durable DIR [--gather-us N]] [ADDR]` (default
//! `127.0.0.1:0`); prints `listening on http://ADDR` once ready, as
//! `playhead serve` does, and runs until SIGTERM or Ctrl-C. The runtime is
//! tokio's multi-thread default, as in `playhead serve`, so `taskset -c 0`
//! gives both one worker thread (and the durable log's thread the same core).
//!
//! Run with: `cargo run --release -p playhead-bench-bare -- 127.0.0.1:8090`

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The allocator `playhead` uses: the ceiling is measured on the same stack.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Size of the durable log's ring: written with zeros and synced at start.
const RING_BYTES: u64 = 256 << 20;

/// How long the log thread lets requests gather after the first, by
/// default. Over 10-s runs of P2's load, 150-500 µs gave about 10 % more
/// events/s than none (fewer, larger groups: fewer fsyncs and wake-ups),
/// within the machine's noise of each other (bench/RESULTS.md, twelfth pass).
const GATHER_US: u64 = 300;

/// The same 1×1 transparent GIF as Playhead's pixel route and nginx's
/// `empty_gif`.
const GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The durable log's groups (fdatasyncs) and bodies, printed at exit.
static GROUPS: AtomicU64 = AtomicU64::new(0);
static BODIES: AtomicU64 = AtomicU64::new(0);

/// The sid is taken as the route gives it; like Playhead, a sid must be 64
/// characters (Playhead also checks its property prefix).
fn check_event(sid: &str, body: &[u8]) -> StatusCode {
    if sid.len() != 64 {
        return StatusCode::NOT_FOUND;
    }
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
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

/// A pixel query must name its beacon's type.
fn check_pixel(query: &str) -> bool {
    query
        .split('&')
        .any(|p| matches!(p, "type=view" | "type=play" | "type=check"))
}

fn gif() -> Response {
    ([(header::CONTENT_TYPE, "image/gif")], GIF.as_slice()).into_response()
}

async fn post_event(Path(sid): Path<String>, body: Bytes) -> StatusCode {
    check_event(&sid, &body)
}

async fn get_pixel(RawQuery(query): RawQuery) -> Response {
    if query.as_deref().is_some_and(check_pixel) {
        gif()
    } else {
        StatusCode::BAD_REQUEST.into_response()
    }
}

/// A record to append, and where to say that it is on disk.
type Append = (Bytes, oneshot::Sender<()>);

/// The durable log's queue.
#[derive(Clone)]
struct Log(mpsc::Sender<Append>);

impl Log {
    /// Append `record` and wait until it is on disk; `false` if the log failed.
    async fn append(&self, record: Bytes) -> bool {
        let (done, synced) = oneshot::channel();
        self.0.send((record, done)).is_ok() && synced.await.is_ok()
    }
}

/// `--durable`: the same check, then the body is appended and synced
/// before the answer (`500` if the log failed).
async fn post_event_durable(
    State(log): State<Log>,
    Path(sid): Path<String>,
    body: Bytes,
) -> StatusCode {
    let status = check_event(&sid, &body);
    if status != StatusCode::NO_CONTENT || log.append(body).await {
        status
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

async fn get_pixel_durable(State(log): State<Log>, RawQuery(query): RawQuery) -> Response {
    let Some(query) = query.filter(|q| check_pixel(q)) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if log.append(Bytes::from(query)).await {
        gif()
    } else {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

/// Create the ring file in `dir`, written and synced in full.
fn ring(dir: &std::path::Path) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    let file = File::create(dir.join("bare-durable.log"))?;
    let zeros = vec![0u8; 1 << 20];
    for i in 0..RING_BYTES / zeros.len() as u64 {
        file.write_all_at(&zeros, i * zeros.len() as u64)?;
    }
    file.sync_all()?;
    Ok(file)
}

/// The log thread: wait for a record, let more gather for `gather`, append
/// every queued record (length-prefixed) with one write, `fdatasync`, and
/// send the group's answers to the runtime's task. On an I/O error it
/// stops: the waiting requests, and all later ones, are answered `500`.
fn run_log(
    file: File,
    appends: mpsc::Receiver<Append>,
    gather: Duration,
    answers: tokio::sync::mpsc::UnboundedSender<Vec<oneshot::Sender<()>>>,
) {
    let mut offset = 0u64;
    let mut buf = Vec::new();
    while let Ok(first) = appends.recv() {
        if !gather.is_zero() {
            std::thread::sleep(gather);
        }
        buf.clear();
        let mut group = Vec::new();
        for (record, done) in std::iter::once(first).chain(appends.try_iter()) {
            buf.extend_from_slice(&(record.len() as u32).to_le_bytes());
            buf.extend_from_slice(&record);
            group.push(done);
        }
        if offset + buf.len() as u64 > RING_BYTES {
            offset = 0;
        }
        let written = file
            .write_all_at(&buf, offset)
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            eprintln!("durable log failed: {e}");
            return;
        }
        offset += buf.len() as u64;
        GROUPS.fetch_add(1, Ordering::Relaxed);
        BODIES.fetch_add(group.len() as u64, Ordering::Relaxed);
        if answers.send(group).is_err() {
            return;
        }
    }
}

/// Start the durable log in `dir` and the task that answers its groups.
fn start_log(dir: &std::path::Path, gather: Duration) -> std::io::Result<Log> {
    let file = ring(dir)?;
    let (log, appends) = mpsc::channel::<Append>();
    let (answers, mut groups) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("bare-log".into())
        .spawn(move || run_log(file, appends, gather, answers))?;
    tokio::spawn(async move {
        while let Some(group) = groups.recv().await {
            for done in group {
                let _ = done.send(());
            }
        }
    });
    Ok(Log(log))
}

fn usage() -> ! {
    eprintln!("usage: bare-handler [--durable DIR [--gather-us N]] [ADDR]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut durable = None;
    let mut gather_us = GATHER_US;
    let mut addr = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--durable" => {
                durable = Some(std::path::PathBuf::from(
                    args.next().unwrap_or_else(|| usage()),
                ))
            }
            "--gather-us" => {
                gather_us = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ if addr.is_none() && !arg.starts_with('-') => addr = Some(arg),
            _ => usage(),
        }
    }
    let addr = addr.unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let events = "/api/v1/sessions/{sid}/events";
    let app = match durable {
        None => Router::new()
            .route(events, post(post_event))
            .route("/icon.gif", get(get_pixel)),
        Some(dir) => Router::new()
            .route(events, post(post_event_durable))
            .route("/icon.gif", get(get_pixel_durable))
            .with_state(start_log(&dir, Duration::from_micros(gather_us))?),
    };
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
        .await?;
    let groups = GROUPS.load(Ordering::Relaxed);
    if groups > 0 {
        let bodies = BODIES.load(Ordering::Relaxed);
        eprintln!(
            "durable log: {bodies} records in {groups} groups (fdatasyncs), {:.1} a group",
            bodies as f64 / groups as f64
        );
    }
    Ok(())
}
