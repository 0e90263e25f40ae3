//! The storage conformance suite: what every [`Store`] backend must do, one
//! public function per behaviour. A backend's tests call [`run_all`] with a
//! function making a fresh, empty store; each behaviour makes its own.
//!
//! Failures panic with a message naming the behaviour and what differed.
//! Data is deterministic (a seeded generator), so a failure reproduces.
//! Times are fixed values, never the wall clock; nothing here is timed.

use crate::{
    Filters, GroupBy, GroupKey, SessionQuery, SessionStatus, Store, StoreError, StoreWriter,
};
use playhead_engine::{Aggregate, AggregateMetrics};
use playhead_model::{
    AdQuartiles, Dimension, ErrorRecord, Event, EventKind, Millis, PlayerState, Protocol,
    SessionKey, SessionKind, SessionMeta, SessionMetrics, SessionSummary,
};
use std::collections::BTreeMap;

/// Makes a fresh, empty store.
pub type MakeStore<'a> = &'a dyn Fn() -> Box<dyn Store>;

/// One behaviour of the suite.
pub type Behaviour = for<'a> fn(MakeStore<'a>);

/// Every behaviour, in order; a failure panics naming it.
pub fn run_all(make: MakeStore<'_>) {
    let suite: [(&str, Behaviour); 16] = [
        ("dedup_by_session_and_key", dedup_by_session_and_key),
        ("rollback_drops_writes", rollback_drops_writes),
        (
            "session_events_in_processing_order",
            session_events_in_processing_order,
        ),
        ("session_round_trip", session_round_trip),
        ("list_sessions_newest_first", list_sessions_newest_first),
        ("list_sessions_filters", list_sessions_filters),
        ("list_sessions_cursor_paging", list_sessions_cursor_paging),
        ("list_sessions_bad_cursor", list_sessions_bad_cursor),
        ("open_sessions_with_events", open_sessions_with_events),
        ("aggregate_matches_sessions", aggregate_matches_sessions),
        ("aggregate_edges_of_minutes", aggregate_edges_of_minutes),
        ("realtime_counts", realtime_counts),
        ("session_spans_overlap_range", session_spans_overlap_range),
        (
            "concurrency_is_the_most_open_at_once",
            concurrency_is_the_most_open_at_once,
        ),
        ("properties_are_isolated", properties_are_isolated),
        (
            "app_sessions_count_in_no_aggregate",
            app_sessions_count_in_no_aggregate,
        ),
    ];
    for (name, behaviour) in suite {
        eprintln!("conformance: {name}");
        behaviour(make);
    }
}

const PROP: &str = "prop-a";
const OTHER_PROP: &str = "prop-b";
/// 2023-11-14T22:13:20Z: not on a minute boundary, on purpose.
const T0: Millis = 1_700_000_000_000;
const MINUTE: Millis = 60_000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

fn key(id: &str) -> SessionKey {
    SessionKey::new(PROP, id)
}

fn event(t: Millis, order: u64, dedup_key: u64, kind: EventKind) -> Event {
    let mut e = Event::new(t, t, kind);
    e.order = order;
    e.dedup_key = dedup_key;
    e
}

/// A closed session of one second with no metadata and zero metrics.
fn summary(property: &str, id: &str, started_at: Millis) -> SessionSummary {
    SessionSummary {
        key: SessionKey::new(property, id),
        protocol: Protocol::Native,
        meta: SessionMeta::default(),
        state: PlayerState::Ended,
        open: false,
        started_at,
        last_event_at: started_at + 1000,
        last_received_at: started_at + 1000,
        ended_at: Some(started_at + 1000),
        metrics: SessionMetrics::default(),
    }
}

fn open_summary(property: &str, id: &str, started_at: Millis) -> SessionSummary {
    let mut s = summary(property, id, started_at);
    s.open = true;
    s.state = PlayerState::Playing;
    s.ended_at = None;
    s
}

fn writer(store: &dyn Store) -> Box<dyn StoreWriter> {
    store.writer().expect("store.writer()")
}

/// Store sessions, 50 a transaction: every one as a row, closed ones also
/// in the rollups, of which about half are then folded (the rest stays
/// queued, counted from its row): both ways of counting a closed session
/// are in every query.
fn put_sessions(store: &dyn Store, sessions: &[SessionSummary]) {
    let mut w = writer(store);
    for chunk in sessions.chunks(50) {
        w.begin().expect("begin");
        for s in chunk {
            w.put_session(s).expect("put_session");
            if !s.open {
                w.add_to_rollup(s).expect("add_to_rollup");
            }
        }
        w.commit().expect("commit");
    }
    let closed = sessions.iter().filter(|s| !s.open).count();
    w.fold_rollups(closed / 2).expect("fold_rollups");
}

/// Fold every queued closed session into the rollups.
fn fold_all(store: &dyn Store) {
    writer(store)
        .fold_rollups(usize::MAX)
        .expect("fold_rollups");
}

fn insert(w: &mut dyn StoreWriter, key: &SessionKey, e: &Event) -> bool {
    w.insert_event(key, Protocol::Native, e)
        .expect("insert_event")
}

/// A repeated (session, dedup key) is refused within one transaction and
/// across transactions; the same key in another session or property is not
/// a duplicate; dedup keys above `i64::MAX` work.
pub fn dedup_by_session_and_key(make: MakeStore<'_>) {
    let store = make();
    let k = key("s1");
    let big = u64::MAX - 1;
    let mut w = writer(&*store);
    w.begin().expect("begin");
    assert!(
        insert(&mut *w, &k, &event(T0, 0, 1, EventKind::Play)),
        "a new event is stored"
    );
    assert!(
        !insert(&mut *w, &k, &event(T0 + 5, 1, 1, EventKind::Pause)),
        "the same dedup key twice in one transaction must be a duplicate"
    );
    assert!(insert(
        &mut *w,
        &k,
        &event(T0 + 10, 0, big, EventKind::Playing)
    ));
    w.commit().expect("commit");

    w.begin().expect("begin");
    assert!(
        !insert(&mut *w, &k, &event(T0, 0, 1, EventKind::Play)),
        "a dedup key stored by an earlier transaction must be a duplicate"
    );
    assert!(
        !insert(&mut *w, &k, &event(T0 + 99, 0, big, EventKind::Heartbeat)),
        "a dedup key above i64::MAX must dedup too"
    );
    assert!(
        insert(&mut *w, &key("s2"), &event(T0, 0, 1, EventKind::Play)),
        "the same dedup key in another session is not a duplicate"
    );
    assert!(
        insert(
            &mut *w,
            &SessionKey::new(OTHER_PROP, "s1"),
            &event(T0, 0, 1, EventKind::Play)
        ),
        "the same session id and dedup key in another property is not a duplicate"
    );
    w.commit().expect("commit");

    let events = store.session_events(&k).expect("session_events");
    assert_eq!(
        events,
        vec![
            event(T0, 0, 1, EventKind::Play),
            event(T0 + 10, 0, big, EventKind::Playing)
        ],
        "duplicates must not be stored; the first delivery wins"
    );
    assert_eq!(store.session_events(&key("s2")).expect("events").len(), 1);
}

