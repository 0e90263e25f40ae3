//! `p5`: PERFORMANCE.md P5, the dashboard's questions over 30 days of
//! sessions, Playhead's embedded store against plain SQL on a raw table.
//!
//! - `p5 build --dir D --sessions N`: writes the same N closed sessions,
//!   spread evenly over `--days` days (in time order, as they would arrive),
//!   twice:
//!   - into a Playhead data directory `D/store` through Playhead's own write
//!     path (`SqliteStore` writer: `put_session` + `add_to_rollup` per
//!     session, 50,000 sessions per transaction, fsync off, then
//!     `fold_rollups` as the server's writer does), so the files
//!     are exactly what `playhead serve` writes and reads;
//!   - into `D/raw.sqlite`, one plain `sessions` table with a column per
//!     value the questions need and an index on (property, started_at).
//!
//!   Summaries are synthetic but shaped like real traffic: 2,000 videos and
//!   1,000,000 viewers with a skew (a few are popular), the protocol, browser,
//!   OS and device mixes below, 4 % exits before start, 3 % failures,
//!   startup 0.2–4 s, watch time of minutes, rebuffering in a third of the
//!   plays, ads in a fifth.
//! - `p5 bench --target HOST:PORT --read-key K --raw D/raw.sqlite`: times
//!   each question against a running `playhead serve --data-dir D/store`
//!   (end-to-end HTTP, as the dashboard asks it) and as SQL on the raw table
//!   (same SQLite library, bundled by rusqlite), alternating, `--rounds`
//!   rounds; prints a Markdown table of medians and ratios and a check that
//!   both sides count the same views.
//!
//! Run with: `cargo run --release -p playhead-bench --bin p5 -- --help`

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use playhead_bench::{http, median};
use playhead_model::{
    ErrorRecord, Millis, PlayerState, Protocol, SessionKey, SessionMeta, SessionMetrics,
    SessionSummary,
};
use playhead_store::{FsyncPolicy, SqliteStore, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

const PROPERTY: &str = "default";
const MINUTE_MS: Millis = 60_000;
const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 86_400_000;
const PER_TRANSACTION: u64 = 50_000;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the store and the raw table.
    Build {
        /// Output directory (must not hold a store already).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000_000)]
        sessions: u64,
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// End of the range, epoch ms (default: the last whole hour).
        #[arg(long)]
        end_ms: Option<Millis>,
        #[arg(long, default_value_t = 2_000)]
        videos: u64,
        #[arg(long, default_value_t = 1_000_000)]
        viewers: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Time the questions: Playhead's HTTP API against SQL on the raw table.
    Bench {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, env = "PLAYHEAD_READ_KEY")]
        read_key: String,
        /// The raw table's database (`DIR/raw.sqlite`).
        #[arg(long)]
        raw: PathBuf,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Build {
            dir,
            sessions,
            days,
            end_ms,
            videos,
            viewers,
            seed,
        } => build(&dir, sessions, days, end_ms, videos, viewers, seed),
        Command::Bench {
            target,
            read_key,
            raw,
            rounds,
        } => bench(target, &read_key, &raw, rounds),
    }
}

// ---------------------------------------------------------------- build

const RAW_SCHEMA: &str = "
CREATE TABLE sessions (
    property TEXT NOT NULL,
    id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    video_id TEXT,
    viewer_id TEXT,
    content_type TEXT,
    browser TEXT,
    os TEXT,
    device_type TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    play_requested INTEGER NOT NULL,
    played INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    exit_before_start INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    watch_time_ms REAL NOT NULL,
    playing_time_ms REAL NOT NULL,
    rebuffer_time_ms REAL NOT NULL,
    rebuffer_count INTEGER NOT NULL,
    startup_time_ms REAL,
    bitrate_avg_bps REAL,
    ad_impressions INTEGER NOT NULL,
    ads_started INTEGER NOT NULL,
    ads_completed INTEGER NOT NULL,
    startup_score REAL,
    smoothness_score REAL,
    playback_success_score REAL,
    viewer_experience_score REAL,
    error_code TEXT,
    PRIMARY KEY (property, id)
);
CREATE INDEX sessions_by_start ON sessions (property, started_at);
";

