//! Criterion benches of the embedded store's event log: what storing an
//! event costs the writer (its record, its chain, the group's block and
//! commit), and reading a session's events back (its chain, record by
//! record). fsync is off: the fsync is the server's, measured by `bench/`.
//!
//! Run with: cargo bench -p playhead-store --bench event_log

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use playhead_model::{Event, EventKind, Millis, Protocol, Qoe, SessionKey};
use playhead_store::{FsyncPolicy, SqliteStore, Store};
use std::hint::black_box;

const T0: Millis = 1_700_000_000_000;

/// Sessions the groups go round, as P2's load spreads its events.
const SESSIONS: usize = 20_000;

/// Events per commit group: about what a group holds at P2's peak.
const GROUP: usize = 64;

/// A P2-like Adobe `ping` as the decoder makes it: its params and QoE left
/// in `data`.
fn ping(k: u64, j: usize) -> Event {
    let t = T0 + k as Millis * 10_000;
    let mut e = Event::new(t, t, EventKind::Heartbeat).with_playhead(k as f64 * 10.0);
    e.dedup_key = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ j as u64;
    e.qoe = Qoe {
        bitrate_bps: Some(2_500_000),
        dropped_frames: Some(k * 2),
        ..Qoe::default()
    };
    let data = serde_json::json!({
        "params": {
            "media.playerName": "html5-player",
            "media.channel": "web",
            "analytics.visitorId": format!("{j:032x}"),
        },
        "qoeData": {"media.qoe.framesPerSecond": 29.97},
    });
    if let serde_json::Value::Object(map) = data {
        e.data = map;
    }
    e
}

fn key(j: usize) -> SessionKey {
    SessionKey::new("default", format!("{j:064x}"))
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
    let mut w = store.writer().unwrap();
    let keys: Vec<SessionKey> = (0..SESSIONS).map(key).collect();
    let mut next = 0usize;
    let mut g = c.benchmark_group("event_log");
    g.throughput(Throughput::Elements(GROUP as u64));
    g.bench_function("append a group of 64 Adobe pings, 20,000 sessions", |b| {
        b.iter_batched(
            || {
                (0..GROUP)
                    .map(|_| {
                        let j = next % SESSIONS;
                        let k = (next / SESSIONS) as u64;
                        next += 1;
                        (j, ping(k, j))
                    })
                    .collect::<Vec<_>>()
            },
            |events| {
                w.begin().unwrap();
                for (j, e) in &events {
                    let new = w
                        .insert_event(&keys[*j], Protocol::MediaCollection, e)
                        .unwrap();
                    assert!(new);
                }
                w.commit().unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn read_back(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
    let mut w = store.writer().unwrap();
    // 200 sessions of 100 events, one event of each per group: a session's
    // events are in 100 different blocks, as a live session's are.
    for k in 0..100u64 {
        w.begin().unwrap();
        for j in 0..200 {
            w.insert_event(&key(j), Protocol::MediaCollection, &ping(k, j))
                .unwrap();
        }
        w.commit().unwrap();
    }
    drop(w);
    let mut g = c.benchmark_group("event_log");
    g.throughput(Throughput::Elements(100));
    g.bench_function("read back a session of 100 events", |b| {
        let mut j = 0;
        b.iter(|| {
            j = (j + 1) % 200;
            let events = store.session_events(&key(j)).unwrap();
            assert_eq!(events.len(), 100);
            black_box(events)
        })
    });
    g.finish();
}

criterion_group!(benches, append, read_back);
criterion_main!(benches);