/// Writes of a rolled-back transaction leave nothing behind.
pub fn rollback_drops_writes(make: MakeStore<'_>) {
    let store = make();
    let k = key("s1");
    let e = event(T0, 0, 7, EventKind::Play);
    let closed = summary(PROP, "s1", T0);
    let mut w = writer(&*store);
    w.begin().expect("begin");
    assert!(insert(&mut *w, &k, &e));
    w.put_session(&closed).expect("put_session");
    w.add_to_rollup(&closed).expect("add_to_rollup");
    assert_eq!(
        w.session_status(&k).expect("session_status"),
        SessionStatus::Closed,
        "the writer sees its own transaction's writes"
    );
    w.rollback().expect("rollback");

    assert_eq!(
        w.session_status(&k).expect("session_status"),
        SessionStatus::Unknown,
        "a rolled-back session must be unknown"
    );
    assert!(store.session(&k).expect("session").is_none());
    assert!(store.session_events(&k).expect("session_events").is_empty());
    let all = store
        .aggregate(
            &Filters::new(PROP, T0 - HOUR, T0 + HOUR),
            &GroupBy::Interval(MINUTE),
        )
        .expect("aggregate");
    assert!(
        all.is_empty(),
        "a rolled-back rollup must not count: {:?}",
        all.keys()
    );

    w.begin().expect("begin");
    assert!(
        insert(&mut *w, &k, &e),
        "a rolled-back event must not dedup a later one"
    );
    w.commit().expect("commit");
    assert_eq!(store.session_events(&k).expect("session_events"), vec![e]);
}

/// Events come back by (t, order, dedup key) — dedup keys compared as
/// `u64` — whatever order they were inserted in, from the writer (its
/// transaction included) and from reads.
pub fn session_events_in_processing_order(make: MakeStore<'_>) {
    let store = make();
    let k = key("s1");
    let mut expected = vec![
        event(T0, 5, 1, EventKind::Viewinit),
        event(T0 + 100, 0, 9, EventKind::Play),
        event(T0 + 100, 1, 3, EventKind::Playing),
        event(T0 + 100, 1, 7, EventKind::Pause),
        event(T0 + 100, 1, u64::MAX - 1, EventKind::Playing),
        event(T0 + 200, 0, 0, EventKind::Viewend).with_playhead(1.5),
    ];
    let mut w = writer(&*store);
    w.begin().expect("begin");
    for i in [3, 5, 0] {
        assert!(insert(&mut *w, &k, &expected[i]));
    }
    w.commit().expect("commit");
    w.begin().expect("begin");
    for i in [4, 1, 2] {
        assert!(insert(&mut *w, &k, &expected[i]));
    }
    expected.sort_by_key(Event::sort_key);
    assert_eq!(
        w.session_events(&k).expect("writer session_events"),
        expected,
        "the writer must see every event, this transaction's included, in processing order"
    );
    w.commit().expect("commit");
    assert_eq!(
        store.session_events(&k).expect("session_events"),
        expected,
        "events must come back in (t, order, dedup_key) order"
    );
}

/// `put_session` then `session` and `session_status` round-trip a summary
/// exactly; a second `put_session` replaces it.
pub fn session_round_trip(make: MakeStore<'_>) {
    let store = make();
    let k = key("s1");
    let mut w = writer(&*store);
    assert_eq!(
        w.session_status(&k).expect("session_status"),
        SessionStatus::Unknown
    );
    assert!(store.session(&k).expect("session").is_none());

    let mut s = open_summary(PROP, "s1", T0);
    s.protocol = Protocol::MediaCollection;
    s.meta = SessionMeta {
        kind: SessionKind::Playback,
        video_id: Some("video-1".into()),
        viewer_id: Some("viewer-1".into()),
        duration_s: Some(600.5),
        content_type: Some("vod".into()),
        player_name: Some("player".into()),
        player_version: Some("1.2.3".into()),
        dimensions: [("browser", "Firefox"), ("os", "Linux"), ("cdn", "edge")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect(),
        custom: [("show".to_owned(), "news".to_owned())].into(),
    };
    s.metrics = SessionMetrics {
        play_requested: true,
        played: true,
        startup_time_ms: Some(1250.0),
        playing_time_ms: 61_000.25,
        rebuffer_count: 2,
        rebuffer_time_ms: 1500.0,
        max_playhead_s: Some(60.5),
        progress_markers: vec![10, 25],
        errors: vec![ErrorRecord {
            t: T0 + 10,
            code: "E42".into(),
            message: "network".into(),
            fatal: false,
            source: Some("player".into()),
        }],
        ad_quartiles: AdQuartiles {
            first: 1,
            mid: 1,
            third: 0,
        },
        viewer_experience_score: Some(87.5),
        ..SessionMetrics::default()
    };
    w.begin().expect("begin");
    w.put_session(&s).expect("put_session");
    assert_eq!(
        w.session_status(&k).expect("session_status"),
        SessionStatus::Open
    );
    w.commit().expect("commit");
    assert_eq!(
        store.session(&k).expect("session").as_ref(),
        Some(&s),
        "a stored summary must come back unchanged"
    );

    // New events on the open session: what changes is what most updates change.
    s.last_event_at = T0 + 30_000;
    s.last_received_at = T0 + 30_500;
    s.metrics.playing_time_ms += 1_000.0;
    s.metrics.failed = true;
    w.begin().expect("begin");
    w.put_session(&s).expect("put_session");
    w.commit().expect("commit");
    assert_eq!(store.session(&k).expect("session").as_ref(), Some(&s));
    // An earlier event moves its start, and its ids change: the row and the
    // indexes that find it follow.
    s.started_at = T0 - 5_000;
    s.meta.video_id = Some("video-2".into());
    s.meta.viewer_id = None;
    w.begin().expect("begin");
    w.put_session(&s).expect("put_session");
    w.commit().expect("commit");
    assert_eq!(store.session(&k).expect("session").as_ref(), Some(&s));
    let listed = |from: Millis, to: Millis| {
        let page = store
            .list_sessions(&SessionQuery {
                filters: Filters::new(PROP, from, to),
                failed: None,
                limit: 10,
                cursor: None,
            })
            .expect("list_sessions");
        page.sessions.len()
    };
    assert_eq!(listed(T0 - 5_000, T0 - 4_999), 1, "found at its new start");
    assert_eq!(listed(T0, T0 + 1), 0, "not at its old start");

    s.open = false;
    s.state = PlayerState::Ended;
    s.ended_at = Some(T0 + 70_000);
    s.last_event_at = T0 + 70_000;
    s.metrics.completed = true;
    w.begin().expect("begin");
    w.put_session(&s).expect("put_session");
    w.commit().expect("commit");
    assert_eq!(
        w.session_status(&k).expect("session_status"),
        SessionStatus::Closed
    );
    assert_eq!(
        store.session(&k).expect("session").as_ref(),
        Some(&s),
        "put_session must replace the summary"
    );
    assert!(store
        .session(&SessionKey::new(OTHER_PROP, "s1"))
        .expect("session")
        .is_none());
}

/// 25 sessions of `PROP` (pairs share a start time, so ids break ties) and
/// two that no `PROP` query over `[T0, T0 + 13 s)` may return.
fn listed_sessions() -> Vec<SessionSummary> {
    let mut all: Vec<SessionSummary> = (0..25)
        .map(|i| {
            let mut s = summary(PROP, &format!("s{i:02}"), T0 + (i / 2) * 1000);
            s.meta.video_id = Some(format!("v{}", i % 3));
            s.meta.viewer_id = Some(format!("u{}", i % 5));
            s.protocol = if i % 2 == 0 {
                Protocol::Native
            } else {
                Protocol::Pixel
            };
            s.metrics.failed = i % 4 == 0;
            let browser = if i % 3 == 1 { "Chrome" } else { "Firefox" };
            s.meta.dimensions.insert("browser".into(), browser.into());
            if i % 6 == 0 {
                s.open = true;
                s.ended_at = None;
            }
            s
        })
        .collect();
    all.push(summary(OTHER_PROP, "s99", T0 + 5000));
    all.push(summary(PROP, "s98", T0 + 13_000));
    all
}

fn ids(sessions: &[SessionSummary]) -> Vec<String> {
    sessions.iter().map(|s| s.key.session_id.clone()).collect()
}

/// The ids of `PROP`'s sessions in `[T0, T0 + 13 s)` passing `keep`, newest first.
fn expected_ids(all: &[SessionSummary], keep: impl Fn(&SessionSummary) -> bool) -> Vec<String> {
    let mut want: Vec<&SessionSummary> = all
        .iter()
        .filter(|s| s.key.property == PROP && s.started_at < T0 + 13_000 && keep(s))
        .collect();
    want.sort_by(|a, b| (b.started_at, &b.key.session_id).cmp(&(a.started_at, &a.key.session_id)));
    want.iter().map(|s| s.key.session_id.clone()).collect()
}

fn query(filters: Filters, failed: Option<bool>, limit: usize) -> SessionQuery {
    SessionQuery {
        filters,
        failed,
        limit,
        cursor: None,
    }
}

/// Every page of a query, followed by cursors.
fn all_pages(store: &dyn Store, mut q: SessionQuery) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let page = store.list_sessions(&q).expect("list_sessions");
        pages.push(ids(&page.sessions));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return pages,
        }
        assert!(pages.len() <= 100, "paging does not end");
    }
}

