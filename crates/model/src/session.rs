//! Sessions: identity, metadata, and the per-session summary whose field
//! names are those of `spec/metrics.md` and of the API.

use crate::{Millis, Protocol};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A session's identity: (property, session id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionKey {
    pub property: String,
    pub session_id: String,
}

impl SessionKey {
    pub fn new(property: impl Into<String>, session_id: impl Into<String>) -> SessionKey {
        SessionKey {
            property: property.into(),
            session_id: session_id.into(),
        }
    }
}

/// A hash map keyed by session, for the writer's per-event lookups.
///
/// foldhash, seeded at random per process, instead of std's SipHash: a
/// session key is about 70 bytes, and the writer looks one up about five
/// times an event, which cost about 2.5 k instructions with SipHash
/// (`bench/RESULTS.md`, eighth pass). The keys are client-sent strings, and
/// foldhash is only minimally resistant to crafted collisions; what they
/// could cost is a slower map, never a wrong answer.
pub type SessionMap<V> = std::collections::HashMap<SessionKey, V, foldhash::fast::RandomState>;

/// Whether a session is a playback session (a view, `spec/metrics.md`) or
/// something else a protocol keeps as a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// One attempt to watch one video: a view. Every protocol's default.
    #[default]
    Playback,
    /// An app's activity outside any playback (User Activity Vault
    /// `appStart`, `railView`, ... without a `playbackSessionId`). Stored,
    /// listed and shown with its events, but not a view: it counts in no
    /// aggregate metric (views, viewers, rollups, timeseries, breakdowns,
    /// concurrent and realtime viewers, retention).
    App,
}

impl SessionKind {
    pub fn is_playback(&self) -> bool {
        *self == SessionKind::Playback
    }
}

/// What requests said about a session. Later requests may add to it: a
/// field set again takes the newer value, a field left out keeps the old one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// A playback session unless a protocol says otherwise; stored only
    /// when not `playback` (summaries stored before it existed read as
    /// playback sessions).
    #[serde(default, skip_serializing_if = "SessionKind::is_playback")]
    pub kind: SessionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_id: Option<String>,
    /// Content length in seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// `vod`, `live`, or what the protocol says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_version: Option<String>,
    /// Built-in dimensions that are not fields above: `browser`, `os`,
    /// `device_type`, `referrer_domain`, `cdn`, `country`, and protocol-specific ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    /// Custom metadata (a dimension each, as `custom.<key>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
}

impl SessionMeta {
    /// Take what `newer` says; keep what it leaves out.
    pub fn merge(&mut self, newer: &SessionMeta) {
        fn take<T: Clone>(old: &mut Option<T>, new: &Option<T>) {
            if new.is_some() {
                old.clone_from(new);
            }
        }
        // `playback` is the default, i.e. "not said": it never undoes a kind.
        if !newer.kind.is_playback() {
            self.kind = newer.kind;
        }
        take(&mut self.video_id, &newer.video_id);
        take(&mut self.viewer_id, &newer.viewer_id);
        take(&mut self.duration_s, &newer.duration_s);
        take(&mut self.content_type, &newer.content_type);
        take(&mut self.player_name, &newer.player_name);
        take(&mut self.player_version, &newer.player_version);
        for (k, v) in &newer.dimensions {
            self.dimensions.insert(k.clone(), v.clone());
        }
        for (k, v) in &newer.custom {
            self.custom.insert(k.clone(), v.clone());
        }
    }

    /// Whether [`SessionMeta::merge`]`(newer)` would change anything but
    /// `video_id` and `viewer_id`, without merging (a request usually
    /// repeats what its session already says).
    pub fn merge_changes_beyond_ids(&self, newer: &SessionMeta) -> bool {
        fn differs<T: PartialEq>(old: &Option<T>, new: &Option<T>) -> bool {
            new.is_some() && new != old
        }
        (!newer.kind.is_playback() && newer.kind != self.kind)
            || differs(&self.duration_s, &newer.duration_s)
            || differs(&self.content_type, &newer.content_type)
            || differs(&self.player_name, &newer.player_name)
            || differs(&self.player_version, &newer.player_version)
            || newer
                .dimensions
                .iter()
                .any(|(k, v)| self.dimensions.get(k) != Some(v))
            || newer
                .custom
                .iter()
                .any(|(k, v)| self.custom.get(k) != Some(v))
    }

