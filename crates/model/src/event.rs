//! Canonical playback events: the one model every protocol decodes into.
//!
//! Type names follow the native protocol (`spec/protocols.md` §6), plus
//! `progress` (a bare position report, for protocols in progress mode) and
//! `custom` (anything a protocol sends that has no playback meaning, kept).

use crate::session::SessionMeta;
use crate::{Millis, Protocol, SessionKey};
use serde::{Deserialize, Serialize};

/// One canonical event of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event time, ms since epoch: the client's timestamp where the protocol
    /// sends one, else the server's receive time (see `normalize_time`).
    pub t: Millis,
    /// Server receive time, ms since epoch.
    pub received_at: Millis,
    /// Duplicate-delivery key: the native `seq`, or a hash of the event's
    /// content for protocols without one. A repeated key changes nothing.
    pub dedup_key: u64,
    /// Tie-break among events with the same `t`: the protocol's sequence
    /// number where it has one (native `seq`), else the position in the
    /// request. Events are processed in (`t`, `order`, `dedup_key`) order,
    /// which does not depend on arrival order.
    #[serde(default)]
    pub order: u64,
    #[serde(flatten)]
    pub kind: EventKind,
    /// Position in the media, seconds. Inside an ad break: the ad's position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playhead: Option<f64>,
    /// Quality-of-experience values some protocols attach to any event.
    #[serde(default, skip_serializing_if = "Qoe::is_empty")]
    pub qoe: Qoe,
    /// The client time was more than 24 h away from `received_at` and was replaced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clock_skew_corrected: bool,
    /// Protocol fields with no canonical meaning, kept for the events API.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// The most a client clock may be off before its times are replaced (24 h).
pub const MAX_CLOCK_SKEW_MS: Millis = 24 * 3600 * 1000;

impl Event {
    /// An event of `kind` at time `t` (received at `received_at`), with no
    /// playhead, QoE or data; its dedup key is derived from its content.
    pub fn new(t: Millis, received_at: Millis, kind: EventKind) -> Event {
        let mut ev = Event {
            t,
            received_at,
            dedup_key: 0,
            order: 0,
            kind,
            playhead: None,
            qoe: Qoe::default(),
            clock_skew_corrected: false,
            data: serde_json::Map::new(),
        };
        ev.normalize_time();
        ev
    }

    pub fn with_playhead(mut self, playhead: f64) -> Event {
        self.playhead = Some(playhead);
        self
    }

    /// Replace a client time more than 24 h away from the receive time by the
    /// receive time, and remember it (`clock_skew_corrections`).
    pub fn normalize_time(&mut self) {
        if (self.t - self.received_at).abs() > MAX_CLOCK_SKEW_MS {
            self.t = self.received_at;
            self.clock_skew_corrected = true;
        }
    }

    /// A dedup key from the event's content (all but the receive time), for
    /// protocols that carry no sequence number: the same event delivered
    /// twice hashes the same.
    ///
    /// The event is serialized as JSON straight into the hasher, without
    /// `received_at` and `dedup_key` and without building a value tree (the
    /// tree cost a fifth of a decoder's time, `bench/RESULTS.md`).
    pub fn content_key(&self) -> u64 {
        /// The fields that make an event's content, borrowed.
        #[derive(Serialize)]
        struct Content<'a> {
            t: Millis,
            order: u64,
            #[serde(flatten)]
            kind: &'a EventKind,
            playhead: Option<f64>,
            qoe: &'a Qoe,
            clock_skew_corrected: bool,
            data: &'a serde_json::Map<String, serde_json::Value>,
        }
        /// Feeds what serde_json writes into the stable hash.
        struct HashWriter(crate::hash::StableHasher);
        impl std::io::Write for HashWriter {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::hash::Hasher::write(&mut self.0, buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let content = Content {
            t: self.t,
            order: self.order,
            kind: &self.kind,
            playhead: self.playhead,
            qoe: &self.qoe,
            clock_skew_corrected: self.clock_skew_corrected,
            data: &self.data,
        };
        let mut writer = HashWriter(crate::hash::StableHasher::default());
        // Writing into the hasher cannot fail; a value serde cannot write
        // (none here) would only shorten the hashed text.
        let _ = serde_json::to_writer(&mut writer, &content);
        std::hash::Hasher::finish(&writer.0)
    }

    /// The processing order of a session's events (see `order`).
    pub fn sort_key(&self) -> (Millis, u64, u64) {
        (self.t, self.order, self.dedup_key)
    }

    /// The canonical type name (`play`, `playing`, `progress`, ...).
    pub fn type_name(&self) -> &'static str {
        self.kind.name()
    }
}

/// How bad an error is for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ErrorSeverity {
    /// Recorded, the session goes on.
    #[default]
    Warning,
    /// The session failed.
    Fatal,
    /// Fails the session unless a `playing` follows before it closes (Adobe `error`).
    FatalUnlessResumed,
}

