//! The embedded backend: one SQLite database, `playhead.sqlite`, in the data
//! directory, in WAL mode (bundled SQLite through `rusqlite`).
//!
//! Tables (schema version [`SCHEMA_VERSION`], kept in `PRAGMA user_version`):
//! - `event_blocks`: the stored events, one row per commit group, each
//!   event a record (the canonical [`Event`] as JSON, chained to its
//!   session's previous event) in the row's blob (schema version 5);
//!   `event_log`: one row per event, as builds of version 4 wrote them
//!   (older databases' `events` table moves into it when opened), still
//!   read; `log_mark`. How sessions' events are found and deduplicated
//!   without a per-session index: `event_log.rs`. Events are sorted in
//!   Rust by [`Event::sort_key`] after loading.
//! - `sessions`: one row per session, its latest [`SessionSummary`] in
//!   `summary` (MessagePack; JSON text in rows older builds wrote), plus
//!   the columns queries filter on. `playback` is 0 for a session that is
//!   not a playback session ([`SessionSummary::is_playback`]):
//!   aggregate, span and realtime reads skip those rows, and such a session
//!   is never added to the rollups (schema version 2; opening a version-1
//!   database adds the column, its rows reading as playback sessions, as
//!   they were counted before). `log_head` is the position of the
//!   session's newest event in the log as of the row's write.
//! - `tiers`: rollups of closed playback sessions, by session start. One
//!   [`Aggregate`] (binary: `sums` and `sketches`, [`Aggregate::encode`])
//!   per property × span (a minute, an hour, a day: [`TIER_SPANS`]) ×
//!   bucket × dimension: `dim = ''` holds every session, and each of
//!   [`ROLLUP_DIMENSIONS`] has a row per value (a session without a value
//!   is in no row of that dimension). Rows are [`Aggregate::compact`]ed.
//! - `rollup_pending`: closed playback sessions not yet in `tiers`.
//!   [`StoreWriter::add_to_rollup`] only appends here, in the transaction
//!   that closes the session; [`StoreWriter::fold_rollups`] later folds a
//!   batch into `tiers` and deletes it from here in one transaction, so a
//!   session is always counted exactly once, from its row while pending and
//!   from `tiers` after (schema version 3; opening an older database queues
//!   every closed playback session for folding and drops its old
//!   per-minute `rollups` table).
//!
//! Connections: the writer owns one connection; reads take one from a small
//! pool (opened on demand, `query_only`), so reads never wait for the
//! writer (WAL) and see only committed data. Reads made of several
//! statements run in one read transaction, one snapshot.
//!
//! Aggregate queries count playback sessions only, on both paths below.
//!
//! Aggregate queries that the tiers can answer (at most one filtered
//! dimension besides `property`, grouped by nothing, by that dimension or by
//! whole minutes) merge tier rows for the whole minutes inside `[from, to)`,
//! the fewest rows that cover them (days, then hours, then minutes at the
//! edges; only spans dividing the interval of a timeseries), and read
//! session rows for closed sessions in the partial minutes at either edge,
//! for pending ones and for open ones. Any other query reads session rows.
//! Both give the same numbers (the conformance suite checks it).

use crate::concurrency::{self, Change};
use crate::event_log::{self, Chains, LogState};
use crate::{
    Filters, FsyncPolicy, GroupBy, GroupKey, OpenSessionRecord, Realtime, Result, SessionPage,
    SessionQuery, SessionStatus, Store, StoreError, StoreWriter, Syncer, ROLLUP_DIMENSIONS,
};
use playhead_engine::{Aggregate, Parts};
use playhead_model::{Dimension, Event, Millis, Protocol, SessionKey, SessionSummary};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "playhead.sqlite";

/// The database's WAL file in `dir`.
fn wal_path(dir: &Path) -> PathBuf {
    dir.join(format!("{DB_FILE}-wal"))
}

/// The writer checkpoints the WAL into the database once it holds this many
/// pages (≈ 40 MB; SQLite's default is 1,000). A checkpoint fsyncs the
/// database, and the pages it writes are the hot ones (session rows, their
/// indexes): checkpointing ten times less often writes each hot page ten
/// times less often, and the writer's next writes wait less on their
/// write-back (P6 in bench/RESULTS.md).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;
/// The schema this build writes, stored in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 5;

const MINUTE_MS: Millis = 60_000;
const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 86_400_000;
/// The bucket lengths of the rollup tiers, longest first.
pub const TIER_SPANS: [Millis; 3] = [DAY_MS, HOUR_MS, MINUTE_MS];
/// How long a statement waits for a lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle read connections kept; more are opened under load and then closed.
const MAX_IDLE_READERS: usize = 8;
const STATEMENT_CACHE: usize = 64;
/// `session_spans` reads sessions starting this long before `from` (plus
/// every still-open one, however old).
const SPAN_LOOKBACK_MS: Millis = 24 * 3600 * 1000;
const CONCURRENT_WINDOW_MS: Millis = 60_000;
const VIEWERS_WINDOW_MS: Millis = 300_000;
const MAX_PAGE: usize = 1000;
/// The sessions of `rollup_pending`, pending first so that the join is
/// driven by the (few) pending rows, not by a range of `sessions`.
const PENDING_SESSIONS: &str = "rollup_pending CROSS JOIN sessions ON property = prop AND id = sid";

/// The tier `dim` names, in the order of [`ROLLUP_DIMENSIONS`].
const ROLLUP_COLUMNS: [&str; 6] = [
    "protocol",
    "video_id",
    "content_type",
    "browser",
    "os",
    "device_type",
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    property TEXT NOT NULL,
    id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    video_id TEXT,
    viewer_id TEXT,
    open INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    last_event_at INTEGER NOT NULL,
    last_received_at INTEGER NOT NULL,
    ended_at INTEGER,
    -- MessagePack (a BLOB), or JSON text from builds before it.
    summary TEXT NOT NULL,
    -- 0: not a playback session (an app session): in no aggregate.
    playback INTEGER NOT NULL DEFAULT 1,
    -- The position of the session's newest event in the log as of this row's write.
    log_head INTEGER,
    PRIMARY KEY (property, id)
);
-- With id, pages of list_sessions come out of the index in order.
CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions (property, started_at, id);
-- (Version 2 had `sessions_by_open (property, open, last_received_at)`: no
-- query used it, and every session upsert paid for it.)
DROP INDEX IF EXISTS sessions_by_open;
-- Realtime reads closed sessions by when they last received an event, and
-- open ones through `open_sessions_by_start`. (Earlier builds indexed every
-- session here, and each event moved its session's entry: a B-tree delete
-- and insert per event, bench/RESULTS.md.)
DROP INDEX IF EXISTS sessions_by_received;
CREATE INDEX IF NOT EXISTS closed_sessions_by_received ON sessions (property, last_received_at)
    WHERE open = 0;
