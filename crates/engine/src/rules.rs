//! Per-protocol accounting rules: state or progress mode, report cadence,
//! inactivity timeouts (`spec/metrics.md` "Playback session" and
//! "Player states and time accounting").

use playhead_model::{Millis, Protocol, SessionMeta};

/// How time is accounted for a protocol's sessions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Accounting {
    /// The protocol reports state changes: the interval between two events
    /// belongs to the state in force after the first of them.
    State,
    /// The protocol reports only positions (`progress` events).
    Progress {
        /// The protocol's report interval; a silence over 3 × this is a pause.
        report_interval_ms: Millis,
        /// Ping rule: a report not marked as a seek continues the timeline,
        /// and the playing credit is capped at Δw + 1 s.
        player_decides_continuity: bool,
    },
}

/// The rules a session follows, chosen by its protocol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub accounting: Accounting,
    /// Close after this long without an event (server time).
    pub inactivity_timeout_ms: Millis,
    /// Close after this long without a playhead change (Adobe: 30 min).
    pub stale_playhead_timeout_ms: Option<Millis>,
    /// `completed` from `max_playhead_s ≥ 0.95 × duration_s` (pixel, UAV),
    /// for protocols without an explicit end-of-content event.
    pub completion_from_playhead: bool,
    /// The protocol tells the play request and the first frame apart, so
    /// their distance is the startup time. Pixel beacons do not (`play` is
    /// sent at the first real play): their startup time is unknown (null).
    pub measures_startup: bool,
    /// The protocol sends no `playing` after a seek (iframe player messages:
    /// `playback_seeking_ended` is all): `seeked` resumes the state the seek
    /// began in, playing or paused.
    pub seeked_resumes: bool,
    /// Progress mode, for a protocol that also reports pause and resume (UAV,
    /// whose clients report every 60 s or, in some releases, every 300 s):
    /// - the time from `pause` to the next `playing` (or close) is paused,
    ///   and the playing-advance rule sees only the gap's unpaused part;
    /// - a long gap between reports is paused only for the part the
    ///   playhead did not advance, when that part exceeds 3 × the report
    ///   interval (a 300-s report whose playhead moved 300 s is 300 s of
    ///   playing, whatever the client's cadence), not as a whole.
    ///
    /// Without it (pixel, ping), a gap over 3 × the interval is paused whole.
    pub reported_pauses: bool,
}

const MINUTE: Millis = 60_000;

/// Live pixel beacons come every 15 s (`spec/protocols.md` §1), VOD checks every 5 s.
const PIXEL_LIVE_INTERVAL_MS: Millis = 15_000;

impl Rules {
    /// The rules of one session: its protocol's, adjusted by what the
    /// session says of itself (a live pixel session reports every 15 s).
    pub fn for_session(protocol: Protocol, meta: &SessionMeta) -> Rules {
        let mut rules = Rules::for_protocol(protocol);
        if protocol == Protocol::Pixel && meta.is_live() {
            rules.accounting = Accounting::Progress {
                report_interval_ms: PIXEL_LIVE_INTERVAL_MS,
                player_decides_continuity: false,
            };
        }
        rules
    }

    pub fn for_protocol(protocol: Protocol) -> Rules {
        let state = Rules {
            accounting: Accounting::State,
            inactivity_timeout_ms: 10 * MINUTE,
            stale_playhead_timeout_ms: None,
            completion_from_playhead: false,
            measures_startup: true,
            seeked_resumes: false,
            reported_pauses: false,
        };
        match protocol {
            Protocol::Native => state,
            Protocol::PlayerMessages => Rules {
                seeked_resumes: true,
                ..state
            },
            Protocol::MediaCollection => Rules {
                stale_playhead_timeout_ms: Some(30 * MINUTE),
                ..state
            },
            Protocol::Pixel => Rules {
                accounting: Accounting::Progress {
                    report_interval_ms: 5_000,
                    player_decides_continuity: false,
                },
                inactivity_timeout_ms: 30 * MINUTE,
                completion_from_playhead: true,
                measures_startup: false,
                ..state
            },
            Protocol::Ping => Rules {
                accounting: Accounting::Progress {
                    report_interval_ms: 60_000,
                    player_decides_continuity: true,
                },
                // A ping says where the player is, not when the first
                // frame showed: no startup time.
                measures_startup: false,
                ..state
            },
            // `playback_metrics` every 60 s by default (300 s in some
            // releases: see `reported_pauses`). No first-frame signal: the
            // first report showing progress comes a whole interval after
            // `playbackStart`, so the startup time is unknown (null).
            Protocol::UserActivity => Rules {
                accounting: Accounting::Progress {
                    report_interval_ms: 60_000,
                    player_decides_continuity: false,
                },
                completion_from_playhead: true,
                measures_startup: false,
                reported_pauses: true,
                ..state
            },
        }
    }
}