/// What happened. Field names of the payloads are those of the native protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EventKind {
    /// The player loaded (a view began); nothing requested yet.
    Viewinit,
    /// The viewer or the page asked to play.
    Play,
    /// A frame is shown: first frame, or resumed after pause/stall/seek.
    Playing,
    Pause,
    /// A seek began.
    Seeking,
    /// A seek finished (playback resumes with the next `playing`).
    Seeked,
    /// A stall: the player waits for data.
    Waiting,
    Ratechange {
        rate: f64,
    },
    Renditionchange {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bitrate_bps: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
    },
    Resize {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
    },
    Heartbeat,
    /// A bare position report (progress mode). `seek` marks a report the
    /// protocol itself calls a seek; `from` is the position before it;
    /// `shown` says the protocol means a frame was shown (pixel `check`),
    /// which makes the session `played`.
    Progress {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        seek: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<f64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        shown: bool,
    },
    Error {
        code: String,
        #[serde(default)]
        message: String,
        severity: ErrorSeverity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// The content played to its end.
    Ended,
    /// The view is over: the session closes.
    Viewend,
    Adbreakstart,
    Adstart {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ad_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<f64>,
    },
    Adquartile {
        quartile: u8,
    },
    Adcomplete,
    Adskip,
    Adbreakend,
    /// Anything else the protocol reported, kept under its own name.
    Custom {
        name: String,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Viewinit => "viewinit",
            EventKind::Play => "play",
            EventKind::Playing => "playing",
            EventKind::Pause => "pause",
            EventKind::Seeking => "seeking",
            EventKind::Seeked => "seeked",
            EventKind::Waiting => "waiting",
            EventKind::Ratechange { .. } => "ratechange",
            EventKind::Renditionchange { .. } => "renditionchange",
            EventKind::Resize { .. } => "resize",
            EventKind::Heartbeat => "heartbeat",
            EventKind::Progress { .. } => "progress",
            EventKind::Error { .. } => "error",
            EventKind::Ended => "ended",
            EventKind::Viewend => "viewend",
            EventKind::Adbreakstart => "adbreakstart",
            EventKind::Adstart { .. } => "adstart",
            EventKind::Adquartile { .. } => "adquartile",
            EventKind::Adcomplete => "adcomplete",
            EventKind::Adskip => "adskip",
            EventKind::Adbreakend => "adbreakend",
            EventKind::Custom { .. } => "custom",
        }
    }
}

/// QoE values a protocol may attach to any event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Qoe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_bps: Option<u64>,
    /// Cumulative dropped frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_frames: Option<u64>,
    /// Cumulative decoded frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_frames: Option<u64>,
    /// A startup time the protocol reports itself (wins over the measured one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_time_ms: Option<f64>,
}

impl Qoe {
    pub fn is_empty(&self) -> bool {
        *self == Qoe::default()
    }
}

/// One decoded ingest request: events of one session plus what the request
/// said about the session. The server fills `key.property` from its key
/// mapping and the User-Agent dimensions from the headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub key: SessionKey,
    pub protocol: Protocol,
    pub meta: SessionMeta,
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events of every shape a content key sees: kind fields, QoE, data,
    /// playhead, a corrected clock.
    fn samples() -> Vec<Event> {
        let t = 1_700_000_000_000;
        let mut error = Event::new(
            t,
            t + 5,
            EventKind::Error {
                code: "E\"42\u{e9}".into(),
                message: "decode\nfailed".into(),
                severity: ErrorSeverity::Fatal,
                source: Some("player".into()),
            },
        )
        .with_playhead(12.5);
        error.order = 3;
        if let serde_json::Value::Object(data) = serde_json::json!({
            "params": {"media.id": "v1", "n": -3, "x": 1.0},
            "list": [1, "two", null, true]
        }) {
            error.data = data;
        }
        let mut ad = Event::new(
            t + 10,
            t + 10,
            EventKind::Adstart {
                ad_id: Some("ad-1".into()),
                duration_s: Some(15.0),
            },
        );
        ad.qoe = Qoe {
            bitrate_bps: Some(2_500_000),
            dropped_frames: Some(7),
            total_frames: None,
            startup_time_ms: Some(812.5),
        };
        let skewed = Event::new(t - 2 * MAX_CLOCK_SKEW_MS, t, EventKind::Heartbeat);
        vec![Event::new(t, t, EventKind::Play), error, ad, skewed]
    }

    /// Content keys are stored (dedup keys of every protocol without a
    /// sequence number), and a retry is recognised by its key: they must
    /// not change between builds. A new field of the event's content, or
    /// another way of hashing it, fails here.
    #[test]
    fn content_keys_are_stable() {
        let keys: Vec<u64> = samples().iter().map(Event::content_key).collect();
        assert_eq!(
            keys,
            [
                8_353_438_518_758_015_532,
                4_205_496_652_712_486_895,
                2_763_509_858_996_075_655,
                10_089_827_409_133_781_228
            ]
        );
    }
}