/// Newest first by (started_at, id), one property, within the time range.
pub fn list_sessions_newest_first(make: MakeStore<'_>) {
    let store = make();
    let all = listed_sessions();
    put_sessions(&*store, &all);
    let page = store
        .list_sessions(&query(Filters::new(PROP, T0, T0 + 13_000), None, 1000))
        .expect("list_sessions");
    assert_eq!(
        ids(&page.sessions),
        expected_ids(&all, |_| true),
        "newest first by (started_at, id), other properties and later sessions left out"
    );
    assert_eq!(page.next_cursor, None, "one page holds them all");
    let s07 = all.iter().find(|s| s.key.session_id == "s07").expect("s07");
    assert_eq!(
        page.sessions.iter().find(|s| s.key.session_id == "s07"),
        Some(s07),
        "listed summaries are the stored ones"
    );
}

/// video_id, viewer_id, protocol, a dimension without a column (browser),
/// failed, the time range, and several values ORed.
pub fn list_sessions_filters(make: MakeStore<'_>) {
    let store = make();
    let all = listed_sessions();
    put_sessions(&*store, &all);
    let base = Filters::new(PROP, T0, T0 + 13_000);
    let with = |dim: Dimension, values: &[&str]| {
        let mut f = base.clone();
        f.dimensions
            .push((dim, values.iter().map(|v| (*v).to_owned()).collect()));
        f
    };
    let has = |s: &SessionSummary, dim: &Dimension, values: &[&str]| {
        s.dimension_values(dim)
            .iter()
            .any(|v| values.contains(&v.as_str()))
    };
    let cases: Vec<(&str, Filters, Option<bool>, Vec<String>)> = vec![
        (
            "video_id=v1",
            with(Dimension::VideoId, &["v1"]),
            None,
            expected_ids(&all, |s| has(s, &Dimension::VideoId, &["v1"])),
        ),
        (
            "video_id=v0|v2",
            with(Dimension::VideoId, &["v0", "v2"]),
            None,
            expected_ids(&all, |s| has(s, &Dimension::VideoId, &["v0", "v2"])),
        ),
        (
            "viewer_id=u2",
            with(Dimension::ViewerId, &["u2"]),
            None,
            expected_ids(&all, |s| has(s, &Dimension::ViewerId, &["u2"])),
        ),
        (
            "protocol=pixel",
            with(Dimension::Protocol, &["pixel"]),
            None,
            expected_ids(&all, |s| s.protocol == Protocol::Pixel),
        ),
        (
            "browser=Chrome",
            with(Dimension::Browser, &["Chrome"]),
            None,
            expected_ids(&all, |s| has(s, &Dimension::Browser, &["Chrome"])),
        ),
        (
            "failed=true",
            base.clone(),
            Some(true),
            expected_ids(&all, |s| s.metrics.failed),
        ),
        (
            "failed=false",
            base.clone(),
            Some(false),
            expected_ids(&all, |s| !s.metrics.failed),
        ),
        (
            "time range",
            Filters::new(PROP, T0 + 3000, T0 + 7000),
            None,
            expected_ids(&all, |s| {
                s.started_at >= T0 + 3000 && s.started_at < T0 + 7000
            }),
        ),
        (
            "country=FR (nobody)",
            with(Dimension::Country, &["FR"]),
            None,
            Vec::new(),
        ),
    ];
    for (name, filters, failed, want) in cases {
        let page = store
            .list_sessions(&query(filters, failed, 1000))
            .expect("list_sessions");
        assert_eq!(
            ids(&page.sessions),
            want,
            "list_sessions filtered by {name}"
        );
        if name != "country=FR (nobody)" {
            assert!(!want.is_empty(), "case {name} should select something");
        }
    }
}

/// Pages of 10 over 25 sessions: 10, 10, 5, each in order, none missing, no
/// duplicates; the cursor also pages a filtered list (a filter SQL cannot
/// answer alone included); a page that is exactly full has no next cursor.
pub fn list_sessions_cursor_paging(make: MakeStore<'_>) {
    let store = make();
    let all = listed_sessions();
    put_sessions(&*store, &all);
    let base = Filters::new(PROP, T0, T0 + 13_000);

    let pages = all_pages(&*store, query(base.clone(), None, 10));
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 5], "page sizes with limit 10");
    assert_eq!(
        pages.concat(),
        expected_ids(&all, |_| true),
        "pages must follow each other: none missing, no duplicates"
    );

    let mut chrome = base.clone();
    chrome
        .dimensions
        .push((Dimension::Browser, vec!["Chrome".into()]));
    let want = expected_ids(&all, |s| {
        !s.metrics.failed && s.dimension_values(&Dimension::Browser) == ["Chrome"]
    });
    let pages = all_pages(&*store, query(chrome, Some(false), 3));
    assert!(pages.iter().all(|p| p.len() <= 3));
    assert_eq!(pages.concat(), want, "paging a filtered list");

    let exact = all_pages(&*store, query(base, None, 25));
    assert_eq!(
        exact.len(),
        1,
        "a page holding the last session must not offer a next cursor"
    );
}

/// A cursor this store did not make is `StoreError::BadCursor`.
pub fn list_sessions_bad_cursor(make: MakeStore<'_>) {
    let store = make();
    put_sessions(&*store, &listed_sessions());
    for cursor in ["not a cursor!", "zz", "", "%%%%"] {
        let mut q = query(Filters::new(PROP, T0, T0 + 13_000), None, 10);
        q.cursor = Some(cursor.to_owned());
        match store.list_sessions(&q) {
            Err(StoreError::BadCursor(_)) => {}
            other => panic!("cursor {cursor:?} must be BadCursor, got {other:?}"),
        }
    }
}

