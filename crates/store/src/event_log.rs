//! The embedded store's raw events: an append-only log that chains each
//! session's events, so that storing an event is an append at the end of
//! the log, not an insert at a random place of a per-session index.
//!
//! An earlier layout kept a unique index on `(property, session_id,
//! dedup_key)`. It deduplicated and found a session's events, but each
//! event inserted an entry at that session's place in the index, so each
//! commit group dirtied about one index page per event, and those pages
//! were written to the WAL, checksummed and checkpointed (P2 in
//! `bench/RESULTS.md`).
//!
//! - Events are appended in *position* order. A commit group's events are
//!   rows of `event_blocks` (schema version 5): their [records](Record),
//!   back to back in blobs of about [`BLOCK_TARGET`] bytes, each written
//!   with one insert. An event's position is its block and its offset in the
//!   block ([`position`]). Builds before version 5 wrote one row of
//!   `event_log` per event; those rows are read as they are, their
//!   positions are their ids, all below every block's.
//! - Each event holds its session's previous event (`prev`, none for the
//!   first). A session's newest event is its *head*; its events are found
//!   by walking back from it, reading only their records (SQLite's
//!   incremental blob reads), not whole blocks.
//! - `sessions.log_head` is the head as of the row's last write. Rows of
//!   open sessions are written late (`crates/server/src/ingest.rs`), so it
//!   can lag.
//! - [`LogState::lagging`] holds, for the sessions whose row lags, their
//!   head and the first event their row lacks, as of the last commit. Reads
//!   take the newer of it and the row's.
//! - `log_mark.upto`: every event at a lower or equal position is counted
//!   in its session's row. The writer advances it (at most once a second)
//!   to just below the first event any lagging row lacks. When the store
//!   opens, it rebuilds [`LogState::lagging`] from the events above the
//!   mark: a crash loses no head. A writer that stops advances it too.
//! - Deduplication: the writer keeps, for each open session it has written
//!   to, its head and its dedup keys' fingerprints ([`Chains`]), loaded by
//!   walking the chain the first time it writes to the session after the
//!   store opened or after the session was idle for a whole turn
//!   ([`IDLE_AFTER`]). A session's row is written when it closes, and the
//!   writer forgets it.

use crate::{Result, StoreError};
use playhead_model::{Event, SessionKey};
use rusqlite::blob::Blob;
use rusqlite::{params, Connection, OptionalExtension, MAIN_DB};
use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The tables of the log (part of the store's schema).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS event_log (
    id INTEGER PRIMARY KEY,
    prev INTEGER,
    property TEXT NOT NULL,
    session_id TEXT NOT NULL,
    dedup_key INTEGER NOT NULL,
    t INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_mark (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    upto INTEGER NOT NULL
);
INSERT OR IGNORE INTO log_mark (id, upto) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS event_blocks (
    id INTEGER PRIMARY KEY,
    records BLOB NOT NULL
);
";

/// Positions in blocks have this bit set; below it are the ids of
/// `event_log` rows.
const IN_BLOCK: i64 = 1 << 62;

/// An offset in a block takes this many bits of a position.
const OFFSET_BITS: u32 = 24;

/// The most bytes a block holds: a commit group's events beyond it go to
/// the next block.
const MAX_BLOCK: usize = 1 << OFFSET_BITS;

/// A block is written once it holds this many bytes; the group's next
/// events go to the next block. Reading one record of a block walks its
/// overflow pages up to the record, so blocks are kept small: at P2's
/// groups, 16 KiB appends as fast as one block a group, and reads a
/// session back 2.6 times faster (`cargo bench -p playhead-store --bench
/// event_log`, `bench/RESULTS.md`).
const BLOCK_TARGET: usize = 16 << 10;

/// The position of the record at `offset` in block `block`.
fn position(block: i64, offset: usize) -> i64 {
    IN_BLOCK | (block << OFFSET_BITS) | offset as i64
}

/// The block and offset of a position in a block; `None` for an
/// `event_log` row's id.
fn in_block(position: i64) -> Option<(i64, usize)> {
    (position & IN_BLOCK != 0).then(|| {
        let p = position & !IN_BLOCK;
        (p >> OFFSET_BITS, (p & (MAX_BLOCK as i64 - 1)) as usize)
    })
}

/// One event in a block. Little-endian: the record's length (`u32`, all
/// of it), `prev` (`i64`, 0 for none), the dedup key (`u64`, bit-cast),
/// the lengths of the property and the session id (`u32` each), those two
/// strings, then the canonical [`Event`] in MessagePack, fields by name
/// (as session summaries are stored: no escapes to write, a third cheaper
/// than JSON).
#[derive(Debug)]
struct Record<'a> {
    prev: Option<i64>,
    dedup_key: u64,
    property: &'a [u8],
    session_id: &'a [u8],
    body: &'a [u8],
}

/// The bytes before a record's strings.
const RECORD_HEADER: usize = 4 + 8 + 8 + 4 + 4;

