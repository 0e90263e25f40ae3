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
use playhead_model::{Event, Millis, Protocol, SessionKey, SessionMeta, SessionSummary};
use std::collections::HashMap;

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
    pub meta: SessionMeta,
    pub playback: Playback,
    /// Server time of the latest event received.
    pub last_received_at: Millis,
}

impl OpenSession {
    fn new(protocol: Protocol, meta: SessionMeta) -> OpenSession {
        OpenSession {
            playback: Playback::new(Rules::for_session(protocol, &meta)),
            protocol,
            meta,
            last_received_at: Millis::MIN,
        }
    }

    /// This session's summary; `closed_at` is its close time once closed.
    pub fn summary(&self, key: &SessionKey, closed_at: Option<Millis>) -> SessionSummary {
        let first = self.playback.first_t().unwrap_or(self.last_received_at);
        SessionSummary {
            key: key.clone(),
            protocol: self.protocol,
            meta: self.meta.clone(),
            state: self.playback.state(),
            open: closed_at.is_none(),
            started_at: first,
            last_event_at: self.playback.last_t().unwrap_or(first),
            last_received_at: self.last_received_at,
            ended_at: closed_at,
            metrics: self.playback.metrics(&self.meta, closed_at),
        }
    }

    fn rules(&self) -> Rules {
        Rules::for_session(self.protocol, &self.meta)
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
    /// The session after the events (closed or not).
    pub summary: SessionSummary,
    /// Set when these events closed the session.
    pub closed: Option<CloseReason>,
    /// The events were out of order and the session was replayed.
    pub replayed: bool,
}

/// The set of open sessions.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Boxed: the table keeps only the key and a pointer per slot. Its
    /// slots are 1–2 × the sessions (power-of-two growth), so an 830-byte
    /// `OpenSession` held inline cost up to 1.7 KiB per session at 1 M
    /// sessions (P4 profile, `bench/RESULTS.md`).
    open: HashMap<SessionKey, Box<OpenSession>>,
}

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
        let session = self
            .open
            .entry(key.clone())
            .or_insert_with(|| Box::new(OpenSession::new(protocol, meta.clone())));
        session.meta.merge(meta);
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
        let summary = session.summary(key, closing.map(|(_, at)| at));
        if closing.is_some() {
            self.open.remove(key);
        }
        Ok(Ingested {
            summary,
            closed: closing.map(|(r, _)| r),
            replayed: !in_order,
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
        let mut session = OpenSession::new(protocol, meta);
        session.playback = Playback::replay(session.rules(), &mut events);
        session.last_received_at = last_received_at;
        self.open.insert(key, Box::new(session));
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