/// `open_sessions` returns every open session (all properties) with its
/// events in processing order, and no closed one.
pub fn open_sessions_with_events(make: MakeStore<'_>) {
    let store = make();
    let a = open_summary(PROP, "open-a", T0);
    let b = open_summary(OTHER_PROP, "open-b", T0 + 10);
    let c = summary(PROP, "closed-c", T0);
    let a_events = vec![
        event(T0, 0, 11, EventKind::Play),
        event(T0 + 50, 0, 12, EventKind::Playing),
        event(T0 + 900, 0, 13, EventKind::Pause).with_playhead(0.85),
    ];
    let b_events = vec![event(T0 + 10, 0, 21, EventKind::Viewinit)];
    let mut w = writer(&*store);
    w.begin().expect("begin");
    for e in a_events.iter().rev() {
        assert!(insert(&mut *w, &a.key, e));
    }
    assert!(insert(&mut *w, &b.key, &b_events[0]));
    assert!(insert(&mut *w, &c.key, &event(T0, 0, 31, EventKind::Play)));
    assert!(insert(
        &mut *w,
        &c.key,
        &event(T0 + 9, 0, 32, EventKind::Viewend)
    ));
    for s in [&a, &b, &c] {
        w.put_session(s).expect("put_session");
    }
    w.add_to_rollup(&c).expect("add_to_rollup");
    w.commit().expect("commit");

    let mut open = store.open_sessions().expect("open_sessions");
    open.sort_by(|x, y| x.summary.key.cmp(&y.summary.key));
    let got: Vec<(&SessionSummary, &Vec<Event>)> =
        open.iter().map(|r| (&r.summary, &r.events)).collect();
    assert_eq!(
        got,
        vec![(&a, &a_events), (&b, &b_events)],
        "open sessions, with their events in order, and only those"
    );
}

/// A small deterministic generator (splitmix64): the suite must not depend
/// on a random crate, and failures must reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
    /// One of `from`, or nothing `none_percent` of the time.
    fn maybe(&mut self, none_percent: u64, from: &[&str]) -> Option<String> {
        (!self.chance(none_percent)).then(|| self.pick(from).to_owned())
    }
}

/// A session with varied metadata and metrics starting at `started_at`.
fn varied_session(rng: &mut Rng, property: &str, id: &str, started_at: Millis) -> SessionSummary {
    let open = rng.chance(20);
    let length = rng.below(20 * MINUTE as u64) as Millis;
    let mut meta = SessionMeta {
        video_id: rng.maybe(10, &["v1", "v2", "v3", "v4", "v5"]),
        viewer_id: rng
            .maybe(10, &["x"])
            .map(|_| format!("viewer-{}", rng.below(60))),
        content_type: rng.maybe(20, &["vod", "live"]),
        ..SessionMeta::default()
    };
    for (dim, values) in [
        ("browser", &["Chrome", "Firefox", "Safari", "Edge"][..]),
        ("os", &["Windows", "macOS", "Linux", "Android", "iOS"][..]),
        ("device_type", &["desktop", "mobile", "tv"][..]),
        ("country", &["FR", "DE", "US"][..]),
    ] {
        if let Some(v) = rng.maybe(15, values) {
            meta.dimensions.insert(dim.to_owned(), v);
        }
    }
    let play_requested = rng.chance(90);
    let played = play_requested && rng.chance(85);
    let playing_time_ms = if played {
        rng.unit() * 1_200_000.0
    } else {
        0.0
    };
    let rebuffer_time_ms = if played { rng.unit() * 20_000.0 } else { 0.0 };
    let score = |rng: &mut Rng| (!rng.chance(30)).then(|| rng.unit() * 100.0);
    let errors = (0..rng.below(3))
        .map(|i| ErrorRecord {
            t: started_at + i as Millis,
            code: rng.pick(&["E1", "E2", "E3", "E4"]).to_owned(),
            message: String::new(),
            fatal: false,
            source: None,
        })
        .collect();
    let ads_started = rng.below(4);
    let metrics = SessionMetrics {
        play_requested,
        played,
        startup_time_ms: played.then(|| 100.0 + rng.unit() * 5000.0),
        playing_time_ms,
        rebuffer_count: if played { rng.below(5) } else { 0 },
        rebuffer_time_ms,
        watch_time_ms: playing_time_ms + rebuffer_time_ms,
        completed: played && rng.chance(30),
        failed: play_requested && rng.chance(10),
        exit_before_start: play_requested && !played && rng.chance(50),
        bitrate_avg_bps: (played && rng.chance(80)).then(|| 500_000.0 + rng.unit() * 5e6),
        errors,
        ad_impressions: ads_started,
        ads_started,
        ads_completed: rng.below(ads_started + 1),
        ad_quartiles: AdQuartiles {
            first: ads_started,
            mid: rng.below(ads_started + 1),
            third: 0,
        },
        startup_score: score(rng),
        smoothness_score: score(rng),
        playback_success_score: score(rng),
        viewer_experience_score: score(rng),
        ..SessionMetrics::default()
    };
    SessionSummary {
        key: SessionKey::new(property, id),
        protocol: Protocol::ALL[rng.below(Protocol::ALL.len() as u64) as usize],
        meta,
        state: if open {
            PlayerState::Playing
        } else {
            PlayerState::Ended
        },
        open,
        started_at,
        last_event_at: started_at + length,
        last_received_at: started_at + length,
        ended_at: (!open).then_some(started_at + length),
        metrics,
    }
}

