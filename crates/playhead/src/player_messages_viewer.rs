//! Simulated embedded (iframe) players behind the SDK's bridge, for
//! `playhead load --protocol player_messages` (`spec/protocols.md` §5).
//!
//! A BlendVision-style player posts its messages to the host page; the
//! bridge forwards state changes at once and progress at most every 10 s,
//! each batch as `POST /v1/player-messages`. A plan is one view: the play
//! request, the startup time the player reports, the first frame, progress
//! every 10 s of playback, sometimes a stall or a pause, and an ending: the
//! end of the content, an error (the token expired, code 16, or the
//! playback session expired, code 7), or the viewer leaving (Back, or
//! nothing: the session times out).

use crate::viewer::{time_scale, DEVICES, VIDEOS};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

/// The bridge forwards progress at most this often (ms).
const PROGRESS_EVERY_MS: i64 = 10_000;
/// Live streams and the longest VOD are watched at most this long (s).
const MAX_WATCH_S: f64 = 900.0;

/// One bridge batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesRequest {
    /// Send time, ms after the view's start, in real-rate time.
    pub at_ms: i64,
    /// The `POST /v1/player-messages` body.
    pub body: Value,
}

impl MessagesRequest {
    /// When to send it, after the view's start, at `speed` × real time.
    pub fn send_at(&self, speed: f64) -> Duration {
        time_scale(self.at_ms, speed)
    }

    /// How many player messages it carries.
    pub fn messages(&self) -> usize {
        self.body["messages"].as_array().map_or(0, Vec::len)
    }
}

/// A planned view.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesPlan {
    pub session_id: String,
    pub video_id: &'static str,
    pub user_agent: &'static str,
    pub requests: Vec<MessagesRequest>,
    /// The last message's time, ms after the start.
    pub end_ms: i64,
}

/// How a view ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// `playback_video_ended`.
    Ended,
    /// `playback_error_occurred`: (code, reason).
    Error(u32, &'static str),
    /// The Back button (`actionDelivery`), then nothing.
    Back,
    /// Nothing more: the session closes by inactivity.
    Leaves,
}

/// Plan one view. `ingest_key` is the bodies' `property`.
pub fn plan_session(rng: &mut impl Rng, start_ms: i64, ingest_key: &str) -> MessagesPlan {
    let video = &VIDEOS[rng.random_range(0..VIDEOS.len())];
    let device = &DEVICES[rng.random_range(0..DEVICES.len())];
    let session_id = uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string();
    let viewer_id = format!("member-{}", rng.random_range(0..5_000));
    let length_s = video
        .duration_s
        .map_or(MAX_WATCH_S, |d| f64::from(d).min(MAX_WATCH_S));
    let ending = match rng.random_range(0..100) {
        0..55 if video.duration_s.is_some() => Ending::Ended,
        55..61 => Ending::Error(16, "ERROR_REASON_TOKEN_EXPIRED"),
        61..64 => Ending::Error(7, "ERROR_REASON_PLAYBACK_SESSION_EXPIRED"),
        64..80 => Ending::Back,
        _ => Ending::Leaves,
    };
    let watch_s = if ending == Ending::Ended {
        length_s
    } else {
        rng.random_range(5.0..=length_s.max(5.0))
    };
    let mut s = Script {
        start_ms,
        t: 0,
        out: Vec::new(),
    };
    s.playlog("playback_began_player_loading", json!({}));
    let startup_ms = rng.random_range(300..2_500);
    s.t += startup_ms;
    s.playlog(
        "playback_began_video_startup_time",
        json!({"video_startup_time": startup_ms}),
    );
    s.playlog("playback_video_started", json!({}));
    let mut stall_at = rng
        .random_bool(0.15)
        .then(|| rng.random_range(0.0..watch_s));
    let mut pause_at = rng
        .random_bool(0.10)
        .then(|| rng.random_range(0.0..watch_s));
    let mut position = 0.0_f64;
    let mut since_progress = 0_i64;
    while position < watch_s {
        let step_s = (watch_s - position).min(1.0);
        s.t += (step_s * 1000.0).round() as i64;
        since_progress += (step_s * 1000.0).round() as i64;
        position += step_s;
        if since_progress >= PROGRESS_EVERY_MS {
            since_progress = 0;
            s.progress(position);
        }
        if stall_at.is_some_and(|at| position >= at) {
            stall_at = None;
            s.playlog("playback_video_buffering_began", json!({}));
            s.t += rng.random_range(500..4_000);
            s.playlog("playback_video_buffering_ended", json!({}));
        }
        if pause_at.is_some_and(|at| position >= at) {
            pause_at = None;
            s.playlog("playback_video_paused", json!({}));
            s.t += rng.random_range(3_000..60_000);
            s.playlog("play", json!({}));
            s.playlog("playback_video_started", json!({}));
        }
    }
    match ending {
        Ending::Ended => s.playlog("playback_video_ended", json!({})),
        Ending::Error(code, reason) => s.playlog(
            "playback_error_occurred",
            json!({"error_code": code, "error_reason": reason}),
        ),
        Ending::Back => s.post(json!({"event": "actionDelivery", "name": "back"})),
        Ending::Leaves => {}
    }
    let end_ms = s.out.last().map_or(0, |(t, _)| *t);
    let head = json!({"session_id": session_id, "property": ingest_key,
        "video_id": video.id, "viewer_id": viewer_id});
    let requests = s
        .out
        .into_iter()
        .map(|(at_ms, message)| {
            let mut body = head.clone();
            body["messages"] = json!([message]);
            MessagesRequest { at_ms, body }
        })
        .collect();
    MessagesPlan {
        session_id,
        video_id: video.id,
        user_agent: device.user_agent,
        requests,
        end_ms,
    }
}