/// Pick from `(value, weight)`s.
fn pick<'a>(rng: &mut StdRng, choices: &[(&'a str, f64)]) -> &'a str {
    let total: f64 = choices.iter().map(|c| c.1).sum();
    let mut x = rng.random::<f64>() * total;
    for (v, w) in choices {
        if x < *w {
            return v;
        }
        x -= w;
    }
    choices[choices.len() - 1].0
}

/// A skewed index in 0..n: low indices are drawn far more often.
fn skewed(rng: &mut StdRng, n: u64) -> u64 {
    let x: f64 = rng.random();
    ((x * x * x * n as f64) as u64).min(n - 1)
}

const PROTOCOLS: [(&str, f64); 5] = [
    ("native", 0.5),
    ("media_collection", 0.2),
    ("pixel", 0.2),
    ("ping", 0.05),
    ("user_activity", 0.05),
];
const BROWSERS: [(&str, f64); 6] = [
    ("Chrome", 0.58),
    ("Safari", 0.2),
    ("Edge", 0.08),
    ("Firefox", 0.07),
    ("Samsung Internet", 0.04),
    ("Opera", 0.03),
];
const OSES: [(&str, f64); 6] = [
    ("Windows 10", 0.35),
    ("Android", 0.25),
    ("iPhone", 0.15),
    ("Mac OSX", 0.12),
    ("iPad", 0.05),
    ("Linux", 0.08),
];
const ERROR_CODES: [&str; 4] = ["3016", "MEDIA_ERR_NETWORK", "4001", "DRM_LICENSE_FAILED"];

fn protocol(name: &str) -> Protocol {
    Protocol::ALL
        .into_iter()
        .find(|p| p.as_str() == name)
        .unwrap_or(Protocol::Native)
}

