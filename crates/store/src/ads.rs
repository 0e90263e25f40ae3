//! What the ping protocol keeps besides sessions and events
//! (`spec/protocols.md` §3): the assets and channels the admin API
//! configures, each ping session's state (its schedule snapshot and
//! timeline cursor), and the ad-beacon outbox with its delivery log.
//!
//! The outbox is how a beacon fires exactly once: a ping writes what it owes
//! (unique by session and key, so a retried ping owes nothing twice) in the
//! same transaction as the session's new cursor, committed with `fsync`
//! before the ping is answered; the sender marks each delivery. A restart
//! finds what is still owed.
//!
//! The SQLite backend keeps these in `ads.sqlite` beside the main database,
//! so admin and beacon writes never wait on the ingest writer's transactions.

use crate::{FsyncPolicy, Result, StoreError};
use playhead_model::Millis;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

const FILE: &str = "ads.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS assets (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS channels (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ping_sessions (
    sid TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS beacons (
    id INTEGER PRIMARY KEY,
    sid TEXT NOT NULL,
    key TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    user_agent TEXT,
    forwarded_for TEXT,
    content_playhead REAL,
    ad_playhead REAL,
    owed_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (sid, key)
);
CREATE INDEX IF NOT EXISTS beacons_due ON beacons (next_attempt_at) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS beacon_attempts (
    beacon_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    url TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS beacon_attempts_by_beacon ON beacon_attempts (beacon_id, at);
";

/// One tracking URL a session owes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwedBeacon {
    /// Unique within the session: `<boundary id>#<url index>`.
    pub key: String,
    /// `impression`, `firstQuartile`, `midpoint`, `thirdQuartile`,
    /// `complete`, `breakStart`, `breakEnd`.
    pub event: String,
    /// The URL as configured, macros not yet substituted.
    pub url: String,
    pub user_agent: Option<String>,
    pub forwarded_for: Option<String>,
    /// Content position when it was owed (`[CONTENTPLAYHEAD]`), seconds.
    pub content_playhead: Option<f64>,
    /// Position inside the ad (`[ADPLAYHEAD]`), seconds.
    pub ad_playhead: Option<f64>,
}

/// A beacon as stored, with its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeaconRecord {
    pub id: i64,
    pub sid: String,
    #[serde(flatten)]
    pub owed: OwedBeacon,
    pub owed_at: Millis,
    /// `pending`, `delivered` or `failed` (retries exhausted).
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: Millis,
    pub delivered_at: Option<Millis>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeaconAttempt {
    pub beacon_id: i64,
    pub at: Millis,
    /// The URL as sent (macros substituted).
    pub url: String,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What happened to one attempt, and what to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered,
    /// Try again at this time.
    Retry {
        at: Millis,
    },
    /// Give up (retries exhausted).
    Failed,
}

/// Storage for assets, channels, ping sessions and the beacon outbox.
/// Bodies are JSON documents the server defines; the store only keeps them.
pub trait AdStore: Send + Sync + 'static {
    fn put_asset(&self, id: &str, body: &str, now: Millis) -> Result<()>;
    fn asset(&self, id: &str) -> Result<Option<String>>;
    fn put_channel(&self, id: &str, body: &str, now: Millis) -> Result<()>;
    fn channel(&self, id: &str) -> Result<Option<String>>;
    fn put_ping_session(&self, sid: &str, body: &str, now: Millis) -> Result<()>;
    fn ping_session(&self, sid: &str) -> Result<Option<String>>;
    /// In one durable transaction: the session's new state, and the beacons
    /// it owes (one already owed by the same key is skipped). Returns the
    /// ids of the newly owed beacons.
    fn advance_ping_session(
        &self,
        sid: &str,
        body: &str,
        owed: &[OwedBeacon],
        now: Millis,
    ) -> Result<Vec<i64>>;
    /// Pending beacons due at `now`, oldest first.
    fn due_beacons(&self, now: Millis, limit: usize) -> Result<Vec<BeaconRecord>>;
    /// The earliest time a pending beacon is due, if any.
    fn next_due(&self) -> Result<Option<Millis>>;
    fn record_attempt(&self, attempt: &BeaconAttempt, outcome: &AttemptOutcome) -> Result<()>;
    /// A session's beacons (all sessions' latest when `sid` is `None`),
    /// with their attempts, at most `limit`.
    fn beacons(
        &self,
        sid: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(BeaconRecord, Vec<BeaconAttempt>)>>;
    /// Counts by state: (pending, delivered, failed).
    fn beacon_counts(&self) -> Result<(u64, u64, u64)>;
}