impl Record<'_> {
    /// A record's length, from its first four bytes.
    fn len_at(bytes: &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize)
    }

    /// The record `bytes` starts with (`None`: it does not hold together).
    fn parse(bytes: &[u8]) -> Option<Record<'_>> {
        let len = Record::len_at(bytes)?;
        let bytes = bytes.get(..len)?;
        let u32_at = |at: usize| -> Option<usize> {
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize)
        };
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let prev = u64_at(4)? as i64;
        let dedup_key = u64_at(12)?;
        let property_len = u32_at(20)?;
        let session_len = u32_at(24)?;
        let strings = RECORD_HEADER
            .checked_add(property_len)?
            .checked_add(session_len)?;
        Some(Record {
            prev: (prev != 0).then_some(prev),
            dedup_key,
            property: bytes.get(RECORD_HEADER..RECORD_HEADER + property_len)?,
            session_id: bytes.get(RECORD_HEADER + property_len..strings)?,
            body: bytes.get(strings..)?,
        })
    }

    /// Append the record of `event` in session `key`, chained to `prev`,
    /// to `out`.
    fn write(out: &mut Vec<u8>, prev: Option<i64>, key: &SessionKey, event: &Event) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&prev.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&event.dedup_key.to_le_bytes());
        out.extend_from_slice(&(key.property.len() as u32).to_le_bytes());
        out.extend_from_slice(&(key.session_id.len() as u32).to_le_bytes());
        out.extend_from_slice(key.property.as_bytes());
        out.extend_from_slice(key.session_id.as_bytes());
        let written = rmp_serde::encode::write_named(out, event)
            .map_err(|e| StoreError::Other(format!("an event does not encode: {e}")));
        let len = u32::try_from(out.len() - start)
            .ok()
            .filter(|&n| (n as usize) <= MAX_BLOCK);
        match (written, len) {
            (Ok(()), Some(len)) => {
                out[start..start + 4].copy_from_slice(&len.to_le_bytes());
                Ok(())
            }
            (written, _) => {
                out.truncate(start);
                written?;
                Err(StoreError::Other(format!(
                    "event log: an event of session {}/{} is larger than a block ({MAX_BLOCK} bytes)",
                    key.property, key.session_id
                )))
            }
        }
    }

    fn is_of(&self, key: &SessionKey) -> bool {
        self.property == key.property.as_bytes() && self.session_id == key.session_id.as_bytes()
    }
}

/// Every record of a block, with its offset, until one does not hold
/// together (`None` for it).
fn records(block: &[u8]) -> impl Iterator<Item = (usize, Option<Record<'_>>)> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset >= block.len() {
            return None;
        }
        let at = offset;
        let record = Record::parse(&block[at..]);
        offset = match (&record, Record::len_at(&block[at..])) {
            (Some(_), Some(len)) => at + len,
            _ => block.len(),
        };
        Some((at, record))
    })
}

/// The transaction's block, not yet written: `block` is 0 until its first
/// event.
#[derive(Debug, Default)]
struct Pending {
    block: i64,
    bytes: Vec<u8>,
}

/// What a transaction keeps of its block's buffer after it ends.
const PENDING_KEPT: usize = 1 << 20;

impl Pending {
    /// The bytes of the record at `position`, if it is in this block.
    fn record_at(&self, position: i64) -> Option<&[u8]> {
        let (block, offset) = in_block(position)?;
        (block == self.block && self.block != 0).then(|| self.bytes.get(offset..).unwrap_or(&[]))
    }

    /// Append the record of `event` (session `key`, chained to `prev`) and
    /// return its position. The transaction's first event numbers its
    /// block after the last written one (the writer holds the write lock);
    /// a block that reaches [`BLOCK_TARGET`] is written, and one the record
    /// would take past [`MAX_BLOCK`] is written without it.
    fn append(
        &mut self,
        conn: &Connection,
        prev: Option<i64>,
        key: &SessionKey,
        event: &Event,
    ) -> Result<i64> {
        if self.block == 0 {
            self.block = conn
                .prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM event_blocks")?
                .query_row([], |row| row.get(0))?;
        }
        let start = self.bytes.len();
        Record::write(&mut self.bytes, prev, key, event)?;
        let offset = if self.bytes.len() > MAX_BLOCK {
            let record = self.bytes.split_off(start);
            self.write(conn)?;
            self.bytes = record;
            0
        } else {
            start
        };
        let at = position(self.block, offset);
        if self.bytes.len() >= BLOCK_TARGET {
            self.write(conn)?;
        }
        Ok(at)
    }

    /// Write the block (if it holds anything); the next one follows it.
    fn write(&mut self, conn: &Connection) -> Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        conn.prepare_cached("INSERT INTO event_blocks (id, records) VALUES (?1, ?2)")?
            .execute(params![self.block, &self.bytes[..]])?;
        self.block += 1;
        self.bytes.clear();
        Ok(())
    }

    /// The transaction ended: the next one numbers its block anew.
    fn reset(&mut self) {
        self.block = 0;
        self.bytes.clear();
        self.bytes.shrink_to(PENDING_KEPT);
    }
}

/// The position just past the log's last event: every event is below it.
fn end_of_log(conn: &Connection) -> Result<i64> {
    let last_block: Option<i64> =
        conn.query_row("SELECT max(id) FROM event_blocks", [], |row| row.get(0))?;
    Ok(match last_block {
        Some(block) => position(block + 1, 0) - 1,
        None => conn.query_row("SELECT coalesce(max(id), 0) FROM event_log", [], |row| {
            row.get(0)
        })?,
    })
}

/// A turn of the writer's chains ([`Chains::begin`]).
const IDLE_AFTER: Duration = Duration::from_secs(300);

/// How often the writer may advance `log_mark` (one more page per commit
/// otherwise; a lower mark only means a longer scan at the next start).
const MARK_EVERY: Duration = Duration::from_secs(1);

/// A session in the log's maps: two independently keyed 64-bit hashes of
/// its key (a collision of both is as likely as one of two random 128-bit
/// ids), held instead of the key's two strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ChainId(u64, u64);

/// The maps' hasher: a [`ChainId`] is already a keyed hash.
#[derive(Debug, Default)]
pub(crate) struct ChainIdHasher(u64);

impl Hasher for ChainIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(32) ^ n;
    }
}

type ChainMap<V> = HashMap<ChainId, V, BuildHasherDefault<ChainIdHasher>>;

/// A lagging row: the session's head, and the first of its events the row lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lag {
    pub head: i64,
    pub first: i64,
}

/// What the store and its writer share about the log.
#[derive(Debug)]
pub(crate) struct LogState {
    keys: (RandomState, RandomState),
    /// The sessions whose row lags their head, as of the last commit.
    lagging: Mutex<ChainMap<Lag>>,
    /// Writers made so far, and the last one to commit to the log: a
    /// writer's cached chains are stale once another one committed.
    writers: AtomicU64,
    last_committer: AtomicU64,
}