/// One closed session starting at `started_at`.
fn session(
    rng: &mut StdRng,
    n: u64,
    started_at: Millis,
    videos: u64,
    viewers: u64,
) -> SessionSummary {
    let protocol = protocol(pick(rng, &PROTOCOLS));
    let os = pick(rng, &OSES);
    let device = match os {
        "Android" | "iPhone" => "mobile",
        "iPad" => "tablet",
        _ if rng.random_bool(0.1) => "tv",
        _ => "desktop",
    };
    let mut meta = SessionMeta {
        video_id: Some(format!("video-{:05}", skewed(rng, videos))),
        viewer_id: Some(format!("viewer-{:08}", skewed(rng, viewers))),
        duration_s: Some(f64::from(rng.random_range(60u32..3600))),
        content_type: Some(if rng.random_bool(0.15) { "live" } else { "vod" }.to_owned()),
        player_name: Some("html5".to_owned()),
        player_version: Some("1.2.0".to_owned()),
        ..SessionMeta::default()
    };
    meta.dimensions
        .insert("browser".into(), pick(rng, &BROWSERS).to_owned());
    meta.dimensions.insert("os".into(), os.to_owned());
    meta.dimensions
        .insert("device_type".into(), device.to_owned());
    meta.dimensions
        .insert("cdn".into(), format!("edge-{}", rng.random_range(0..4)));
    meta.custom.insert(
        "plan".into(),
        pick(rng, &[("free", 0.7), ("premium", 0.3)]).to_owned(),
    );

    let mut m = SessionMetrics {
        play_requested: rng.random_bool(0.97),
        ..SessionMetrics::default()
    };
    let fate: f64 = rng.random();
    let duration_ms = meta.duration_s.unwrap_or(600.0) * 1000.0;
    if m.play_requested && fate < 0.04 {
        m.exit_before_start = true;
    } else if m.play_requested && fate < 0.06 {
        m.failed = true;
    } else if m.play_requested {
        m.played = true;
        m.content_started = true;
        let startup = 200.0 + 3800.0 * rng.random::<f64>().powf(2.5);
        m.startup_time_ms = Some(startup.round());
        let playing = (-(rng.random::<f64>().max(1e-9)).ln() * 8.0 * 60_000.0).min(duration_ms);
        m.playing_time_ms = playing.round();
        m.media_time_spent_ms = m.playing_time_ms;
        if rng.random_bool(0.33) {
            m.rebuffer_count = rng.random_range(1..6);
            m.rebuffer_time_ms =
                (m.rebuffer_count as f64 * rng.random_range(300.0..4000.0)).round();
        }
        m.seek_count = rng.random_range(0..3);
        m.seek_time_ms = m.seek_count as f64 * 400.0;
        m.watch_time_ms = startup.round() + m.playing_time_ms + m.rebuffer_time_ms + m.seek_time_ms;
        m.rebuffer_percentage = if m.watch_time_ms > 0.0 {
            m.rebuffer_time_ms / m.watch_time_ms
        } else {
            0.0
        };
        m.rebuffer_frequency = m.rebuffer_count as f64 / (m.watch_time_ms / 60_000.0).max(1e-9);
        m.max_playhead_s = Some(m.playing_time_ms / 1000.0);
        m.content_watched_s = m.playing_time_ms / 1000.0;
        m.completion = Some((m.playing_time_ms / duration_ms).min(1.0));
        m.completed = m.playing_time_ms >= 0.95 * duration_ms || rng.random_bool(0.1);
        m.progress_markers = [10u8, 25, 50, 75, 95]
            .into_iter()
            .filter(|p| m.completion.unwrap_or(0.0) * 100.0 >= f64::from(*p))
            .collect();
        m.bitrate_avg_bps = Some(f64::from(
            [800_000u32, 1_600_000, 2_500_000, 4_500_000][rng.random_range(0..4)],
        ));
        m.bitrate_changes = rng.random_range(0..4);
        m.failed = rng.random_bool(0.01);
        if rng.random_bool(0.2) {
            m.ad_breaks = 1;
            m.ad_impressions = rng.random_range(1..4);
            m.ads_started = m.ad_impressions;
            m.ads_completed = rng.random_range(0..=m.ads_started);
            m.ad_quartiles.first = m.ads_started;
            m.ad_quartiles.mid = m.ads_completed;
            m.ad_quartiles.third = m.ads_completed;
        }
        m.startup_score = Some((100.0 - startup / 40.0).clamp(0.0, 100.0));
        m.smoothness_score = Some((100.0 * (1.0 - 10.0 * m.rebuffer_percentage)).clamp(0.0, 100.0));
    }
    if m.play_requested {
        m.playback_success_score = Some(if m.failed || m.exit_before_start {
            0.0
        } else {
            100.0
        });
        let parts: Vec<f64> = [
            m.startup_score,
            m.smoothness_score,
            m.playback_success_score,
        ]
        .into_iter()
        .flatten()
        .collect();
        m.viewer_experience_score = Some(parts.iter().sum::<f64>() / parts.len() as f64);
    }
    if m.failed {
        m.errors.push(ErrorRecord {
            t: started_at + m.watch_time_ms as Millis,
            code: ERROR_CODES[rng.random_range(0..ERROR_CODES.len())].to_owned(),
            message: "playback failed".to_owned(),
            fatal: true,
            source: Some("player".to_owned()),
        });
    }
    let ended_at = started_at + m.watch_time_ms as Millis + rng.random_range(0..60_000);
    SessionSummary {
        key: SessionKey::new(
            PROPERTY,
            format!("{:08x}-0000-4000-8000-{n:012x}", (started_at / 1000) as u32),
        ),
        protocol,
        meta,
        state: if m.played {
            PlayerState::Ended
        } else {
            PlayerState::Init
        },
        open: false,
        started_at,
        last_event_at: ended_at,
        last_received_at: ended_at,
        ended_at: Some(ended_at),
        metrics: m,
    }
}

