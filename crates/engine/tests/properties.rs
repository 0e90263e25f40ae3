//! Property tests of the engine (issue #2): arrival order and duplicate
//! delivery never change a session's metrics, and watch time is the sum of
//! its parts.

use playhead_engine::tracker::Ingested;
use playhead_engine::Tracker;
use playhead_model::{
    ErrorSeverity, Event, EventKind, Protocol, Qoe, SessionKey, SessionMeta, SessionMetrics,
};
use proptest::prelude::*;
use std::collections::HashSet;

const T0: i64 = 1_700_000_000_000;

fn kind_strategy() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        1 => Just(EventKind::Viewinit),
        3 => Just(EventKind::Play),
        6 => Just(EventKind::Playing),
        3 => Just(EventKind::Pause),
        2 => Just(EventKind::Seeking),
        2 => Just(EventKind::Seeked),
        3 => Just(EventKind::Waiting),
        1 => (1u32..=3).prop_map(|r| EventKind::Ratechange { rate: f64::from(r) * 0.75 }),
        1 => (1u64..=8).prop_map(|b| EventKind::Renditionchange {
            bitrate_bps: Some(b * 500_000),
            width: None,
            height: None
        }),
        4 => Just(EventKind::Heartbeat),
        1 => any::<bool>().prop_map(|fatal| EventKind::Error {
            code: "E1".into(),
            message: "boom".into(),
            severity: if fatal { ErrorSeverity::Fatal } else { ErrorSeverity::Warning },
            source: None,
        }),
        1 => Just(EventKind::Ended),
        1 => Just(EventKind::Adbreakstart),
        1 => Just(EventKind::Adstart { ad_id: Some("ad".into()), duration_s: Some(15.0) }),
        1 => (1u8..=3).prop_map(|quartile| EventKind::Adquartile { quartile }),
        1 => Just(EventKind::Adcomplete),
        1 => Just(EventKind::Adskip),
        1 => Just(EventKind::Adbreakend),
    ]
}

/// A session's events: increasing `seq`, times that may tie, playheads.
fn session_strategy() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        (
            kind_strategy(),
            0i64..20_000,
            prop::option::of(0.0f64..600.0),
            prop::option::of(0u64..50),
        ),
        1..60,
    )
    .prop_map(|items| {
        let mut t = T0;
        items
            .into_iter()
            .enumerate()
            .map(|(i, (kind, gap, playhead, dropped))| {
                t += gap / 4 * 4; // some gaps are 0: ties broken by seq
                let mut ev = Event::new(t, t, kind);
                ev.order = i as u64 + 1;
                ev.dedup_key = i as u64 + 1;
                ev.playhead = playhead;
                ev.qoe = Qoe {
                    dropped_frames: dropped,
                    total_frames: dropped.map(|d| d * 100),
                    ..Qoe::default()
                };
                ev
            })
            .collect()
    })
}

/// Feeds batches the way the server does: dedup by key against a log, the
/// log holds every stored event, the tracker replays from it when needed.
struct Harness {
    tracker: Tracker,
    log: Vec<Event>,
    seen: HashSet<u64>,
    key: SessionKey,
    last: Option<Ingested>,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            tracker: Tracker::new(),
            log: Vec::new(),
            seen: HashSet::new(),
            key: SessionKey::new("p", "s"),
            last: None,
        }
    }

    fn deliver(&mut self, batch: &[Event]) {
        let fresh: Vec<Event> = batch
            .iter()
            .filter(|e| self.seen.insert(e.dedup_key))
            .cloned()
            .collect();
        self.log.extend(fresh.iter().cloned());
        let meta = SessionMeta {
            duration_s: Some(600.0),
            viewer_id: Some("v".into()),
            ..SessionMeta::default()
        };
        let log = self.log.clone();
        let out = self
            .tracker
            .ingest(&self.key, Protocol::Native, &meta, fresh, T0, || {
                Ok::<_, ()>(log)
            })
            .unwrap();
        self.last = Some(out);
    }

    fn metrics(&self) -> SessionMetrics {
        match &self.last.as_ref().unwrap().closed {
            Some((_, summary)) => summary.metrics.clone(),
            None => self.tracker.summary_of(&self.key).unwrap().metrics,
        }
    }
}

fn in_order(events: &[Event]) -> SessionMetrics {
    let mut h = Harness::new();
    h.deliver(events);
    h.metrics()
}

/// Split `events` (already permuted) into batches at the given cut points.
fn batches(events: &[Event], cuts: &[usize]) -> Vec<Vec<Event>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([events.len()]) {
        if c > start {
            out.push(events[start..c].to_vec());
            start = c;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arrival_order_does_not_change_metrics(
        events in session_strategy(),
        perm_seed in any::<u64>(),
        cuts in prop::collection::vec(0usize..64, 0..6),
    ) {
        let expected = in_order(&events);
        let mut shuffled = events.clone();
        // deterministic shuffle from the seed
        let mut s = perm_seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut h = Harness::new();
        for b in batches(&shuffled, &cuts) {
            h.deliver(&b);
        }
        prop_assert_eq!(h.metrics(), expected);
    }

    #[test]
    fn duplicate_delivery_changes_nothing(
        events in session_strategy(),
        dup_idx in prop::collection::vec(any::<prop::sample::Index>(), 1..10),
    ) {
        let expected = in_order(&events);
        let mut h = Harness::new();
        h.deliver(&events);
        let dups: Vec<Event> = dup_idx.iter().map(|i| events[i.index(events.len())].clone()).collect();
        h.deliver(&dups);
        h.deliver(&events);
        prop_assert_eq!(h.metrics(), expected);
    }

    #[test]
    fn watch_time_is_the_sum_of_its_parts(events in session_strategy()) {
        let m = in_order(&events);
        let parts = m.startup_time_ms.unwrap_or(0.0)
            + m.playing_time_ms
            + m.ad_playing_time_ms
            + m.rebuffer_time_ms
            + m.seek_time_ms;
        prop_assert!((m.watch_time_ms - parts).abs() < 1e-6, "{} vs {}", m.watch_time_ms, parts);
        prop_assert!(m.watch_time_ms >= 0.0);
        prop_assert!((0.0..=1.0).contains(&m.rebuffer_percentage));
        for score in [m.startup_score, m.smoothness_score, m.playback_success_score, m.viewer_experience_score].into_iter().flatten() {
            prop_assert!((0.0..=100.0).contains(&score), "score {}", score);
        }
    }
}