-- Open sessions are few: a partial index finds them without a scan, for
-- open_sessions() at start-up and the open part of aggregate queries.
CREATE INDEX IF NOT EXISTS open_sessions_by_start ON sessions (property, started_at) WHERE open = 1;
-- Closed playback sessions not yet folded into `tiers` (by the writer's
-- `fold_rollups`); queries read their session rows meanwhile.
CREATE TABLE IF NOT EXISTS rollup_pending (
    seq INTEGER PRIMARY KEY,
    prop TEXT NOT NULL,
    sid TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tiers (
    property TEXT NOT NULL,
    span INTEGER NOT NULL,
    dim TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    value TEXT NOT NULL,
    sums BLOB NOT NULL,
    sketches BLOB NOT NULL,
    UNIQUE (property, span, dim, bucket, value)
);
-- For filters on a dimension's values.
CREATE INDEX IF NOT EXISTS tiers_by_value ON tiers (property, span, dim, value, bucket);
-- Concurrent viewers of folded sessions: per span and bucket, the sum of
-- the open-count changes inside and the highest running sum from the
-- bucket's start (crate::concurrency). Minute rows also keep their changes.
CREATE TABLE IF NOT EXISTS concurrency (
    property TEXT NOT NULL,
    span INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    delta INTEGER NOT NULL,
    peak INTEGER NOT NULL,
    changes BLOB,
    PRIMARY KEY (property, span, bucket)
);
";

/// The embedded SQLite store. Cheap to share (`Arc<SqliteStore>`): reads
/// take a pooled connection, writes go through [`Store::writer`].
#[derive(Debug)]
pub struct SqliteStore {
    dir: PathBuf,
    path: PathBuf,
    fsync: FsyncPolicy,
    idle_readers: Mutex<Vec<Connection>>,
    ads: std::sync::Arc<crate::SqliteAdStore>,
    pub(crate) log: Arc<LogState>,
}

impl SqliteStore {
    /// Open (or create) the store in `dir`, creating the directory, the
    /// database file and its schema as needed.
    pub fn open(dir: &Path, fsync: FsyncPolicy) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Other(format!(
                "{} could not switch to WAL (journal mode `{mode}`)",
                path.display()
            )));
        }
        create_schema(&mut conn)?;
        let log = Arc::new(LogState::recover(&conn)?);
        configure_reader(&conn)?;
        Ok(SqliteStore {
            dir: dir.to_owned(),
            path,
            fsync,
            idle_readers: Mutex::new(vec![conn]),
            ads: std::sync::Arc::new(crate::SqliteAdStore::open(dir, fsync)?),
            log,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's connection ([`Store::writer`]).
    pub(crate) fn open_writer(&self) -> Result<SqliteWriter> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let synchronous = match self.fsync {
            FsyncPolicy::Always => "FULL",
            FsyncPolicy::Off => "OFF",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(SqliteWriter {
            conn,
            fsync: self.fsync,
            dir: self.dir.clone(),
            chains: Chains::new(&self.log),
            log: self.log.clone(),
            _checkpointer: Checkpointer::start(&self.path, self.fsync)?,
        })
    }

    /// Run `f` on a pooled read connection. The pool's lock is held only to
    /// pop and push a connection.
    fn with_reader<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let idle = self
            .idle_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let out = f(&mut conn);
        let mut idle = self
            .idle_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }
}

fn create_schema(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Other(format!(
            "database schema version {version} is newer than this build's ({SCHEMA_VERSION})"
        )));
    }
    // Versions 1 and 2 kept per-minute `rollups` of every dimension's
    // combination: queue their closed sessions for the tiers instead.
    let old_rollups: bool = tx.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'rollups'",
        [],
        |row| row.get(0),
    )?;
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(crate::event_log::SCHEMA)?;
    // `CREATE TABLE IF NOT EXISTS` keeps an existing table as it is: version
    // 1 had no `playback` column, versions 1 to 3 no `log_head`.
    let has_column = |name: &str| -> rusqlite::Result<bool> {
        tx.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('sessions') WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
    };
    if !has_column("playback")? {
        tx.execute_batch("ALTER TABLE sessions ADD COLUMN playback INTEGER NOT NULL DEFAULT 1")?;
    }
    if !has_column("log_head")? {
        tx.execute_batch("ALTER TABLE sessions ADD COLUMN log_head INTEGER")?;
    }
    migrate_events(&tx)?;
    if old_rollups {
        tx.execute_batch(
            "INSERT INTO rollup_pending (prop, sid)
                 SELECT property, id FROM sessions WHERE open = 0 AND playback = 1
                 ORDER BY started_at;
             DROP TABLE rollups;",
        )?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Versions 1 to 3 kept events in `events`, with a unique index on
/// `(property, session_id, dedup_key)`: move them into `event_log`, same
/// ids, each chained to its session's previous one, and set every session
/// row's head. Every row is then up to date: the mark is the last event.
fn migrate_events(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    let old: bool = tx.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
        [],
        |row| row.get(0),
    )?;
    if !old {
        return Ok(());
    }
    let n: i64 = tx.query_row("SELECT count(*) FROM events", [], |row| row.get(0))?;
    tracing::info!(
        events = n,
        "moving stored events into the event log (schema version 4): every event is read and written once"
    );
    let started = std::time::Instant::now();
    tx.execute_batch(
        "INSERT INTO event_log (id, prev, property, session_id, dedup_key, t, body)
             SELECT id, lag(id) OVER (PARTITION BY property, session_id ORDER BY id),
                    property, session_id, dedup_key, t, body
             FROM events ORDER BY id;
         UPDATE sessions SET log_head = heads.head
             FROM (SELECT property, session_id, max(id) AS head FROM events
                   GROUP BY property, session_id) AS heads
             WHERE sessions.property = heads.property AND sessions.id = heads.session_id;
         DROP TABLE events;
         UPDATE log_mark SET upto = (SELECT coalesce(max(id), 0) FROM event_log);",
    )?;
    tracing::info!(
        events = n,
        seconds = started.elapsed().as_secs_f64(),
        "stored events moved into the event log"
    );
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    configure_reader(&conn)?;
    Ok(conn)
}