impl LogState {
    /// The state of the log in `conn`'s database: the lagging rows found
    /// above the mark.
    pub fn recover(conn: &Connection) -> Result<LogState> {
        let state = LogState {
            keys: (RandomState::new(), RandomState::new()),
            lagging: Mutex::new(ChainMap::default()),
            writers: AtomicU64::new(0),
            last_committer: AtomicU64::new(0),
        };
        let upto: i64 = conn.query_row("SELECT upto FROM log_mark", [], |row| row.get(0))?;
        let mut found: HashMap<SessionKey, Lag> = HashMap::new();
        let mut found_at = |key: SessionKey, at: i64| {
            found
                .entry(key)
                .and_modify(|lag| lag.head = at)
                .or_insert(Lag {
                    head: at,
                    first: at,
                });
        };
        if in_block(upto).is_none() {
            let mut stmt = conn.prepare(
                "SELECT id, property, session_id FROM event_log WHERE id > ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([upto])?;
            while let Some(row) = rows.next()? {
                let key = SessionKey::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?);
                found_at(key, row.get(0)?);
            }
        }
        {
            let first_block = in_block(upto).map_or(0, |(block, _)| block);
            let mut stmt =
                conn.prepare("SELECT id, records FROM event_blocks WHERE id >= ?1 ORDER BY id")?;
            let mut rows = stmt.query([first_block])?;
            while let Some(row) = rows.next()? {
                let block: i64 = row.get(0)?;
                let bytes = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
                for (offset, record) in records(bytes) {
                    let at = position(block, offset);
                    let Some(record) = record else {
                        return Err(StoreError::Other(format!(
                            "event log: the record at offset {offset} of block {block} does not hold together"
                        )));
                    };
                    if at > upto {
                        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                        found_at(
                            SessionKey::new(text(record.property), text(record.session_id)),
                            at,
                        );
                    }
                }
            }
        }
        let sessions = found.len();
        let mut lagging = state.lagging.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, lag) in found {
            if row_head(conn, &key)?.is_none_or(|h| h < lag.head) {
                lagging.insert(state.id(&key), lag);
            }
        }
        if sessions > 0 {
            tracing::info!(
                after = upto,
                sessions,
                lagging = lagging.len(),
                "event log: read the events after the mark; the sessions whose rows lag them have their heads back"
            );
        }
        drop(lagging);
        Ok(state)
    }

    pub fn id(&self, key: &SessionKey) -> ChainId {
        ChainId(self.keys.0.hash_one(key), self.keys.1.hash_one(key))
    }

    fn lagging(&self) -> std::sync::MutexGuard<'_, ChainMap<Lag>> {
        self.lagging.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every lagging row's head as of the last commit, by session.
    pub fn lagging_heads(&self) -> impl Fn(&SessionKey) -> Option<i64> + '_ {
        let heads: ChainMap<i64> = self
            .lagging()
            .iter()
            .map(|(id, lag)| (*id, lag.head))
            .collect();
        move |key| heads.get(&self.id(key)).copied()
    }

    /// The head of a lagging row, as of the last commit.
    pub fn lagging_head(&self, key: &SessionKey) -> Option<i64> {
        self.lagging_head_of(&self.id(key))
    }

    fn lagging_head_of(&self, id: &ChainId) -> Option<i64> {
        self.lagging().get(id).map(|lag| lag.head)
    }
}

/// The head stored in a session's row.
fn row_head(conn: &Connection, key: &SessionKey) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT log_head FROM sessions WHERE property = ?1 AND id = ?2")?
        .query_row(params![key.property, key.session_id], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten())
}

/// A session's head: the row's, or a lagging one (taken before `conn`'s
/// read began, so that the snapshot holds it) if newer.
fn head(conn: &Connection, key: &SessionKey, lagging: Option<i64>) -> Result<Option<i64>> {
    Ok(row_head(conn, key)?.max(lagging))
}

