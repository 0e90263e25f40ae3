//! The open sessions: which exist, their folds, and when they close.
//!
//! Events reach the tracker already deduplicated (the store's write path
//! refuses a repeated dedup key) and already durable. An event that sorts
//! after everything applied is folded in place; one that sorts earlier makes
//! the tracker replay the session from its full history, so the metrics are
//! those of the events in (`t`, `order`) order whatever order they arrived in.
//! The tracker holds folds, never event lists: memory stays small per session.

use crate::playback::Playback;
use crate::rules::Rules;
use playhead_model::{
    Event, Millis, Protocol, SessionKey, SessionMap, SessionMeta, SessionSummary,
};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Why a session closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// An explicit end event.
    Explicit,
    /// The protocol's inactivity timeout passed without an event.
    Inactivity,
    /// Events kept coming but the playhead did not move (Adobe: 30 min).
    StalePlayhead,
}

/// One open session.
#[derive(Debug, Clone)]
pub struct OpenSession {
    pub protocol: Protocol,
    meta: CompactMeta,
    pub playback: Playback,
    /// Server time of the latest event received.
    pub last_received_at: Millis,
    /// The stored row lags this session (the writer rewrites it later,
    /// `crates/server/src/ingest.rs`, and keeps since when). A `bool`, which
    /// fits beside `protocol`: any wider and P4 measured +128 B per open
    /// session (see the size test below).
    row_stale: bool,
}

/// A session's metadata as the tracker keeps it: the ids apart, and the
/// rest — which sessions of one player, page or audience mostly share (user
/// agent dimensions, report suite, custom metadata) — interned, one copy
/// for every session with the same (P4, `bench/RESULTS.md`).
#[derive(Debug, Clone)]
struct CompactMeta {
    /// `video_id` and `viewer_id` are always `None` here.
    shared: Arc<SessionMeta>,
    video_id: Option<Box<str>>,
    viewer_id: Option<Box<str>>,
}

impl CompactMeta {
    fn new(mut meta: SessionMeta, metas: &mut MetaInterner) -> CompactMeta {
        let video_id = meta.video_id.take().map(String::into_boxed_str);
        let viewer_id = meta.viewer_id.take().map(String::into_boxed_str);
        CompactMeta {
            shared: metas.intern(meta),
            video_id,
            viewer_id,
        }
    }

    /// [`SessionMeta::merge`]: re-interned only when the shared part changes.
    /// Returns whether anything changed.
    fn merge(&mut self, newer: &SessionMeta, metas: &mut MetaInterner) -> bool {
        let mut changed = false;
        for (mine, new) in [
            (&mut self.video_id, &newer.video_id),
            (&mut self.viewer_id, &newer.viewer_id),
        ] {
            if let Some(v) = new {
                if mine.as_deref() != Some(v.as_str()) {
                    *mine = Some(v.as_str().into());
                    changed = true;
                }
            }
        }
        if self.shared.merge_changes_beyond_ids(newer) {
            let mut merged = (*self.shared).clone();
            merged.merge(newer);
            merged.video_id = None;
            merged.viewer_id = None;
            let shared = metas.intern(merged);
            changed |= !Arc::ptr_eq(&shared, &self.shared);
            self.shared = shared;
        }
        changed
    }

    fn to_meta(&self) -> SessionMeta {
        SessionMeta {
            video_id: self.video_id.as_deref().map(str::to_owned),
            viewer_id: self.viewer_id.as_deref().map(str::to_owned),
            ..(*self.shared).clone()
        }
    }
}

/// One shared copy of each distinct metadata in use.
#[derive(Debug, Default)]
struct MetaInterner {
    by_hash: HashMap<u64, Vec<Arc<SessionMeta>>>,
}