/// Read connections are opened read-write (a read-only one cannot create
/// the WAL index if it is missing) but refuse to write.
fn configure_reader(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

impl Store for SqliteStore {
    fn writer(&self) -> Result<Box<dyn StoreWriter>> {
        Ok(Box::new(self.open_writer()?))
    }

    fn session(&self, key: &SessionKey) -> Result<Option<SessionSummary>> {
        self.with_reader(|conn| load_session(conn, key))
    }

    fn session_events(&self, key: &SessionKey) -> Result<Vec<Event>> {
        // Before the read begins: its snapshot then holds that head.
        let lagging = self.log.lagging_head(key);
        self.with_reader(|conn| event_log::load_events(conn, key, lagging))
    }

    /// Keyset pagination on (started_at, id); the cursor is the last
    /// listed session's, hex-encoded. A `limit` outside 1..=1000 is clamped
    /// into it. Filters on columns run in SQL, the others on each row.
    fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let f = &query.filters;
        let mut sql = SessionSql::new("summary", f);
        sql.and("started_at >= ? AND started_at < ?", [f.from, f.to]);
        if let Some((started_at, id)) = after {
            sql.cond
                .push_str(" AND (started_at < ? OR (started_at = ? AND id < ?))");
            sql.params.extend([
                Value::Integer(started_at),
                Value::Integer(started_at),
                Value::Text(id),
            ]);
        }
        if let Some(failed) = query.failed {
            sql.and("failed = ?", [i64::from(failed)]);
        }
        sql.cond.push_str(" ORDER BY started_at DESC, id DESC");
        self.with_reader(|conn| {
            let mut sessions = Vec::new();
            let mut more = false;
            sql.each_summary(conn, |s| {
                if !f.matches(&s) {
                    return Ok(true);
                }
                if sessions.len() == limit {
                    more = true;
                    return Ok(false);
                }
                sessions.push(s);
                Ok(true)
            })?;
            let next_cursor = more
                .then(|| sessions.last())
                .flatten()
                .map(|s| encode_cursor(s.started_at, &s.key.session_id));
            Ok(SessionPage {
                sessions,
                next_cursor,
            })
        })
    }

    fn open_sessions(&self) -> Result<Vec<OpenSessionRecord>> {
        // The lagging heads before the read begins: its snapshot holds them.
        let lagging = self.log.lagging_heads();
        self.with_reader(|conn| {
            let tx = conn.transaction()?;
            let summaries = {
                let mut stmt = tx.prepare_cached("SELECT summary FROM sessions WHERE open = 1")?;
                let rows = stmt.query_map([], |row| row.get::<_, StoredSummary>(0))?;
                let mut summaries = Vec::new();
                for stored in rows {
                    summaries.push(stored?.0);
                }
                summaries.sort_by(|a, b| a.key.cmp(&b.key));
                summaries
            };
            let mut out = Vec::with_capacity(summaries.len());
            for summary in summaries {
                let head = lagging(&summary.key);
                let events = event_log::load_events(&tx, &summary.key, head)?;
                out.push(OpenSessionRecord { summary, events });
            }
            Ok(out)
        })
    }

    fn aggregate_parts(
        &self,
        filters: &Filters,
        group: &GroupBy,
        parts: Parts,
    ) -> Result<BTreeMap<GroupKey, Aggregate>> {
        if let GroupBy::Interval(i) = group {
            crate::check_interval(*i)?;
        }
        self.with_reader(|conn| {
            // One snapshot: a session closing or folded between the tier
            // read and the session-row reads would otherwise be missed or
            // counted twice.
            let tx = conn.transaction()?;
            let mut out = BTreeMap::new();
            let (from, to) = (filters.from, filters.to);
            let plan = tier_plan(filters, group).zip(whole_minutes(filters));
            // Session rows next to the tiers: closed ones in the partial
            // minutes at the edges, closed ones not yet folded, open ones.
            let closed = "open = 0 AND started_at >= ? AND started_at < ?";
            let session_reads = match plan {
                Some((plan, (lo, hi))) => {
                    merge_tiers(&tx, filters, group, &plan, lo, hi, parts, &mut out)?;
                    vec![
                        ("sessions", closed, [from, lo]),
                        ("sessions", closed, [hi, to]),
                        (PENDING_SESSIONS, closed, [lo, hi]),
                        (
                            "sessions",
                            "open = 1 AND started_at >= ? AND started_at < ?",
                            [from, to],
                        ),
                    ]
                }
                None => vec![("sessions", "started_at >= ? AND started_at < ?", [from, to])],
            };
            for (table, cond, params) in session_reads {
                let mut sql = SessionSql::playback("summary", filters);
                sql.and(cond, params);
                sql.each_summary_from(&tx, table, |s| {
                    if filters.matches(&s) {
                        add_grouped(&mut out, group, &s);
                    }
                    Ok(true)
                })?;
            }
            Ok(out)
        })
    }

    fn session_spans(&self, filters: &Filters) -> Result<Vec<(Millis, Millis)>> {
        let lookback = filters.from.saturating_sub(SPAN_LOOKBACK_MS);
        self.with_reader(|conn| {
            let tx = conn.transaction()?;
            let mut spans = Vec::new();
            let mut add = |s: SessionSummary| {
                let end = if s.open {
                    s.last_event_at
                } else {
                    s.ended_at.unwrap_or(s.last_event_at)
                };
                if dimensions_match(filters, &s) && s.started_at < filters.to && end >= filters.from
                {
                    spans.push((s.started_at, end));
                }
                Ok(true)
            };
            let mut recent = SessionSql::playback("summary", filters);
            recent.and("started_at >= ? AND started_at < ?", [lookback, filters.to]);
            recent.each_summary(&tx, &mut add)?;
            // Open sessions older than the lookback (a long live stream).
            let mut old_open = SessionSql::playback("summary", filters);
            old_open.and("open = 1 AND started_at < ?", [lookback]);
            old_open.each_summary(&tx, &mut add)?;
            spans.sort_unstable();
            Ok(spans)
        })
    }

    fn concurrency(&self, filters: &Filters, start: Millis, interval: Millis) -> Result<Vec<u64>> {
        crate::check_interval(interval)?;
        // Kept by property only: with any other filter (or a property
        // filter leaving this one out), from every session's span.
        if !filters.dimensions.is_empty() {
            return crate::concurrency_from_spans(self, filters, start, interval);
        }
        self.with_reader(|conn| {
            let tx = conn.transaction()?;
            // The spans the `concurrency` rows do not hold yet: open
            // sessions (to their last event) and closed ones not yet folded.
            let mut spans = Vec::new();
            for sql in [
                "SELECT started_at, last_event_at FROM sessions
                 WHERE property = ?1 AND playback = 1 AND open = 1"
                    .to_owned(),
                format!(
                    "SELECT started_at, COALESCE(ended_at, last_event_at) FROM {PENDING_SESSIONS}
                     WHERE property = ?1 AND playback = 1 AND open = 0"
                ),
            ] {
                let mut stmt = tx.prepare_cached(&sql)?;
                let rows = stmt.query_map([&filters.property], |r| Ok((r.get(0)?, r.get(1)?)))?;
                for span in rows {
                    spans.push(span?);
                }
            }
            let extra = concurrency::changes(spans);
            tier_concurrency(
                &tx,
                &filters.property,
                &extra,
                filters.from,
                start,
                filters.to,
                interval,
            )
        })
    }

    fn realtime(&self, filters: &Filters, now: Millis) -> Result<Realtime> {
        // Filters on session columns are answered in SQL; any other
        // dimension needs the summary.
        let needs_summary = filters
            .dimensions
            .iter()
            .any(|(dim, _)| session_column(dim).is_none());
        let columns = if needs_summary {
            "open, last_received_at, video_id, viewer_id, summary"
        } else {
            "open, last_received_at, video_id, viewer_id, NULL"
        };
        // Open and closed sessions each through their own partial index.
        let since = now.saturating_sub(VIEWERS_WINDOW_MS);
        let mut open = SessionSql::playback(columns, filters);
        open.and("open = 1 AND last_received_at >= ?", [since]);
        let mut closed = SessionSql::playback(columns, filters);
        closed.and("open = 0 AND last_received_at >= ?", [since]);
        let sql = format!(
            "{} UNION ALL {}",
            open.sql_from("sessions INDEXED BY open_sessions_by_start"),
            closed.sql_from("sessions INDEXED BY closed_sessions_by_received")
        );
        let concurrent_since = now.saturating_sub(CONCURRENT_WINDOW_MS);
        self.with_reader(|conn| {
            let mut concurrent = 0u64;
            let mut by_video: BTreeMap<String, u64> = BTreeMap::new();
            let mut viewers: BTreeSet<String> = BTreeSet::new();
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows =
                stmt.query(params_from_iter(open.params.iter().chain(&closed.params)))?;
            while let Some(row) = rows.next()? {
                if let Some(StoredSummary(s)) = row.get(4)? {
                    if !dimensions_match(filters, &s) {
                        continue;
                    }
                }
                let open: bool = row.get(0)?;
                let last_received_at: Millis = row.get(1)?;
                if let Some(viewer) = row.get::<_, Option<String>>(3)? {
                    viewers.insert(viewer);
                }
                if open && last_received_at >= concurrent_since {
                    concurrent += 1;
                    if let Some(video) = row.get::<_, Option<String>>(2)? {
                        *by_video.entry(video).or_default() += 1;
                    }
                }
            }
            let mut by_video: Vec<(String, u64)> = by_video.into_iter().collect();
            by_video.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Ok(Realtime {
                concurrent_viewers: concurrent,
                by_video,
                viewers_last_5m: viewers.len() as u64,
            })
        })
    }

    /// Cheap: the database file (and its WAL, when present) can be opened
    /// for writing — false on a read-only mount, a removed directory or lost
    /// permissions. A full disk shows as failed commits, not here.
    fn is_writable(&self) -> bool {
        let writable = |p: &Path| std::fs::OpenOptions::new().append(true).open(p).map(drop);
        let wal = wal_path(&self.dir);
        self.dir.is_dir()
            && writable(&self.path).is_ok()
            && (!wal.exists() || writable(&wal).is_ok())
    }

    fn ads(&self) -> std::sync::Arc<dyn crate::AdStore> {
        self.ads.clone()
    }
}