/// Walk a session's chain back from `head`, calling `f` with each event's
/// dedup key and (when `bodies`) its body, until `f` returns `false`.
/// Events in `pending` (the writer's unwritten block) are read from it.
fn walk(
    conn: &Connection,
    pending: Option<&Pending>,
    key: &SessionKey,
    head: Option<i64>,
    bodies: bool,
    mut f: impl FnMut(u64, Option<Body<'_>>) -> Result<bool>,
) -> Result<()> {
    let mut blob: Option<(i64, Blob<'_>)> = None;
    let mut buf = Vec::new();
    let mut next = head;
    while let Some(at) = next {
        let (prev, more) = match in_block(at) {
            None => {
                let sql = if bodies {
                    "SELECT prev, property, session_id, dedup_key, body FROM event_log WHERE id = ?1"
                } else {
                    "SELECT prev, property, session_id, dedup_key, NULL FROM event_log WHERE id = ?1"
                };
                let row = conn
                    .prepare_cached(sql)?
                    .query_row([at], |row| {
                        Ok((
                            row.get::<_, Option<i64>>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, Option<String>>(4)?,
                        ))
                    })
                    .optional()?;
                let Some((prev, property, session_id, dedup_key, body)) = row else {
                    return Err(broken(key, at, "is missing"));
                };
                if property != key.property || session_id != key.session_id {
                    return Err(broken(key, at, "belongs to another session"));
                }
                (prev, f(dedup_key as u64, body.as_deref().map(Body::Json))?)
            }
            Some((block, offset)) => {
                let bytes = match pending.and_then(|p| p.record_at(at)) {
                    Some(bytes) => bytes,
                    None => {
                        if !read_record(conn, &mut blob, block, offset, &mut buf)? {
                            return Err(broken(key, at, "is missing"));
                        }
                        &buf[..]
                    }
                };
                let Some(record) = Record::parse(bytes) else {
                    return Err(broken(key, at, "does not hold together"));
                };
                if !record.is_of(key) {
                    return Err(broken(key, at, "belongs to another session"));
                }
                (
                    record.prev,
                    f(
                        record.dedup_key,
                        bodies.then_some(Body::Packed(record.body)),
                    )?,
                )
            }
        };
        if prev.is_some_and(|p| p >= at) {
            return Err(broken(key, at, "points forward"));
        }
        if !more {
            break;
        }
        next = prev;
    }
    Ok(())
}

/// A stored event's body: JSON text in `event_log` rows, MessagePack in
/// block records.
#[derive(Debug, Clone, Copy)]
enum Body<'a> {
    Json(&'a str),
    Packed(&'a [u8]),
}

impl Body<'_> {
    fn event(self) -> Result<Event> {
        match self {
            Body::Json(text) => Ok(serde_json::from_str(text)?),
            Body::Packed(bytes) => rmp_serde::from_slice(bytes)
                .map_err(|e| StoreError::Other(format!("a stored event does not decode: {e}"))),
        }
    }
}

/// Read the record at `offset` of a written block into `buf`, through
/// `blob` (opened, or moved to the block, as needed): only the record's
/// bytes are read, not the block. `false`: there is no such block.
fn read_record<'c>(
    conn: &'c Connection,
    blob: &mut Option<(i64, Blob<'c>)>,
    block: i64,
    offset: usize,
    buf: &mut Vec<u8>,
) -> Result<bool> {
    // SQLite answers SQLITE_ERROR ("no such rowid") for a missing row.
    let missing = |e: &rusqlite::Error| e.sqlite_error().is_some_and(|e| e.extended_code == 1);
    let opened = match blob.take() {
        Some((open, handle)) if open == block => Ok(handle),
        Some((_, mut handle)) => handle.reopen(block).map(|()| handle),
        None => conn.blob_open(MAIN_DB, c"event_blocks", c"records", block, true),
    };
    let handle = match opened {
        Ok(handle) => &blob.insert((block, handle)).1,
        Err(e) if missing(&e) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let mut len = [0; 4];
    handle.read_at_exact(&mut len, offset)?;
    let len = (u32::from_le_bytes(len) as usize).max(RECORD_HEADER);
    if offset + len > handle.len() {
        return Err(StoreError::Other(format!(
            "event log: the record at offset {offset} of block {block} runs past the block"
        )));
    }
    buf.resize(len, 0);
    handle.read_at_exact(buf, offset)?;
    Ok(true)
}

fn broken(key: &SessionKey, at: i64, what: &str) -> StoreError {
    let event = match in_block(at) {
        Some((block, offset)) => format!("the event at offset {offset} of block {block}"),
        None => format!("event {at}"),
    };
    StoreError::Other(format!(
        "event log: {event} in the chain of session {}/{} {what}",
        key.property, key.session_id
    ))
}

/// Every event of a session, in processing order ([`Event::sort_key`]),
/// from the newer of its row's head and `lagging`.
pub(crate) fn load_events(
    conn: &Connection,
    key: &SessionKey,
    lagging: Option<i64>,
) -> Result<Vec<Event>> {
    events_from(conn, None, key, head(conn, key, lagging)?)
}

/// Every event of a session's chain from `head`, in processing order.
fn events_from(
    conn: &Connection,
    pending: Option<&Pending>,
    key: &SessionKey,
    head: Option<i64>,
) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    walk(conn, pending, key, head, true, |_, body| {
        let body = body.expect("bodies were asked for");
        events.push(body.event()?);
        Ok(true)
    })?;
    events.sort_by_key(Event::sort_key);
    Ok(events)
}

/// One open session the writer has written to.
#[derive(Debug)]
struct Chain {
    /// 0: no event yet.
    head: i64,
    /// The [`fingerprint`] of every dedup key of the session, sorted: 4
    /// bytes an event. A key whose fingerprint is there is looked for in
    /// the chain, from the newest event back (a retry's duplicate is found
    /// within a few steps); one whose fingerprint is not is new. A boxed
    /// slice, exactly as long as the session's events: at P4's million
    /// open sessions a `Vec` (its capacity field, and room for four) cost
    /// 16 bytes more per session.
    fingerprints: Box<[u32]>,
}

impl Chain {
    /// The session's newest event, if it has one.
    fn head(&self) -> Option<i64> {
        (self.head != 0).then_some(self.head)
    }
}

/// A dedup key's 32 bits kept in memory (a native `seq` below 2^32 is its
/// own fingerprint).
fn fingerprint(dedup_key: u64) -> u32 {
    (dedup_key ^ (dedup_key >> 32)) as u32
}

/// The writer's side of the log: the open sessions' chains, and what the
/// open transaction did to their rows.
#[derive(Debug)]
pub(crate) struct Chains {
    /// This writer, among the store's ([`LogState::writers`]).
    me: u64,
    /// The chains written to since the last [`IDLE_AFTER`] turn...
    open: ChainMap<Chain>,
    /// ...and those written to in the turn before, dropped at the next
    /// turn unless written to again. A session idle for one to two turns
    /// (a viewer who left, before the inactivity timeout closes the
    /// session) holds no memory here; its chain is walked again if it
    /// comes back.
    idle: ChainMap<Chain>,
    turned: Instant,
    /// Sessions this transaction appended to or wrote the row of: the first
    /// event appended since the row was last written (`None`: the row is
    /// up to date).
    changed: ChainMap<Option<i64>>,
    /// The transaction's block not yet written (blocks are written as
    /// they fill, and the last one when the transaction commits).
    pending: Pending,
    pub(crate) mark_written: Option<Instant>,
}

impl Chains {
    pub fn new(state: &LogState) -> Chains {
        Chains {
            me: state.writers.fetch_add(1, Ordering::Relaxed) + 1,
            open: ChainMap::default(),
            idle: ChainMap::default(),
            turned: Instant::now(),
            changed: ChainMap::default(),
            pending: Pending::default(),
            mark_written: None,
        }
    }

    /// A transaction begins: if another writer committed to the log since
    /// this one last did, its cached chains may be behind.
    /// Every [`IDLE_AFTER`], the chains not written to in the turn before
    /// are dropped.
    pub fn begin(&mut self, state: &LogState) {
        if state.last_committer.load(Ordering::Acquire) != self.me {
            self.open.clear();
            self.idle.clear();
        }
        if self.turned.elapsed() >= IDLE_AFTER {
            self.turn();
        }
    }

    /// Drop the chains idle for a whole turn; start a new turn.
    pub(crate) fn turn(&mut self) {
        self.idle = std::mem::take(&mut self.open);
        self.turned = Instant::now();
    }

    /// A session's chain, if this writer holds it.
    fn get(&self, id: &ChainId) -> Option<&Chain> {
        self.open.get(id).or_else(|| self.idle.get(id))
    }

    /// The session's chain, loaded from the store the first time.
    fn chain<'a>(
        open: &'a mut ChainMap<Chain>,
        idle: &mut ChainMap<Chain>,
        pending: &Pending,
        conn: &Connection,
        state: &LogState,
        id: ChainId,
        key: &SessionKey,
    ) -> Result<&'a mut Chain> {
        match open.entry(id) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) if idle.contains_key(&id) => {
                let chain = idle.remove(&id).expect("just looked up");
                // As the active chains move back, the table they left
                // would keep its size for the whole turn: it shrinks with
                // them (in quarters, so the rehashing stays linear).
                if idle.capacity() > 1024 && idle.len() * 4 < idle.capacity() {
                    idle.shrink_to_fit();
                }
                Ok(e.insert(chain))
            }
            Entry::Vacant(e) => {
                let lagging = state.lagging_head_of(&id);
                let head = head(conn, key, lagging)?;
                let mut fingerprints = Vec::new();
                walk(conn, Some(pending), key, head, false, |k, _| {
                    fingerprints.push(fingerprint(k));
                    Ok(true)
                })?;
                fingerprints.sort_unstable();
                Ok(e.insert(Chain {
                    head: head.unwrap_or(0),
                    fingerprints: fingerprints.into_boxed_slice(),
                }))
            }
        }
    }

    /// Append an event unless (session, dedup key) is stored already.
    pub fn insert(
        &mut self,
        conn: &Connection,
        state: &LogState,
        key: &SessionKey,
        event: &Event,
    ) -> Result<bool> {
        let id = state.id(key);
        let chain = Chains::chain(
            &mut self.open,
            &mut self.idle,
            &self.pending,
            conn,
            state,
            id,
            key,
        )?;
        let print = fingerprint(event.dedup_key);
        let at = match chain.fingerprints.binary_search(&print) {
            Err(at) => at,
            Ok(at) => {
                let mut stored = false;
                walk(
                    conn,
                    Some(&self.pending),
                    key,
                    chain.head(),
                    false,
                    |k, _| {
                        stored = k == event.dedup_key;
                        Ok(!stored)
                    },
                )?;
                if stored {
                    return Ok(false);
                }
                at
            }
        };
        let row = self.pending.append(conn, chain.head(), key, event)?;
        chain.head = row;
        let mut prints = std::mem::take(&mut chain.fingerprints).into_vec();
        prints.insert(at, print);
        chain.fingerprints = prints.into_boxed_slice();
        self.changed.entry(id).or_insert(None).get_or_insert(row);
        Ok(true)
    }

    /// Every event of a session, this transaction's included.
    pub fn session_events(
        &mut self,
        conn: &Connection,
        state: &LogState,
        key: &SessionKey,
    ) -> Result<Vec<Event>> {
        let id = state.id(key);
        let head = match self.get(&id) {
            Some(chain) => chain.head(),
            None => head(conn, key, state.lagging_head_of(&id))?,
        };
        events_from(conn, Some(&self.pending), key, head)
    }

    /// The head to store in a session's row being written now (`None`:
    /// keep the stored one); a closed session is forgotten.
    pub fn row_written(&mut self, state: &LogState, key: &SessionKey, open: bool) -> Option<i64> {
        let id = state.id(key);
        let head = match self.get(&id) {
            Some(chain) => chain.head(),
            None => state.lagging_head_of(&id),
        };
        self.changed.insert(id, None);
        if !open {
            self.open.remove(&id);
            self.idle.remove(&id);
        }
        head
    }

    /// Before the transaction commits: advance the mark, at most once per
    /// [`MARK_EVERY`], to just below the first event a lagging row lacks
    /// (counting this transaction's), or to the last event.
    pub fn before_commit(&mut self, conn: &Connection, state: &LogState) -> Result<()> {
        self.pending.write(conn)?;
        if self
            .mark_written
            .is_some_and(|at| at.elapsed() < MARK_EVERY)
        {
            return Ok(());
        }
        self.advance_mark(conn, state)
    }

    /// Advance the mark now: in the open transaction (counting what it
    /// did), or on its own outside one (as the writer stops, so that the
    /// next start has little to scan).
    pub fn advance_mark(&mut self, conn: &Connection, state: &LogState) -> Result<()> {
        // A row this transaction writes lags no more; one it appends to
        // lags from its older first event if it lagged already.
        let lagging_first = state
            .lagging()
            .iter()
            .filter(|(id, _)| !matches!(self.changed.get(*id), Some(None)))
            .map(|(_, lag)| lag.first)
            .min();
        let first = match (self.changed.values().flatten().min(), lagging_first) {
            (Some(&a), Some(b)) => Some(a.min(b)),
            (a, b) => a.copied().or(b),
        };
        let upto = match first {
            Some(first) => first - 1,
            None => end_of_log(conn)?,
        };
        conn.prepare_cached("UPDATE log_mark SET upto = ?1 WHERE upto < ?1")?
            .execute([upto])?;
        self.mark_written = Some(Instant::now());
        Ok(())
    }

    /// After the transaction committed: publish which rows lag.
    pub fn after_commit(&mut self, state: &LogState) {
        self.pending.reset();
        state.last_committer.store(self.me, Ordering::Release);
        if self.changed.is_empty() {
            return;
        }
        let mut lagging = state.lagging();
        // Taken out and put back (emptied, its capacity kept), so that the
        // chains are read through `get` while it drains.
        let mut changed = std::mem::take(&mut self.changed);
        for (id, first) in changed.drain() {
            match (first, self.get(&id)) {
                (Some(first), Some(chain)) => {
                    lagging
                        .entry(id)
                        .and_modify(|lag| lag.head = chain.head)
                        .or_insert(Lag {
                            head: chain.head,
                            first,
                        });
                }
                _ => {
                    lagging.remove(&id);
                }
            }
        }
        self.changed = changed;
    }

    /// The transaction rolled back: forget what it did, and every chain
    /// (they are loaded again from what was committed).
    pub fn rolled_back(&mut self) {
        self.open.clear();
        self.idle.clear();
        self.changed.clear();
        self.pending.reset();
    }
}