    /// Whether this is a playback session, one that counts in aggregates.
    pub fn is_playback(&self) -> bool {
        self.kind.is_playback()
    }

    /// Whether the content is live (no completion, no progress markers).
    pub fn is_live(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("live") || c.eq_ignore_ascii_case("linear"))
    }
}

/// Player state (`spec/metrics.md` "Player states").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlayerState {
    #[default]
    Init,
    Starting,
    Playing,
    Paused,
    Buffering,
    Seeking,
    Ended,
}

impl PlayerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlayerState::Init => "init",
            PlayerState::Starting => "starting",
            PlayerState::Playing => "playing",
            PlayerState::Paused => "paused",
            PlayerState::Buffering => "buffering",
            PlayerState::Seeking => "seeking",
            PlayerState::Ended => "ended",
        }
    }
}

/// One error of a session: `{t, code, message, fatal, source}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub t: Millis,
    pub code: String,
    pub message: String,
    pub fatal: bool,
    pub source: Option<String>,
}

/// Ad quartiles reached: `{"first","mid","third"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdQuartiles {
    pub first: u64,
    pub mid: u64,
    pub third: u64,
}

/// Every per-session metric of `spec/metrics.md`, under its API name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionMetrics {
    pub play_requested: bool,
    pub played: bool,
    pub startup_time_ms: Option<f64>,
    pub playing_time_ms: f64,
    pub ad_playing_time_ms: f64,
    pub paused_time_ms: f64,
    pub rebuffer_count: u64,
    pub rebuffer_time_ms: f64,
    pub seek_count: u64,
    pub seek_time_ms: f64,
    pub watch_time_ms: f64,
    pub rebuffer_percentage: f64,
    pub rebuffer_frequency: f64,
    pub max_playhead_s: Option<f64>,
    pub content_watched_s: f64,
    pub completion: Option<f64>,
    pub progress_markers: Vec<u8>,
    pub completed: bool,
    pub failed: bool,
    pub exit_before_start: bool,
    pub bitrate_avg_bps: Option<f64>,
    pub bitrate_changes: u64,
    pub dropped_frames: Option<u64>,
    pub total_frames: Option<u64>,
    pub errors: Vec<ErrorRecord>,
    pub ad_breaks: u64,
    pub ads_started: u64,
    pub ads_completed: u64,
    pub ads_skipped: u64,
    pub ads_ignored: u64,
    pub ad_impressions: u64,
    pub ad_quartiles: AdQuartiles,
    pub clock_skew_corrections: u64,
    /// Adobe "content start": a first frame was shown on main content (not in an ad).
    pub content_started: bool,
    /// Adobe "media time spent": playing time, ads included (ms).
    pub media_time_spent_ms: f64,
    /// Adobe stall count: +1 each time the playhead stays put on main content
    /// for at least 3 consecutive events while playing.
    pub stall_count: u64,
    /// Adobe "content resume": the session resumes an earlier one (`media.resume`).
    pub resumed: bool,
    pub startup_score: Option<f64>,
    pub smoothness_score: Option<f64>,
    pub playback_success_score: Option<f64>,
    pub viewer_experience_score: Option<f64>,
}

/// A session as stored and served: identity, metadata, state and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub key: SessionKey,
    pub protocol: Protocol,
    pub meta: SessionMeta,
    pub state: PlayerState,
    pub open: bool,
    /// Time of the session's first event.
    pub started_at: Millis,
    /// Time of the session's last event.
    pub last_event_at: Millis,
    /// Server time the last event was received (realtime and timeouts use it).
    pub last_received_at: Millis,
    /// Close time: the end event's time, or the last event's on a timeout.
    pub ended_at: Option<Millis>,
    pub metrics: SessionMetrics,
}

impl SessionSummary {
    /// Whether this is a playback session (a view). Only those count in
    /// aggregate metrics; other kinds ([`SessionKind::App`]) are stored and
    /// listed only.
    pub fn is_playback(&self) -> bool {
        self.meta.is_playback()
    }