/// The SQLite [`AdStore`]: one connection, serialized by a mutex (admin
/// writes and pings are few next to ingest; a ping's commit is one small
/// transaction).
#[derive(Debug)]
pub struct SqliteAdStore {
    conn: Mutex<Connection>,
}

impl SqliteAdStore {
    pub fn open(dir: &Path, fsync: FsyncPolicy) -> Result<SqliteAdStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Other(format!(
                "{} could not switch to WAL (journal mode `{mode}`)",
                path.display()
            )));
        }
        let sync = match fsync {
            FsyncPolicy::Always => "FULL",
            FsyncPolicy::Off => "OFF",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteAdStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    fn put(&self, table: &str, id: &str, body: &str, now: Millis) -> Result<()> {
        self.with(|c| {
            c.execute(
                &format!(
                    "INSERT INTO {table} (id, body, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
                ),
                params![id, body, now],
            )?;
            Ok(())
        })
    }

    fn get(&self, table: &str, key: &str, id: &str) -> Result<Option<String>> {
        self.with(|c| {
            Ok(
                c.prepare_cached(&format!("SELECT body FROM {table} WHERE {key} = ?1"))?
                    .query_row(params![id], |r| r.get(0))
                    .optional()?,
            )
        })
    }
}

const BEACON_COLUMNS: &str =
    "id, sid, key, event, url, user_agent, forwarded_for, content_playhead, \
     ad_playhead, owed_at, state, attempts, next_attempt_at, delivered_at";

fn beacon_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BeaconRecord> {
    Ok(BeaconRecord {
        id: r.get(0)?,
        sid: r.get(1)?,
        owed: OwedBeacon {
            key: r.get(2)?,
            event: r.get(3)?,
            url: r.get(4)?,
            user_agent: r.get(5)?,
            forwarded_for: r.get(6)?,
            content_playhead: r.get(7)?,
            ad_playhead: r.get(8)?,
        },
        owed_at: r.get(9)?,
        state: r.get(10)?,
        attempts: r.get(11)?,
        next_attempt_at: r.get(12)?,
        delivered_at: r.get(13)?,
    })
}

impl AdStore for SqliteAdStore {
    fn put_asset(&self, id: &str, body: &str, now: Millis) -> Result<()> {
        self.put("assets", id, body, now)
    }

    fn asset(&self, id: &str) -> Result<Option<String>> {
        self.get("assets", "id", id)
    }

    fn put_channel(&self, id: &str, body: &str, now: Millis) -> Result<()> {
        self.put("channels", id, body, now)
    }

    fn channel(&self, id: &str) -> Result<Option<String>> {
        self.get("channels", "id", id)
    }

