//! The ingest pipeline: a bounded queue in front of one writer thread that
//! owns the session tracker and the store's write path.
//!
//! Durability contract (DESIGN.md): a request's reply is sent only after the
//! transaction holding its events committed and is on disk. The writer
//! drains whatever is queued (up to `max_group_commit` requests) into one
//! transaction, so under load many requests share one fsync (group commit).
//! When the store pipelines commits ([`StoreWriter::pipeline`], the embedded
//! store with `fsync = always`), the fsync runs on a thread of its own: the
//! writer commits a group to the OS, hands its replies to the fsync thread
//! and goes on with the next group, and one fsync answers every group
//! committed before it started. Answers go to a task of the async runtime
//! in one message per fsync ([`Replier`]), not request by request. When the
//! queue is full `submit` fails at once with `Overloaded` (the route
//! answers `503` + `Retry-After`): memory stays bounded by the queue's
//! capacity, and by [`SYNC_QUEUE`] groups waiting for their fsync.
//!
//! The tracker is touched only by the writer thread, in the order requests
//! were queued; if a transaction fails, its writes are rolled back and the
//! tracker is rebuilt from the store, so the two never disagree.

use crate::clock::Clock;
use crate::telemetry::Telemetry;
use crossbeam_channel::{
    Receiver, RecvTimeoutError, SendError, Sender, TryRecvError, TrySendError,
};
use playhead_engine::tracker::CloseReason;
use playhead_engine::Tracker;
use playhead_model::{Batch, Protocol, SessionKey, SessionMap, SessionSummary};
use playhead_store::{SessionStatus, Store, StoreError, StoreWriter, Syncer};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

/// Bits of an event's `order` left to the decoder's order within one request
/// (batches hold at most 10,000 events × 8); the arrival stamp goes above.
/// 46 bits of stamp (ms × 32) + 17 stay below 2^63, as SQLite stores it.
const IN_REQUEST_ORDER_BITS: u32 = 17;
const IN_REQUEST_ORDER_MASK: u64 = (1 << IN_REQUEST_ORDER_BITS) - 1;

/// How often the writer closes sessions whose timeout passed.
const EXPIRY_EVERY: Duration = Duration::from_secs(1);
/// Most closed sessions folded into the rollups a second.
const FOLD_BATCH: usize = 5_000;
/// How often the pixel groups of closed sessions are forgotten. It scans
/// every group, so once a second it was 3 % of the server's time at P1's
/// load (150,000 viewers, `bench/RESULTS.md`); a group whose session closed
/// is only looked up and passed over until then (`Writer::resolve` checks
/// that its session is open).
const GROUPS_RETAIN_EVERY: Duration = Duration::from_secs(60);
/// Committed groups that may wait for the fsync thread before the writer
/// waits too (and the ingest queue, then `503`, takes the back-pressure).
pub const SYNC_QUEUE: usize = 8;
/// How long an open session's row may lag it. A session's row is written in
/// the request's transaction when the session opens, closes or changes its
/// metadata; other updates (most events) only mark it stale, and it is
/// rewritten once this has passed, or when a read asks ([`Pipeline::flush`]).
/// Its events are durable either way, and a restart replays them. Rewriting
/// every open session's row per event was a quarter of the CPU an event
/// cost (`bench/RESULTS.md`). 30 s is longer than the real cadences of
/// pixel checks (5 s) and Adobe pings (10 s), so at those a row is written
/// once per 3–6 events rather than per event, while a read's flush has at
/// most 30 s of sessions to write.
pub const ROW_DEFER_MS: i64 = 30_000;
/// Most stale rows one commit rewrites, because their time has come or a
/// read waits for them. A read's flush of many rows spans several commits,
/// so ingest requests go on between them: one transaction of 100,000 rows
/// held the writer for 3–4 s (`bench/read_flush.sh`), enough to fill the
/// ingest queue. A row costs about 30 µs, so a commit's share is ~30 ms.
const STALE_ROWS_PER_COMMIT: usize = 1_000;

/// What a session must be for a request to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Open it when unknown (most protocols).
    OpenOrCreate,
    /// It must already exist and be open (Adobe events: `404`/`410` otherwise).
    MustExist,
}

/// What happened to a request's events.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// Stored (`accepted`) or recognised as already stored (`duplicates`).
    Applied { accepted: usize, duplicates: usize },
    /// The session was closed before: nothing stored.
    SessionClosed,
    /// `Requirement::MustExist` and no such session: nothing stored.
    UnknownSession,
}

/// Why a request was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("ingest queue full")]
    Overloaded,
    #[error("storage failure")]
    Storage,
    #[error("shutting down")]
    ShuttingDown,
}

/// How a request names its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRef {
    /// The protocol carries the session id (`batch.key`).
    Given(Requirement),
    /// No id on the wire (pixel beacons): the latest open session of this
    /// group, or a new session when `new_view` or none is open.
    Derived { group: String, new_view: bool },
}

/// The sessionization group of a pixel session: (pullzone, video, viewer),
/// from the session's metadata (`pullzone` dimension, `video_id`, `viewer_id`).
pub fn pixel_group(meta: &playhead_model::SessionMeta) -> Option<String> {
    Some(format!(
        "{}\u{1f}{}\u{1f}{}",
        meta.dimensions.get("pullzone")?,
        meta.video_id.as_deref()?,
        meta.viewer_id.as_deref()?
    ))
}

type Reply = oneshot::Sender<Result<IngestOutcome, IngestError>>;

struct Submission {
    /// Its events are moved out when they are applied ([`Writer::apply_one`]).
    batch: Batch,
    /// How many events the batch came with, for the counts.
    events: usize,
    session: SessionRef,
    reply: Reply,
}

/// A committed group's replies, sent once its fsync is done.
struct Committed {
    started: Instant,
    replies: Vec<(Reply, IngestOutcome)>,
    expiries: Vec<(oneshot::Sender<usize>, usize)>,
    /// Reads waiting for the stale rows to be written.
    flushes: Vec<oneshot::Sender<()>>,
}

impl Committed {
    /// Answer every group (see [`Committed::answer`]).
    fn answer_all(groups: Vec<Committed>, synced: bool, telemetry: &Telemetry) {
        for g in groups {
            g.answer(synced, telemetry);
        }
    }

