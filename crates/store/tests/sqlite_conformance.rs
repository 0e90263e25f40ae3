//! The storage conformance suite against [`SqliteStore`], plus what only
//! the SQLite backend promises: its file survives a reopen, it runs in WAL
//! mode, it refuses a schema newer than itself and migrates an older one.

use playhead_model::{Event, EventKind, Millis, PlayerState, Protocol, SessionKey, SessionMeta};
use playhead_model::{SessionKind, SessionMetrics, SessionSummary};
use playhead_store::sqlite::{DB_FILE, SCHEMA_VERSION};
use playhead_store::{
    conformance, Filters, FsyncPolicy, GroupBy, GroupKey, SessionQuery, SqliteStore, Store,
};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const T0: Millis = 1_700_000_000_000;

#[test]
fn sqlite_passes_the_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    let make = || -> Box<dyn Store> {
        let dir = root
            .path()
            .join(format!("store-{}", n.fetch_add(1, Ordering::Relaxed)));
        Box::new(SqliteStore::open(&dir, FsyncPolicy::Always).unwrap())
    };
    conformance::run_all(&make);
}

fn session(id: &str, started_at: Millis, open: bool) -> SessionSummary {
    SessionSummary {
        key: SessionKey::new("p", id),
        protocol: Protocol::Native,
        meta: SessionMeta {
            video_id: Some("v1".into()),
            viewer_id: Some(format!("viewer-{id}")),
            ..SessionMeta::default()
        },
        state: if open {
            PlayerState::Playing
        } else {
            PlayerState::Ended
        },
        open,
        started_at,
        last_event_at: started_at + 5_000,
        last_received_at: started_at + 5_000,
        ended_at: (!open).then_some(started_at + 5_000),
        metrics: SessionMetrics {
            played: true,
            play_requested: true,
            watch_time_ms: 5_000.0,
            playing_time_ms: 5_000.0,
            ..SessionMetrics::default()
        },
    }
}

/// One closed session (in the rollups) and one open one, with events.
fn fill(store: &SqliteStore) {
    let mut w = store.writer().unwrap();
    w.begin().unwrap();
    for (s, dedup) in [
        (session("closed", T0, false), 1),
        (session("open", T0, true), 2),
    ] {
        let mut e = Event::new(T0, T0, EventKind::Play);
        e.dedup_key = dedup;
        assert!(w.insert_event(&s.key, s.protocol, &e).unwrap());
        w.put_session(&s).unwrap();
        if !s.open {
            w.add_to_rollup(&s).unwrap();
        }
    }
    w.commit().unwrap();
}

fn count(db: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .unwrap()
}

#[test]
fn reopening_keeps_sessions_events_and_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    fill(&store);
    let before = store.session(&SessionKey::new("p", "closed")).unwrap();
    drop(store);

    let db = dir.path().join(DB_FILE);
    assert_eq!(count(&db, "event_blocks"), 1, "one commit group, one block");
    assert_eq!(count(&db, "event_log"), 0, "written by version 4 only");
    assert_eq!(count(&db, "sessions"), 2);
    assert_eq!(count(&db, "rollup_pending"), 1);

    let store = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    assert_eq!(
        store.session(&SessionKey::new("p", "closed")).unwrap(),
        before
    );
    assert_eq!(
        store
            .session_events(&SessionKey::new("p", "open"))
            .unwrap()
            .len(),
        1
    );
    let open = store.open_sessions().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].summary.key.session_id, "open");
    assert_eq!(open[0].events.len(), 1);
    // Whole minutes around T0: the closed session is counted from its row
    // while queued, then from the rollups once folded by the reopened store.
    let minute = T0.div_euclid(60_000) * 60_000;
    let range = Filters::new("p", minute - 60_000, minute + 120_000);
    assert_eq!(
        store.aggregate(&range, &GroupBy::All).unwrap()[&GroupKey::All].views,
        2
    );
    assert_eq!(store.writer().unwrap().fold_rollups(100).unwrap(), 1);
    assert_eq!(count(&db, "rollup_pending"), 0);
    assert_eq!(
        store.aggregate(&range, &GroupBy::All).unwrap()[&GroupKey::All].views,
        2
    );
    // A dedup key stored before the reopen still dedups.
    let mut w = store.writer().unwrap();
    let mut e = Event::new(T0, T0, EventKind::Play);
    e.dedup_key = 1;
    assert!(!w
        .insert_event(&SessionKey::new("p", "closed"), Protocol::Native, &e)
        .unwrap());
}