    fn put_ping_session(&self, sid: &str, body: &str, now: Millis) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO ping_sessions (sid, body, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sid) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                params![sid, body, now],
            )?;
            Ok(())
        })
    }

    fn ping_session(&self, sid: &str) -> Result<Option<String>> {
        self.get("ping_sessions", "sid", sid)
    }

    fn advance_ping_session(
        &self,
        sid: &str,
        body: &str,
        owed: &[OwedBeacon],
        now: Millis,
    ) -> Result<Vec<i64>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE ping_sessions SET body = ?2, updated_at = ?3 WHERE sid = ?1",
                params![sid, body, now],
            )?;
            let mut ids = Vec::new();
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO beacons (sid, key, event, url, user_agent, forwarded_for,
                         content_playhead, ad_playhead, owed_at, state, next_attempt_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?9)",
                )?;
                for b in owed {
                    let n = insert.execute(params![
                        sid,
                        b.key,
                        b.event,
                        b.url,
                        b.user_agent,
                        b.forwarded_for,
                        b.content_playhead,
                        b.ad_playhead,
                        now
                    ])?;
                    if n == 1 {
                        ids.push(tx.last_insert_rowid());
                    }
                }
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    fn due_beacons(&self, now: Millis, limit: usize) -> Result<Vec<BeaconRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {BEACON_COLUMNS} FROM beacons
                 WHERE state = 'pending' AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![now, limit as i64], beacon_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn next_due(&self) -> Result<Option<Millis>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT MIN(next_attempt_at) FROM beacons WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?)
        })
    }

    fn record_attempt(&self, a: &BeaconAttempt, outcome: &AttemptOutcome) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO beacon_attempts (beacon_id, at, url, status, error, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![a.beacon_id, a.at, a.url, a.status, a.error, a.duration_ms as i64],
            )?;
            match outcome {
                AttemptOutcome::Delivered => tx.execute(
                    "UPDATE beacons SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2
                     WHERE id = ?1",
                    params![a.beacon_id, a.at],
                )?,
                AttemptOutcome::Retry { at } => tx.execute(
                    "UPDATE beacons SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
                    params![a.beacon_id, at],
                )?,
                AttemptOutcome::Failed => tx.execute(
                    "UPDATE beacons SET state = 'failed', attempts = attempts + 1 WHERE id = ?1",
                    params![a.beacon_id],
                )?,
            };
            tx.commit()?;
            Ok(())
        })
    }

    fn beacons(
        &self,
        sid: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(BeaconRecord, Vec<BeaconAttempt>)>> {
        self.with(|c| {
            let records: Vec<BeaconRecord> = match sid {
                Some(sid) => c
                    .prepare_cached(&format!(
                        "SELECT {BEACON_COLUMNS} FROM beacons WHERE sid = ?1 ORDER BY id LIMIT ?2"
                    ))?
                    .query_map(params![sid, limit as i64], beacon_row)?
                    .collect::<rusqlite::Result<_>>()?,
                None => c
                    .prepare_cached(&format!(
                        "SELECT {BEACON_COLUMNS} FROM beacons ORDER BY id DESC LIMIT ?1"
                    ))?
                    .query_map(params![limit as i64], beacon_row)?
                    .collect::<rusqlite::Result<_>>()?,
            };
            let mut attempts = c.prepare_cached(
                "SELECT beacon_id, at, url, status, error, duration_ms FROM beacon_attempts
                 WHERE beacon_id = ?1 ORDER BY at, rowid",
            )?;
            let mut out = Vec::with_capacity(records.len());
            for r in records {
                let list = attempts
                    .query_map(params![r.id], |row| {
                        Ok(BeaconAttempt {
                            beacon_id: row.get(0)?,
                            at: row.get(1)?,
                            url: row.get(2)?,
                            status: row.get(3)?,
                            error: row.get(4)?,
                            duration_ms: row.get::<_, i64>(5)? as u64,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.push((r, list));
            }
            Ok(out)
        })
    }

    fn beacon_counts(&self) -> Result<(u64, u64, u64)> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT state, COUNT(*) FROM beacons GROUP BY state")?;
            let mut counts = (0, 0, 0);
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (state, n) = row?;
                match state.as_str() {
                    "pending" => counts.0 = n as u64,
                    "delivered" => counts.1 = n as u64,
                    _ => counts.2 += n as u64,
                }
            }
            Ok(counts)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(key: &str) -> OwedBeacon {
        OwedBeacon {
            key: key.into(),
            event: "impression".into(),
            url: format!("http://ads.test/{key}"),
            user_agent: Some("UA".into()),
            forwarded_for: Some("203.0.113.9".into()),
            content_playhead: Some(0.0),
            ad_playhead: Some(0.0),
        }
    }

    #[test]
    fn owed_once_delivered_once_and_kept_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAdStore::open(dir.path(), FsyncPolicy::Always).unwrap();
        store.put_ping_session("s", "{}", 0).unwrap();
        let ids = store
            .advance_ping_session("s", "{\"n\":1}", &[owed("a#0"), owed("b#0")], 10)
            .unwrap();
        assert_eq!(ids.len(), 2);
        // A retry owes the same keys again: nothing new.
        let again = store
            .advance_ping_session("s", "{\"n\":2}", &[owed("a#0")], 20)
            .unwrap();
        assert!(again.is_empty());
        assert_eq!(
            store.ping_session("s").unwrap().as_deref(),
            Some("{\"n\":2}")
        );
        let due = store.due_beacons(20, 10).unwrap();
        assert_eq!(due.len(), 2);
        let attempt = |id, status| BeaconAttempt {
            beacon_id: id,
            at: 30,
            url: "http://ads.test/x".into(),
            status,
            error: None,
            duration_ms: 3,
        };
        store
            .record_attempt(&attempt(ids[0], Some(200)), &AttemptOutcome::Delivered)
            .unwrap();
        store
            .record_attempt(&attempt(ids[1], None), &AttemptOutcome::Retry { at: 1_000 })
            .unwrap();
        assert_eq!(store.due_beacons(999, 10).unwrap().len(), 0);
        assert_eq!(store.next_due().unwrap(), Some(1_000));
        drop(store);
        let store = SqliteAdStore::open(dir.path(), FsyncPolicy::Always).unwrap();
        let due = store.due_beacons(1_000, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].owed.key, "b#0");
        assert_eq!(due[0].attempts, 1);
        assert_eq!(store.beacon_counts().unwrap(), (1, 1, 0));
        let log = store.beacons(Some("s"), 10).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].0.state, "delivered");
        assert_eq!(log[0].1[0].status, Some(200));
    }
}