impl MetaInterner {
    fn intern(&mut self, meta: SessionMeta) -> Arc<SessionMeta> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        meta.kind.hash(&mut h);
        meta.duration_s.map(f64::to_bits).hash(&mut h);
        meta.content_type.hash(&mut h);
        meta.player_name.hash(&mut h);
        meta.player_version.hash(&mut h);
        meta.dimensions.hash(&mut h);
        meta.custom.hash(&mut h);
        let same = self.by_hash.entry(h.finish()).or_default();
        if let Some(shared) = same.iter().find(|m| ***m == meta) {
            return shared.clone();
        }
        let shared = Arc::new(meta);
        same.push(shared.clone());
        shared
    }

    /// Forget the metadata no session uses any more.
    fn sweep(&mut self) {
        self.by_hash.retain(|_, same| {
            same.retain(|m| Arc::strong_count(m) > 1);
            !same.is_empty()
        });
    }

    /// Distinct shared metadata kept for the open sessions (and, until the
    /// next sweep, for recently closed ones).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_hash.values().map(Vec::len).sum()
    }
}

impl OpenSession {
    fn new(protocol: Protocol, meta: CompactMeta) -> OpenSession {
        OpenSession {
            playback: Playback::new(Rules::for_session(protocol, &meta.shared)),
            protocol,
            meta,
            last_received_at: Millis::MIN,
            row_stale: false,
        }
    }

    /// What requests said about this session.
    pub fn meta(&self) -> SessionMeta {
        self.meta.to_meta()
    }

    /// This session's summary; `closed_at` is its close time once closed.
    pub fn summary(&self, key: &SessionKey, closed_at: Option<Millis>) -> SessionSummary {
        let first = self.playback.first_t().unwrap_or(self.last_received_at);
        SessionSummary {
            key: key.clone(),
            protocol: self.protocol,
            meta: self.meta.to_meta(),
            state: self.playback.state(),
            open: closed_at.is_none(),
            started_at: first,
            last_event_at: self.playback.last_t().unwrap_or(first),
            last_received_at: self.last_received_at,
            ended_at: closed_at,
            metrics: self.playback.metrics(&self.meta.shared, closed_at),
        }
    }

    fn rules(&self) -> Rules {
        Rules::for_session(self.protocol, &self.meta.shared)
    }

    /// Whether the session must close now, and why, at what time.
    fn due_close(&self, now: Millis) -> Option<(CloseReason, Millis)> {
        if let Some(at) = self.playback.closed_at() {
            return Some((CloseReason::Explicit, at));
        }
        if let Some(close) = self.stale_close() {
            return Some(close);
        }
        let last_t = self.playback.last_t()?;
        (now.saturating_sub(self.last_received_at) >= self.rules().inactivity_timeout_ms)
            .then_some((CloseReason::Inactivity, last_t))
    }

    /// Events kept coming but the playhead has not moved for the protocol's limit.
    fn stale_close(&self) -> Option<(CloseReason, Millis)> {
        let stale = self.rules().stale_playhead_timeout_ms?;
        let last_t = self.playback.last_t()?;
        let since = self
            .playback
            .playhead_changed_at()
            .or(self.playback.first_t())?;
        (last_t - since >= stale).then_some((CloseReason::StalePlayhead, last_t))
    }
}

/// What an ingest did to a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// Set when these events closed the session: why, and its final
    /// summary. An open session's summary is built only when asked for
    /// ([`Tracker::summary_of`], [`Tracker::take_row`]): most events do
    /// not rewrite the stored row, and building it was a tenth of the
    /// writer's work per event (`bench/RESULTS.md`).
    pub closed: Option<(CloseReason, SessionSummary)>,
    /// The events were out of order and the session was replayed.
    pub replayed: bool,
    /// These events opened the session.
    pub opened: bool,
    /// The request changed the session's metadata.
    pub meta_changed: bool,
}

/// The set of open sessions.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Boxed: the table keeps only the key and a pointer per slot. Its
    /// slots are 1–2 × the sessions (power-of-two growth), so an 830-byte
    /// `OpenSession` held inline cost up to 1.7 KiB per session at 1 M
    /// sessions (P4 profile, `bench/RESULTS.md`).
    open: SessionMap<Box<OpenSession>>,
    metas: MetaInterner,
    /// Expiry passes since the interner was last swept.
    expiries: u32,
}