/// What an aggregate query must answer, computed in memory from the
/// playback sessions with `Aggregate::add_session`.
fn expected_aggregate(
    sessions: &[SessionSummary],
    filters: &Filters,
    group: &GroupBy,
) -> BTreeMap<GroupKey, Aggregate> {
    let mut out: BTreeMap<GroupKey, Aggregate> = BTreeMap::new();
    for s in sessions
        .iter()
        .filter(|s| s.is_playback() && filters.matches(s))
    {
        let keys = match group {
            GroupBy::All => vec![GroupKey::All],
            GroupBy::Interval(i) => vec![GroupKey::Bucket(s.started_at.div_euclid(*i) * i)],
            GroupBy::Dimension(dim) => s
                .dimension_values(dim)
                .into_iter()
                .map(GroupKey::Value)
                .collect(),
        };
        for k in keys {
            out.entry(k).or_default().add_session(s);
        }
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Equal up to float rounding (1e-9 relative): sums may be added in
/// another order, and stored floats may round-trip through text.
fn assert_metrics_close(context: &str, got: &AggregateMetrics, want: &AggregateMetrics) {
    let counts = [
        ("views", got.views, want.views),
        ("unique_viewers", got.unique_viewers, want.unique_viewers),
        ("plays", got.plays, want.plays),
        ("ad_impressions", got.ad_impressions, want.ad_impressions),
        ("ads_started", got.ads_started, want.ads_started),
        ("ads_completed", got.ads_completed, want.ads_completed),
        (
            "concurrent_viewers",
            got.concurrent_viewers,
            want.concurrent_viewers,
        ),
    ];
    for (name, g, w) in counts {
        assert_eq!(g, w, "{context}: {name}");
    }
    assert_eq!(
        got.ad_quartiles, want.ad_quartiles,
        "{context}: ad_quartiles"
    );
    assert_eq!(got.errors, want.errors, "{context}: errors");
    let floats = [
        ("play_rate", got.play_rate, want.play_rate),
        ("watch_time_ms", got.watch_time_ms, want.watch_time_ms),
        ("playing_time_ms", got.playing_time_ms, want.playing_time_ms),
        (
            "avg_watch_time_ms",
            got.avg_watch_time_ms,
            want.avg_watch_time_ms,
        ),
        (
            "rebuffer_percentage",
            got.rebuffer_percentage,
            want.rebuffer_percentage,
        ),
        (
            "rebuffer_frequency",
            got.rebuffer_frequency,
            want.rebuffer_frequency,
        ),
        (
            "playback_failure_percentage",
            got.playback_failure_percentage,
            want.playback_failure_percentage,
        ),
        (
            "exit_before_start_percentage",
            got.exit_before_start_percentage,
            want.exit_before_start_percentage,
        ),
        ("completion_rate", got.completion_rate, want.completion_rate),
        (
            "ad_completion_rate",
            got.ad_completion_rate,
            want.ad_completion_rate,
        ),
    ];
    for (name, g, w) in floats {
        assert!(close(g, w), "{context}: {name} is {g}, expected {w}");
    }
    let optional = [
        (
            "startup_time_ms_p50",
            got.startup_time_ms_p50,
            want.startup_time_ms_p50,
        ),
        (
            "startup_time_ms_p90",
            got.startup_time_ms_p90,
            want.startup_time_ms_p90,
        ),
        (
            "startup_time_ms_p95",
            got.startup_time_ms_p95,
            want.startup_time_ms_p95,
        ),
        ("bitrate_avg_bps", got.bitrate_avg_bps, want.bitrate_avg_bps),
        ("startup_score", got.startup_score, want.startup_score),
        (
            "smoothness_score",
            got.smoothness_score,
            want.smoothness_score,
        ),
        (
            "playback_success_score",
            got.playback_success_score,
            want.playback_success_score,
        ),
        (
            "viewer_experience_score",
            got.viewer_experience_score,
            want.viewer_experience_score,
        ),
    ];
    for (name, g, w) in optional {
        let ok = match (g, w) {
            (Some(g), Some(w)) => close(g, w),
            (None, None) => true,
            _ => false,
        };
        assert!(ok, "{context}: {name} is {g:?}, expected {w:?}");
    }
}

fn assert_aggregate(
    store: &dyn Store,
    sessions: &[SessionSummary],
    filters: &Filters,
    group: &GroupBy,
) {
    let context = format!(
        "aggregate({}..{} {:?}, {group:?})",
        filters.from, filters.to, filters.dimensions
    );
    let got = store.aggregate(filters, group).expect("aggregate");
    let want = expected_aggregate(sessions, filters, group);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{context}: group keys"
    );
    for (k, w) in &want {
        assert_metrics_close(&format!("{context} {k:?}"), &got[k].metrics(), &w.metrics());
    }
}

fn filter_sets() -> Vec<Vec<(Dimension, Vec<String>)>> {
    let v = |values: &[&str]| values.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        vec![],
        vec![(Dimension::VideoId, v(&["v1", "v3"]))],
        vec![(Dimension::Browser, v(&["Chrome", "Safari"]))],
        vec![
            (Dimension::Browser, v(&["Chrome"])),
            (Dimension::Protocol, v(&["native", "pixel", "ping"])),
        ],
        vec![(Dimension::Property, v(&[PROP]))],
        vec![(Dimension::Property, v(&[OTHER_PROP]))],
        // Not rollup dimensions: session rows answer these.
        vec![(
            Dimension::ViewerId,
            (0..20).map(|i| format!("viewer-{i}")).collect(),
        )],
        vec![
            (Dimension::VideoId, v(&["v2"])),
            (Dimension::Country, v(&["FR", "US"])),
        ],
    ]
}

fn groups() -> Vec<GroupBy> {
    vec![
        GroupBy::All,
        GroupBy::Interval(MINUTE),
        GroupBy::Interval(5 * MINUTE),
        GroupBy::Interval(HOUR),
        GroupBy::Interval(2 * HOUR),
        GroupBy::Interval(DAY),
        GroupBy::Dimension(Dimension::Browser),
        GroupBy::Dimension(Dimension::VideoId),
        GroupBy::Dimension(Dimension::Property),
        // Not rollup dimensions.
        GroupBy::Dimension(Dimension::ErrorCode),
        GroupBy::Dimension(Dimension::ViewerId),
        // Not a whole number of minutes.
        GroupBy::Interval(90_000),
    ]
}

/// A few hundred varied sessions (a fifth of them open, so only in session
/// rows; one in nine an app session, in no aggregate); every grouping,
/// rollup-answerable filters and others, ranges on and off minute
/// boundaries: the store must answer exactly what `Aggregate::add_session`
/// over the matching playback sessions gives.
pub fn aggregate_matches_sessions(make: MakeStore<'_>) {
    let store = make();
    let mut rng = Rng(42);
    let sessions: Vec<SessionSummary> = (0..400)
        .map(|i| {
            let property = if rng.chance(10) { OTHER_PROP } else { PROP };
            // Most in three hours, a quarter over three days (so that
            // ranges cover whole days and hours of the rollups).
            let spread = if i % 4 == 0 { 3 * DAY } else { 3 * HOUR };
            let started_at = T0 + rng.below(spread as u64) as Millis;
            let mut s = varied_session(&mut rng, property, &format!("s{i:03}"), started_at);
            if i % 9 == 4 {
                s.meta.kind = SessionKind::App;
            }
            s
        })
        .collect();
    put_sessions(&*store, &sessions);
    let aligned = T0.div_euclid(MINUTE) * MINUTE + MINUTE;
    let day = T0.div_euclid(DAY) * DAY + DAY;
    let ranges = [
        (T0 - HOUR, T0 + 4 * DAY),
        (day, day + 2 * DAY),
        (day - 7 * MINUTE, day + DAY + 3 * HOUR + 5 * MINUTE + 1_234),
        (T0 + 37_123, T0 + 2 * HOUR + 12_345),
        (aligned + 5 * MINUTE, aligned + 125 * MINUTE),
        (aligned + 10_000, aligned + 50_000),
        (aligned + 30_000, aligned + 90_000),
    ];
    for folded in [false, true] {
        if folded {
            fold_all(&*store);
        }
        for (from, to) in ranges {
            for dimensions in filter_sets() {
                let filters = Filters {
                    dimensions,
                    ..Filters::new(PROP, from, to)
                };
                for group in groups() {
                    assert_aggregate(&*store, &sessions, &filters, &group);
                }
            }
        }
    }
    let everything = store
        .aggregate(&Filters::new(PROP, T0 - HOUR, T0 + 4 * DAY), &GroupBy::All)
        .expect("aggregate");
    let views = sessions
        .iter()
        .filter(|s| s.key.property == PROP && s.is_playback())
        .count() as u64;
    assert!(sessions
        .iter()
        .any(|s| s.key.property == PROP && !s.is_playback()));
    assert_eq!(
        everything.get(&GroupKey::All).map(|a| a.views),
        Some(views),
        "every playback session of the property is one view"
    );
}