/// The write path: one connection, one transaction at a time.
pub(crate) struct SqliteWriter {
    conn: Connection,
    fsync: FsyncPolicy,
    dir: PathBuf,
    pub(crate) chains: Chains,
    log: Arc<LogState>,
    _checkpointer: Checkpointer,
}

impl Drop for SqliteWriter {
    /// The writer stops: the mark goes up to what the rows hold, so that
    /// the next start reads few events after it (best effort: a lower mark
    /// only means a longer read).
    fn drop(&mut self) {
        if self.conn.is_autocommit() {
            if let Err(e) = self.chains.advance_mark(&self.conn, &self.log) {
                tracing::warn!(error = %e, "event log: the mark was not advanced at stop");
            }
        }
    }
}

/// Copies the WAL into the database in the background, on a connection of
/// its own (`PRAGMA wal_checkpoint(PASSIVE)`: it never waits for the writer
/// or readers), every [`CHECKPOINT_BUSY`] while the WAL grows, backing off
/// to [`CHECKPOINT_IDLE`] while it does not. The writer's own checkpoint,
/// when the WAL reaches [`WAL_AUTOCHECKPOINT_PAGES`] (so that the WAL starts
/// over), then has only the last few milliseconds of frames left to copy,
/// and the WAL it reads pages through stays small. At P3's load (7,000
/// Adobe events/s) a 1-s cadence gave a p99 of 34 ms, 100 ms 17 ms and
/// 10 ms 4.9 ms (bench/RESULTS.md). Stops when dropped (with its writer).
struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

/// Checkpoint cadence while the WAL grows.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(10);
/// The longest wait between checkpoints while nothing is written.
const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);

impl Checkpointer {
    fn start(path: &Path, fsync: FsyncPolicy) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // NORMAL: the checkpoint fsyncs the WAL before copying and the
        // database before the WAL may start over; OFF: neither.
        let synchronous = match fsync {
            FsyncPolicy::Always => "NORMAL",
            FsyncPolicy::Off => "OFF",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("playhead-checkpoint".into())
            .spawn(move || {
                let mut wait = CHECKPOINT_BUSY;
                let mut last = (0, 0);
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(wait)
                {
                    // (WAL frames, frames checkpointed)
                    let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                    });
                    match r {
                        Ok(now) => {
                            wait = if now == last {
                                (wait * 2).min(CHECKPOINT_IDLE)
                            } else {
                                CHECKPOINT_BUSY
                            };
                            last = now;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "background checkpoint failed");
                            wait = CHECKPOINT_IDLE;
                        }
                    }
                }
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

/// [`Syncer`] of the embedded store: an fsync of the WAL file.
///
/// In WAL mode with `synchronous = NORMAL` a commit appends its frames to
/// the WAL with a `write` and no fsync, and a checkpoint fsyncs the WAL
/// before copying it into the database and the database before the WAL is
/// reused. So one fsync of the WAL makes every commit written before it
/// durable, and nothing a checkpoint moved is ever only in the OS cache.
struct WalSyncer {
    wal: PathBuf,
    db: PathBuf,
    dir: PathBuf,
    /// The directory is fsynced once, so the WAL's own entry is on disk.
    dir_synced: bool,
}

impl Syncer for WalSyncer {
    fn sync(&mut self) -> Result<()> {
        // Opened each time (a few µs next to the fsync): fsync applies to
        // the file, whichever descriptor asks.
        match std::fs::File::open(&self.wal) {
            Ok(wal) => wal.sync_data()?,
            // No WAL (every connection closed it): commits are in the database.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::File::open(&self.db)?.sync_data()?
            }
            Err(e) => return Err(e.into()),
        }
        if !self.dir_synced {
            std::fs::File::open(&self.dir)?.sync_all()?;
            self.dir_synced = true;
        }
        Ok(())
    }
}

impl StoreWriter for SqliteWriter {
    fn begin(&mut self) -> Result<()> {
        // Prepared once: `execute_batch` parsed it again for every group.
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        self.chains.begin(&self.log);
        Ok(())
    }

    /// Appended to `event_log` (see `crate::event_log`); the session's dedup
    /// keys are checked in memory.
    fn insert_event(
        &mut self,
        key: &SessionKey,
        _protocol: Protocol,
        event: &Event,
    ) -> Result<bool> {
        self.chains.insert(&self.conn, &self.log, key, event)
    }

    fn session_events(&mut self, key: &SessionKey) -> Result<Vec<Event>> {
        self.chains.session_events(&self.conn, &self.log, key)
    }

    fn session_status(&mut self, key: &SessionKey) -> Result<SessionStatus> {
        let open: Option<bool> = self
            .conn
            .prepare_cached("SELECT open FROM sessions WHERE property = ?1 AND id = ?2")?
            .query_row(params![key.property, key.session_id], |row| row.get(0))
            .optional()?;
        Ok(match open {
            None => SessionStatus::Unknown,
            Some(true) => SessionStatus::Open,
            Some(false) => SessionStatus::Closed,
        })
    }

    fn put_session(&mut self, s: &SessionSummary) -> Result<()> {
        let summary = encode_summary(s)?;
        let log_head = self.chains.row_written(&self.log, &s.key, s.open);
        // The common case: a stored open session got new events. Its keys
        // and indexed columns are as stored (an open session is in no index
        // of `last_received_at`), and updating only what changed spares the
        // rewrite of index entries (about 40 % of the upsert, `bench/RESULTS.md`).
        let row = params![
            s.key.property,
            s.key.session_id,
            s.protocol.as_str(),
            s.meta.video_id,
            s.meta.viewer_id,
            s.open,
            s.metrics.failed,
            s.started_at,
            s.last_event_at,
            s.last_received_at,
            s.ended_at,
            summary,
            s.is_playback(),
            log_head,
        ];
        let updated = self
            .conn
            .prepare_cached(
                "UPDATE sessions SET failed = ?7, last_event_at = ?9, last_received_at = ?10,
                                     ended_at = ?11, summary = ?12,
                                     log_head = coalesce(?14, log_head)
                 WHERE property = ?1 AND id = ?2 AND protocol = ?3 AND video_id IS ?4
                   AND viewer_id IS ?5 AND open = ?6 AND started_at = ?8 AND playback = ?13",
            )?
            .execute(row)?;
        if updated == 1 {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "INSERT INTO sessions (property, id, protocol, video_id, viewer_id, open, failed,
                                       started_at, last_event_at, last_received_at, ended_at,
                                       summary, playback, log_head)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (property, id) DO UPDATE SET
                    protocol = excluded.protocol,
                    video_id = excluded.video_id,
                    viewer_id = excluded.viewer_id,
                    open = excluded.open,
                    failed = excluded.failed,
                    started_at = excluded.started_at,
                    last_event_at = excluded.last_event_at,
                    last_received_at = excluded.last_received_at,
                    ended_at = excluded.ended_at,
                    summary = excluded.summary,
                    playback = excluded.playback,
                    log_head = coalesce(excluded.log_head, log_head)",
            )?
            .execute(row)?;
        Ok(())
    }

    fn add_to_rollup(&mut self, s: &SessionSummary) -> Result<()> {
        if !s.is_playback() {
            return Ok(());
        }
        self.conn
            .prepare_cached("INSERT INTO rollup_pending (prop, sid) VALUES (?1, ?2)")?
            .execute(params![s.key.property, s.key.session_id])?;
        Ok(())
    }

    fn fold_rollups(&mut self, max_sessions: usize) -> Result<usize> {
        let any: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM rollup_pending)")?
            .query_row([], |row| row.get(0))?;
        if !any {
            return Ok(0);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match fold_pending(&self.conn, max_sessions) {
            Ok(n) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(n)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// A failed commit leaves the transaction open: call `rollback`.
    fn commit(&mut self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.chains.before_commit(&self.conn, &self.log)?;
            self.conn.prepare_cached("COMMIT")?.execute([])?;
            self.chains.after_commit(&self.log);
        }
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        self.chains.rolled_back();
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }

    /// Switches the connection to `synchronous = NORMAL` (see [`WalSyncer`]).
    fn pipeline(&mut self) -> Result<Option<Box<dyn Syncer>>> {
        if self.fsync != FsyncPolicy::Always {
            return Ok(None);
        }
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Some(Box::new(WalSyncer {
            wal: wal_path(&self.dir),
            db: self.dir.join(DB_FILE),
            dir: self.dir.clone(),
            dir_synced: false,
        })))
    }
}

