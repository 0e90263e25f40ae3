//! Playhead's storage: the [`Store`] trait every backend implements, its
//! embedded SQLite backend, and the conformance suite every backend passes.
//!
//! - [`sqlite`]: the embedded backend (rusqlite, bundled SQLite, WAL).
//! - [`conformance`]: the storage conformance suite, one function per
//!   behaviour; each backend's tests call [`conformance::run_all`].
//! - [`ads`]: the ping protocol's assets, channels, ping sessions and
//!   ad-beacon outbox ([`AdStore`]).
//! - [`error`]: the one error type, [`StoreError`].
//!
//! Writes go through one [`StoreWriter`] owned by the ingest thread, in
//! transactions: the server answers an ingest request only after the
//! transaction holding its events committed (group commit). Reads go
//! through `&self` methods of [`Store`] and may run on any thread.
//!
//! What is kept: raw canonical events (deduplicated by (session, dedup key)),
//! one row per session (its latest summary), and rollups of closed sessions
//! (an [`Aggregate`] per minute, hour and day of session start, overall and
//! per value of each of [`ROLLUP_DIMENSIONS`]). Aggregate queries merge
//! rollups for whole minutes and read session rows for open sessions,
//! partial minutes and filters the rollups cannot answer.
//!
//! Only playback sessions (views, `spec/metrics.md`) count in aggregates.
//! A session whose [`SessionSummary::is_playback`] is false (a User
//! Activity Vault app session, [`playhead_model::SessionKind::App`]) is
//! stored, read back and listed like any other, but [`Store::aggregate`],
//! [`Store::session_spans`] and [`Store::realtime`] leave it out, and
//! [`StoreWriter::add_to_rollup`] does not add it.

pub mod ads;
pub mod concurrency;
pub mod conformance;
pub mod error;
mod event_log;
pub mod sqlite;

pub use ads::{AdStore, SqliteAdStore};
pub use error::StoreError;
pub use sqlite::SqliteStore;

use playhead_engine::{Aggregate, Parts};
use playhead_model::{Dimension, Event, Millis, Protocol, SessionKey, SessionSummary};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Dimensions the rollups keep a row per value of, besides property and
/// time. Queries filtering or grouping by anything else, or filtering by
/// two of them, read session rows instead.
pub const ROLLUP_DIMENSIONS: [Dimension; 6] = [
    Dimension::Protocol,
    Dimension::VideoId,
    Dimension::ContentType,
    Dimension::Browser,
    Dimension::Os,
    Dimension::DeviceType,
];

/// How `fsync` is used at commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Every commit is on disk before it returns (default: no acknowledged
    /// event is lost on power loss or `kill -9`).
    #[default]
    Always,
    /// Commits reach the OS but are not fsynced: survives `kill -9`, not a
    /// power loss. For benchmarks and throwaway data.
    Off,
}

/// Sessions matching a property, a time range (by session start) and
/// dimension filters: values ORed within a dimension, ANDed across.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    pub property: String,
    /// Inclusive start, ms.
    pub from: Millis,
    /// Exclusive end, ms.
    pub to: Millis,
    pub dimensions: Vec<(Dimension, Vec<String>)>,
}

impl Filters {
    pub fn new(property: impl Into<String>, from: Millis, to: Millis) -> Filters {
        Filters {
            property: property.into(),
            from,
            to,
            dimensions: Vec::new(),
        }
    }

    /// Whether a session passes these filters (time range included).
    pub fn matches(&self, s: &SessionSummary) -> bool {
        s.key.property == self.property
            && s.started_at >= self.from
            && s.started_at < self.to
            && self.dimensions.iter().all(|(dim, wanted)| {
                let have = s.dimension_values(dim);
                have.iter().any(|v| wanted.contains(v))
            })
    }
}

/// How an aggregate query groups sessions.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupBy {
    /// One group, key [`GroupKey::All`].
    All,
    /// Buckets of this many ms, aligned to the epoch (a multiple of 60,000).
    Interval(Millis),
    /// One group per value of a dimension (a session with several values,
    /// like several error codes, counts in each).
    Dimension(Dimension),
}

/// The key of one group of an aggregate query.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    All,
    /// Bucket start, ms.
    Bucket(Millis),
    Value(String),
}

/// Extra filters of a session list.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionQuery {
    pub filters: Filters,
    /// Only failed (`Some(true)`) or only not failed (`Some(false)`) sessions.
    pub failed: Option<bool>,
    /// At most this many (1..=1000).
    pub limit: usize,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

/// One page of sessions, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPage {
    pub sessions: Vec<SessionSummary>,
    pub next_cursor: Option<String>,
}

/// Realtime figures at server time `now`, over playback sessions only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Realtime {
    /// Open playback sessions with an event received in the last 60 s.
    pub concurrent_viewers: u64,
    /// The same, by video, largest first.
    pub by_video: Vec<(String, u64)>,
    /// Distinct viewers of playback sessions with an event received in the
    /// last 5 min.
    pub viewers_last_5m: u64,
}

/// A session restored at start-up: its last summary and every stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSessionRecord {
    pub summary: SessionSummary,
    pub events: Vec<Event>,
}

/// Where a session stands in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Unknown,
    Open,
    Closed,
}

