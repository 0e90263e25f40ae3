//! Criterion benches of the engine's per-event and per-request steps: the
//! playback fold (`Playback::apply`), the metrics a summary computes, one
//! request's step through the tracker (what the writer thread runs per
//! request), a closed session's rollup, and the content dedup key that the
//! protocols without a sequence number compute per event.
//!
//! Run with: cargo bench -p playhead-engine --bench engine

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use playhead_engine::{Aggregate, Playback, Rules, Tracker};
use playhead_model::{Event, EventKind, Protocol, Qoe, SessionKey, SessionMeta};
use std::convert::Infallible;
use std::hint::black_box;

const T0: i64 = 1_714_564_800_000;

/// An hour of a native session: viewinit, play, rendition, first frame, then
/// a heartbeat every 10 s with cumulative frame counts (364 events).
fn session_events() -> Vec<Event> {
    let mut evs = vec![
        Event::new(T0, T0, EventKind::Viewinit),
        Event::new(T0 + 100, T0, EventKind::Play).with_playhead(0.0),
        Event::new(
            T0 + 900,
            T0,
            EventKind::Renditionchange {
                bitrate_bps: Some(2_500_000),
                width: Some(1280),
                height: Some(720),
            },
        ),
        Event::new(T0 + 1000, T0, EventKind::Playing).with_playhead(0.0),
    ];
    for i in 1..=360 {
        let t = T0 + 1000 + i * 10_000;
        let mut ev = Event::new(t, t, EventKind::Heartbeat).with_playhead(i as f64 * 10.0);
        ev.qoe = Qoe {
            dropped_frames: Some(i as u64),
            total_frames: Some(i as u64 * 300),
            ..Qoe::default()
        };
        evs.push(ev);
    }
    for (i, ev) in evs.iter_mut().enumerate() {
        ev.order = i as u64;
        ev.dedup_key = i as u64;
    }
    evs
}

fn meta() -> SessionMeta {
    let mut m = SessionMeta {
        video_id: Some("video-0042".into()),
        viewer_id: Some("viewer-0000042".into()),
        duration_s: Some(3600.0),
        content_type: Some("vod".into()),
        player_name: Some("html5".into()),
        player_version: Some("1.2.0".into()),
        ..SessionMeta::default()
    };
    for (k, v) in [
        ("browser", "Chrome"),
        ("os", "Windows 10"),
        ("device_type", "desktop"),
        ("cdn", "edge-a"),
    ] {
        m.dimensions.insert(k.into(), v.into());
    }
    m.custom.insert("plan".into(), "premium".into());
    m
}

fn engine(c: &mut Criterion) {
    let events = session_events();
    let rules = Rules::for_protocol(Protocol::Native);
    let meta = meta();

    let mut g = c.benchmark_group("playback");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("apply (per event, 1-h native session)", |b| {
        b.iter(|| {
            let mut p = Playback::new(rules);
            for ev in &events {
                p.apply(black_box(ev));
            }
            p
        })
    });
    g.finish();

    let mut folded = Playback::new(rules);
    for ev in &events {
        folded.apply(ev);
    }
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("metrics (1-h session)", |b| {
        b.iter(|| black_box(&folded).metrics(&meta, None))
    });

    // One request of one heartbeat into an open session among 10,000, as the
    // writer does per request: fold it and build the session's summary.
    let mut tracker = Tracker::new();
    let keys: Vec<SessionKey> = (0..10_000)
        .map(|i| SessionKey::new("default", format!("6f1c2a9e-3b44-4d0c-9a52-{i:012x}")))
        .collect();
    for key in &keys {
        tracker
            .ingest(
                key,
                Protocol::Native,
                &meta,
                events[..4].to_vec(),
                T0,
                || Ok::<_, Infallible>(Vec::new()),
            )
            .expect("infallible");
    }
    let mut n: u64 = 0;
    g.bench_function("tracker ingest (1 event)", |b| {
        b.iter(|| {
            let key = &keys[(n % keys.len() as u64) as usize];
            let i = n / keys.len() as u64 + 1;
            n += 1;
            let t = T0 + 1000 + i as i64 * 10_000;
            let mut ev = Event::new(t, t, EventKind::Heartbeat).with_playhead(i as f64 * 10.0);
            ev.order = 4 + i;
            ev.dedup_key = 4 + i;
            tracker
                .ingest(
                    key,
                    Protocol::Native,
                    &SessionMeta::default(),
                    vec![ev],
                    t,
                    || Ok::<_, Infallible>(Vec::new()),
                )
                .expect("infallible")
        })
    });

    let summary = tracker
        .get(&keys[0])
        .expect("open")
        .summary(&keys[0], Some(T0 + 3_600_000));
    g.bench_function("rollup add_session", |b| {
        let mut agg = Aggregate::default();
        b.iter(|| agg.add_session(black_box(&summary)))
    });

    let ev = &events[100];
    g.bench_function("event content_key (dedup hash)", |b| {
        b.iter(|| black_box(ev).content_key())
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