/// The player's messages as it posts them, with their send times.
struct Script {
    start_ms: i64,
    /// Now, ms after the start.
    t: i64,
    out: Vec<(i64, Value)>,
}

impl Script {
    /// The player's clock: unix seconds with a fraction.
    fn unix(&self) -> f64 {
        (self.start_ms + self.t) as f64 / 1000.0
    }

    fn post(&mut self, message: Value) {
        self.out.push((self.t, message));
    }

    fn playlog(&mut self, name: &str, extra: Value) {
        let now = self.unix();
        let mut data = json!({"playback_module_version": "2.3.1", "system_time": now});
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        self.post(json!({"event": "infoDelivery", "info": {
            "currentTimeLastUpdated": now, "playlogEventName": name, "playlogData": data}}));
    }

    fn progress(&mut self, position: f64) {
        let now = self.unix();
        self.post(json!({"event": "infoDelivery", "info": {
            "currentTime": position, "currentTimeLastUpdated": now, "playbackRate": 1}}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use playhead_model::{ErrorSeverity, EventKind};
    use playhead_protocols::{player_messages, RawRequest};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const START: i64 = 1_700_000_000_000;

    #[test]
    fn every_planned_batch_is_what_the_server_decodes() {
        let mut endings = std::collections::BTreeMap::new();
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let plan = plan_session(&mut rng, START, "k");
            let mut kinds = Vec::new();
            let mut last_t = i64::MIN;
            for r in &plan.requests {
                assert_eq!(r.messages(), 1);
                let body = r.body.to_string();
                let d = player_messages::decode(&RawRequest {
                    method: "POST",
                    path: "/v1/player-messages",
                    query: "",
                    content_type: Some("text/plain"),
                    body: body.as_bytes(),
                    received_at: START + r.at_ms,
                })
                .unwrap_or_else(|e| panic!("seed {seed}: {e}: {body}"));
                assert_eq!(d.batch.key.session_id, plan.session_id);
                for ev in &d.batch.events {
                    assert!(ev.t >= last_t, "seed {seed}: time goes back");
                    last_t = ev.t;
                    assert!(
                        (ev.t - (START + r.at_ms)).abs() <= 1,
                        "seed {seed}: sent when it happened"
                    );
                    kinds.push(ev.kind.clone());
                }
            }
            assert_eq!(kinds[0], EventKind::Play, "seed {seed}");
            assert!(kinds.contains(&EventKind::Playing), "seed {seed}");
            let ending = match kinds.last().unwrap() {
                EventKind::Ended => "ended".to_owned(),
                EventKind::Error { code, severity, .. } => {
                    assert_eq!(*severity, ErrorSeverity::Fatal);
                    format!("error {code}")
                }
                EventKind::Custom { name } => name.clone(),
                _ => "left".to_owned(),
            };
            *endings.entry(ending).or_insert(0) += 1;
            assert_eq!(plan.requests.last().unwrap().at_ms, plan.end_ms);
        }
        // Every ending happens in 200 views.
        for e in ["ended", "error 16", "error 7", "back", "left"] {
            assert!(endings.contains_key(e), "{e} never planned: {endings:?}");
        }
    }

    #[test]
    fn the_same_seed_plans_the_same_view() {
        let a = plan_session(&mut StdRng::seed_from_u64(7), START, "k");
        let b = plan_session(&mut StdRng::seed_from_u64(7), START, "k");
        assert_eq!(a, b);
    }
}