#[test]
fn the_database_is_in_wal_mode_with_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nested/data"), FsyncPolicy::Always).unwrap();
    assert!(store.path().ends_with(format!("nested/data/{DB_FILE}")));
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert!(store.is_writable());
}

#[test]
fn fsync_off_opens_and_stores() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
    fill(&store);
    assert_eq!(store.open_sessions().unwrap().len(), 1);
    assert!(store.is_writable());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

/// A folded session is in a row of every tier span for all sessions and
/// for each dimension it has a value of, and in none for the others.
#[test]
fn a_folded_session_has_a_row_per_span_and_dimension_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
    fill(&store);
    store.writer().unwrap().fold_rollups(100).unwrap();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let rows: Vec<(i64, String, i64, String)> = conn
        .prepare("SELECT span, dim, bucket, value FROM tiers ORDER BY span, dim")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut want = Vec::new();
    for span in [60_000, 3_600_000, 86_400_000] {
        let bucket = T0.div_euclid(span) * span;
        for (dim, value) in [("", ""), ("protocol", "native"), ("video_id", "v1")] {
            want.push((span, dim.to_owned(), bucket, value.to_owned()));
        }
    }
    assert_eq!(rows, want);
}

/// A version-2 database (per-minute `rollups`) opens: the old table is
/// dropped, its closed sessions are queued for the tiers and still count
/// once, before and after folding.
#[test]
fn a_version_2_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    fill(&SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap());
    let db = dir.path().join(DB_FILE);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DELETE FROM rollup_pending;
         CREATE TABLE rollups (property TEXT, minute INTEGER, agg TEXT);
         INSERT INTO rollups VALUES ('p', 0, '{}');
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    let tables: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'rollups'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    assert_eq!(count(&db, "rollup_pending"), 1);
    let minute = T0.div_euclid(60_000) * 60_000;
    let range = Filters::new("p", minute - 60_000, minute + 120_000);
    assert_eq!(
        store.aggregate(&range, &GroupBy::All).unwrap()[&GroupKey::All].views,
        2
    );
    assert_eq!(store.writer().unwrap().fold_rollups(100).unwrap(), 1);
    assert_eq!(
        store.aggregate(&range, &GroupBy::All).unwrap()[&GroupKey::All].views,
        2
    );
}

/// Readers use their own connections: an open write transaction neither
/// blocks them nor shows them its writes.
#[test]
fn reads_see_only_committed_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
    let key = SessionKey::new("p", "s");
    let mut w = store.writer().unwrap();
    w.begin().unwrap();
    let e = Event::new(T0, T0, EventKind::Play);
    assert!(w.insert_event(&key, Protocol::Native, &e).unwrap());
    w.put_session(&session("s", T0, true)).unwrap();
    assert!(store.session_events(&key).unwrap().is_empty());
    assert!(store.session(&key).unwrap().is_none());
    assert!(store.open_sessions().unwrap().is_empty());
    w.commit().unwrap();
    assert_eq!(store.session_events(&key).unwrap(), vec![e]);
    assert!(store.session(&key).unwrap().is_some());
}