    /// This session's values for a dimension (empty when it has none;
    /// several for `error_code` when it had several errors).
    pub fn dimension_values(&self, dim: &crate::Dimension) -> Vec<String> {
        use crate::Dimension as D;
        let one = |v: Option<&String>| v.cloned().into_iter().collect::<Vec<_>>();
        match dim {
            D::Property => vec![self.key.property.clone()],
            D::Protocol => vec![self.protocol.as_str().to_owned()],
            D::VideoId => one(self.meta.video_id.as_ref()),
            D::ViewerId => one(self.meta.viewer_id.as_ref()),
            D::ContentType => one(self.meta.content_type.as_ref()),
            D::PlayerName => one(self.meta.player_name.as_ref()),
            D::ErrorCode => {
                let mut codes: Vec<String> =
                    self.metrics.errors.iter().map(|e| e.code.clone()).collect();
                codes.sort();
                codes.dedup();
                codes
            }
            D::Custom(k) => one(self.meta.custom.get(k)),
            other => one(self.meta.dimensions.get(&other.name())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_defaults_to_playback_and_is_stored_only_otherwise() {
        // A summary's meta stored before `kind` existed reads as playback.
        let old: SessionMeta = serde_json::from_str(r#"{"video_id":"v1"}"#).unwrap();
        assert_eq!(old.kind, SessionKind::Playback);
        assert!(old.is_playback());
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"video_id":"v1"}"#);
        let app = SessionMeta {
            kind: SessionKind::App,
            ..SessionMeta::default()
        };
        assert_eq!(serde_json::to_string(&app).unwrap(), r#"{"kind":"app"}"#);
        let back: SessionMeta = serde_json::from_str(r#"{"kind":"app"}"#).unwrap();
        assert!(!back.is_playback());
    }

    /// `merge_changes_beyond_ids` says exactly whether `merge` changes
    /// anything but the ids, field by field.
    #[test]
    fn merge_changes_beyond_ids_agrees_with_merge() {
        let mut base = SessionMeta {
            video_id: Some("v1".into()),
            viewer_id: Some("u1".into()),
            duration_s: Some(60.0),
            content_type: Some("vod".into()),
            player_name: Some("p".into()),
            player_version: Some("1".into()),
            ..SessionMeta::default()
        };
        base.dimensions.insert("browser".into(), "Chrome".into());
        base.custom.insert("plan".into(), "gold".into());
        type Edit = (&'static str, fn(&mut SessionMeta));
        let edits: Vec<Edit> = vec![
            ("nothing", |_| {}),
            ("same fields again", |m| *m = m.clone()),
            ("ids only", |m| {
                m.video_id = Some("v2".into());
                m.viewer_id = Some("u2".into());
            }),
            ("kind", |m| m.kind = SessionKind::App),
            ("duration", |m| m.duration_s = Some(61.0)),
            ("content type", |m| m.content_type = Some("live".into())),
            ("player name", |m| m.player_name = Some("q".into())),
            ("player version", |m| m.player_version = Some("2".into())),
            ("a dimension's value", |m| {
                m.dimensions.insert("browser".into(), "Safari".into());
            }),
            ("a new dimension", |m| {
                m.dimensions.insert("os".into(), "Linux".into());
            }),
            ("a custom value", |m| {
                m.custom.insert("plan".into(), "free".into());
            }),
            ("a new custom key", |m| {
                m.custom.insert("show".into(), "news".into());
            }),
        ];
        for (name, edit) in edits {
            for start in [base.clone(), SessionMeta::default()] {
                // A request saying only what it edits, and one saying everything.
                let mut full = base.clone();
                edit(&mut full);
                let mut sparse = SessionMeta::default();
                edit(&mut sparse);
                for newer in [full, sparse] {
                    let mut merged = start.clone();
                    merged.merge(&newer);
                    let ids = |m: &SessionMeta| SessionMeta {
                        video_id: None,
                        viewer_id: None,
                        ..m.clone()
                    };
                    assert_eq!(
                        start.merge_changes_beyond_ids(&newer),
                        ids(&merged) != ids(&start),
                        "{name}: {newer:?} into {start:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn merging_keeps_a_kind_that_later_requests_leave_out() {
        let mut meta = SessionMeta {
            kind: SessionKind::App,
            ..SessionMeta::default()
        };
        meta.merge(&SessionMeta {
            viewer_id: Some("u1".into()),
            ..SessionMeta::default()
        });
        assert_eq!(meta.kind, SessionKind::App);
        assert_eq!(meta.viewer_id.as_deref(), Some("u1"));
        let mut meta = SessionMeta::default();
        meta.merge(&SessionMeta {
            kind: SessionKind::App,
            ..SessionMeta::default()
        });
        assert_eq!(meta.kind, SessionKind::App);
    }
}
