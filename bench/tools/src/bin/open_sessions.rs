//! `open-sessions`: open many sessions against a running Playhead as fast as
//! it takes them, each with one request: a native batch of one `viewinit`
//! (with the session's metadata, as the SDK's first batch carries it), or an
//! Adobe `sessionStart` (`POST /api/v1/sessions`, whose `Location` gives the
//! sid). Used by `bench/p2_p3_adobe.sh` (sessions to post events to) and
//! `bench/p4_memory.sh` (memory per open session).
//!
//! `C` threads each keep one keep-alive connection with one request in
//! flight; a `503` (queue full) is retried after 5 ms. Prints one line:
//! `opened N <protocol> sessions in S s: R/s (retries T)`.
//!
//! Run with: `cargo run --release -p playhead-bench --bin open-sessions -- --help`

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use playhead_bench::{adobe, http};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Native,
    Adobe,
}

#[derive(Parser)]
struct Args {
    /// Server address, host:port.
    #[arg(long)]
    target: SocketAddr,
    #[arg(long, value_enum)]
    protocol: Kind,
    /// Sessions to open.
    #[arg(long)]
    count: u64,
    /// Index of the first session (sessions are numbered; ids and metadata
    /// derive from the number, so several calls can add to one population).
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Connections (one thread each).
    #[arg(long, default_value_t = 64)]
    connections: u64,
    /// The property's ingest key (native).
    #[arg(long, env = "PLAYHEAD_INGEST_KEY")]
    ingest_key: Option<String>,
    /// Adobe: write the sids, one per line, in session order.
    #[arg(long)]
    sids_out: Option<std::path::PathBuf>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The native SDK's first batch of session `j`: its metadata and a `viewinit`.
fn native_body(key: &str, j: u64, ts: i64) -> String {
    format!(
        concat!(
            r#"{{"property":"{key}","session":{{"id":"{hi:08x}-0000-4000-8000-{j:012x}","#,
            r#""video_id":"video-{video:04}","viewer_id":"viewer-{viewer:07}","video_duration_s":600,"#,
            r#""content_type":"vod","player":{{"name":"html5","version":"1.2.0"}},"#,
            r#""referrer":"https://www.example.com/watch","cdn":"edge-a","custom":{{"plan":"premium"}}}},"#,
            r#""events":[{{"seq":1,"ts":{ts},"type":"viewinit"}}]}}"#
        ),
        key = key,
        hi = (ts / 1000) as u32,
        j = j,
        video = j % 500,
        viewer = j % 1_000_000,
        ts = ts,
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let key = match args.protocol {
        Kind::Native => Some(
            args.ingest_key
                .clone()
                .context("--ingest-key (or PLAYHEAD_INGEST_KEY) is required for native")?,
        ),
        Kind::Adobe => None,
    };
    let next = Arc::new(AtomicU64::new(args.first));
    let end = args.first + args.count;
    let retries = Arc::new(AtomicU64::new(0));
    let sids: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..args.connections.min(args.count.max(1)) {
        let (next, retries, sids, key) = (next.clone(), retries.clone(), sids.clone(), key.clone());
        let (target, kind) = (args.target, args.protocol);
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut conn = http::Conn::connect(target)?;
            let mut mine = Vec::new();
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= end {
                    break;
                }
                let ts = now_ms();
                let (path, body, want) = match kind {
                    Kind::Native => (
                        "/v1/events",
                        native_body(key.as_deref().unwrap_or_default(), j, ts),
                        202,
                    ),
                    Kind::Adobe => ("/api/v1/sessions", adobe::session_start(j, ts), 201),
                };
                // Eight user agents: eight browser/OS/device combinations.
                let agent = http::USER_AGENTS[(j % 8) as usize];
                let raw = http::post(path, "application/json", agent, &body);
                loop {
                    let resp = conn.request(&raw)?;
                    if resp.status == 503 {
                        retries.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    if resp.status != want {
                        bail!("session {j}: status {} (expected {want})", resp.status);
                    }
                    if kind == Kind::Adobe {
                        let loc = resp.location.context("201 without Location")?;
                        let sid = loc.rsplit('/').next().unwrap_or_default().to_owned();
                        mine.push((j, sid));
                    }
                    break;
                }
            }
            sids.lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .extend(mine);
            Ok(())
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a thread panicked"))??;
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = &args.sids_out {
        let mut sids = std::mem::take(&mut *sids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        sids.sort_unstable();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (_, sid) in sids {
            writeln!(out, "{sid}")?;
        }
        out.flush()?;
    }
    println!(
        "opened {} {:?} sessions in {secs:.2} s: {:.0}/s (retries {})",
        args.count,
        args.protocol,
        args.count as f64 / secs,
        retries.load(Ordering::Relaxed)
    );
    Ok(())
}