fn insert_raw(tx: &rusqlite::Transaction<'_>, s: &SessionSummary) -> rusqlite::Result<()> {
    let m = &s.metrics;
    let d = |k: &str| s.meta.dimensions.get(k).cloned();
    tx.prepare_cached(
        "INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
         ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)",
    )?
    .execute(params![
        s.key.property,
        s.key.session_id,
        s.protocol.as_str(),
        s.meta.video_id,
        s.meta.viewer_id,
        s.meta.content_type,
        d("browser"),
        d("os"),
        d("device_type"),
        s.started_at,
        s.ended_at,
        m.play_requested,
        m.played,
        m.failed,
        m.exit_before_start,
        m.completed,
        m.watch_time_ms,
        m.playing_time_ms,
        m.rebuffer_time_ms,
        m.rebuffer_count as i64,
        m.startup_time_ms,
        m.bitrate_avg_bps,
        m.ad_impressions as i64,
        m.ads_started as i64,
        m.ads_completed as i64,
        m.startup_score,
        m.smoothness_score,
        m.playback_success_score,
        m.viewer_experience_score,
        m.errors.first().map(|e| e.code.clone()),
    ])?;
    Ok(())
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or_default()
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn build(
    dir: &std::path::Path,
    sessions: u64,
    days: i64,
    end_ms: Option<Millis>,
    videos: u64,
    viewers: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let store_dir = dir.join("store");
    let raw_path = dir.join("raw.sqlite");
    if store_dir.join(playhead_store::sqlite::DB_FILE).exists() || raw_path.exists() {
        bail!("{} already holds generated data", dir.display());
    }
    std::fs::create_dir_all(&store_dir)?;
    let end = end_ms.unwrap_or_else(|| now_ms().div_euclid(HOUR_MS) * HOUR_MS);
    let start = end - days * DAY_MS;
    let minutes = (days * DAY_MS / MINUTE_MS) as u64;

    let store = SqliteStore::open(&store_dir, FsyncPolicy::Off)?;
    let mut writer = store.writer()?;
    let mut raw = Connection::open(&raw_path)?;
    raw.pragma_update(None, "journal_mode", "WAL")?;
    raw.pragma_update(None, "synchronous", "OFF")?;
    raw.execute_batch(RAW_SCHEMA)?;

    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = Instant::now();
    let (mut store_secs, mut raw_secs) = (0.0, 0.0);
    let mut n: u64 = 0;
    let mut batch: Vec<SessionSummary> = Vec::with_capacity(PER_TRANSACTION as usize);
    let mut flush = |batch: &mut Vec<SessionSummary>,
                     store_secs: &mut f64,
                     raw_secs: &mut f64|
     -> anyhow::Result<()> {
        let t = Instant::now();
        writer.begin()?;
        for s in batch.iter() {
            writer.put_session(s)?;
            writer.add_to_rollup(s)?;
        }
        writer.commit()?;
        // As the server's writer does once a second: fold the closed
        // sessions into the rollups.
        writer.fold_rollups(usize::MAX)?;
        *store_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let tx = raw.transaction()?;
        for s in batch.iter() {
            insert_raw(&tx, s)?;
        }
        tx.commit()?;
        *raw_secs += t.elapsed().as_secs_f64();
        batch.clear();
        Ok(())
    };
    for minute in 0..minutes {
        let count = (minute + 1) * sessions / minutes - minute * sessions / minutes;
        let minute_start = start + minute as Millis * MINUTE_MS;
        let mut offsets: Vec<Millis> = (0..count).map(|_| rng.random_range(0..MINUTE_MS)).collect();
        offsets.sort_unstable();
        for off in offsets {
            batch.push(session(&mut rng, n, minute_start + off, videos, viewers));
            n += 1;
            if batch.len() as u64 == PER_TRANSACTION {
                flush(&mut batch, &mut store_secs, &mut raw_secs)?;
                if n.is_multiple_of(1_000_000) {
                    eprintln!(
                        "{n} sessions, {:.0} s (store {store_secs:.0} s, raw {raw_secs:.0} s)",
                        t0.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    flush(&mut batch, &mut store_secs, &mut raw_secs)?;
    drop(writer);
    let count = |conn: &Connection, table: &str| -> anyhow::Result<i64> {
        Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
    };
    let check = Connection::open(store.path())?;
    let rollups = count(&check, "tiers")?;
    let store_sessions = count(&check, "sessions")?;
    let raw_sessions = count(&raw, "sessions")?;
    // Fold the WALs into the databases, as a long-running server's checkpoints would.
    check.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    raw.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    println!(
        "generated {n} sessions over {days} days [{start}, {end}) in {:.0} s (store {store_secs:.0} s, raw {raw_secs:.0} s)",
        t0.elapsed().as_secs_f64()
    );
    println!(
        "store: {store_sessions} session rows, {rollups} rollup rows (all tiers, {:.2} per session), {:.2} GB; raw: {raw_sessions} rows, {:.2} GB",
        rollups as f64 / store_sessions.max(1) as f64,
        dir_size(&store_dir) as f64 / 1e9,
        std::fs::metadata(&raw_path)?.len() as f64 / 1e9,
    );
    std::fs::write(dir.join("range"), format!("{start} {end}\n"))?;
    Ok(())
}

// ---------------------------------------------------------------- bench

struct Question {
    name: &'static str,
    /// Path and query after `?from=..&to=..`.
    api: &'static str,
}

const QUESTIONS: [Question; 3] = [
    Question {
        name: "overview (every aggregate metric)",
        api: "/data/v1/metrics?",
    },
    Question {
        name: "timeseries rebuffer_percentage, 1 h buckets",
        api: "/data/v1/metrics/timeseries?metric=rebuffer_percentage&interval=1h&",
    },
    Question {
        name: "breakdown viewer_experience_score by browser",
        api: "/data/v1/metrics/breakdown?metric=viewer_experience_score&by=browser&limit=12&",
    },
];

/// The same questions in SQL. The overview is three statements: the sums,
/// counts, means and distinct viewers; the startup percentiles (nearest
/// rank, as Playhead's exact path; rank = ⌈q × n⌉ in integers); the errors by code. It leaves out
/// `concurrent_viewers` (Playhead computes it too, from session spans).
const SQL_OVERVIEW: [&str; 3] = [
    "SELECT count(*), sum(played), sum(play_requested), sum(failed), sum(exit_before_start),
            sum(completed), sum(watch_time_ms), sum(playing_time_ms), sum(rebuffer_time_ms),
            sum(rebuffer_count),
            sum(CASE WHEN bitrate_avg_bps IS NOT NULL AND playing_time_ms > 0
                     THEN bitrate_avg_bps * playing_time_ms END),
            sum(CASE WHEN bitrate_avg_bps IS NOT NULL AND playing_time_ms > 0
                     THEN playing_time_ms END),
            sum(ad_impressions), sum(ads_started), sum(ads_completed),
            avg(startup_score), avg(smoothness_score), avg(playback_success_score),
            avg(viewer_experience_score),
            count(DISTINCT viewer_id), count(DISTINCT CASE WHEN played THEN viewer_id END)
     FROM sessions WHERE property = ?1 AND started_at >= ?2 AND started_at < ?3",
    "WITH s AS (SELECT startup_time_ms v, row_number() OVER (ORDER BY startup_time_ms) r,
                       count(*) OVER () n
                FROM sessions WHERE property = ?1 AND started_at >= ?2 AND started_at < ?3
                  AND startup_time_ms IS NOT NULL)
     SELECT max(CASE WHEN r = max(1, (50 * n + 99) / 100) THEN v END),
            max(CASE WHEN r = max(1, (90 * n + 99) / 100) THEN v END),
            max(CASE WHEN r = max(1, (95 * n + 99) / 100) THEN v END)
     FROM s",
    "SELECT error_code, count(*) FROM sessions
     WHERE property = ?1 AND started_at >= ?2 AND started_at < ?3 AND error_code IS NOT NULL
     GROUP BY error_code",
];
const SQL_TIMESERIES: &str = "
    SELECT started_at / 3600000 AS hour, sum(rebuffer_time_ms) / sum(watch_time_ms)
    FROM sessions WHERE property = ?1 AND started_at >= ?2 AND started_at < ?3
    GROUP BY hour ORDER BY hour";
const SQL_BREAKDOWN: &str = "
    SELECT browser, avg(viewer_experience_score) AS v, count(*)
    FROM sessions WHERE property = ?1 AND started_at >= ?2 AND started_at < ?3
      AND browser IS NOT NULL AND browser != ''
    GROUP BY browser ORDER BY v DESC LIMIT 12";

/// Run statements, reading every row; returns the first value of the first
/// row of the first statement when it is a number (the overview's views).
fn run_sql(
    conn: &Connection,
    statements: &[&str],
    from: Millis,
    to: Millis,
) -> anyhow::Result<f64> {
    let mut first = f64::NAN;
    for (i, sql) in statements.iter().enumerate() {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![PROPERTY, from, to])?;
        let mut row_no = 0;
        while let Some(row) = rows.next()? {
            if i == 0 && row_no == 0 {
                if let rusqlite::types::ValueRef::Integer(v) = row.get_ref(0)? {
                    first = v as f64;
                }
            }
            row_no += 1;
        }
    }
    Ok(first)
}

fn get(conn: &mut http::Conn, path: &str, key: &str) -> anyhow::Result<http::Response> {
    let raw =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n");
    Ok(conn.request(raw.as_bytes())?)
}

fn bench(
    target: SocketAddr,
    key: &str,
    raw: &std::path::Path,
    rounds: usize,
) -> anyhow::Result<()> {
    let range = std::fs::read_to_string(raw.with_file_name("range"))
        .context("the `range` file `p5 build` writes beside raw.sqlite")?;
    let mut it = range.split_whitespace().map(str::parse::<Millis>);
    let (from, to) = match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b),
        _ => bail!("malformed range file"),
    };
    let sql = Connection::open_with_flags(raw, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut conn = http::Conn::connect(target)?;
    let statements: [Vec<&str>; 3] = [
        SQL_OVERVIEW.to_vec(),
        vec![SQL_TIMESERIES],
        vec![SQL_BREAKDOWN],
    ];
    let mut api_ms = vec![Vec::new(); QUESTIONS.len()];
    let mut sql_ms = vec![Vec::new(); QUESTIONS.len()];
    let mut sql_views = f64::NAN;
    let mut api_views = f64::NAN;
    for round in 0..rounds {
        for (i, q) in QUESTIONS.iter().enumerate() {
            let path = format!("{}from={from}&to={to}", q.api);
            let mut time_api = |conn: &mut http::Conn| -> anyhow::Result<f64> {
                let t = Instant::now();
                let resp = get(conn, &path, key)?;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if resp.status != 200 {
                    bail!("{path}: status {}", resp.status);
                }
                if i == 0 {
                    let v: serde_json::Value = serde_json::from_slice(&resp.body)?;
                    api_views = v["metrics"]["views"].as_f64().unwrap_or(f64::NAN);
                }
                Ok(ms)
            };
            let mut time_sql = || -> anyhow::Result<f64> {
                let t = Instant::now();
                let v = run_sql(&sql, &statements[i], from, to)?;
                if i == 0 {
                    sql_views = v;
                }
                Ok(t.elapsed().as_secs_f64() * 1000.0)
            };
            // Alternate which side goes first.
            if round % 2 == 0 {
                api_ms[i].push(time_api(&mut conn)?);
                sql_ms[i].push(time_sql()?);
            } else {
                sql_ms[i].push(time_sql()?);
                api_ms[i].push(time_api(&mut conn)?);
            }
            eprintln!(
                "round {} {}: playhead {:.1} ms, sql {:.1} ms",
                round + 1,
                q.name,
                api_ms[i].last().copied().unwrap_or_default(),
                sql_ms[i].last().copied().unwrap_or_default()
            );
        }
    }
    println!(
        "| question | Playhead API (median ms) | plain SQL (median ms) | SQL / Playhead | target |"
    );
    println!("|---|---|---|---|---|");
    for (i, q) in QUESTIONS.iter().enumerate() {
        let (a, s) = (median(&api_ms[i]), median(&sql_ms[i]));
        println!(
            "| {} | {a:.1} | {s:.1} | {:.2} | ≥ 50 and ≤ 100 ms |",
            q.name,
            s / a
        );
    }
    println!();
    for (i, q) in QUESTIONS.iter().enumerate() {
        let f = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "- {}: Playhead rounds {}; SQL rounds {}",
            q.name,
            f(&api_ms[i]),
            f(&sql_ms[i])
        );
    }
    println!(
        "- range [{from}, {to}) ({} days); views: Playhead {api_views}, SQL {sql_views}",
        (to - from) / DAY_MS
    );
    Ok(())
}