/// Open sessions older than the 24 h look-back still have a span.
#[test]
fn spans_include_long_open_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
    let from = T0 + 48 * 3_600_000;
    let mut long = session("long", T0, true);
    long.last_event_at = from + 1000;
    let mut w = store.writer().unwrap();
    w.begin().unwrap();
    w.put_session(&long).unwrap();
    w.commit().unwrap();
    let spans = store
        .session_spans(&Filters::new("p", from, from + 3_600_000))
        .unwrap();
    assert_eq!(spans, vec![(T0, from + 1000)]);
}

/// A version-1 database (no `sessions.playback` column) opens: the column
/// is added, the sessions already there count as playback sessions, and an
/// app session stored afterwards is listed but counts in no aggregate.
#[test]
fn a_version_1_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    fill(&SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch("ALTER TABLE sessions DROP COLUMN playback; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);

    let store = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let playback: Vec<i64> = conn
        .prepare("SELECT playback FROM sessions ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(playback, [1, 1]);

    let mut app = session("app:a1", T0 + 1_000, true);
    app.meta.kind = SessionKind::App;
    app.metrics = SessionMetrics::default();
    let mut w = store.writer().unwrap();
    w.begin().unwrap();
    w.put_session(&app).unwrap();
    w.commit().unwrap();
    // The closed session from its rollup, the open one from its row; not the app session.
    let minute = T0.div_euclid(60_000) * 60_000;
    let range = Filters::new("p", minute - 60_000, minute + 120_000);
    let agg = store.aggregate(&range, &GroupBy::All).unwrap();
    assert_eq!(agg[&GroupKey::All].views, 2);
    let listed = store
        .list_sessions(&SessionQuery {
            filters: range,
            failed: None,
            limit: 10,
            cursor: None,
        })
        .unwrap();
    assert_eq!(listed.sessions.len(), 3);
}

/// Summaries are stored as MessagePack BLOBs; a summary stored as JSON text
/// by an earlier build reads back the same, in a single read and in lists
/// and aggregates.
#[test]
fn summaries_stored_as_json_by_earlier_builds_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
    fill(&store);
    let key = SessionKey::new("p", "closed");
    let stored = store.session(&key).unwrap().unwrap();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let kinds: Vec<String> = conn
        .prepare("SELECT typeof(summary) FROM sessions ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, ["blob", "blob"]);
    conn.execute(
        "UPDATE sessions SET summary = ?1 WHERE id = 'closed'",
        [serde_json::to_string(&stored).unwrap()],
    )
    .unwrap();
    assert_eq!(store.session(&key).unwrap().as_ref(), Some(&stored));
    let minute = T0.div_euclid(60_000) * 60_000;
    let range = Filters::new("p", minute - 60_000, minute + 120_000);
    let listed = store
        .list_sessions(&SessionQuery {
            filters: range.clone(),
            failed: None,
            limit: 10,
            cursor: None,
        })
        .unwrap();
    assert!(listed.sessions.contains(&stored));
    assert_eq!(
        store.aggregate(&range, &GroupBy::All).unwrap()[&GroupKey::All].views,
        2
    );
}

/// A version-3 database (events in `events`, under a unique index) opens:
/// its events move into the event log with their ids, chained per session,
/// each session row gets its head, and they read back, deduplicate and
/// chain on as if written by this build.
#[test]
fn a_version_3_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    fill(&store);
    let (open, closed) = (SessionKey::new("p", "open"), SessionKey::new("p", "closed"));
    let mut w = store.writer().unwrap();
    w.begin().unwrap();
    for (key, dedup) in [(&open, 5), (&closed, 6), (&open, 7)] {
        let mut e = Event::new(T0 + dedup as Millis, T0, EventKind::Heartbeat);
        e.dedup_key = dedup;
        assert!(w.insert_event(key, Protocol::Native, &e).unwrap());
    }
    w.commit().unwrap();
    drop(w);
    let mut stored: Vec<(SessionKey, Event)> = Vec::new();
    for key in [&open, &closed] {
        for e in store.session_events(key).unwrap() {
            stored.push((key.clone(), e));
        }
    }
    drop(store);
    // Back to the version-3 layout, as that build left it: ids in the
    // order the events came.
    let arrival = [
        (&closed, 1),
        (&open, 2),
        (&open, 5),
        (&closed, 6),
        (&open, 7),
    ];
    let db = dir.path().join(DB_FILE);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE events (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             property TEXT NOT NULL, session_id TEXT NOT NULL, protocol TEXT NOT NULL,
             dedup_key INTEGER NOT NULL, t INTEGER NOT NULL, ord INTEGER NOT NULL,
             type TEXT NOT NULL, body TEXT NOT NULL,
             UNIQUE (property, session_id, dedup_key));
         DROP TABLE event_log;
         DROP TABLE event_blocks;
         DROP TABLE log_mark;
         ALTER TABLE sessions DROP COLUMN log_head;
         PRAGMA user_version = 3;",
    )
    .unwrap();
    for (key, dedup) in arrival {
        let (_, e) = stored
            .iter()
            .find(|(k, e)| k == key && e.dedup_key == dedup)
            .unwrap();
        conn.execute(
            "INSERT INTO events (property, session_id, protocol, dedup_key, t, ord, type, body)
             VALUES (?1, ?2, 'native', ?3, ?4, 0, 'play', ?5)",
            rusqlite::params![
                key.property,
                key.session_id,
                dedup as i64,
                e.t,
                serde_json::to_string(e).unwrap()
            ],
        )
        .unwrap();
    }
    drop(conn);

    let store = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let old: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0, "the old table is dropped");
    let chain: Vec<(i64, Option<i64>, String)> = conn
        .prepare("SELECT id, prev, session_id FROM event_log ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        (1, None, "closed"),
        (2, None, "open"),
        (3, Some(2), "open"),
        (4, Some(1), "closed"),
        (5, Some(3), "open"),
    ]
    .map(|(id, prev, s)| (id, prev, s.to_owned()));
    assert_eq!(chain, expected);
    let heads: Vec<(String, i64)> = conn
        .prepare("SELECT id, log_head FROM sessions ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(heads, [("closed".into(), 4), ("open".into(), 5)]);
    let mark: i64 = conn
        .query_row("SELECT upto FROM log_mark", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mark, 5);

    let dedups = |key: &SessionKey| -> Vec<u64> {
        let events = store.session_events(key).unwrap();
        events.iter().map(|e| e.dedup_key).collect()
    };
    assert_eq!(dedups(&open), [2, 5, 7]);
    assert_eq!(dedups(&closed), [1, 6]);
    assert_eq!(store.open_sessions().unwrap()[0].events.len(), 3);
    let mut w = store.writer().unwrap();
    w.begin().unwrap();
    let mut e = Event::new(T0 + 5, T0, EventKind::Heartbeat);
    e.dedup_key = 5;
    assert!(!w.insert_event(&open, Protocol::Native, &e).unwrap());
    let mut e = Event::new(T0 + 8, T0, EventKind::Heartbeat);
    e.dedup_key = 8;
    assert!(w.insert_event(&open, Protocol::Native, &e).unwrap());
    w.commit().unwrap();
    assert_eq!(
        dedups(&open),
        [2, 5, 7, 8],
        "a block's event chained to a row"
    );
    std::mem::forget(w);
    drop(store);
    // Opened again without the writer's stop: the lagging head, in a
    // block above the mark, is found again.
    let store = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    let events = store.session_events(&open).unwrap();
    let stored: Vec<u64> = events.iter().map(|e| e.dedup_key).collect();
    assert_eq!(stored, [2, 5, 7, 8]);
    let mut w = store.writer().unwrap();
    w.begin().unwrap();
    for dedup in [2, 8] {
        let mut e = Event::new(T0 + dedup as Millis, T0, EventKind::Heartbeat);
        e.dedup_key = dedup;
        assert!(!w.insert_event(&open, Protocol::Native, &e).unwrap());
    }
    w.commit().unwrap();
}