    /// Answer every request of the group (`Err(Storage)` when the fsync
    /// failed: the events are stored but not known to be on disk, and a
    /// retry is recognised as duplicates).
    fn answer(self, synced: bool, telemetry: &Telemetry) {
        let n_requests = self.replies.len();
        for (reply, outcome) in self.replies {
            let _ = reply.send(if synced {
                Ok(outcome)
            } else {
                Err(IngestError::Storage)
            });
        }
        for (reply, closed) in self.expiries {
            let _ = reply.send(closed);
        }
        // The rows are committed either way: a read may go on.
        for reply in self.flushes {
            let _ = reply.send(());
        }
        if n_requests > 0 && synced {
            telemetry
                .commit_seconds
                .observe(self.started.elapsed().as_secs_f64());
            telemetry.commit_group_size.observe(n_requests as f64);
        }
    }
}

/// The fsync thread: waits for committed groups, then makes all of those
/// queued so far durable with one [`Syncer::sync`] and answers them.
fn run_syncer(
    mut syncer: Box<dyn Syncer>,
    rx: Receiver<Committed>,
    synced: Sender<usize>,
    replier: Replier,
    telemetry: Arc<Telemetry>,
) {
    while let Ok(first) = rx.recv() {
        let mut groups = vec![first];
        groups.extend(rx.try_iter());
        let started = Instant::now();
        let ok = match syncer.sync() {
            Ok(()) => true,
            Err(e) => {
                error!(error = %e, groups = groups.len(), "fsync failed; requests answered with an error");
                false
            }
        };
        telemetry
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        let n = groups.len();
        replier.answer(groups, ok, &telemetry);
        // The writer may be waiting for this to commit its next group.
        let _ = synced.send(n);
    }
    info!("fsync thread stopped");
}

/// Answers committed groups from a task of the async runtime. Answered
/// from a storage thread, each reply wakes the runtime's worker, which, on a
/// machine as busy as its cores, takes the core from that thread, answers
/// the one request and sleeps again before the next reply is sent: a pair
/// of context switches per request. Handed over in one message, the groups
/// wake the runtime once. Outside of a runtime they are answered in place.
#[derive(Clone)]
struct Replier(Option<tokio::sync::mpsc::UnboundedSender<(Vec<Committed>, bool)>>);

impl Replier {
    fn start(telemetry: Arc<Telemetry>) -> Replier {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Replier(None);
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<Committed>, bool)>();
        runtime.spawn(async move {
            while let Some((groups, synced)) = rx.recv().await {
                Committed::answer_all(groups, synced, &telemetry);
            }
        });
        Replier(Some(tx))
    }

    /// Answer `groups` (see [`Committed::answer`]).
    fn answer(&self, groups: Vec<Committed>, synced: bool, telemetry: &Telemetry) {
        let groups = match &self.0 {
            Some(tx) => match tx.send((groups, synced)) {
                Ok(()) => return,
                // The runtime stopped.
                Err(tokio::sync::mpsc::error::SendError((groups, _))) => groups,
            },
            None => groups,
        };
        Committed::answer_all(groups, synced, telemetry);
    }
}

enum Message {
    Ingest(Box<Submission>),
    /// Close timed-out sessions now; replies with how many closed.
    Expire(oneshot::Sender<usize>),
    /// Write every stale session row now; replies once they are committed.
    Flush(oneshot::Sender<()>),
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    tx: Sender<Message>,
    depth: Arc<AtomicI64>,
    telemetry: Arc<Telemetry>,
}

/// Settings of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    pub queue_capacity: usize,
    pub max_group_commit: usize,
}

impl Pipeline {
    /// Restore open sessions from the store and start the writer thread.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        telemetry: Arc<Telemetry>,
        config: PipelineConfig,
    ) -> Result<Pipeline, StoreError> {
        let mut writer = store.writer()?;
        let (synced_tx, synced) = crossbeam_channel::unbounded();
        let replier = Replier::start(telemetry.clone());
        let durable = match writer.pipeline()? {
            Some(syncer) => {
                let (tx, rx) = crossbeam_channel::bounded(SYNC_QUEUE);
                let telemetry = telemetry.clone();
                let replier = replier.clone();
                std::thread::Builder::new()
                    .name("playhead-fsync".into())
                    .spawn(move || run_syncer(syncer, rx, synced_tx, replier, telemetry))?;
                Some(tx)
            }
            None => None,
        };
        let (tracker, stale) = restore(store.as_ref())?;
        let groups = PixelGroups::derived(&tracker);
        info!(open_sessions = tracker.open_count(), "sessions restored");
        telemetry.open_sessions.set(tracker.open_count() as i64);
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        let depth = Arc::new(AtomicI64::new(0));
        let mut worker = Writer {
            store,
            writer,
            durable,
            replier,
            synced,
            unsynced: 0,
            open: None,
            tracker,
            groups,
            groups_retained: Instant::now(),
            pending: SessionMap::default(),
            stale_pushed: stale.len() as u64,
            stale,
            flushes: Vec::new(),
            last_arrival: 0,
            clock,
            telemetry: telemetry.clone(),
            depth: depth.clone(),
            max_group: config.max_group_commit.max(1),
        };
        std::thread::Builder::new()
            .name("playhead-writer".into())
            .spawn(move || worker.run(rx))?;
        Ok(Pipeline {
            tx,
            depth,
            telemetry,
        })
    }

    /// Queue a batch and wait until it is durable (or refused).
    pub async fn submit(
        &self,
        batch: Batch,
        requirement: Requirement,
    ) -> Result<IngestOutcome, IngestError> {
        self.submit_to(batch, SessionRef::Given(requirement)).await
    }

    /// Queue a batch whose session is resolved by the writer (see
    /// [`SessionRef`]); `batch.key.session_id` is ignored.
    pub async fn submit_to(
        &self,
        batch: Batch,
        session: SessionRef,
    ) -> Result<IngestOutcome, IngestError> {
        let (reply, rx) = oneshot::channel();
        let msg = Message::Ingest(Box::new(Submission {
            events: batch.events.len(),
            batch,
            session,
            reply,
        }));
        // Count before sending: the writer may dequeue (and decrement) first.
        let d = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        self.telemetry.queue_depth.set(d);
        if let Err(e) = self.tx.try_send(msg) {
            let d = self.depth.fetch_sub(1, Ordering::Relaxed) - 1;
            self.telemetry.queue_depth.set(d);
            return Err(match e {
                TrySendError::Full(_) => IngestError::Overloaded,
                TrySendError::Disconnected(_) => IngestError::ShuttingDown,
            });
        }
        rx.await.unwrap_or(Err(IngestError::ShuttingDown))
    }

    /// Close the sessions whose timeout passed, now (instead of at the next
    /// periodic check). Returns how many closed.
    pub async fn expire_now(&self) -> Result<usize, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Message::Expire(reply))
            .map_err(|_| IngestError::ShuttingDown)?;
        rx.await.map_err(|_| IngestError::ShuttingDown)
    }

    /// Write the rows of open sessions that lag their events (see
    /// [`ROW_DEFER_MS`]), so that a read that follows sees every event
    /// acknowledged before it. Returns once they are committed, at once
    /// when none lags (or when the writer failed or stopped: the read then
    /// sees the rows as they are).
    pub async fn flush(&self) {
        let (reply, rx) = oneshot::channel();
        let sent = match self.tx.try_send(Message::Flush(reply)) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            // A full queue blocks the send: off the async runtime.
            Err(TrySendError::Full(msg)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(msg).is_ok())
                    .await
                    .unwrap_or(false)
            }
        };
        if sent {
            let _ = rx.await;
        }
    }

    /// Requests waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed).max(0) as usize
    }
}