/// Sweep the metadata interner every this many expiry passes.
const SWEEP_EVERY: u32 = 30;

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    pub fn is_open(&self, key: &SessionKey) -> bool {
        self.open.contains_key(key)
    }

    pub fn get(&self, key: &SessionKey) -> Option<&OpenSession> {
        self.open.get(key).map(|s| &**s)
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn keys(&self) -> impl Iterator<Item = &SessionKey> {
        self.open.keys()
    }

    /// Fold new, deduplicated events into a session, opening it if needed.
    ///
    /// `history` must return every stored event of the session, these
    /// included; it is called only when an event sorts before one already
    /// applied. `received_at` is the server time of the request.
    pub fn ingest<E>(
        &mut self,
        key: &SessionKey,
        protocol: Protocol,
        meta: &SessionMeta,
        mut events: Vec<Event>,
        received_at: Millis,
        history: impl FnOnce() -> Result<Vec<Event>, E>,
    ) -> Result<Ingested, E> {
        let metas = &mut self.metas;
        let mut opened = false;
        let session = self.open.entry(key.clone()).or_insert_with(|| {
            opened = true;
            Box::new(OpenSession::new(
                protocol,
                CompactMeta::new(meta.clone(), metas),
            ))
        });
        let meta_changed = session.meta.merge(meta, metas);
        session.last_received_at = session.last_received_at.max(received_at);
        events.sort_by_key(Event::sort_key);
        let in_order = events
            .first()
            .is_none_or(|first| session.playback.accepts_in_order(first));
        if in_order {
            for ev in &events {
                session.playback.apply(ev);
            }
        } else {
            let mut all = history()?;
            session.playback = Playback::replay(session.rules(), &mut all);
        }
        let closing = session
            .playback
            .closed_at()
            .map(|at| (CloseReason::Explicit, at))
            .or_else(|| session.stale_close());
        let closed = closing.map(|(reason, at)| (reason, session.summary(key, Some(at))));
        if closed.is_some() {
            self.open.remove(key);
        }
        Ok(Ingested {
            closed,
            replayed: !in_order,
            opened,
            meta_changed,
        })
    }

    /// Bring back an open session from its stored history (after a restart).
    pub fn restore(
        &mut self,
        key: SessionKey,
        protocol: Protocol,
        meta: SessionMeta,
        mut events: Vec<Event>,
        last_received_at: Millis,
    ) {
        let mut session = OpenSession::new(protocol, CompactMeta::new(meta, &mut self.metas));
        session.playback = Playback::replay(session.rules(), &mut events);
        session.last_received_at = last_received_at;
        self.open.insert(key, Box::new(session));
    }

    /// The summary of an open session, as it stands.
    pub fn summary_of(&self, key: &SessionKey) -> Option<SessionSummary> {
        self.open.get(key).map(|s| s.summary(key, None))
    }

    /// Note that an open session's stored row lags it. Returns `true` when
    /// it was up to date until now (the caller queues it once).
    pub fn mark_row_stale(&mut self, key: &SessionKey) -> bool {
        match self.open.get_mut(key) {
            Some(s) if !s.row_stale => {
                s.row_stale = true;
                true
            }
            _ => false,
        }
    }

    /// The summary to write for an open session's row now, clearing its
    /// stale mark; `None` when it is not open.
    pub fn take_row(&mut self, key: &SessionKey) -> Option<SessionSummary> {
        let s = self.open.get_mut(key)?;
        s.row_stale = false;
        Some(s.summary(key, None))
    }

    /// The summary to write for a session whose row is marked stale,
    /// clearing the mark; `None` when the session closed or its row was
    /// written since.
    pub fn take_stale_row(&mut self, key: &SessionKey) -> Option<SessionSummary> {
        if self.open.get(key)?.row_stale {
            self.take_row(key)
        } else {
            None
        }
    }

    /// Close one session now if its timeout has passed at server time
    /// `now` (before new events can revive it); returns its final summary.
    pub fn close_if_due(
        &mut self,
        key: &SessionKey,
        now: Millis,
    ) -> Option<(SessionSummary, CloseReason)> {
        let (reason, at) = self.open.get(key)?.due_close(now)?;
        let s = self.open.remove(key)?;
        Some((s.summary(key, Some(at)), reason))
    }

    /// Close every session whose protocol's timeout has passed at server
    /// time `now`; returns their final summaries.
    pub fn expire(&mut self, now: Millis) -> Vec<(SessionSummary, CloseReason)> {
        self.expiries += 1;
        if self.expiries >= SWEEP_EVERY {
            self.expiries = 0;
            self.metas.sweep();
        }
        let due: Vec<(SessionKey, CloseReason, Millis)> = self
            .open
            .iter()
            .filter_map(|(k, s)| s.due_close(now).map(|(r, at)| (k.clone(), r, at)))
            .collect();
        due.into_iter()
            .filter_map(|(key, reason, at)| {
                let s = self.open.remove(&key)?;
                Some((s.summary(&key, Some(at)), reason))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use playhead_model::EventKind;

    fn meta(viewer: &str, browser: &str) -> SessionMeta {
        let mut m = SessionMeta {
            video_id: Some("v1".into()),
            viewer_id: Some(viewer.into()),
            content_type: Some("vod".into()),
            ..SessionMeta::default()
        };
        m.dimensions.insert("browser".into(), browser.into());
        m.custom.insert("campaign".into(), "spring".into());
        m
    }

    fn ingest(t: &mut Tracker, id: &str, meta: &SessionMeta, at: Millis) -> SessionSummary {
        let key = SessionKey::new("p", id);
        let events = vec![Event::new(at, at, EventKind::Viewinit)];
        t.ingest(&key, Protocol::Native, meta, events, at, || {
            Ok::<_, ()>(Vec::new())
        })
        .unwrap();
        t.summary_of(&key).expect("open")
    }

    /// P4's budget is 1 KiB per open session, and the boxed session is
    /// most of it. With `bench/p4_memory.sh` (mimalloc), 632 bytes gave 809
    /// B per open session at 200,000 and 852 B at 1,000,000; 640 or 648
    /// bytes gave 935 and 978 B: the box moved to the next size class.
    #[test]
    fn an_open_session_fits_its_allocation_class() {
        let size = std::mem::size_of::<OpenSession>();
        assert!(size <= 632, "OpenSession is {size} bytes");
    }

    /// Sessions with the same metadata but their ids share one copy; a
    /// change makes another; summaries carry each session's own ids; a sweep
    /// forgets what closed sessions used.
    #[test]
    fn shared_metadata_is_interned_and_swept() {
        let mut t = Tracker::new();
        for i in 0..100 {
            let s = ingest(
                &mut t,
                &format!("s{i}"),
                &meta(&format!("u{i}"), "Chrome"),
                1_000,
            );
            assert_eq!(s.meta, meta(&format!("u{i}"), "Chrome"));
        }
        assert_eq!(t.metas.len(), 1);
        // Same again, and the viewer id alone: nothing new to share.
        ingest(&mut t, "s1", &meta("u1", "Chrome"), 2_000);
        assert_eq!(t.metas.len(), 1);
        let s = ingest(&mut t, "s2", &meta("u2", "Firefox"), 2_000);
        assert_eq!(s.meta, meta("u2", "Firefox"));
        assert_eq!(t.metas.len(), 2);
        assert_eq!(
            t.get(&SessionKey::new("p", "s1")).unwrap().meta(),
            meta("u1", "Chrome")
        );
        // Every session times out; the sweep (every SWEEP_EVERY passes) empties the interner.
        let mut closed = 0;
        for k in 0..SWEEP_EVERY {
            closed += t.expire(1_000_000_000 + Millis::from(k)).len();
        }
        assert_eq!(closed, 100);
        assert_eq!(t.metas.len(), 0);
    }
}