/// Sessions right on and next to minute boundaries and the range's edges,
/// open and closed: each is counted once, inside `[from, to)` only.
pub fn aggregate_edges_of_minutes(make: MakeStore<'_>) {
    let store = make();
    let mut rng = Rng(7);
    let from = T0 + 37_123;
    let to = T0 + 20 * MINUTE + 12_345;
    let first_whole = from.div_euclid(MINUTE) * MINUTE + MINUTE;
    let last_whole_end = to.div_euclid(MINUTE) * MINUTE;
    let mut starts = vec![
        from - 1,
        from,
        from + 1,
        first_whole - 1,
        first_whole,
        first_whole + 1,
        last_whole_end - 1,
        last_whole_end,
        last_whole_end + 1,
        to - 1,
        to,
        to + 1,
    ];
    starts.extend(starts.clone());
    let sessions: Vec<SessionSummary> = starts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut s = varied_session(&mut rng, PROP, &format!("e{i:02}"), *t);
            // Half open, half closed, whatever the generator said.
            s.open = i % 2 == 0;
            s.ended_at = (!s.open).then_some(s.last_event_at);
            s
        })
        .collect();
    put_sessions(&*store, &sessions);
    for group in groups() {
        for (a, b) in [
            (from, to),
            (first_whole, last_whole_end),
            (from, first_whole),
        ] {
            assert_aggregate(&*store, &sessions, &Filters::new(PROP, a, b), &group);
        }
    }
    let all = store
        .aggregate(&Filters::new(PROP, from, to), &GroupBy::All)
        .expect("aggregate");
    assert_eq!(
        all.get(&GroupKey::All).map(|a| a.views),
        Some(2 * 9),
        "nine start times inside [from, to), two sessions each"
    );
}

/// `concurrent_viewers`: sessions of every length (some over a day, a few
/// open, some closed and folded, some closed and queued, some app
/// sessions, some of another property), over ranges on and off every
/// boundary, one bucket or many: the store answers what counting the
/// sessions open at every moment gives.
pub fn concurrency_is_the_most_open_at_once(make: MakeStore<'_>) {
    let store = make();
    let mut rng = Rng(99);
    let sessions: Vec<SessionSummary> = (0..300)
        .map(|i| {
            let property = if rng.chance(10) { OTHER_PROP } else { PROP };
            // The few open sessions start late: the first two days have
            // none, so that their ranges are answered from whole hours and
            // days of folded sessions.
            let open = i % 25 == 0;
            let started_at = if open {
                T0 + 2 * DAY + rng.below(HOUR as u64) as Millis
            } else {
                T0 + rng.below(2 * DAY as u64) as Millis
            };
            let mut s = varied_session(&mut rng, property, &format!("c{i:03}"), started_at);
            let length = match i % 10 {
                3 => rng.below(30 * HOUR as u64),
                1 => 0,
                _ => rng.below(90 * MINUTE as u64),
            } as Millis;
            s.open = open;
            s.last_event_at = started_at + length;
            s.ended_at = (!s.open).then_some(s.last_event_at);
            if i % 13 == 5 {
                s.meta.kind = SessionKind::App;
            }
            s
        })
        .collect();
    put_sessions(&*store, &sessions);
    // By brute force: the sessions open at each moment a count can change.
    let spans: Vec<(Millis, Millis)> = sessions
        .iter()
        .filter(|s| s.key.property == PROP && s.is_playback())
        .map(|s| (s.started_at, s.ended_at.unwrap_or(s.last_event_at)))
        .collect();
    let open_at = |t: Millis| spans.iter().filter(|(a, b)| *a <= t && t <= *b).count() as u64;
    let want = |from: Millis, start: Millis, to: Millis, interval: Millis| -> Vec<u64> {
        let mut out = Vec::new();
        let mut b = start;
        while b < to {
            let (a, z) = (b.max(from), (b + interval).min(to));
            let moments = spans
                .iter()
                .flat_map(|&(s, e)| [s, e + 1])
                .filter(|t| *t > a && *t < z)
                .chain([a]);
            out.push(moments.map(open_at).max().unwrap_or(0));
            b += interval;
        }
        out
    };
    let day = T0.div_euclid(DAY) * DAY + DAY;
    let cases = [
        (T0 - HOUR, T0 + 3 * DAY, None),
        (day, day + DAY, None),
        (
            day - 7 * MINUTE - 1_234,
            day + DAY + 3 * HOUR + 5 * MINUTE + 1_234,
            None,
        ),
        (T0 + 3 * HOUR + 17, T0 + 9 * HOUR, Some(HOUR)),
        (day - DAY, day + 2 * DAY, Some(DAY)),
        (day + 5 * HOUR + 999, day + 7 * HOUR, Some(MINUTE)),
        (day + 5 * HOUR, day + 9 * HOUR, Some(5 * MINUTE)),
        (day + 5 * HOUR + 30_000, day + 6 * HOUR, Some(90_000)),
    ];
    for folded in [false, true] {
        if folded {
            fold_all(&*store);
        }
        for (from, to, interval) in cases {
            let interval = interval.unwrap_or(to - from);
            let start = from.div_euclid(interval) * interval;
            let got = store
                .concurrency(&Filters::new(PROP, from, to), start, interval)
                .expect("concurrency");
            assert_eq!(
                got,
                want(from, start, to, interval),
                "concurrency {from}..{to} by {interval} (folded: {folded})"
            );
        }
    }
    let other = Filters {
        dimensions: vec![(Dimension::Property, vec![OTHER_PROP.to_owned()])],
        ..Filters::new(PROP, day, day + DAY)
    };
    assert_eq!(
        store.concurrency(&other, day, DAY).expect("concurrency"),
        [0]
    );
}