/// The latest session of each derived group (pixel beacons), by property
/// and group. Looked up with borrowed strings, so a beacon of a known group
/// allocates nothing to find its session.
#[derive(Default)]
struct PixelGroups(
    HashMap<String, HashMap<String, (i64, SessionKey), foldhash::fast::RandomState>>,
);

impl PixelGroups {
    /// The latest open session of each group, from the tracker.
    fn derived(tracker: &Tracker) -> PixelGroups {
        let mut groups = PixelGroups::default();
        for key in tracker.keys() {
            let Some(s) = tracker.get(key) else { continue };
            if s.protocol != Protocol::Pixel {
                continue;
            }
            let Some(group) = pixel_group(&s.meta()) else {
                continue;
            };
            let started = s.playback.first_t().unwrap_or(s.last_received_at);
            let latest = groups.0.entry(key.property.clone()).or_default();
            match latest.get(&group) {
                Some((t, _)) if *t >= started => {}
                _ => {
                    latest.insert(group, (started, key.clone()));
                }
            }
        }
        groups
    }

    /// The latest session of `group` in `property`.
    fn latest(&self, property: &str, group: &str) -> Option<&SessionKey> {
        self.0.get(property)?.get(group).map(|(_, key)| key)
    }

    /// `key`, started at `started`, is now the latest session of `group`.
    fn set(&mut self, group: String, key: SessionKey, started: i64) {
        self.0
            .entry(key.property.clone())
            .or_default()
            .insert(group, (started, key));
    }

    /// Forget the groups whose latest session is closed: a new beacon opens
    /// a new session anyway, and the map must not grow forever.
    fn retain_open(&mut self, tracker: &Tracker) {
        for latest in self.0.values_mut() {
            latest.retain(|_, (_, key)| tracker.is_open(key));
        }
        self.0.retain(|_, latest| !latest.is_empty());
    }
}

/// The open sessions, rebuilt from their stored events, and the sessions
/// whose stored row lags those events (rows are written late, see
/// [`ROW_DEFER_MS`]): marked stale, to be rewritten.
fn restore(store: &dyn Store) -> Result<(Tracker, VecDeque<(i64, SessionKey)>), StoreError> {
    let mut tracker = Tracker::new();
    let mut stale = VecDeque::new();
    for rec in store.open_sessions()? {
        let s = rec.summary;
        let received = rec.events.iter().map(|e| e.received_at).max();
        let last_received_at = received.map_or(s.last_received_at, |r| r.max(s.last_received_at));
        let key = s.key.clone();
        tracker.restore(
            key.clone(),
            s.protocol,
            s.meta.clone(),
            rec.events,
            last_received_at,
        );
        if tracker.summary_of(&key).as_ref() != Some(&s) && tracker.mark_row_stale(&key) {
            stale.push_back((i64::MIN, key));
        }
    }
    Ok((tracker, stale))
}

struct Writer {
    store: Arc<dyn Store>,
    writer: Box<dyn StoreWriter>,
    /// To the fsync thread, when commits are pipelined.
    durable: Option<Sender<Committed>>,
    /// Answers the groups committed without the fsync thread.
    replier: Replier,
    /// From the fsync thread: how many groups each fsync answered.
    synced: Receiver<usize>,
    /// Groups handed to the fsync thread and not yet answered.
    unsynced: usize,
    /// The open transaction's replies, when one is open.
    open: Option<Committed>,
    tracker: Tracker,
    /// The latest session of each pixel group.
    groups: PixelGroups,
    /// When the groups of closed sessions were last forgotten.
    groups_retained: Instant,
    /// Session rows to write at the end of the transaction: each touched
    /// session's row is written once per group commit, not once per request.
    pending: SessionMap<SessionSummary>,
    /// Open sessions whose row lags, oldest first, with when it began to
    /// (the tracker holds the mark; an entry whose row was written since is skipped).
    stale: VecDeque<(i64, SessionKey)>,
    /// Entries ever pushed onto `stale` (those popped are the ones pushed
    /// but no longer in it): a flush waits until the entries pushed before
    /// it arrived are popped.
    stale_pushed: u64,
    /// Reads waiting for the stale rows: the `stale_pushed` they wait for.
    flushes: Vec<(u64, oneshot::Sender<()>)>,
    /// The last arrival stamp given (see `next_arrival`).
    last_arrival: u64,
    clock: Arc<dyn Clock>,
    telemetry: Arc<Telemetry>,
    depth: Arc<AtomicI64>,
    max_group: usize,
}

/// What the writer waits for before its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Nothing: it takes the requests already queued and goes on.
    Nothing,
    /// A request, or the fsync thread becoming idle (to commit).
    RequestOrSync,
    /// A request (or the periodic expiry).
    Request,
}

/// `open`: a transaction is open; `flushing`: reads wait for stale rows;
/// `unsynced`: committed groups the fsync thread has not made durable.
/// A transaction commits once the fsync thread is idle; a flush goes on
/// from commit to commit without waiting for requests.
fn wait_for(open: bool, flushing: bool, unsynced: usize) -> Wait {
    if flushing && unsynced == 0 {
        Wait::Nothing
    } else if open || flushing {
        Wait::RequestOrSync
    } else {
        Wait::Request
    }
}

