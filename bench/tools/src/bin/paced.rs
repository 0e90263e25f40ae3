//! `paced`: P3's constant-rate load generator (PERFORMANCE.md: p99 latency
//! at 50 % of P2's peak). Debian has no wrk2, and `wrk` is closed-loop: a
//! connection sends its next request only after the previous answer, so a
//! server stall delays the requests that should have gone out during it and
//! their wait is never measured (coordinated omission). This sends on a
//! fixed schedule instead, as wrk2 does: connection `i` of `C` sends its
//! `n`-th request at `start + i / R + n × C / R` (rate `R` in all), and each
//! request is timed twice:
//! - **service** latency: from when it was written to its answer (what
//!   `wrk` reports);
//! - **corrected** latency: from when the schedule said to send it to its
//!   answer, which adds any wait behind a slow answer on that connection.
//!
//! Sleeps are `std::thread::sleep` (about 50–100 µs late on Linux, shown as
//! the send lag's p50); `C` threads, one blocking connection each. Bodies
//! are `playhead_bench::adobe::event`s spread over the sids in `--sids`
//! (connection `i` posts to the sids whose line number is `i` modulo `C`,
//! each in turn, so a session's events stay in order).
//!
//! Prints one line of `key=value` pairs (latencies in µs).
//!
//! Run with: `cargo run --release -p playhead-bench --bin paced -- --help`

use anyhow::{bail, Context};
use clap::Parser;
use hdrhistogram::Histogram;
use playhead_bench::{adobe, http};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Args {
    /// Server address, host:port.
    #[arg(long)]
    target: SocketAddr,
    /// File of sids, one per line (from `open-sessions --sids-out`).
    #[arg(long)]
    sids: std::path::PathBuf,
    /// Requests per second, in all.
    #[arg(long)]
    rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds sent at the same rate first, not measured.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    #[arg(long, default_value_t = 64)]
    connections: usize,
}

struct ThreadResult {
    service: Histogram<u64>,
    corrected: Histogram<u64>,
    lag: Histogram<u64>,
    ok: u64,
    other: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sids: Vec<String> = std::fs::read_to_string(&args.sids)
        .with_context(|| format!("reading {}", args.sids.display()))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let c = args.connections.min(sids.len()).max(1);
    if args.rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let base_ts = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    // Connect everyone first, then start the schedule a little later.
    let mut conns = Vec::with_capacity(c);
    for _ in 0..c {
        conns.push(http::Conn::connect(args.target)?);
    }
    let start = Instant::now() + Duration::from_millis(50);
    let warm_end = Duration::from_secs_f64(args.warmup);
    let end = Duration::from_secs_f64(args.warmup + args.duration);
    let per_conn = Duration::from_secs_f64(c as f64 / args.rate);
    let mut threads = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let mine: Vec<(u64, String)> = sids
            .iter()
            .enumerate()
            .filter(|(j, _)| j % c == i)
            .map(|(j, s)| (j as u64, s.clone()))
            .collect();
        let offset = Duration::from_secs_f64(i as f64 / args.rate);
        threads.push(std::thread::spawn(
            move || -> anyhow::Result<ThreadResult> {
                let mut r = ThreadResult {
                    service: histogram(),
                    corrected: histogram(),
                    lag: histogram(),
                    ok: 0,
                    other: 0,
                };
                let mut counters = vec![0u64; mine.len()];
                let mut n: u32 = 0;
                loop {
                    let due = offset + per_conn * n;
                    if due >= end {
                        break;
                    }
                    let p = n as usize % mine.len();
                    n += 1;
                    let (j, sid) = &mine[p];
                    let body = adobe::event(*j, counters[p], base_ts);
                    counters[p] += 1;
                    let raw = http::post(
                        &adobe::events_path(sid),
                        "application/json",
                        http::USER_AGENT,
                        &body,
                    );
                    let intended = start + due;
                    let now = Instant::now();
                    if now < intended {
                        std::thread::sleep(intended - now);
                    }
                    let sent = Instant::now();
                    let resp = conn.request(&raw)?;
                    let done = Instant::now();
                    if due < warm_end {
                        continue;
                    }
                    if (200..300).contains(&resp.status) {
                        r.ok += 1;
                    } else {
                        r.other += 1;
                    }
                    r.service.record(micros(done - sent))?;
                    r.corrected.record(micros(done - intended))?;
                    r.lag
                        .record(micros(sent.saturating_duration_since(intended)))?;
                }
                Ok(r)
            },
        ));
    }
    let (mut service, mut corrected, mut lag) = (histogram(), histogram(), histogram());
    let (mut ok, mut other) = (0, 0);
    for t in threads {
        let r = t
            .join()
            .map_err(|_| anyhow::anyhow!("a thread panicked"))??;
        service.add(&r.service)?;
        corrected.add(&r.corrected)?;
        lag.add(&r.lag)?;
        ok += r.ok;
        other += r.other;
    }
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p);
    println!(
        "rate={:.0} achieved={:.1} requests={} ok={ok} other={other} \
         p50_us={} p90_us={} p99_us={} p999_us={} max_us={} \
         cp50_us={} cp99_us={} cp999_us={} cmax_us={} lag_p50_us={} lag_p99_us={}",
        args.rate,
        (ok + other) as f64 / args.duration,
        ok + other,
        q(&service, 0.5),
        q(&service, 0.9),
        q(&service, 0.99),
        q(&service, 0.999),
        service.max(),
        q(&corrected, 0.5),
        q(&corrected, 0.99),
        q(&corrected, 0.999),
        corrected.max(),
        q(&lag, 0.5),
        q(&lag, 0.99),
    );
    Ok(())
}