/// Realtime at a fixed `now`: open sessions heard from in the last 60 s
/// (inclusive), by video largest first then by id, and distinct viewers of
/// any session heard from in the last 5 min (inclusive); dimension filters
/// apply, the filters' time range does not.
pub fn realtime_counts(make: MakeStore<'_>) {
    let store = make();
    let now = T0 + 10 * HOUR;
    // (id, open, received `now - ago`, video, viewer, browser)
    type Row = (
        &'static str,
        bool,
        Millis,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
    );
    let rows: [Row; 12] = [
        ("a", true, 1_000, Some("v1"), Some("u1"), "Chrome"),
        ("b", true, 60_000, Some("v1"), Some("u2"), "Firefox"),
        ("c", true, 30_000, Some("v2"), Some("u1"), "Chrome"),
        ("d", true, 59_999, None, Some("u3"), "Chrome"),
        ("e", true, 60_001, Some("v2"), Some("u4"), "Chrome"),
        ("f", false, 120_000, Some("v3"), Some("u5"), "Firefox"),
        ("g", false, 300_000, Some("v3"), Some("u6"), "Firefox"),
        ("h", false, 300_001, Some("v3"), Some("u7"), "Chrome"),
        ("i", true, 400_000, Some("v1"), Some("u8"), "Chrome"),
        ("k", true, 2_000, Some("v3"), None, "Safari"),
        ("l", false, 5_000, Some("v1"), Some("u1"), "Chrome"),
        ("m", true, 10_000, Some("v4"), Some("u9"), "Safari"),
    ];
    let mut sessions: Vec<SessionSummary> = rows
        .iter()
        .map(|(id, open, ago, video, viewer, browser)| {
            let received = now - ago;
            let mut s = summary(PROP, id, received - 30 * MINUTE);
            s.open = *open;
            s.ended_at = (!open).then_some(received);
            s.last_event_at = received;
            s.last_received_at = received;
            s.meta.video_id = video.map(str::to_owned);
            s.meta.viewer_id = viewer.map(str::to_owned);
            s.meta
                .dimensions
                .insert("browser".into(), (*browser).into());
            s
        })
        .collect();
    let mut other = open_summary(OTHER_PROP, "z", now - 1000);
    other.last_received_at = now - 1000;
    other.meta.video_id = Some("v1".into());
    other.meta.viewer_id = Some("u10".into());
    sessions.push(other);
    // The closed ones were stored open first: closing a session must move
    // it from the open sessions' index to the closed ones'.
    let earlier: Vec<SessionSummary> = sessions
        .iter()
        .filter(|s| !s.open)
        .map(|s| SessionSummary {
            open: true,
            ended_at: None,
            last_event_at: s.last_event_at - 1_000,
            last_received_at: s.last_received_at - 1_000,
            ..s.clone()
        })
        .collect();
    put_sessions(&*store, &earlier);
    put_sessions(&*store, &sessions);

    let filters = |dims: Vec<(Dimension, Vec<String>)>| Filters {
        dimensions: dims,
        ..Filters::new(PROP, 0, 1)
    };
    let videos = |v: &[(&str, u64)]| {
        v.iter()
            .map(|(id, n)| ((*id).to_owned(), *n))
            .collect::<Vec<_>>()
    };
    let cases = [
        (
            "no filter",
            filters(vec![]),
            6,
            videos(&[("v1", 2), ("v2", 1), ("v3", 1), ("v4", 1)]),
            7,
        ),
        (
            "browser=Chrome",
            filters(vec![(Dimension::Browser, vec!["Chrome".into()])]),
            3,
            videos(&[("v1", 1), ("v2", 1)]),
            3,
        ),
        (
            "video_id=v1",
            filters(vec![(Dimension::VideoId, vec!["v1".into()])]),
            2,
            videos(&[("v1", 2)]),
            2,
        ),
        (
            "video_id=v3|v4, browser=Safari",
            filters(vec![
                (Dimension::VideoId, vec!["v3".into(), "v4".into()]),
                (Dimension::Browser, vec!["Safari".into()]),
            ]),
            2,
            videos(&[("v3", 1), ("v4", 1)]),
            1,
        ),
    ];
    for (name, f, concurrent, by_video, viewers) in cases {
        let rt = store.realtime(&f, now).expect("realtime");
        assert_eq!(
            rt.concurrent_viewers, concurrent,
            "{name}: concurrent_viewers"
        );
        assert_eq!(rt.by_video, by_video, "{name}: by_video");
        assert_eq!(rt.viewers_last_5m, viewers, "{name}: viewers_last_5m");
    }
}

/// Spans of the sessions that were open at some point of `[from, to)`:
/// closed ones by their close time, open ones by their last event; sessions
/// starting before `from` count (backends may look back as little as 24 h);
/// dimension filters apply.
pub fn session_spans_overlap_range(make: MakeStore<'_>) {
    let store = make();
    let from = T0 + 10 * HOUR;
    let to = from + HOUR;
    // (id, start, end, open, browser, inside)
    let rows: [(&str, Millis, Millis, bool, &str, bool); 9] = [
        (
            "ended-before",
            from - 2 * HOUR,
            from - 1,
            false,
            "Chrome",
            false,
        ),
        ("ended-at-from", from - HOUR, from, false, "Chrome", true),
        (
            "inside",
            from + 10 * MINUTE,
            from + 20 * MINUTE,
            false,
            "Chrome",
            true,
        ),
        (
            "across",
            from - 30 * MINUTE,
            to + 30 * MINUTE,
            false,
            "Chrome",
            true,
        ),
        (
            "open-old",
            from - 2 * HOUR,
            from + 5 * MINUTE,
            true,
            "Chrome",
            true,
        ),
        (
            "open-stale",
            from - 2 * HOUR,
            from - 1,
            true,
            "Chrome",
            false,
        ),
        ("starts-at-to", to, to + MINUTE, false, "Chrome", false),
        ("starts-before-to", to - 1, to - 1, true, "Chrome", true),
        (
            "firefox",
            from + MINUTE,
            from + 2 * MINUTE,
            false,
            "Firefox",
            true,
        ),
    ];
    let mut sessions: Vec<SessionSummary> = rows
        .iter()
        .map(|(id, start, end, open, browser, _)| {
            let mut s = summary(PROP, id, *start);
            s.open = *open;
            s.last_event_at = *end;
            s.last_received_at = *end;
            s.ended_at = (!open).then_some(*end);
            s.meta
                .dimensions
                .insert("browser".into(), (*browser).into());
            s
        })
        .collect();
    sessions.push(summary(OTHER_PROP, "elsewhere", from + MINUTE));
    put_sessions(&*store, &sessions);

    let want = |browser: Option<&str>| {
        let mut spans: Vec<(Millis, Millis)> = rows
            .iter()
            .filter(|r| r.5 && browser.is_none_or(|b| b == r.4))
            .map(|r| (r.1, r.2))
            .collect();
        spans.sort_unstable();
        spans
    };
    let mut got = store
        .session_spans(&Filters::new(PROP, from, to))
        .expect("session_spans");
    got.sort_unstable();
    assert_eq!(got, want(None), "session_spans without filters");

    let mut chrome = Filters::new(PROP, from, to);
    chrome
        .dimensions
        .push((Dimension::Browser, vec!["Chrome".into()]));
    let mut got = store.session_spans(&chrome).expect("session_spans");
    got.sort_unstable();
    assert_eq!(
        got,
        want(Some("Chrome")),
        "session_spans with browser=Chrome"
    );
}

/// Nothing of one property shows in another's reads.
pub fn properties_are_isolated(make: MakeStore<'_>) {
    let store = make();
    let mut rng = Rng(3);
    let theirs: Vec<SessionSummary> = (0..20)
        .map(|i| {
            let mut s = varied_session(&mut rng, OTHER_PROP, &format!("s{i}"), T0 + i * 1000);
            s.last_received_at = T0 + 100_000;
            s
        })
        .collect();
    put_sessions(&*store, &theirs);
    let mut w = writer(&*store);
    w.begin().expect("begin");
    assert!(insert(
        &mut *w,
        &theirs[0].key,
        &event(T0, 0, 1, EventKind::Play)
    ));
    w.commit().expect("commit");

    let mine = Filters::new(PROP, T0 - HOUR, T0 + HOUR);
    assert!(store.session(&key("s0")).expect("session").is_none());
    assert!(store.session_events(&key("s0")).expect("events").is_empty());
    let page = store
        .list_sessions(&query(mine.clone(), None, 100))
        .expect("list_sessions");
    assert!(
        page.sessions.is_empty(),
        "list_sessions leaks another property"
    );
    for group in groups() {
        let agg = store.aggregate(&mine, &group).expect("aggregate");
        assert!(agg.is_empty(), "aggregate {group:?} leaks another property");
    }
    assert!(store.session_spans(&mine).expect("spans").is_empty());
    assert_eq!(
        store.realtime(&mine, T0 + 100_000).expect("realtime"),
        crate::Realtime::default()
    );
}