impl Writer {
    /// Receive, apply, commit. With pipelined commits, requests keep being
    /// applied to the open transaction while the fsync thread is busy, and
    /// the transaction commits when it is idle again (or the group is
    /// full): one commit per fsync, the next group ready when it starts.
    fn run(&mut self, rx: Receiver<Message>) {
        let mut last_expiry = Instant::now();
        let mut fold_due = false;
        loop {
            let wait = wait_for(self.open.is_some(), !self.flushes.is_empty(), self.unsynced);
            let first = if wait == Wait::Nothing {
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else if wait == Wait::RequestOrSync {
                crossbeam_channel::select! {
                    recv(rx) -> m => match m {
                        Ok(m) => Some(m),
                        Err(_) => break,
                    },
                    recv(self.synced) -> n => {
                        self.unsynced = self.unsynced.saturating_sub(n.unwrap_or(usize::MAX));
                        None
                    },
                    default(EXPIRY_EVERY) => None,
                }
            } else {
                match rx.recv_timeout(EXPIRY_EVERY) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            self.unsynced = self.unsynced.saturating_sub(self.synced.try_iter().sum());
            let mut group: Vec<Message> = first.into_iter().collect();
            while self.open_requests() + group.len() < self.max_group {
                match rx.try_recv() {
                    Ok(m) => group.push(m),
                    Err(_) => break,
                }
            }
            let due = last_expiry.elapsed() >= EXPIRY_EVERY;
            if due {
                last_expiry = Instant::now();
                fold_due = true;
            }
            if !group.is_empty() || due || (!self.flushes.is_empty() && self.open.is_none()) {
                self.apply_group(group, due);
            }
            if self.open.is_some() && (self.unsynced == 0 || self.open_requests() >= self.max_group)
            {
                self.commit_open();
            }
            if fold_due && self.open.is_none() {
                fold_due = false;
                self.fold_rollups();
            }
        }
        // Stopping: every row up to date, in one last transaction.
        self.apply_group(Vec::new(), false);
        if self.open.is_some() {
            self.take_stale_rows(true);
            self.commit_open();
        }
        info!("writer stopped");
    }

    /// Into the rows to write (at most [`STALE_ROWS_PER_COMMIT`], or every
    /// one with `all`): the stale rows that reads wait for, and those whose
    /// time has come. The reads whose rows are all taken are answered with
    /// this commit.
    fn take_stale_rows(&mut self, all: bool) {
        let due_before = self.clock.now_ms().saturating_sub(ROW_DEFER_MS);
        let awaited = self
            .flushes
            .iter()
            .map(|(upto, _)| *upto)
            .max()
            .unwrap_or(0);
        let mut taken = 0;
        while let Some(&(since, _)) = self.stale.front() {
            let wanted = all
                || (taken < STALE_ROWS_PER_COMMIT
                    && (self.stale_popped() < awaited || since <= due_before));
            if !wanted {
                break;
            }
            let Some((_, key)) = self.stale.pop_front() else {
                break;
            };
            // The session's mark may be newer than this entry (its row was
            // written, then marked again): the row is written from the
            // older entry, a little early, and the newer one finds no mark.
            if let Some(summary) = self.tracker.take_stale_row(&key) {
                // A row written in this transaction anyway is as new.
                self.pending.entry(key).or_insert(summary);
                taken += 1;
            }
        }
        let popped = self.stale_popped();
        let (done, waiting) = std::mem::take(&mut self.flushes)
            .into_iter()
            .partition::<Vec<_>, _>(|(upto, _)| *upto <= popped);
        self.flushes = waiting;
        if let Some(open) = self.open.as_mut() {
            open.flushes
                .extend(done.into_iter().map(|(_, reply)| reply));
        }
    }

    /// Entries ever popped from `stale`.
    fn stale_popped(&self) -> u64 {
        self.stale_pushed - self.stale.len() as u64
    }

    /// Requests applied to the open transaction.
    fn open_requests(&self) -> usize {
        self.open.as_ref().map_or(0, |g| g.replies.len())
    }

    /// Once a second, between groups: fold the sessions closed since into
    /// the rollups, at most [`FOLD_BATCH`] at a time (the rest waits for
    /// the next second; queries count them from their rows meanwhile).
    fn fold_rollups(&mut self) {
        match self.writer.fold_rollups(FOLD_BATCH) {
            Ok(n) if n > 0 => debug!(sessions = n, "folded closed sessions into the rollups"),
            Ok(_) => {}
            Err(e) => error!(error = %e, "folding closed sessions into the rollups failed"),
        }
    }

    /// Apply a group of messages to the open transaction (beginning one if
    /// none is open). On a storage error everything the transaction held is
    /// rolled back and answered with an error.
    fn apply_group(&mut self, group: Vec<Message>, periodic_expiry: bool) {
        let mut ingests: Vec<(Box<Submission>, Option<IngestOutcome>)> = Vec::new();
        let mut expiries: Vec<oneshot::Sender<usize>> = Vec::new();
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        for m in group {
            match m {
                Message::Ingest(s) => {
                    let d = self.depth.fetch_sub(1, Ordering::Relaxed) - 1;
                    self.telemetry.queue_depth.set(d);
                    ingests.push((s, None));
                }
                Message::Expire(r) => expiries.push(r),
                Message::Flush(r) => flushes.push(r),
            }
        }
        if self.stale.is_empty() {
            // No row lags: every popped one was written by a commit that
            // returned (`commit_open`), so a read may go on at once.
            for reply in flushes {
                let _ = reply.send(());
            }
        } else {
            let upto = self.stale_pushed;
            self.flushes
                .extend(flushes.into_iter().map(|reply| (upto, reply)));
        }
        if self.open.is_none() {
            if let Err(e) = self.writer.begin() {
                self.fail(e, ingests, expiries);
                return;
            }
            self.open = Some(Committed {
                started: Instant::now(),
                replies: Vec::new(),
                expiries: Vec::new(),
                flushes: Vec::new(),
            });
        }
        let expire = !expiries.is_empty() || periodic_expiry;
        match self.apply(&mut ingests, expire) {
            Ok(closed) => {
                for (sub, outcome) in ingests {
                    let outcome = outcome.unwrap_or(IngestOutcome::SessionClosed);
                    self.count(sub.batch.protocol, sub.events, &outcome);
                    let open = self.open.as_mut().expect("a transaction is open");
                    open.replies.push((sub.reply, outcome));
                }
                let open = self.open.as_mut().expect("a transaction is open");
                open.expiries
                    .extend(expiries.into_iter().map(|r| (r, closed)));
            }
            Err(e) => self.fail(e, ingests, expiries),
        }
        self.telemetry
            .open_sessions
            .set(self.tracker.open_count() as i64);
    }

    /// Write the open transaction's session rows and commit it; its
    /// replies go once it is durable.
    fn commit_open(&mut self) {
        self.take_stale_rows(false);
        let result = self
            .pending
            .values()
            .try_for_each(|summary| self.writer.put_session(summary))
            .and_then(|()| self.writer.commit());
        self.pending.clear();
        if let Err(e) = result {
            // Rolls back and answers the open transaction's requests.
            self.fail(e, Vec::new(), Vec::new());
            return;
        }
        let committed = self.open.take().expect("a transaction is open");
        match &self.durable {
            // Blocks only when SYNC_QUEUE groups already wait.
            Some(tx) => match tx.send(committed) {
                Ok(()) => self.unsynced += 1,
                Err(SendError(c)) => {
                    error!("fsync thread gone; requests answered with an error");
                    c.answer(false, &self.telemetry);
                }
            },
            None => self.replier.answer(vec![committed], true, &self.telemetry),
        }
    }

    /// A storage error: roll back the open transaction, rebuild the tracker
    /// from the store, and answer everything it held (and `ingests`) with
    /// an error.
    fn fail(
        &mut self,
        e: StoreError,
        ingests: Vec<(Box<Submission>, Option<IngestOutcome>)>,
        expiries: Vec<oneshot::Sender<usize>>,
    ) {
        let held = self.open.take();
        error!(
            error = %e,
            requests = ingests.len() + held.as_ref().map_or(0, |g| g.replies.len()),
            "ingest transaction failed; rolled back"
        );
        if let Err(e) = self.writer.rollback() {
            error!(error = %e, "rollback failed");
        }
        self.pending.clear();
        match restore(self.store.as_ref()) {
            Ok((t, stale)) => {
                self.groups = PixelGroups::derived(&t);
                self.tracker = t;
                self.stale_pushed = stale.len() as u64;
                self.stale = stale;
            }
            Err(e) => error!(error = %e, "tracker rebuild failed"),
        }
        if let Some(held) = held {
            held.answer(false, &self.telemetry);
        }
        // Reads waiting for rows read them as they are.
        for (_, reply) in self.flushes.drain(..) {
            let _ = reply.send(());
        }
        for (sub, _) in ingests {
            let _ = sub.reply.send(Err(IngestError::Storage));
        }
        for r in expiries {
            let _ = r.send(0);
        }
    }

    /// Every submission, then timeouts, into the open transaction. Returns
    /// how many sessions timed out.
    fn apply(
        &mut self,
        ingests: &mut [(Box<Submission>, Option<IngestOutcome>)],
        expire: bool,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        for (sub, outcome) in ingests.iter_mut() {
            let (key, requirement, minted) = self.resolve(&sub.batch, &sub.session, now)?;
            *outcome = Some(self.apply_one(&key, &mut sub.batch, requirement, minted, now)?);
        }
        let mut closed = 0;
        if expire {
            for (summary, reason) in self.tracker.expire(now) {
                if reason != CloseReason::Explicit {
                    info!(session = %summary.key.session_id, ?reason, "session timed out");
                }
                self.writer.add_to_rollup(&summary)?;
                self.pending.insert(summary.key.clone(), summary);
                closed += 1;
            }
            if self.groups_retained.elapsed() >= GROUPS_RETAIN_EVERY {
                self.groups_retained = Instant::now();
                self.groups.retain_open(&self.tracker);
            }
        }
        Ok(closed)
    }

    /// A stamp that grows with every request: the server clock's ms × 32
    /// (room for 32 requests a millisecond before it runs ahead of the
    /// clock), never less than the previous stamp + 1.
    fn next_arrival(&mut self, now: i64) -> u64 {
        let from_clock = (now.max(0) as u64) << 5;
        self.last_arrival = from_clock.max(self.last_arrival + 1);
        self.last_arrival
    }

    /// The session a submission goes to, and whether its id was minted here
    /// (a new pixel session: no store can know it yet).
    fn resolve(
        &mut self,
        batch: &Batch,
        session: &SessionRef,
        now: i64,
    ) -> Result<(SessionKey, Requirement, bool), StoreError> {
        let (group, new_view) = match session {
            SessionRef::Given(requirement) => return Ok((batch.key.clone(), *requirement, false)),
            SessionRef::Derived { group, new_view } => (group, *new_view),
        };
        let property = &batch.key.property;
        if !new_view {
            if let Some(key) = self.groups.latest(property, group).cloned() {
                self.close_if_due(&key, now)?;
                if self.tracker.is_open(&key) {
                    return Ok((key, Requirement::OpenOrCreate, false));
                }
            }
        }
        let key = SessionKey::new(property.clone(), uuid::Uuid::new_v4().simple().to_string());
        self.groups.set(group.clone(), key.clone(), now);
        Ok((key, Requirement::OpenOrCreate, true))
    }

    /// Close a session whose timeout has passed before new events reach it:
    /// a request arriving after the timeout but before the periodic expiry
    /// must not revive it. Writes its final row and rollup.
    fn close_if_due(&mut self, key: &SessionKey, now: i64) -> Result<(), StoreError> {
        if let Some((summary, reason)) = self.tracker.close_if_due(key, now) {
            info!(session = %key.session_id, ?reason, "session timed out");
            self.writer.add_to_rollup(&summary)?;
            self.pending.insert(key.clone(), summary);
        }
        Ok(())
    }

    /// Apply one batch to session `key`: its events are moved into the
    /// session (not cloned) once the session may take them. `minted`: the
    /// key's id was just made up ([`Writer::resolve`]), so neither the
    /// tracker nor the store has it: neither is asked (the store's query
    /// per new pixel session was 2.3 % of the server's time at P1's load).
    fn apply_one(
        &mut self,
        key: &SessionKey,
        batch: &mut Batch,
        requirement: Requirement,
        minted: bool,
        now: i64,
    ) -> Result<IngestOutcome, StoreError> {
        if !minted {
            self.close_if_due(key, now)?;
        }
        let status = if minted {
            SessionStatus::Unknown
        } else if self.tracker.is_open(key) {
            SessionStatus::Open
        } else if self.pending.contains_key(key) {
            // Touched in this transaction and no longer open: it closed here.
            SessionStatus::Closed
        } else {
            self.writer.session_status(key)?
        };
        match (status, requirement) {
            (SessionStatus::Closed, _) => return Ok(IngestOutcome::SessionClosed),
            (SessionStatus::Unknown, Requirement::MustExist) => {
                return Ok(IngestOutcome::UnknownSession)
            }
            _ => {}
        }
        if status == SessionStatus::Open && !self.tracker.is_open(key) {
            // The store says open but the tracker lost it: cannot happen
            // after `restore`; refuse rather than fork the session.
            warn!(session = %key.session_id, "open session missing from tracker");
        }
        let events = std::mem::take(&mut batch.events);
        let received = events.len();
        let mut fresh = Vec::with_capacity(received);
        // Protocols without sequence numbers: equal timestamps are processed
        // in arrival order (metrics.md), so the request's arrival stamp goes
        // in front of the decoder's in-request order. The dedup key, already
        // computed by the decoder, stays: a repeated delivery still matches.
        let arrival = (batch.protocol != Protocol::Native).then(|| self.next_arrival(now));
        for mut ev in events {
            if let Some(arrival) = arrival {
                ev.order = (arrival << IN_REQUEST_ORDER_BITS) | (ev.order & IN_REQUEST_ORDER_MASK);
            }
            if self.writer.insert_event(key, batch.protocol, &ev)? {
                fresh.push(ev);
            }
        }
        let accepted = fresh.len();
        let duplicates = received - accepted;
        if fresh.is_empty() {
            // Only duplicates. A session that is neither open (tracker) nor
            // closed (checked above) has no stored events, so it cannot
            // own a duplicate: no store read is needed on the writer.
            if !self.tracker.is_open(key) {
                return Ok(IngestOutcome::UnknownSession);
            }
            return Ok(IngestOutcome::Applied {
                accepted,
                duplicates,
            });
        }
        let writer = &mut self.writer;
        let ingested = self
            .tracker
            .ingest(key, batch.protocol, &batch.meta, fresh, now, || {
                writer.session_events(key)
            })?;
        // The row is written with this transaction when it must be (a new
        // or closed session, new metadata) or is written anyway; otherwise
        // it is left stale, to be rewritten later (`ROW_DEFER_MS`).
        if let Some((_, summary)) = ingested.closed {
            self.writer.add_to_rollup(&summary)?;
            // Moved, not cloned: the row is all that needs the summary.
            self.pending.insert(key.clone(), summary);
        } else if ingested.opened || ingested.meta_changed || self.pending.contains_key(key) {
            if let Some(summary) = self.tracker.take_row(key) {
                self.pending.insert(key.clone(), summary);
            }
        } else if self.tracker.mark_row_stale(key) {
            self.stale.push_back((now, key.clone()));
            self.stale_pushed += 1;
        }
        Ok(IngestOutcome::Applied {
            accepted,
            duplicates,
        })
    }

    /// Count a submission of `events` events by its outcome.
    fn count(&self, protocol: Protocol, events: usize, outcome: &IngestOutcome) {
        let p = protocol.as_str();
        match outcome {
            IngestOutcome::Applied {
                accepted,
                duplicates,
                ..
            } => {
                self.telemetry.count_events(p, "accepted", *accepted as u64);
                self.telemetry
                    .count_events(p, "duplicate", *duplicates as u64);
            }
            IngestOutcome::SessionClosed => {
                self.telemetry
                    .count_events(p, "session_closed", events as u64)
            }
            IngestOutcome::UnknownSession => {
                self.telemetry
                    .count_events(p, "unknown_session", events as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Pipelined group commit: replies wait for the fsync thread.

    use super::*;
    use crate::clock::ManualClock;
    use playhead_engine::{Aggregate, Parts};
    use playhead_model::{Event, EventKind, SessionMeta};
    use playhead_store::{
        AdStore, Filters, FsyncPolicy, GroupBy, GroupKey, OpenSessionRecord, Realtime, SessionPage,
        SessionQuery, SqliteStore,
    };
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{mpsc, Mutex};

    const T0: i64 = 1_700_000_000_000;

    /// What the test's syncer does on its next calls.
    struct Gate {
        /// Each `sync` takes one permit, waiting for it.
        permits: Mutex<mpsc::Receiver<bool>>,
        syncs: AtomicUsize,
        /// The writer's `session_status` calls (queries of the store).
        status_queries: AtomicUsize,
    }

    struct GatedSyncer(Arc<Gate>);

    impl Syncer for GatedSyncer {
        fn sync(&mut self) -> playhead_store::Result<()> {
            let ok = self.0.permits.lock().unwrap().recv().unwrap_or(false);
            self.0.syncs.fetch_add(1, Ordering::SeqCst);
            if ok {
                Ok(())
            } else {
                Err(StoreError::Other("disk on fire".into()))
            }
        }
    }

    /// The embedded store, whose writer pipelines through a [`Gate`].
    struct GatedStore {
        inner: SqliteStore,
        gate: Arc<Gate>,
    }

    struct GatedWriter {
        inner: Box<dyn StoreWriter>,
        gate: Arc<Gate>,
    }

    impl StoreWriter for GatedWriter {
        fn begin(&mut self) -> playhead_store::Result<()> {
            self.inner.begin()
        }
        fn insert_event(
            &mut self,
            key: &SessionKey,
            protocol: Protocol,
            event: &Event,
        ) -> playhead_store::Result<bool> {
            self.inner.insert_event(key, protocol, event)
        }
        fn session_events(&mut self, key: &SessionKey) -> playhead_store::Result<Vec<Event>> {
            self.inner.session_events(key)
        }
        fn session_status(&mut self, key: &SessionKey) -> playhead_store::Result<SessionStatus> {
            self.gate.status_queries.fetch_add(1, Ordering::SeqCst);
            self.inner.session_status(key)
        }
        fn put_session(&mut self, summary: &SessionSummary) -> playhead_store::Result<()> {
            self.inner.put_session(summary)
        }
        fn add_to_rollup(&mut self, summary: &SessionSummary) -> playhead_store::Result<()> {
            self.inner.add_to_rollup(summary)
        }
        fn fold_rollups(&mut self, max_sessions: usize) -> playhead_store::Result<usize> {
            self.inner.fold_rollups(max_sessions)
        }
        fn commit(&mut self) -> playhead_store::Result<()> {
            self.inner.commit()
        }
        fn rollback(&mut self) -> playhead_store::Result<()> {
            self.inner.rollback()
        }
        fn pipeline(&mut self) -> playhead_store::Result<Option<Box<dyn Syncer>>> {
            // The real switch (synchronous = NORMAL), then the test's syncer.
            assert!(self.inner.pipeline()?.is_some(), "fsync = always pipelines");
            Ok(Some(Box::new(GatedSyncer(self.gate.clone()))))
        }
    }

    impl Store for GatedStore {
        fn writer(&self) -> playhead_store::Result<Box<dyn StoreWriter>> {
            Ok(Box::new(GatedWriter {
                inner: self.inner.writer()?,
                gate: self.gate.clone(),
            }))
        }
        fn session(&self, key: &SessionKey) -> playhead_store::Result<Option<SessionSummary>> {
            self.inner.session(key)
        }
        fn session_events(&self, key: &SessionKey) -> playhead_store::Result<Vec<Event>> {
            self.inner.session_events(key)
        }
        fn list_sessions(&self, query: &SessionQuery) -> playhead_store::Result<SessionPage> {
            self.inner.list_sessions(query)
        }
        fn open_sessions(&self) -> playhead_store::Result<Vec<OpenSessionRecord>> {
            self.inner.open_sessions()
        }
        fn aggregate_parts(
            &self,
            filters: &Filters,
            group: &GroupBy,
            parts: Parts,
        ) -> playhead_store::Result<BTreeMap<GroupKey, Aggregate>> {
            self.inner.aggregate_parts(filters, group, parts)
        }
        fn session_spans(&self, filters: &Filters) -> playhead_store::Result<Vec<(i64, i64)>> {
            self.inner.session_spans(filters)
        }
        fn realtime(&self, filters: &Filters, now: i64) -> playhead_store::Result<Realtime> {
            self.inner.realtime(filters, now)
        }
        fn is_writable(&self) -> bool {
            self.inner.is_writable()
        }
        fn ads(&self) -> Arc<dyn AdStore> {
            self.inner.ads()
        }
    }

    fn start(dir: &tempfile::TempDir) -> (Pipeline, Arc<dyn Store>, mpsc::Sender<bool>, Arc<Gate>) {
        let (permit, permits) = mpsc::channel();
        let gate = Arc::new(Gate {
            permits: Mutex::new(permits),
            syncs: AtomicUsize::new(0),
            status_queries: AtomicUsize::new(0),
        });
        let store: Arc<dyn Store> = Arc::new(GatedStore {
            inner: SqliteStore::open(dir.path(), FsyncPolicy::Always).unwrap(),
            gate: gate.clone(),
        });
        let pipeline = Pipeline::start(
            store.clone(),
            Arc::new(ManualClock::new(T0)),
            Arc::new(Telemetry::default()),
            PipelineConfig {
                queue_capacity: 64,
                max_group_commit: 64,
            },
        )
        .unwrap();
        (pipeline, store, permit, gate)
    }

    fn play(session: &str) -> Batch {
        Batch {
            key: SessionKey::new("p", session),
            protocol: Protocol::Native,
            meta: SessionMeta::default(),
            events: vec![Event::new(T0, T0, EventKind::Play)],
        }
    }

    fn submit(
        p: &Pipeline,
        session: &str,
    ) -> tokio::task::JoinHandle<Result<IngestOutcome, IngestError>> {
        let p = p.clone();
        let batch = play(session);
        tokio::spawn(async move { p.submit(batch, Requirement::OpenOrCreate).await })
    }

    /// Waits until `session` has a committed event, or panics after 10 s.
    async fn committed(store: &Arc<dyn Store>, session: &str) {
        let key = SessionKey::new("p", session);
        for _ in 0..1000 {
            if !store.session_events(&key).unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{session} never committed");
    }

    const APPLIED: IngestOutcome = IngestOutcome::Applied {
        accepted: 1,
        duplicates: 0,
    };

    fn visible(store: &Arc<dyn Store>, session: &str) -> bool {
        !store
            .session_events(&SessionKey::new("p", session))
            .unwrap()
            .is_empty()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replies_wait_for_the_fsync_and_later_requests_share_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, store, permit, gate) = start(&dir);
        let first = submit(&pipeline, "s1");
        // Committed (visible to reads) while its fsync has not returned.
        committed(&store, "s1").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!first.is_finished(), "answered before its fsync");
        // Requests arriving meanwhile are applied but wait to commit until
        // the fsync thread is free: one commit per fsync.
        let later: Vec<_> = ["s2", "s3", "s4"]
            .iter()
            .map(|s| submit(&pipeline, s))
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        for s in ["s2", "s3", "s4"] {
            assert!(!visible(&store, s), "{s} committed while an fsync ran");
        }
        permit.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Ok(APPLIED));
        for s in ["s2", "s3", "s4"] {
            committed(&store, s).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            later.iter().all(|t| !t.is_finished()),
            "answered before their fsync"
        );
        permit.send(true).unwrap();
        for t in later {
            assert_eq!(t.await.unwrap(), Ok(APPLIED));
        }
        assert_eq!(gate.syncs.load(Ordering::SeqCst), 2);
    }

    /// A new pixel session's id is made up by the writer, so the store is
    /// not asked about it; a session id given on the wire is looked up once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_minted_session_is_not_looked_up_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, store, permit, gate) = start(&dir);
        for _ in 0..4 {
            permit.send(true).unwrap();
        }
        let derived = |new_view: bool, t: i64| {
            let p = pipeline.clone();
            async move {
                let mut event = Event::new(t, t, EventKind::Play);
                event.dedup_key = t as u64;
                let batch = Batch {
                    protocol: Protocol::Pixel,
                    events: vec![event],
                    ..play("ignored")
                };
                let session = SessionRef::Derived {
                    group: "zone\u{1f}video\u{1f}viewer".into(),
                    new_view,
                };
                p.submit_to(batch, session).await
            }
        };
        assert_eq!(derived(true, T0).await, Ok(APPLIED));
        assert_eq!(gate.status_queries.load(Ordering::SeqCst), 0);
        // The group's session is open: the beacon joins it, no query either.
        assert_eq!(derived(false, T0 + 5_000).await, Ok(APPLIED));
        assert_eq!(gate.status_queries.load(Ordering::SeqCst), 0);
        assert_eq!(store.open_sessions().unwrap().len(), 1);
        // A given id may be a session the store closed: it is asked.
        assert_eq!(submit(&pipeline, "s1").await.unwrap(), Ok(APPLIED));
        assert_eq!(gate.status_queries.load(Ordering::SeqCst), 1);
    }

    /// Started outside of an async runtime (no task to hand replies to), the
    /// fsync thread answers each request itself.
    #[test]
    fn a_pipeline_started_outside_a_runtime_answers_from_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, store, permit, gate) = start(&dir);
        permit.send(true).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async { submit(&pipeline, "s1").await.unwrap() });
        assert_eq!(outcome, Ok(APPLIED));
        assert!(visible(&store, "s1"));
        assert_eq!(gate.syncs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fsync_answers_an_error_and_a_retry_is_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, _store, permit, _gate) = start(&dir);
        permit.send(false).unwrap();
        let r = submit(&pipeline, "s1").await.unwrap();
        assert_eq!(r, Err(IngestError::Storage));
        // The events were committed: the client's retry is recognised.
        permit.send(true).unwrap();
        let r = submit(&pipeline, "s1").await.unwrap();
        assert_eq!(
            r,
            Ok(IngestOutcome::Applied {
                accepted: 0,
                duplicates: 1
            })
        );
    }
}