#[cfg(test)]
mod tests {
    use crate::sqlite::SqliteStore;
    use crate::{FsyncPolicy, Store, StoreWriter};
    use playhead_model::{
        Event, EventKind, Millis, PlayerState, Protocol, SessionKey, SessionMeta, SessionMetrics,
        SessionSummary,
    };

    const T0: Millis = 1_700_000_000_000;

    fn key(id: &str) -> SessionKey {
        SessionKey::new("p", id)
    }

    fn event(dedup_key: u64) -> Event {
        let t = T0 + dedup_key as Millis;
        let mut e = Event::new(t, t, EventKind::Heartbeat);
        e.dedup_key = dedup_key;
        e
    }

    fn row(id: &str, open: bool) -> SessionSummary {
        SessionSummary {
            key: key(id),
            protocol: Protocol::Native,
            meta: SessionMeta::default(),
            state: PlayerState::Playing,
            open,
            started_at: T0,
            last_event_at: T0,
            last_received_at: T0,
            ended_at: (!open).then_some(T0),
            metrics: SessionMetrics::default(),
        }
    }

    fn dedups(store: &SqliteStore, id: &str) -> Vec<u64> {
        let events = store.session_events(&key(id)).unwrap();
        events.iter().map(|e| e.dedup_key).collect()
    }