/// One row of `tiers`: (property, span, dim, bucket, value).
type TierKey = (String, Millis, &'static str, Millis, String);

/// Fold up to `max_sessions` pending sessions, oldest first, into `tiers`
/// and drop them from `rollup_pending`, inside the caller's transaction.
/// Returns how many were folded.
fn fold_pending(conn: &Connection, max_sessions: usize) -> Result<usize> {
    let limit = i64::try_from(max_sessions).unwrap_or(i64::MAX);
    let mut batch: Vec<(i64, Option<StoredSummary>)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT seq, summary FROM rollup_pending LEFT JOIN sessions
                 ON property = prop AND id = sid
             ORDER BY seq LIMIT ?1",
        )?;
        let mut rows = stmt.query([limit])?;
        while let Some(row) = rows.next()? {
            batch.push((row.get(0)?, row.get(1)?));
        }
    }
    let Some(&(last_seq, _)) = batch.last() else {
        return Ok(0);
    };
    let mut merged: std::collections::HashMap<TierKey, Aggregate> = Default::default();
    let mut changes: BTreeMap<(String, Millis), Vec<Change>> = BTreeMap::new();
    for (_, stored) in &batch {
        // A pending session always has its row; one without is skipped.
        let Some(StoredSummary(s)) = stored else {
            continue;
        };
        if !s.is_playback() {
            continue;
        }
        let mut dims: Vec<(&'static str, String)> = vec![("", String::new())];
        for (dim, column) in ROLLUP_DIMENSIONS.iter().zip(ROLLUP_COLUMNS) {
            if let Some(v) = s.dimension_values(dim).into_iter().find(|v| !v.is_empty()) {
                dims.push((column, v));
            }
        }
        let span = (s.started_at, s.ended_at.unwrap_or(s.last_event_at));
        for (t, d) in concurrency::changes([span]) {
            let minute = t.div_euclid(MINUTE_MS) * MINUTE_MS;
            changes
                .entry((s.key.property.clone(), minute))
                .or_default()
                .push((t, d));
        }
        for span in TIER_SPANS {
            let bucket = s.started_at.div_euclid(span) * span;
            for (dim, value) in &dims {
                merged
                    .entry((s.key.property.clone(), span, dim, bucket, value.clone()))
                    .or_default()
                    .add_session(s);
            }
        }
    }
    let mut read = conn.prepare_cached(
        "SELECT sums, sketches FROM tiers
         WHERE property = ?1 AND span = ?2 AND dim = ?3 AND bucket = ?4 AND value = ?5",
    )?;
    let mut write = conn.prepare_cached(
        "INSERT INTO tiers (property, span, dim, bucket, value, sums, sketches)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (property, span, dim, bucket, value)
         DO UPDATE SET sums = excluded.sums, sketches = excluded.sketches",
    )?;
    for ((property, span, dim, bucket, value), mut agg) in merged {
        let key = params![property, span, dim, bucket, value];
        let stored: Option<(Vec<u8>, Vec<u8>)> = read
            .query_row(key, |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((sums, sketches)) = stored {
            let mut old = decode_aggregate(&sums, Some(&sketches))?;
            old.merge(&agg);
            agg = old;
        }
        agg.compact();
        let (sums, sketches) = agg.encode();
        write.execute(params![property, span, dim, bucket, value, sums, sketches])?;
    }
    fold_concurrency(conn, changes)?;
    conn.prepare_cached("DELETE FROM rollup_pending WHERE seq <= ?1")?
        .execute([last_seq])?;
    Ok(batch.len())
}

/// Add open-count changes, by (property, minute), to the `concurrency`
/// rows of their minutes, then recompute the hours and days above them.
fn fold_concurrency(
    conn: &Connection,
    changes: BTreeMap<(String, Millis), Vec<Change>>,
) -> Result<()> {
    let mut write = conn.prepare_cached(
        "INSERT INTO concurrency (property, span, bucket, delta, peak, changes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (property, span, bucket)
         DO UPDATE SET delta = excluded.delta, peak = excluded.peak, changes = excluded.changes",
    )?;
    let mut hours = BTreeSet::new();
    for ((property, minute), mut new) in changes {
        new.extend(minute_changes(conn, &property, minute)?);
        concurrency::merge_changes(&mut new);
        let (delta, peak) = concurrency::bucket_peak(&new, minute, minute + MINUTE_MS);
        let blob = bincode::serialize(&new).expect("changes always encode");
        write.execute(params![property, MINUTE_MS, minute, delta, peak, blob])?;
        hours.insert((property, minute.div_euclid(HOUR_MS) * HOUR_MS));
    }
    let mut days = BTreeSet::new();
    for (property, hour) in hours {
        let (delta, peak) = combined_rows(conn, &property, MINUTE_MS, hour, hour + HOUR_MS)?;
        write.execute(params![
            property,
            HOUR_MS,
            hour,
            delta,
            peak,
            None::<Vec<u8>>
        ])?;
        days.insert((property, hour.div_euclid(DAY_MS) * DAY_MS));
    }
    for (property, day) in days {
        let (delta, peak) = combined_rows(conn, &property, HOUR_MS, day, day + DAY_MS)?;
        write.execute(params![property, DAY_MS, day, delta, peak, None::<Vec<u8>>])?;
    }
    Ok(())
}

/// The stored open-count changes of one minute of folded sessions.
fn minute_changes(conn: &Connection, property: &str, minute: Millis) -> Result<Vec<Change>> {
    let blob: Option<Option<Vec<u8>>> = conn
        .prepare_cached(
            "SELECT changes FROM concurrency WHERE property = ?1 AND span = ?2 AND bucket = ?3",
        )?
        .query_row(params![property, MINUTE_MS, minute], |row| row.get(0))
        .optional()?;
    match blob.flatten() {
        Some(bytes) => bincode::deserialize(&bytes)
            .map_err(|e| StoreError::Other(format!("stored concurrency does not decode: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// `(delta, peak)` of the `span` rows of `concurrency` covering `[start, end)`.
fn combined_rows(
    conn: &Connection,
    property: &str,
    span: Millis,
    start: Millis,
    end: Millis,
) -> Result<(i64, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT bucket, delta, peak FROM concurrency
         WHERE property = ?1 AND span = ?2 AND bucket >= ?3 AND bucket < ?4 ORDER BY bucket",
    )?;
    let rows = stmt
        .query_map(params![property, span, start, end], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<Vec<(Millis, i64, i64)>>>()?;
    Ok(concurrency::combine(rows, start, span, end))
}

/// The sum of the folded sessions' open-count changes before `t`.
fn folded_count_before(conn: &Connection, property: &str, t: Millis) -> Result<i64> {
    let day = t.div_euclid(DAY_MS) * DAY_MS;
    let hour = t.div_euclid(HOUR_MS) * HOUR_MS;
    let minute = t.div_euclid(MINUTE_MS) * MINUTE_MS;
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(SUM(delta), 0) FROM concurrency
         WHERE property = ?1 AND span = ?2 AND bucket >= ?3 AND bucket < ?4",
    )?;
    let mut sum = 0;
    for (span, lo, hi) in [
        (DAY_MS, Millis::MIN, day),
        (HOUR_MS, day, hour),
        (MINUTE_MS, hour, minute),
    ] {
        sum += stmt.query_row(params![property, span, lo, hi], |row| row.get::<_, i64>(0))?;
    }
    sum += minute_changes(conn, property, minute)?
        .iter()
        .filter(|c| c.0 < t)
        .map(|c| c.1)
        .sum::<i64>();
    Ok(sum)
}

/// `concurrent_viewers` of a property (no dimension filter) from the
/// `concurrency` rows of folded sessions plus the spans of the open and
/// pending ones (`extra`, sorted changes), in one read transaction.
fn tier_concurrency(
    conn: &Connection,
    property: &str,
    extra: &[Change],
    from: Millis,
    start: Millis,
    to: Millis,
    interval: Millis,
) -> Result<Vec<u64>> {
    let mut running = folded_count_before(conn, property, from)?
        + extra
            .iter()
            .filter(|c| c.0 < from)
            .map(|c| c.1)
            .sum::<i64>();
    let mut out = Vec::new();
    let mut b = start;
    while b < to {
        let (a, z) = (b.max(from), b.saturating_add(interval).min(to));
        let mut peak: Option<i64> = None;
        for piece in concurrency_pieces(a, z, extra) {
            let (delta, p) = match piece {
                Piece::Changes(ps, pe) => {
                    let minute = ps.div_euclid(MINUTE_MS) * MINUTE_MS;
                    let mut all = minute_changes(conn, property, minute)?;
                    all.extend(extra.iter().filter(|c| c.0 >= ps && c.0 < pe));
                    concurrency::merge_changes(&mut all);
                    concurrency::bucket_peak(&all, ps, pe)
                }
                Piece::Rows(span, lo, hi) => combined_rows(conn, property, span, lo, hi)?,
            };
            peak = Some(peak.map_or(running + p, |m| m.max(running + p)));
            running += delta;
        }
        out.push(peak.unwrap_or(running).max(0) as u64);
        b = b.saturating_add(interval);
    }
    Ok(out)
}

/// A part of a range for [`tier_concurrency`]: a minute or part of one
/// read change by change (`[start, end)`), or whole aligned buckets of one
/// span read from their rows (`span, [start, end)`).
#[derive(Debug, PartialEq)]
enum Piece {
    Changes(Millis, Millis),
    Rows(Millis, Millis, Millis),
}

/// `[a, z)` cut into pieces in time order: change by change in a partial
/// minute at either end and in every minute where an `extra` change falls,
/// from the longest aligned tier buckets elsewhere.
fn concurrency_pieces(a: Millis, z: Millis, extra: &[Change]) -> Vec<Piece> {
    let floor = |t: Millis| t.div_euclid(MINUTE_MS) * MINUTE_MS;
    let mut minutes: BTreeSet<Millis> = extra
        .iter()
        .filter(|c| c.0 >= a && c.0 < z)
        .map(|c| floor(c.0))
        .collect();
    if floor(a) < a {
        minutes.insert(floor(a));
    }
    if floor(z) < z {
        minutes.insert(floor(z));
    }
    let runs = |lo, hi| {
        tier_runs(lo, hi, &GroupBy::All)
            .into_iter()
            .map(|(span, lo, hi)| Piece::Rows(span, lo, hi))
    };
    let mut pieces = Vec::new();
    let mut t = a;
    for m in minutes {
        if m > t {
            pieces.extend(runs(t, m));
        }
        let (ps, pe) = (m.max(a), (m + MINUTE_MS).min(z));
        pieces.push(Piece::Changes(ps, pe));
        t = pe;
    }
    if t < z {
        pieces.extend(runs(t, z));
    }
    pieces
}

fn decode_aggregate(sums: &[u8], sketches: Option<&[u8]>) -> Result<Aggregate> {
    Aggregate::decode(sums, sketches)
        .map_err(|e| StoreError::Other(format!("a stored rollup does not decode: {e}")))
}

/// A session summary as stored in `sessions.summary`: MessagePack with
/// field names (a BLOB) since this build, or JSON text as earlier builds
/// wrote it; both read back.
struct StoredSummary(SessionSummary);

impl rusqlite::types::FromSql for StoredSummary {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::{FromSqlError, ValueRef};
        let summary = match value {
            ValueRef::Blob(bytes) => {
                rmp_serde::from_slice(bytes).map_err(|e| FromSqlError::Other(e.into()))
            }
            ValueRef::Text(text) => {
                serde_json::from_slice(text).map_err(|e| FromSqlError::Other(e.into()))
            }
            _ => Err(FromSqlError::InvalidType),
        };
        summary.map(StoredSummary)
    }
}

/// The summary's stored form: MessagePack, fields by name (self-describing,
/// so fields left out still read back). It writes no escapes: 18 k
/// instructions per Adobe summary against JSON's 27 k (`bench/RESULTS.md`).
fn encode_summary(s: &SessionSummary) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(s)
        .map_err(|e| StoreError::Other(format!("a summary does not encode: {e}")))
}

fn load_session(conn: &Connection, key: &SessionKey) -> Result<Option<SessionSummary>> {
    let stored: Option<StoredSummary> = conn
        .prepare_cached("SELECT summary FROM sessions WHERE property = ?1 AND id = ?2")?
        .query_row(params![key.property, key.session_id], |row| row.get(0))
        .optional()?;
    Ok(stored.map(|s| s.0))
}

/// The `sessions` column holding a dimension's only value, if any.
fn session_column(dim: &Dimension) -> Option<&'static str> {
    match dim {
        Dimension::Property => Some("property"),
        Dimension::Protocol => Some("protocol"),
        Dimension::VideoId => Some("video_id"),
        Dimension::ViewerId => Some("viewer_id"),
        _ => None,
    }
}

/// The `rollups` column of a dimension, if it is one of [`ROLLUP_DIMENSIONS`].
fn rollup_column(dim: &Dimension) -> Option<&'static str> {
    ROLLUP_DIMENSIONS
        .iter()
        .position(|d| d == dim)
        .map(|i| ROLLUP_COLUMNS[i])
}

/// Whether a session passes the property and dimension filters (not the
/// time range).
fn dimensions_match(filters: &Filters, s: &SessionSummary) -> bool {
    s.key.property == filters.property
        && filters
            .dimensions
            .iter()
            .all(|(dim, wanted)| s.dimension_values(dim).iter().any(|v| wanted.contains(v)))
}

/// A `SELECT <columns> FROM sessions WHERE property = ? ...` with the
/// dimension filters that map to columns pushed into SQL. Rows still need
/// checking in Rust for the other dimensions. Only placeholders are built
/// into the SQL text; every value is a parameter.
struct SessionSql {
    columns: &'static str,
    cond: String,
    params: Vec<Value>,
}

impl SessionSql {
    fn new(columns: &'static str, filters: &Filters) -> SessionSql {
        let mut sql = SessionSql {
            columns,
            cond: "property = ?".to_owned(),
            params: vec![Value::Text(filters.property.clone())],
        };
        for (dim, wanted) in &filters.dimensions {
            if let Some(column) = session_column(dim) {
                sql.push_in(column, wanted);
            }
        }
        sql
    }

    /// [`SessionSql::new`] for the reads behind aggregates (aggregate
    /// queries, spans, realtime): playback sessions only.
    fn playback(columns: &'static str, filters: &Filters) -> SessionSql {
        let mut sql = SessionSql::new(columns, filters);
        sql.cond.push_str(" AND playback = 1");
        sql
    }

    fn and<const N: usize>(&mut self, cond: &str, params: [i64; N]) {
        self.cond.push_str(" AND ");
        self.cond.push_str(cond);
        self.params.extend(params.map(Value::Integer));
    }

    fn push_in(&mut self, column: &'static str, wanted: &[String]) {
        push_in(&mut self.cond, &mut self.params, column, wanted);
    }

    fn sql_from(&self, from: &str) -> String {
        format!("SELECT {} FROM {from} WHERE {}", self.columns, self.cond)
    }

    /// Stream the summaries (the first column) to `each` until it returns
    /// `false`.
    fn each_summary(
        &self,
        conn: &Connection,
        each: impl FnMut(SessionSummary) -> Result<bool>,
    ) -> Result<()> {
        self.each_summary_from(conn, "sessions", each)
    }

    /// [`SessionSql::each_summary`] over another `FROM` clause that has
    /// the `sessions` columns (a join).
    fn each_summary_from(
        &self,
        conn: &Connection,
        from: &str,
        mut each: impl FnMut(SessionSummary) -> Result<bool>,
    ) -> Result<()> {
        let mut stmt = conn.prepare_cached(&self.sql_from(from))?;
        let mut rows = stmt.query(params_from_iter(self.params.iter()))?;
        while let Some(row) = rows.next()? {
            let StoredSummary(s) = row.get(0)?;
            if !each(s)? {
                break;
            }
        }
        Ok(())
    }
}

/// Append ` AND <column> IN (?, ...)`, one placeholder and parameter per value.
fn push_in(cond: &mut String, params: &mut Vec<Value>, column: &'static str, wanted: &[String]) {
    cond.push_str(" AND ");
    cond.push_str(column);
    cond.push_str(" IN (");
    for i in 0..wanted.len() {
        cond.push_str(if i == 0 { "?" } else { ", ?" });
    }
    cond.push(')');
    params.extend(wanted.iter().map(|v| Value::Text(v.clone())));
}

/// The whole minutes `[lo, hi)` inside `[from, to)`, if any.
fn whole_minutes(filters: &Filters) -> Option<(Millis, Millis)> {
    let floor = filters.from.div_euclid(MINUTE_MS) * MINUTE_MS;
    let lo = if floor < filters.from {
        floor.checked_add(MINUTE_MS)?
    } else {
        floor
    };
    let hi = filters.to.div_euclid(MINUTE_MS) * MINUTE_MS;
    (lo < hi).then_some((lo, hi))
}

/// How the tiers answer a query: which `dim`'s rows, and which of its
/// values (`None`: all).
#[derive(Debug, PartialEq)]
struct TierPlan {
    dim: &'static str,
    values: Option<Vec<String>>,
    /// A `property` filter that leaves the query's property out: nothing
    /// matches.
    nothing: bool,
}

/// The tier plan of a query, or `None` when tiers cannot answer it (two
/// filtered dimensions, a filter or group the tiers do not keep, an empty
/// value, an interval that is not whole minutes).
fn tier_plan(filters: &Filters, group: &GroupBy) -> Option<TierPlan> {
    let mut plan = TierPlan {
        dim: "",
        values: None,
        nothing: false,
    };
    for (dim, wanted) in &filters.dimensions {
        if wanted.iter().any(String::is_empty) {
            return None;
        }
        if *dim == Dimension::Property {
            plan.nothing |= !wanted.contains(&filters.property);
            continue;
        }
        if plan.values.is_some() {
            return None;
        }
        plan.dim = rollup_column(dim)?;
        plan.values = Some(wanted.clone());
    }
    match group {
        GroupBy::All | GroupBy::Dimension(Dimension::Property) => {}
        GroupBy::Interval(i) => {
            if *i <= 0 || i % MINUTE_MS != 0 {
                return None;
            }
        }
        GroupBy::Dimension(dim) => {
            let column = rollup_column(dim)?;
            if plan.values.is_some() && plan.dim != column {
                return None;
            }
            plan.dim = column;
        }
    }
    Some(plan)
}

/// The fewest tier buckets covering the whole minutes `[lo, hi)`, as runs
/// `(span, start, end)` of one span each, in time order: the longest span's
/// whole buckets in the middle, shorter spans at the edges, among the spans
/// dividing a timeseries' interval. Computed, not walked: a range of any
/// length gives at most five runs.
fn tier_runs(lo: Millis, hi: Millis, group: &GroupBy) -> Vec<(Millis, Millis, Millis)> {
    let spans: Vec<Millis> = TIER_SPANS
        .into_iter()
        .filter(|span| match group {
            GroupBy::Interval(i) => i % span == 0,
            _ => true,
        })
        .collect();
    let mut runs = Vec::new();
    push_runs(lo, hi, &spans, &mut runs);
    runs
}

fn push_runs(lo: Millis, hi: Millis, spans: &[Millis], runs: &mut Vec<(Millis, Millis, Millis)>) {
    let Some((&span, shorter)) = spans.split_first() else {
        return;
    };
    let first = lo.div_euclid(span) * span;
    let first = if first < lo { first + span } else { first };
    let last = hi.div_euclid(span) * span;
    if first < last || shorter.is_empty() {
        push_runs(lo, first.min(hi), shorter, runs);
        if first < last {
            runs.push((span, first, last));
        }
        push_runs(last.max(first), hi, shorter, runs);
    } else {
        push_runs(lo, hi, shorter, runs);
    }
}

/// Merge the tier rows covering the whole minutes `[lo, hi)` into `out`.
#[allow(clippy::too_many_arguments)]
fn merge_tiers(
    conn: &Connection,
    filters: &Filters,
    group: &GroupBy,
    plan: &TierPlan,
    lo: Millis,
    hi: Millis,
    parts: Parts,
    out: &mut BTreeMap<GroupKey, Aggregate>,
) -> Result<()> {
    if plan.nothing {
        return Ok(());
    }
    let columns = match parts {
        Parts::All => "bucket, value, sums, sketches",
        Parts::Sums => "bucket, value, sums, NULL",
    };
    for (span, start, end) in tier_runs(lo, hi, group) {
        let mut cond =
            "property = ? AND span = ? AND dim = ? AND bucket >= ? AND bucket < ?".to_owned();
        let mut params = vec![
            Value::Text(filters.property.clone()),
            Value::Integer(span),
            Value::Text(plan.dim.to_owned()),
            Value::Integer(start),
            Value::Integer(end),
        ];
        if let Some(values) = &plan.values {
            push_in(&mut cond, &mut params, "value", values);
        }
        let mut stmt = conn.prepare_cached(&format!("SELECT {columns} FROM tiers WHERE {cond}"))?;
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        while let Some(row) = rows.next()? {
            let bucket: Millis = row.get(0)?;
            let key = match group {
                GroupBy::All => GroupKey::All,
                GroupBy::Interval(i) => GroupKey::Bucket(bucket.div_euclid(*i) * i),
                GroupBy::Dimension(Dimension::Property) => {
                    GroupKey::Value(filters.property.clone())
                }
                GroupBy::Dimension(_) => GroupKey::Value(row.get(1)?),
            };
            let sums = row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            let sketches = row
                .get_ref(3)?
                .as_blob_or_null()
                .map_err(rusqlite::Error::from)?;
            let agg = decode_aggregate(sums, sketches)?;
            match out.entry(key) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(agg);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&agg),
            }
        }
    }
    Ok(())
}