#[cfg(test)]
mod deferred_rows_tests {
    //! Rows of open sessions written late (`ROW_DEFER_MS`), and made up to
    //! date by a read's flush, by their time coming, and after a restart.

    use super::*;
    use crate::clock::ManualClock;
    use playhead_model::{Event, EventKind, Millis, SessionMeta};
    use playhead_store::{FsyncPolicy, SqliteStore};

    const T0: i64 = 1_700_000_000_000;

    fn start(store: &Arc<dyn Store>, clock: &ManualClock) -> Pipeline {
        Pipeline::start(
            store.clone(),
            Arc::new(clock.clone()),
            Arc::new(Telemetry::default()),
            PipelineConfig {
                queue_capacity: 64,
                max_group_commit: 64,
            },
        )
        .unwrap()
    }

    /// A store in a temp dir (kept while the returned `TempDir` lives), a
    /// clock at `T0`, and a pipeline over them.
    fn set_up(fsync: FsyncPolicy) -> (tempfile::TempDir, Arc<dyn Store>, ManualClock, Pipeline) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path(), fsync).unwrap());
        let clock = ManualClock::new(T0);
        let p = start(&store, &clock);
        (dir, store, clock, p)
    }

    /// A native event of session `id` at `t`, with `seq` as its dedup key.
    fn event(id: &str, seq: u64, t: Millis, kind: EventKind) -> Batch {
        let mut ev = Event::new(t, t, kind);
        ev.dedup_key = seq;
        Batch {
            key: SessionKey::new("p", id),
            protocol: Protocol::Native,
            meta: SessionMeta::default(),
            events: vec![ev],
        }
    }

    async fn send(p: &Pipeline, batch: Batch) {
        let r = p.submit(batch, Requirement::OpenOrCreate).await;
        assert!(
            matches!(r, Ok(IngestOutcome::Applied { accepted: 1, .. })),
            "{r:?}"
        );
    }

    /// The stored row's (last event time, last receive time).
    fn row(store: &Arc<dyn Store>, id: &str) -> (Millis, Millis) {
        let s = store.session(&SessionKey::new("p", id)).unwrap().unwrap();
        (s.last_event_at, s.last_received_at)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open_sessions_row_lags_until_its_time_comes_or_a_read_flushes() {
        let (_dir, store, clock, p) = set_up(FsyncPolicy::Off);
        // A new session's row is written with its first request.
        send(&p, event("s1", 1, T0, EventKind::Play)).await;
        assert_eq!(row(&store, "s1"), (T0, T0));
        // A later event leaves it stale...
        clock.advance(1_000);
        send(&p, event("s1", 2, T0 + 1_000, EventKind::Heartbeat)).await;
        assert_eq!(row(&store, "s1"), (T0, T0));
        // ...until a read asks.
        p.flush().await;
        assert_eq!(row(&store, "s1"), (T0 + 1_000, T0 + 1_000));
        // Or until its time has come, at the next commit.
        clock.advance(1_000);
        send(&p, event("s1", 3, T0 + 2_000, EventKind::Heartbeat)).await;
        clock.advance(ROW_DEFER_MS - 1);
        send(&p, event("s2", 1, T0, EventKind::Play)).await;
        assert_eq!(row(&store, "s1"), (T0 + 1_000, T0 + 1_000), "written early");
        clock.advance(1);
        send(&p, event("s3", 1, T0, EventKind::Play)).await;
        assert_eq!(row(&store, "s1"), (T0 + 2_000, T0 + 2_000));
        // A closing event writes the row at once.
        send(&p, event("s2", 2, T0 + 500, EventKind::Heartbeat)).await;
        send(&p, event("s2", 3, T0 + 600, EventKind::Viewend)).await;
        let s2 = store.session(&SessionKey::new("p", "s2")).unwrap().unwrap();
        assert!(!s2.open);
        assert_eq!(s2.last_event_at, T0 + 600);
    }

    /// A flush waiting on the fsync thread wakes when it is idle, not at
    /// the next request or expiry tick (which, with no ingest going on,
    /// held each commit of a flush for a second).
    #[test]
    fn the_writer_waits_for_what_lets_it_go_on() {
        assert_eq!(wait_for(false, true, 1), Wait::RequestOrSync);
        assert_eq!(wait_for(true, true, 1), Wait::RequestOrSync);
        assert_eq!(wait_for(false, true, 0), Wait::Nothing);
        assert_eq!(wait_for(true, true, 0), Wait::Nothing);
        assert_eq!(wait_for(true, false, 1), Wait::RequestOrSync);
        assert_eq!(wait_for(true, false, 0), Wait::RequestOrSync);
        assert_eq!(wait_for(false, false, 0), Wait::Request);
        assert_eq!(wait_for(false, false, 3), Wait::Request);
    }

    /// More stale rows than one commit takes: the read's flush spans
    /// several commits, with ingest going on between them, and returns only
    /// once every row it waits for is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_of_many_rows_spans_commits_and_misses_none() {
        flush_of_many_rows(FsyncPolicy::Off).await;
    }

    /// The same with the fsync thread between commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pipelined_flush_of_many_rows_misses_none() {
        flush_of_many_rows(FsyncPolicy::Always).await;
    }

    async fn flush_of_many_rows(fsync: FsyncPolicy) {
        let (_dir, store, clock, p) = set_up(fsync);
        let n = STALE_ROWS_PER_COMMIT * 2 + 500;
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        for id in &ids {
            send(&p, event(id, 1, T0, EventKind::Play)).await;
        }
        clock.advance(1_000);
        for id in &ids {
            send(&p, event(id, 2, T0 + 1_000, EventKind::Heartbeat)).await;
        }
        assert_eq!(row(&store, &ids[n - 1]), (T0, T0), "rows are stale");
        // A read's flush, and an event of another session sent meanwhile.
        let (flushed, late) = tokio::join!(
            p.flush(),
            send(&p, event("late", 1, T0 + 1_000, EventKind::Play))
        );
        let ((), ()) = (flushed, late);
        for id in &ids {
            assert_eq!(row(&store, id), (T0 + 1_000, T0 + 1_000), "{id}");
        }
        assert_eq!(row(&store, "late"), (T0 + 1_000, T0 + 1_000));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_rewrites_rows_that_lag_their_events() {
        let (_dir, store, clock, p) = set_up(FsyncPolicy::Off);
        send(&p, event("s1", 1, T0, EventKind::Play)).await;
        drop(p);
        // What a crash leaves: an event committed, its row not rewritten.
        let mut w = loop {
            match store.writer() {
                Ok(w) => break w,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        w.begin().unwrap();
        let late = event("s1", 2, T0 + 5_000, EventKind::Heartbeat);
        assert!(w
            .insert_event(&late.key, Protocol::Native, &late.events[0])
            .unwrap());
        w.commit().unwrap();
        drop(w);
        assert_eq!(row(&store, "s1"), (T0, T0));
        let p = start(&store, &clock);
        p.flush().await;
        assert_eq!(row(&store, "s1"), (T0 + 5_000, T0 + 5_000));
    }
}