    /// Append event `dedup` to session `id`; whether it was new.
    fn append<W: StoreWriter + ?Sized>(w: &mut W, id: &str, dedup: u64) -> bool {
        w.insert_event(&key(id), Protocol::Native, &event(dedup))
            .unwrap()
    }

    fn mark(store: &SqliteStore) -> i64 {
        rusqlite::Connection::open(store.path())
            .unwrap()
            .query_row("SELECT upto FROM log_mark", [], |r| r.get(0))
            .unwrap()
    }

    fn end_of_log(store: &SqliteStore) -> i64 {
        super::end_of_log(&rusqlite::Connection::open(store.path()).unwrap()).unwrap()
    }

    /// Every stored event: its position, session id and dedup key.
    fn stored(store: &SqliteStore) -> Vec<(i64, String, u64)> {
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT id, records FROM event_blocks ORDER BY id")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let block: i64 = row.get(0).unwrap();
            let bytes: Vec<u8> = row.get(1).unwrap();
            for (offset, record) in super::records(&bytes) {
                let record = record.expect("records hold together");
                let id = String::from_utf8(record.session_id.to_vec()).unwrap();
                out.push((super::position(block, offset), id, record.dedup_key));
            }
        }
        out
    }

    /// The position of event `dedup` of session `id`.
    fn at(store: &SqliteStore, id: &str, dedup: u64) -> i64 {
        stored(store)
            .into_iter()
            .find(|(_, s, d)| s == id && *d == dedup)
            .map(|(at, _, _)| at)
            .expect("stored")
    }

    /// Rows written late lag their chains: reads find the newer heads, the
    /// mark stays below the first event a lagging row lacks, and a store
    /// opened again after a crash (the writer is forgotten, not dropped:
    /// nothing is written on the way out) finds every event, still
    /// deduplicates them and chains on.
    #[test]
    fn heads_of_lagging_rows_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.open_writer().unwrap();
        let commit = |w: &mut crate::sqlite::SqliteWriter| {
            w.chains.mark_written = None;
            w.commit().unwrap();
        };
        w.begin().unwrap();
        assert!(append(&mut w, "a", 1));
        w.put_session(&row("a", true)).unwrap();
        assert!(append(&mut w, "b", 1));
        w.put_session(&row("b", true)).unwrap();
        commit(&mut w);
        assert_eq!(mark(&store), end_of_log(&store), "every row is up to date");

        w.begin().unwrap();
        // a's row is not written: it lags from event 3 on.
        assert!(append(&mut w, "a", 2));
        assert!(append(&mut w, "b", 2));
        w.put_session(&row("b", true)).unwrap();
        commit(&mut w);
        assert_eq!(mark(&store), at(&store, "a", 2) - 1);
        w.begin().unwrap();
        assert!(append(&mut w, "a", 3));
        assert!(!append(&mut w, "a", 2));
        assert!(append(&mut w, "c", 1));
        w.put_session(&row("c", true)).unwrap();
        commit(&mut w);
        assert_eq!(
            mark(&store),
            at(&store, "a", 2) - 1,
            "a's row still lacks its event 2"
        );
        assert_eq!(dedups(&store, "a"), [1, 2, 3], "read from the lagging head");
        assert_eq!(dedups(&store, "b"), [1, 2]);
        std::mem::forget(w);
        drop(store);

        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        assert_eq!(dedups(&store, "a"), [1, 2, 3]);
        let open = store.open_sessions().unwrap();
        let counts: Vec<(String, usize)> = open
            .iter()
            .map(|r| (r.summary.key.session_id.clone(), r.events.len()))
            .collect();
        assert_eq!(counts, [("a".into(), 3), ("b".into(), 2), ("c".into(), 1)]);
        let mut w = store.open_writer().unwrap();
        w.begin().unwrap();
        for k in [1, 2, 3] {
            assert!(!append(&mut w, "a", k));
        }
        assert!(append(&mut w, "a", 4));
        commit(&mut w);
        assert_eq!(dedups(&store, "a"), [1, 2, 3, 4]);
        // Its row written, a lags no more: the mark reaches the last event.
        w.begin().unwrap();
        w.put_session(&row("a", false)).unwrap();
        commit(&mut w);
        assert_eq!(mark(&store), end_of_log(&store));
        assert_eq!(dedups(&store, "a"), [1, 2, 3, 4], "read from the row");
        assert!(store.log.lagging_heads()(&key("a")).is_none());
    }

    /// A writer that stops advances the mark to what the rows hold, which
    /// the once-a-second advance at commit may not have done yet.
    #[test]
    fn a_stopping_writer_advances_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.writer().unwrap();
        let mut ends = Vec::new();
        for dedup in [1, 2] {
            w.begin().unwrap();
            assert!(append(&mut *w, "a", dedup));
            w.put_session(&row("a", true)).unwrap();
            w.commit().unwrap();
            ends.push(end_of_log(&store));
        }
        assert!(ends[0] < at(&store, "a", 2));
        assert_eq!(mark(&store), ends[0], "advanced at the first commit only");
        drop(w);
        assert_eq!(mark(&store), ends[1]);
    }

    /// A chain not written to for a whole turn is dropped, one written to
    /// in the turn before is kept, and a dropped one is walked again when
    /// its session comes back: its duplicates are still refused.
    #[test]
    fn chains_idle_for_a_turn_are_dropped_and_walked_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.open_writer().unwrap();
        // One event and its session's row, in a transaction of their own.
        let commit_one = |w: &mut crate::sqlite::SqliteWriter, id: &str, dedup: u64| -> bool {
            w.begin().unwrap();
            let new = append(w, id, dedup);
            w.put_session(&row(id, true)).unwrap();
            w.commit().unwrap();
            new
        };
        assert!(commit_one(&mut w, "a", 1));
        w.chains.turn();
        assert!(commit_one(&mut w, "b", 1));
        w.chains.turn();
        let id = |k: &str| store.log.id(&key(k));
        assert!(w.chains.get(&id("a")).is_none(), "idle for a whole turn");
        assert!(
            w.chains.get(&id("b")).is_some(),
            "written to in the turn before"
        );
        assert!(
            !commit_one(&mut w, "a", 1),
            "a duplicate after the chain was dropped"
        );
        assert!(commit_one(&mut w, "a", 2));
        assert!(!commit_one(&mut w, "b", 1));
        assert_eq!(dedups(&store, "a"), [1, 2]);
    }

    /// A writer's cached chains are reloaded once another writer of the
    /// store committed: neither forks a chain nor misses a duplicate.
    #[test]
    fn two_writers_take_turns_on_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut first = store.writer().unwrap();
        let mut second = store.writer().unwrap();
        let commit_one = |w: &mut Box<dyn StoreWriter>, dedup| {
            w.begin().unwrap();
            assert!(append(&mut **w, "s", dedup));
            w.commit().unwrap();
        };
        commit_one(&mut first, 1);
        commit_one(&mut second, 2);
        commit_one(&mut first, 3);
        second.begin().unwrap();
        assert!(!append(&mut *second, "s", 3));
        second.commit().unwrap();
        assert_eq!(dedups(&store, "s"), [1, 2, 3]);
    }

    /// A rolled-back append leaves no trace in the chain: the next event
    /// chains to the last committed one.
    #[test]
    fn a_rolled_back_append_is_not_chained_to() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.writer().unwrap();
        w.begin().unwrap();
        assert!(append(&mut *w, "s", 1));
        w.commit().unwrap();
        w.begin().unwrap();
        assert!(append(&mut *w, "s", 2));
        w.rollback().unwrap();
        w.begin().unwrap();
        assert!(append(&mut *w, "s", 3));
        assert!(append(&mut *w, "s", 2));
        w.commit().unwrap();
        assert_eq!(dedups(&store, "s"), [1, 2, 3]);
    }

    /// Keys sharing a fingerprint are told apart in the chain: each is
    /// stored once, and a repeat of either is a duplicate.
    #[test]
    fn keys_with_one_fingerprint_are_told_apart() {
        let (a, b, c) = (1u64, 1u64 << 32, (7u64 << 32) | 6);
        assert_eq!(super::fingerprint(a), super::fingerprint(b));
        assert_eq!(super::fingerprint(a), super::fingerprint(c));
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.writer().unwrap();
        w.begin().unwrap();
        assert!(append(&mut *w, "s", a));
        assert!(append(&mut *w, "s", b));
        assert!(!append(&mut *w, "s", a));
        w.commit().unwrap();
        w.begin().unwrap();
        assert!(!append(&mut *w, "s", b));
        assert!(append(&mut *w, "s", c));
        assert!(!append(&mut *w, "s", a));
        w.commit().unwrap();
        let mut stored = dedups(&store, "s");
        stored.sort_unstable();
        assert_eq!(stored, [a, b, c]);
    }

    /// Every kind of event, with every optional field, reads back equal
    /// from its record: from the writer's unwritten block, and from the
    /// written one.
    #[test]
    fn events_read_back_from_their_records() {
        use playhead_model::{ErrorSeverity, EventKind as K, Qoe};
        let kinds = vec![
            K::Viewinit,
            K::Play,
            K::Playing,
            K::Pause,
            K::Seeking,
            K::Seeked,
            K::Waiting,
            K::Ratechange { rate: 1.5 },
            K::Renditionchange {
                bitrate_bps: Some(u64::MAX),
                width: Some(1920),
                height: Some(1080),
            },
            K::Resize {
                width: None,
                height: Some(720),
            },
            K::Heartbeat,
            K::Progress {
                seek: true,
                from: Some(12.25),
                shown: true,
            },
            K::Error {
                code: "E\"1\u{e9}".into(),
                message: "boom\n".into(),
                severity: ErrorSeverity::FatalUnlessResumed,
                source: Some("player".into()),
            },
            K::Ended,
            K::Viewend,
            K::Adbreakstart,
            K::Adstart {
                ad_id: Some("ad-1".into()),
                duration_s: Some(15.0),
            },
            K::Adquartile { quartile: 3 },
            K::Adcomplete,
            K::Adskip,
            K::Adbreakend,
            K::Custom {
                name: "chapter".into(),
            },
        ];
        let data = serde_json::json!({
            "n": -3, "big": u64::MAX, "x": 1.0, "s": "\u{1f600}", "nul": null,
            "list": [1, "two", {"three": 3.5}], "yes": true
        });
        let events: Vec<Event> = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                let mut e =
                    Event::new(T0 + i as Millis, T0 + 7, kind).with_playhead(i as f64 / 3.0);
                e.dedup_key = u64::MAX - i as u64;
                e.order = i as u64;
                e.qoe = Qoe {
                    bitrate_bps: Some(5_000_000),
                    dropped_frames: Some(2),
                    total_frames: Some(i as u64),
                    startup_time_ms: Some(812.5),
                };
                e.clock_skew_corrected = i % 2 == 0;
                if let serde_json::Value::Object(map) = &data {
                    e.data = map.clone();
                }
                e
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.writer().unwrap();
        w.begin().unwrap();
        for e in &events {
            assert!(w.insert_event(&key("s"), Protocol::Native, e).unwrap());
        }
        assert_eq!(w.session_events(&key("s")).unwrap(), events, "unwritten");
        w.commit().unwrap();
        assert_eq!(store.session_events(&key("s")).unwrap(), events, "written");
    }

    /// A commit group's events fill blocks of about [`BLOCK_TARGET`]
    /// bytes, one after the other; a record larger than that is a block of
    /// its own; one that would take the block past [`MAX_BLOCK`] starts the
    /// next; one larger than `MAX_BLOCK` is refused. Chains cross blocks,
    /// and every event reads back, before and after a restart.
    #[test]
    fn a_group_spans_blocks() {
        use super::{BLOCK_TARGET, MAX_BLOCK};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.open_writer().unwrap();
        let padded = |dedup: u64, bytes: usize| {
            let mut e = event(dedup);
            e.data.insert(
                "padding".into(),
                serde_json::Value::String("x".repeat(bytes)),
            );
            e
        };
        w.begin().unwrap();
        for dedup in 1..=300 {
            let e = match dedup {
                100 => padded(dedup, 1 << 20),
                // Taken with what the block holds, past MAX_BLOCK.
                200 => padded(dedup, MAX_BLOCK - 200),
                _ => event(dedup),
            };
            assert!(w.insert_event(&key("s"), Protocol::Native, &e).unwrap());
            assert!(append(&mut w, "t", dedup));
        }
        let e = w
            .insert_event(&key("s"), Protocol::Native, &padded(301, MAX_BLOCK))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is larger than a block"), "{e}");
        w.chains.mark_written = None;
        w.commit().unwrap();
        let sizes: Vec<usize> = rusqlite::Connection::open(store.path())
            .unwrap()
            .prepare("SELECT length(records) FROM event_blocks ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(sizes.len() > 4, "{sizes:?}");
        let (last, full) = sizes.split_last().unwrap();
        assert!(*last > 0);
        // Every block but the last is full, except the one closed for the
        // record that would have taken it past MAX_BLOCK.
        let short: Vec<usize> = (0..full.len())
            .filter(|&i| full[i] < BLOCK_TARGET)
            .collect();
        assert_eq!(short.len(), 1, "{sizes:?}");
        assert!(
            sizes[short[0]] + sizes[short[0] + 1] > MAX_BLOCK,
            "{sizes:?}"
        );
        assert_eq!(
            sizes.iter().filter(|&&n| n > 1 << 20).count(),
            2,
            "the two large events have blocks of their own: {sizes:?}"
        );
        let all: Vec<u64> = (1..=300).collect();
        assert_eq!(dedups(&store, "s"), all);
        assert_eq!(dedups(&store, "t"), all);
        std::mem::forget(w);
        drop(store);
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        assert_eq!(dedups(&store, "s"), all);
        let mut w = store.writer().unwrap();
        w.begin().unwrap();
        for dedup in [1, 100, 200, 300] {
            assert!(!append(&mut *w, "s", dedup));
        }
        assert!(append(&mut *w, "s", 301));
        w.commit().unwrap();
        assert_eq!(dedups(&store, "s").len(), 301);
    }

    /// A chain that does not hold together is an error naming the session,
    /// not a wrong answer.
    #[test]
    fn a_broken_chain_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let mut w = store.writer().unwrap();
        w.begin().unwrap();
        for (id, dedup) in [("s", 1), ("t", 1), ("s", 2)] {
            assert!(append(&mut *w, id, dedup));
        }
        w.commit().unwrap();
        drop(w);
        // s's second event points at t's instead of s's first.
        let (t, s2) = (at(&store, "t", 1), at(&store, "s", 2));
        let (block, offset) = super::in_block(s2).unwrap();
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        conn.blob_open(rusqlite::MAIN_DB, "event_blocks", "records", block, false)
            .unwrap()
            .write_all_at(&t.to_le_bytes(), offset + 4)
            .unwrap();
        let (_, t_offset) = super::in_block(t).unwrap();
        let e = store.session_events(&key("s")).unwrap_err().to_string();
        let expected = format!(
            "the event at offset {t_offset} of block {block} in the chain of session p/s belongs to another session"
        );
        assert!(e.contains(&expected), "{e}");
    }
}