/// Add one session to its group(s).
fn add_grouped(out: &mut BTreeMap<GroupKey, Aggregate>, group: &GroupBy, s: &SessionSummary) {
    match group {
        GroupBy::All => out.entry(GroupKey::All).or_default().add_session(s),
        GroupBy::Interval(i) => out
            .entry(GroupKey::Bucket(s.started_at.div_euclid(*i) * i))
            .or_default()
            .add_session(s),
        GroupBy::Dimension(dim) => {
            for v in s.dimension_values(dim) {
                if !v.is_empty() {
                    out.entry(GroupKey::Value(v)).or_default().add_session(s);
                }
            }
        }
    }
}

/// A page cursor: `<started_at>:<id>` of the page's last session, hex-encoded
/// so that it is opaque and URL-safe.
fn encode_cursor(started_at: Millis, id: &str) -> String {
    format!("{started_at}:{id}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(cursor: &str) -> Result<(Millis, String)> {
    let bad = || StoreError::BadCursor(cursor.chars().take(100).collect());
    let digit = |b: &u8| char::from(*b).to_digit(16);
    let bytes = cursor
        .as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(hi)? << 4 | digit(lo)?) as u8),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (started_at, id) = text.split_once(':').ok_or_else(bad)?;
    let started_at = started_at.parse::<Millis>().map_err(|_| bad())?;
    Ok((started_at, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `synchronous` of the writer's connection: 0 OFF, 1 NORMAL, 2 FULL.
    fn synchronous(w: &SqliteWriter) -> i64 {
        w.conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn pipelining_defers_the_fsync_to_the_syncer_only_with_fsync_always() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap();
        let mut w = store.open_writer().unwrap();
        assert_eq!(synchronous(&w), 2, "commits fsync until pipelined");
        let mut syncer = w.pipeline().unwrap().expect("fsync = always pipelines");
        // Commits no longer fsync (the WAL's checkpoints still do)...
        assert_eq!(synchronous(&w), 1);
        let key = SessionKey::new("p", "s");
        let event = Event::new(1_000, 1_000, playhead_model::EventKind::Play);
        w.begin().unwrap();
        assert!(w.insert_event(&key, Protocol::Native, &event).unwrap());
        w.commit().unwrap();
        // ...the syncer does, and the commit is there.
        syncer.sync().unwrap();
        syncer.sync().unwrap();
        assert_eq!(store.session_events(&key).unwrap(), vec![event]);

        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.open_writer().unwrap();
        assert!(w.pipeline().unwrap().is_none());
        assert_eq!(synchronous(&w), 0);
    }

    #[test]
    fn cursor_round_trips() {
        for (t, id) in [
            (0, "a"),
            (-5, "x:y"),
            (1_700_000_000_000, "séance é"),
            (7, ""),
        ] {
            assert_eq!(
                decode_cursor(&encode_cursor(t, id)).unwrap(),
                (t, id.to_owned())
            );
        }
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        for bad in [
            "",
            "0",
            "zz",
            "é1",
            "3a",
            "41",
            "ff3a61",
            &encode_cursor(1, "a")[2..],
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(StoreError::BadCursor(_))),
                "{bad:?} should be a bad cursor"
            );
        }
    }

    #[test]
    fn whole_minutes_are_inside_the_range() {
        let f = |from, to| whole_minutes(&Filters::new("p", from, to));
        assert_eq!(f(0, 180_000), Some((0, 180_000)));
        assert_eq!(f(1, 179_999), Some((60_000, 120_000)));
        assert_eq!(f(1, 119_999), None);
        assert_eq!(f(-90_000, 30_000), Some((-60_000, 0)));
    }

    #[test]
    fn tier_plans() {
        let f = |dims: &[(Dimension, &[&str])]| Filters {
            dimensions: dims
                .iter()
                .map(|(d, v)| (d.clone(), v.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            ..Filters::new("p", 0, 1)
        };
        let plan = |dim, values: Option<&[&str]>, nothing| TierPlan {
            dim,
            values: values.map(|v| v.iter().map(|s| (*s).to_owned()).collect()),
            nothing,
        };
        let by = GroupBy::Dimension;
        assert_eq!(
            tier_plan(&f(&[]), &GroupBy::All),
            Some(plan("", None, false))
        );
        assert_eq!(
            tier_plan(&f(&[]), &GroupBy::Interval(3_600_000)),
            Some(plan("", None, false))
        );
        assert_eq!(tier_plan(&f(&[]), &GroupBy::Interval(90_000)), None);
        assert_eq!(
            tier_plan(&f(&[]), &by(Dimension::Browser)),
            Some(plan("browser", None, false))
        );
        assert_eq!(tier_plan(&f(&[]), &by(Dimension::ViewerId)), None);
        let video = (Dimension::VideoId, &["v"][..]);
        assert_eq!(
            tier_plan(&f(std::slice::from_ref(&video)), &by(Dimension::Property)),
            Some(plan("video_id", Some(&["v"]), false))
        );
        assert_eq!(
            tier_plan(&f(std::slice::from_ref(&video)), &by(Dimension::VideoId)),
            Some(plan("video_id", Some(&["v"]), false))
        );
        // Two dimensions, filtered or filtered and grouped: session rows.
        assert_eq!(
            tier_plan(&f(std::slice::from_ref(&video)), &by(Dimension::Os)),
            None
        );
        let chrome = (Dimension::Browser, &["Chrome"][..]);
        assert_eq!(tier_plan(&f(&[video.clone(), chrome]), &GroupBy::All), None);
        let empty = (Dimension::Browser, &[""][..]);
        assert_eq!(tier_plan(&f(&[empty]), &GroupBy::All), None);
        let other = (Dimension::Property, &["q"][..]);
        assert_eq!(
            tier_plan(&f(&[other, video]), &GroupBy::All),
            Some(plan("video_id", Some(&["v"]), true))
        );
    }

    #[test]
    fn tier_runs_cover_the_range_with_the_longest_aligned_spans() {
        const D: Millis = DAY_MS;
        const H: Millis = HOUR_MS;
        const M: Millis = MINUTE_MS;
        let lo = 2 * D - 2 * H - 3 * M;
        let hi = 5 * D + 3 * H + 2 * M;
        assert_eq!(
            tier_runs(lo, hi, &GroupBy::All),
            vec![
                (M, lo, 2 * D - 2 * H),
                (H, 2 * D - 2 * H, 2 * D),
                (D, 2 * D, 5 * D),
                (H, 5 * D, 5 * D + 3 * H),
                (M, 5 * D + 3 * H, hi),
            ]
        );
        // A 2-hour timeseries: days do not divide it.
        assert_eq!(
            tier_runs(2 * D, 3 * D, &GroupBy::Interval(2 * H)),
            vec![(H, 2 * D, 3 * D)]
        );
        assert_eq!(
            tier_runs(0, 5 * M, &GroupBy::Interval(5 * M)),
            vec![(M, 0, 5 * M)]
        );
        assert_eq!(tier_runs(-H, 0, &GroupBy::All), vec![(H, -H, 0)]);
        // Any length, at once (a dashboard may ask from 0 to far ahead).
        let far = (Millis::MAX / 4).div_euclid(M) * M;
        let runs = tier_runs(M, far, &GroupBy::All);
        assert_eq!(runs.len(), 5);
        assert_eq!((runs[0].1, runs[4].2), (M, far));
        assert!(runs.windows(2).all(|w| w[0].2 == w[1].1));
    }
}