/// App sessions ([`SessionKind::App`]: activity outside any playback) are
/// stored and listed like any session but count in no aggregate: not in
/// views or viewers, on the rollup path (closed, whole minutes) or the
/// session-row path (open, edge minutes, filters rollups cannot answer),
/// in no group or bucket of their own, in no span, not in realtime.
pub fn app_sessions_count_in_no_aggregate(make: MakeStore<'_>) {
    let store = make();
    // A minute boundary: [m, m + 4 min) is four whole minutes.
    let m = T0.div_euclid(MINUTE) * MINUTE + MINUTE;
    let now = m + 4 * MINUTE;
    // (id, app, open, start, last event, viewer, video)
    type Row = (
        &'static str,
        bool,
        bool,
        Millis,
        Millis,
        &'static str,
        Option<&'static str>,
    );
    let rows: [Row; 8] = [
        ("p1", false, false, m + 10_000, m + 70_000, "u1", Some("v1")),
        (
            "p2",
            false,
            false,
            m + 70_000,
            m + 100_000,
            "u2",
            Some("v1"),
        ),
        (
            "p3",
            false,
            true,
            m + 130_000,
            now - 10_000,
            "u1",
            Some("v2"),
        ),
        ("a1", true, false, m + 5_000, m + 65_000, "u3", None),
        ("a2", true, false, m + 75_000, m + 80_000, "u4", None),
        ("a3", true, true, m + 135_000, now - 5_000, "u5", None),
        // In the partial minute before `m`, and alone in the minute m + 3.
        ("a4", true, false, m - 1, m + 10_000, "u6", None),
        ("a5", true, false, m + 190_000, m + 200_000, "u7", None),
    ];
    let sessions: Vec<SessionSummary> = rows
        .iter()
        .map(|&(id, app, open, start, last, viewer, video)| {
            let mut s = summary(PROP, id, start);
            s.protocol = Protocol::UserActivity;
            s.open = open;
            s.state = if open {
                PlayerState::Playing
            } else {
                PlayerState::Ended
            };
            s.last_event_at = last;
            s.last_received_at = last;
            s.ended_at = (!open).then_some(last);
            s.meta.viewer_id = Some(viewer.to_owned());
            s.meta.video_id = video.map(str::to_owned);
            if app {
                s.meta.kind = SessionKind::App;
                s.meta.content_type = Some("app".into());
                return s;
            }
            s.meta.content_type = Some("vod".into());
            s.metrics.play_requested = true;
            match id {
                // p1 played 60 s, p3 30 s so far.
                "p1" | "p3" => {
                    s.metrics.played = true;
                    s.metrics.playing_time_ms = if open { 30_000.0 } else { 60_000.0 };
                    s.metrics.watch_time_ms = s.metrics.playing_time_ms;
                }
                // p2 failed before a frame.
                _ => s.metrics.failed = true,
            }
            s
        })
        .collect();
    put_sessions(&*store, &sessions);

    // Stored and listed: all eight, the app sessions with their kind.
    let listed = store
        .list_sessions(&query(Filters::new(PROP, m - MINUTE, now), None, 100))
        .expect("list_sessions");
    assert_eq!(
        ids(&listed.sessions),
        ["a5", "a3", "p3", "a2", "p2", "p1", "a1", "a4"],
        "app sessions are listed"
    );
    let a1 = store.session(&key("a1")).expect("session").expect("a1");
    assert_eq!(a1.meta.kind, SessionKind::App, "the kind round-trips");
    assert_eq!(a1, sessions[3]);

    let viewers: Vec<String> = (1..=7).map(|i| format!("u{i}")).collect();
    let all_of = |from: Millis, to: Millis, by_viewer: bool| {
        let mut f = Filters::new(PROP, from, to);
        if by_viewer {
            f.dimensions.push((Dimension::ViewerId, viewers.clone()));
        }
        f
    };
    // Whole minutes (closed from rollups, p3 from its row); the same with
    // partial minutes at both edges; the same from session rows only.
    for (context, f) in [
        ("whole minutes", all_of(m, now, false)),
        ("edge minutes", all_of(m - 30_000, now + 30_000, false)),
        ("session rows", all_of(m, now, true)),
    ] {
        let got = store.aggregate(&f, &GroupBy::All).expect("aggregate");
        let a = got[&GroupKey::All].metrics();
        // p1, p2, p3; viewers u1 (p1, p3) and u2 (p2).
        assert_eq!(
            (a.views, a.plays, a.unique_viewers, a.unique_plays),
            (3, 2, 2, 1),
            "{context}: views, plays, unique viewers, unique plays"
        );
        assert_eq!(a.watch_time_ms, 90_000.0, "{context}: watch time");
        // One failure among three play requests.
        assert!(
            close(a.playback_failure_percentage, 100.0 / 3.0),
            "{context}: {}",
            a.playback_failure_percentage
        );

        let by_type = store
            .aggregate(&f, &GroupBy::Dimension(Dimension::ContentType))
            .expect("aggregate");
        let views: Vec<(GroupKey, u64)> =
            by_type.iter().map(|(k, a)| (k.clone(), a.views)).collect();
        assert_eq!(
            views,
            [(GroupKey::Value("vod".into()), 3)],
            "{context}: no `app` group"
        );

        let by_minute = store
            .aggregate(&f, &GroupBy::Interval(MINUTE))
            .expect("aggregate");
        let views: Vec<(GroupKey, u64)> = by_minute
            .iter()
            .map(|(k, a)| (k.clone(), a.views))
            .collect();
        assert_eq!(
            views,
            [
                (GroupKey::Bucket(m), 1),
                (GroupKey::Bucket(m + MINUTE), 1),
                (GroupKey::Bucket(m + 2 * MINUTE), 1),
            ],
            "{context}: no bucket for the minute of a5 (or of a4) alone"
        );
    }

    let mut spans = store
        .session_spans(&Filters::new(PROP, m, m + HOUR))
        .expect("session_spans");
    spans.sort_unstable();
    assert_eq!(
        spans,
        [
            (m + 10_000, m + 70_000),
            (m + 70_000, m + 100_000),
            (m + 130_000, now - 10_000),
        ],
        "spans of p1, p2, p3 only"
    );

    // Realtime: p3 is the only open playback session; viewers heard from
    // in the last 5 min are u1 (p1, p3) and u2 (p2). Filtering on a column
    // (video_id) and on the summary (content_type) reads rows differently.
    let realtime = |dims: Vec<(Dimension, Vec<String>)>| {
        store
            .realtime(
                &Filters {
                    dimensions: dims,
                    ..Filters::new(PROP, 0, 1)
                },
                now,
            )
            .expect("realtime")
    };
    let want = crate::Realtime {
        concurrent_viewers: 1,
        by_video: vec![("v2".into(), 1)],
        viewers_last_5m: 2,
    };
    assert_eq!(realtime(vec![]), want, "realtime");
    assert_eq!(
        realtime(vec![(
            Dimension::ContentType,
            vec!["vod".into(), "app".into()]
        )]),
        want,
        "realtime, content_type=vod|app"
    );
    assert_eq!(
        realtime(vec![(Dimension::ContentType, vec!["app".into()])]),
        crate::Realtime::default(),
        "realtime, content_type=app"
    );
    assert_eq!(
        realtime(vec![(Dimension::ViewerId, vec!["u5".into()])]),
        crate::Realtime::default(),
        "realtime, viewer_id=u5 (a3's only)"
    );
}