/// A storage backend.
pub trait Store: Send + Sync + 'static {
    /// The writer for the ingest thread. Only one is used at a time.
    fn writer(&self) -> Result<Box<dyn StoreWriter>>;

    /// A session's stored summary.
    fn session(&self, key: &SessionKey) -> Result<Option<SessionSummary>>;

    /// A session's events in processing order (`Event::sort_key`).
    fn session_events(&self, key: &SessionKey) -> Result<Vec<Event>>;

    /// Sessions matching a query, newest first (by `started_at`, then id).
    fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage>;

    /// Every open session with its events, to rebuild the tracker at start-up.
    fn open_sessions(&self) -> Result<Vec<OpenSessionRecord>>;

    /// Aggregates of the playback sessions matching `filters`, grouped.
    fn aggregate(
        &self,
        filters: &Filters,
        group: &GroupBy,
    ) -> Result<std::collections::BTreeMap<GroupKey, Aggregate>> {
        self.aggregate_parts(filters, group, Parts::All)
    }

    /// [`Store::aggregate`], computing only `parts` of each aggregate where
    /// that is cheaper (with [`Parts::Sums`], distinct viewers and startup
    /// percentiles may be empty).
    fn aggregate_parts(
        &self,
        filters: &Filters,
        group: &GroupBy,
        parts: Parts,
    ) -> Result<std::collections::BTreeMap<GroupKey, Aggregate>>;

    /// (start, end) of the playback sessions matching the dimension filters that were
    /// open at some point of [from, to): start = first event, end = close
    /// time, or last event while open. Sessions starting before `from` count.
    fn session_spans(&self, filters: &Filters) -> Result<Vec<(Millis, Millis)>>;

    /// `concurrent_viewers` of the playback sessions matching the
    /// dimension filters: the most open at once in each bucket
    /// `[b, b + interval)` from `start` (at most `filters.from`), counting
    /// only moments inside `[from, to)`.
    fn concurrency(&self, filters: &Filters, start: Millis, interval: Millis) -> Result<Vec<u64>> {
        concurrency_from_spans(self, filters, start, interval)
    }

    /// Realtime figures at server time `now`, for one property, filtered by
    /// dimensions (the time range of `filters` is ignored).
    fn realtime(&self, filters: &Filters, now: Millis) -> Result<Realtime>;

    /// Whether the store accepts writes (for `/readyz`).
    fn is_writable(&self) -> bool;

    /// The ping protocol's assets, channels, sessions and beacon outbox.
    fn ads(&self) -> std::sync::Arc<dyn AdStore>;
}

/// [`Store::concurrency`] from every matching session's span
/// ([`Store::session_spans`]).
pub fn concurrency_from_spans<S: Store + ?Sized>(
    store: &S,
    filters: &Filters,
    start: Millis,
    interval: Millis,
) -> Result<Vec<u64>> {
    check_interval(interval)?;
    let spans = store.session_spans(filters)?;
    Ok(concurrency::sweep(
        &spans,
        filters.from,
        start,
        filters.to,
        interval,
    ))
}

/// A timeseries interval must be positive.
pub(crate) fn check_interval(interval: Millis) -> Result<()> {
    if interval <= 0 {
        return Err(StoreError::Other(format!(
            "interval must be positive, got {interval}"
        )));
    }
    Ok(())
}

/// The write path, used by one thread. All writes between `begin` and
/// `commit` are one transaction; `commit` returns once durable per the
/// store's [`FsyncPolicy`].
pub trait StoreWriter: Send {
    fn begin(&mut self) -> Result<()>;

    /// Store an event; `false` when (session, `dedup_key`) is already
    /// stored (a duplicate, nothing written).
    fn insert_event(&mut self, key: &SessionKey, protocol: Protocol, event: &Event)
        -> Result<bool>;

    /// Every event of a session stored so far (this transaction's included),
    /// in processing order.
    fn session_events(&mut self, key: &SessionKey) -> Result<Vec<Event>>;

    /// Where a session stands (this transaction's writes included).
    fn session_status(&mut self, key: &SessionKey) -> Result<SessionStatus>;

    /// Insert or replace a session's summary row.
    fn put_session(&mut self, summary: &SessionSummary) -> Result<()>;

    /// Add a closed session to the rollups. Called once per session, in the
    /// transaction that closes it. A session that is not a playback session
    /// is not added (it counts in no aggregate). The session may first be
    /// queued and counted from its row until [`StoreWriter::fold_rollups`]
    /// folds it in.
    fn add_to_rollup(&mut self, summary: &SessionSummary) -> Result<()>;

    /// Fold up to `max_sessions` queued closed sessions into the rollups, in
    /// a transaction of its own (call it outside `begin`/`commit`). Returns
    /// how many were folded; aggregates answer the same before and after.
    fn fold_rollups(&mut self, max_sessions: usize) -> Result<usize>;

    fn commit(&mut self) -> Result<()>;

    /// Drop the open transaction's writes.
    fn rollback(&mut self) -> Result<()>;

    /// Pipelined group commit. With [`FsyncPolicy::Always`], a backend that
    /// supports it returns a [`Syncer`] and from then on `commit` returns
    /// once the transaction is written to the OS (visible to reads, safe
    /// from `kill -9`) but before it is on disk; the syncer, run on another
    /// thread, makes it durable. The writer prepares the next group while
    /// the previous one is being synced. `None` (the default, and always
    /// with [`FsyncPolicy::Off`]): `commit` keeps its own guarantee.
    fn pipeline(&mut self) -> Result<Option<Box<dyn Syncer>>> {
        Ok(None)
    }
}

/// Makes commits durable from another thread ([`StoreWriter::pipeline`]).
pub trait Syncer: Send {
    /// Once this returns `Ok`, every commit that returned before it was
    /// called is on disk (one fsync covers them all).
    fn sync(&mut self) -> Result<()>;
}
