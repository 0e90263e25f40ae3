//! Simulated NAGRA OpenTV apps (set-top boxes and OTT apps) reporting to a
//! User Activity Vault (`spec/protocols.md` §4), for `playhead load
//! --protocol user_activity` and the demo.
//!
//! An app session is planned up front, with no IO and no clock, from a
//! random number generator and a start time ([`plan_session`]): the
//! household and device, what is watched, how the viewing goes, and every
//! activity the app posts at the session's own times. The same generator
//! state gives the same session.
//!
//! What an app session looks like:
//! - `appStart`, a `railView` and a `railSelection` (app activities: no
//!   `playbackSessionId`), then `playbackStart` with the content's
//!   `contentType`, `contentSource`, `editorialId` (and `technicalId`,
//!   `programmeId` for a live event, whose `playbackProgress` starts at the
//!   seconds already aired);
//! - `playback_metrics` on the release's timer, every 60 s from
//!   `playbackStart`, or every 300 s on a fifth of the devices (the older
//!   release), with the player's metrics: bitrates, bytes, download rates,
//!   buffered duration, dropped and total frames;
//! - sometimes a pause (`playbackPause` … `playbackResume`), a skip
//!   (`playbackSkipAhead`/`playbackSkipBack`, not on live), a bitrate
//!   change, an ad (`adWatched`/`adSkipped`, and on live channels a
//!   server-inserted ad reported as `adDeliverd`, the vendor's spelling);
//! - the end: `playbackStop` (about 5 % before any progress: exit before
//!   start), or about 4 % a fatal `playerError`; then often `appEnd`.
//!
//! Envelopes are the real clients': `userId` and `key` sent as empty
//! strings (most households), `timestamp` in RFC 3339. The token goes as
//! `?token=`. Event times are the session's start plus its own time, so at
//! a `speed` ≠ 1 the server still sees real-rate sessions.

use crate::viewer::{pick, pick_by_key, splitmix, time_scale, total_weight};
use rand::Rng;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The route's path before the activity name.
pub const PATH_PREFIX: &str = "/useractivityvault/v1/useractivity/";
/// The default `playback_metrics` period.
pub const METRICS_INTERVAL_MS: i64 = 60_000;
/// The older release's period.
pub const SLOW_METRICS_INTERVAL_MS: i64 = 300_000;
/// Households (devices) sessions are drawn from.
pub const HOUSEHOLDS: u32 = 300;
/// Keeps these devices' ids apart from the other simulators'.
const HOUSEHOLD_SALT: u64 = 0x6e61_6772_615f_7561;

/// What the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppDevice {
    pub user_agent: &'static str,
    /// Sent in `playerError` as `playerTypeVersion`.
    pub player: &'static str,
    /// Set-top boxes watch IPTV; apps OTT.
    pub set_top: bool,
    pub weight: u32,
}

pub const APP_DEVICES: &[AppDevice] = &[
    AppDevice {
        user_agent: "Mozilla/5.0 (Linux; Android 9; OTV-STB-4K Build/PPR1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.101 Safari/537.36 OpenTV/5.30",
        player: "OTVPlayer 5.30.1",
        set_top: true,
        weight: 45,
    },
    AppDevice {
        user_agent: "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.5) AppleWebKit/537.36 (KHTML, like Gecko) 85.0.4183.93/6.5 TV Safari/537.36",
        player: "OTVPlayer HTML5 4.12.0",
        set_top: false,
        weight: 15,
    },
    AppDevice {
        user_agent: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
        player: "OTVPlayer Android 5.28.0",
        set_top: false,
        weight: 25,
    },
    AppDevice {
        user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        player: "OTVPlayer iOS 5.28.2",
        set_top: false,
        weight: 15,
    },
];

/// Something to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content {
    /// One of the six UAV content types.
    pub content_type: &'static str,
    pub editorial_id: &'static str,
    pub technical_id: Option<&'static str>,
    pub programme_id: Option<&'static str>,
    /// Programme length, s.
    pub length_s: i64,
    pub weight: u32,
}

impl Content {
    pub fn is_live(&self) -> bool {
        self.content_type.starts_with("live")
    }
}

/// The catalogue: live channels (their current programme), start-over,
/// catch-up, network recordings and on-demand titles.
pub const CATALOGUE: &[Content] = &[
    Content {
        content_type: "live-event",
        editorial_id: "ch-news-24",
        technical_id: Some("tech-101"),
        programme_id: Some("prog-evening-news"),
        length_s: 3600,
        weight: 24,
    },
    Content {
        content_type: "live-event",
        editorial_id: "ch-sport-1",
        technical_id: Some("tech-205"),
        programme_id: Some("prog-derby-day"),
        length_s: 7200,
        weight: 18,
    },
    Content {
        content_type: "live-event",
        editorial_id: "ch-kids",
        technical_id: Some("tech-330"),
        programme_id: Some("prog-cartoon-hour"),
        length_s: 3600,
        weight: 8,
    },
    Content {
        content_type: "live-stcu-event",
        editorial_id: "ch-sport-1",
        technical_id: Some("tech-205"),
        programme_id: Some("prog-derby-day"),
        length_s: 7200,
        weight: 6,
    },
    Content {
        content_type: "start-over",
        editorial_id: "ch-news-24",
        technical_id: None,
        programme_id: Some("prog-evening-news"),
        length_s: 3600,
        weight: 7,
    },
    Content {
        content_type: "ltcu",
        editorial_id: "ed-drama-s3e4",
        technical_id: None,
        programme_id: Some("prog-drama-s3e4"),
        length_s: 2700,
        weight: 8,
    },
    Content {
        content_type: "npvr-event",
        editorial_id: "ed-rec-film-12",
        technical_id: Some("rec-12"),
        programme_id: None,
        length_s: 6300,
        weight: 6,
    },
    Content {
        content_type: "vod-ed",
        editorial_id: "ed-film-4711",
        technical_id: None,
        programme_id: None,
        length_s: 6600,
        weight: 10,
    },
    Content {
        content_type: "vod-ed",
        editorial_id: "ed-series-s2e5",
        technical_id: None,
        programme_id: None,
        length_s: 2580,
        weight: 9,
    },
    Content {
        content_type: "vod-ed",
        editorial_id: "ed-doc-bees",
        technical_id: None,
        programme_id: None,
        length_s: 3000,
        weight: 4,
    },
];

/// Bitrate ladder, bps.
const LADDER: [u64; 5] = [800_000, 1_800_000, 3_500_000, 6_000_000, 12_000_000];
const RAILS: [&str; 4] = ["continue-watching", "live-now", "recommended", "sport"];

/// One activity an app posts.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedActivity {
    /// Send time, ms after the app session's start, at real rate.
    pub at_ms: i64,
    /// The activity name (the path's last segment).
    pub name: &'static str,
    /// The JSON envelope.
    pub body: Value,
}

impl PlannedActivity {
    /// When to send it, after the session's start, at `speed` × real time.
    pub fn send_at(&self, speed: f64) -> Duration {
        time_scale(self.at_ms, speed)
    }

    /// `/useractivityvault/v1/useractivity/<name>?token=<token>`.
    pub fn path_and_query(&self, token: &str) -> String {
        let mut out = format!("{PATH_PREFIX}{}?token=", self.name);
        for b in token.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
        out
    }
}

/// How a viewing ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `playbackStop` before any progress: exit before start.
    StopBeforeProgress,
    /// A fatal `playerError`.
    Error,
    /// `playbackStop` after watching.
    Stop,
}

/// A planned app session with one viewing.
#[derive(Debug, Clone, PartialEq)]
pub struct UavSessionPlan {
    pub device_id: String,
    pub user_agent: &'static str,
    /// The viewing's `playbackSessionId`.
    pub playback_session_id: String,
    pub content: &'static Content,
    /// `playback_metrics` period of this device's release.
    pub metrics_interval_ms: i64,
    pub ending: Ending,
    /// Seconds of content played (position advance by playing, skips excluded).
    pub played_s: i64,
    /// In send order.
    pub activities: Vec<PlannedActivity>,
    /// When the app session is over, ms after its start.
    pub end_ms: i64,
}

impl UavSessionPlan {
    /// The activities with this name.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a PlannedActivity> + 'a {
        self.activities.iter().filter(move |a| a.name == name)
    }
}

/// Plan one app session of a UAV-reporting app, starting at `start_ms`.
pub fn plan_session(rng: &mut impl Rng, start_ms: i64) -> UavSessionPlan {
    // Skewed towards low indices: a few households watch a lot.
    let u: f64 = rng.random();
    let household = ((u * u * f64::from(HOUSEHOLDS)) as u32).min(HOUSEHOLDS - 1);
    let mix = splitmix(u64::from(household) ^ HOUSEHOLD_SALT);
    let device = pick_by_key(
        APP_DEVICES,
        mix % total_weight(APP_DEVICES, |d| d.weight),
        |d| d.weight,
    );
    let device_id = format!("stb-{:08x}", mix >> 32);
    // Most households log in anonymously: `userId` is sent empty.
    let user_id = if (mix >> 8) & 3 == 0 {
        format!("user-{}", household)
    } else {
        String::new()
    };
    let account_id = format!("acc-{}", household / 3);
    let metrics_interval_ms = if (mix >> 16) % 5 == 4 {
        SLOW_METRICS_INTERVAL_MS
    } else {
        METRICS_INTERVAL_MS
    };
    let content = pick(rng, CATALOGUE, |c| c.weight);
    let source = if device.set_top {
        if rng.random_bool(0.2) {
            "Blend"
        } else {
            "IPTV"
        }
    } else {
        "OTT"
    };
    let app_session = uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string();
    let playback_session_id = uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string();
    let ending = match rng.random_range(0..100) {
        0..5 => Ending::StopBeforeProgress,
        5..9 => Ending::Error,
        _ => Ending::Stop,
    };
    let mut s = Script {
        start_ms,
        now: 0,
        envelope: json!({"accountId": account_id, "userId": user_id,
                         "deviceId": device_id, "key": ""}),
        app: json!({"appSessionId": app_session}),
        playback: Map::new(),
        out: Vec::new(),
        playing: false,
        position_ms: 0,
        played_ms: 0,
        next_report: i64::MAX,
        interval: metrics_interval_ms,
        rung: 0,
        bytes: 0,
        frames: 0,
        dropped: 0,
    };
    s.emit("appStart", s.app_meta(json!({"appVersion": "7.4.2"})));
    s.wait(rng.random_range(2_000..6_000));
    let rail = RAILS[rng.random_range(0..RAILS.len())];
    s.emit("railView", s.app_meta(json!({"railId": rail})));
    s.wait(rng.random_range(2_000..9_000));
    s.emit(
        "railSelection",
        s.app_meta(json!({"railId": rail, "editorialId": content.editorial_id})),
    );
    s.wait(rng.random_range(500..2_000));

    let mut playback = json!({
        "appSessionId": app_session,
        "playbackSessionId": playback_session_id,
        "contentSource": source,
        "contentType": content.content_type,
        "editorialId": content.editorial_id,
    });
    if let Some(t) = content.technical_id {
        playback["technicalId"] = json!(t);
    }
    if let Some(p) = content.programme_id {
        playback["programmeId"] = json!(p);
    }
    s.playback = playback.as_object().cloned().unwrap_or_default();
    // A live event is joined where it is: seconds from the event's start.
    let joined_s = if content.content_type == "live-event" {
        rng.random_range(0..content.length_s / 2)
    } else {
        0
    };
    s.position_ms = joined_s * 1000;
    s.rung = if device.set_top { 3 } else { 2 };
    s.emit(
        "playbackStart",
        s.playback_meta(json!({"playbackProgress": joined_s})),
    );
    s.next_report = s.now + s.interval;

    match ending {
        Ending::StopBeforeProgress => {
            s.wait(rng.random_range(3_000..20_000));
            s.emit("playbackStop", s.playback_meta(json!({})));
            s.next_report = i64::MAX;
        }
        Ending::Error | Ending::Stop => {
            s.view(rng, content, joined_s, ending == Ending::Error, device);
        }
    }
    let played_s = s.played_ms / 1000;
    if rng.random_bool(0.6) {
        s.wait(rng.random_range(5_000..60_000));
        s.emit("appEnd", s.app_meta(json!({})));
    }
    UavSessionPlan {
        device_id: s.envelope["deviceId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        user_agent: device.user_agent,
        playback_session_id,
        content,
        metrics_interval_ms,
        ending,
        played_s,
        end_ms: s.now,
        activities: s.out,
    }
}

/// Lays an app session out into activities.
struct Script {
    start_ms: i64,
    /// Session time, ms since its start.
    now: i64,
    envelope: Value,
    app: Value,
    playback: Map<String, Value>,
    out: Vec<PlannedActivity>,
    playing: bool,
    position_ms: i64,
    played_ms: i64,
    next_report: i64,
    interval: i64,
    rung: usize,
    bytes: u64,
    frames: u64,
    dropped: u64,
}

impl Script {
    fn app_meta(&self, extra: Value) -> Value {
        merge(&self.app, extra)
    }

    fn playback_meta(&self, extra: Value) -> Value {
        merge(&Value::Object(self.playback.clone()), extra)
    }

    fn emit(&mut self, name: &'static str, metadata: Value) {
        let mut body = self.envelope.clone();
        body["name"] = json!(name);
        let t = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(self.start_ms + self.now) * 1_000_000,
        )
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
        body["timestamp"] = json!(t);
        body["metadata"] = metadata;
        self.out.push(PlannedActivity {
            at_ms: self.now,
            name,
            body,
        });
    }

    /// Let `ms` pass, sending `playback_metrics` when the timer fires.
    fn wait(&mut self, ms: i64) {
        let end = self.now + ms.max(0);
        while self.next_report <= end {
            let dt = self.next_report - self.now;
            self.advance(dt);
            self.report();
            self.next_report += self.interval;
        }
        let dt = end - self.now;
        self.advance(dt);
    }

    fn advance(&mut self, dt: i64) {
        self.now += dt;
        if self.playing {
            self.position_ms += dt;
            self.played_ms += dt;
            let bitrate = LADDER[self.rung];
            self.bytes += bitrate * dt as u64 / 8_000;
            let frames = dt as u64 * 25 / 1000;
            self.frames += frames;
            self.dropped += frames / 900;
        }
    }

    fn position_s(&self) -> i64 {
        self.position_ms / 1000
    }

    fn report(&mut self) {
        let bitrate = LADDER[self.rung];
        let metrics = json!({
            "playbackProgress": self.position_s(),
            "sessionId": self.playback["playbackSessionId"],
            "selectedBitrate": bitrate,
            "streamBitrate": bitrate,
            "availableBitrates": LADDER,
            "bytesDownloaded": self.bytes,
            "downloadBitRate": bitrate * 13 / 10,
            "downloadBitrateAverage": bitrate * 12 / 10,
            "bufferedDuration": if self.playing { 24.0 } else { 30.0 },
            "droppedVideoFrames": self.dropped,
            "totalVideoFrames": self.frames,
            "uri": format!("https://cdn.example.net/{}/master.m3u8",
                self.playback["editorialId"].as_str().unwrap_or("x")),
        });
        self.emit("playback_metrics", self.playback_meta(metrics));
    }

    /// From the first frame to the stop or the fatal error.
    fn view(
        &mut self,
        rng: &mut impl Rng,
        content: &Content,
        joined_s: i64,
        fails: bool,
        device: &AppDevice,
    ) {
        // The first frame after a short startup.
        self.wait(rng.random_range(500..3_000));
        self.playing = true;
        let remaining_s = (content.length_s - joined_s).max(60);
        let watch_s = rng.random_range(45..=remaining_s.min(2_400));
        let mut left_ms = watch_s * 1000;
        let pause_at = rng.random_bool(0.25).then(|| rng.random_range(0..left_ms));
        let skip_at =
            (!content.is_live() && rng.random_bool(0.2)).then(|| rng.random_range(0..left_ms));
        let rung_change_at = rng.random_bool(0.3).then(|| rng.random_range(0..left_ms));
        let ad_at = rng
            .random_bool(if content.is_live() { 0.2 } else { 0.3 })
            .then(|| rng.random_range(0..left_ms));
        // Things that happen while watching, in time order.
        let mut moments: Vec<(i64, u8)> = [pause_at, skip_at, rung_change_at, ad_at]
            .into_iter()
            .enumerate()
            .filter_map(|(k, at)| at.map(|at| (at, k as u8)))
            .collect();
        moments.sort_unstable();
        let mut elapsed = 0;
        for (at, what) in moments {
            self.wait(at - elapsed);
            elapsed = at;
            match what {
                0 => {
                    self.emit(
                        "playbackPause",
                        self.playback_meta(json!({"playbackProgress": self.position_s()})),
                    );
                    self.playing = false;
                    self.wait(rng.random_range(15_000..240_000));
                    self.playing = true;
                    self.emit(
                        "playbackResume",
                        self.playback_meta(json!({"playbackProgress": self.position_s()})),
                    );
                }
                1 => {
                    let ahead = rng.random_bool(0.7);
                    let jump_s = rng.random_range(30..600);
                    let to_s = if ahead {
                        (self.position_s() + jump_s).min(content.length_s - 30)
                    } else {
                        (self.position_s() - jump_s).max(0)
                    };
                    self.position_ms = to_s * 1000;
                    let name = if ahead {
                        "playbackSkipAhead"
                    } else {
                        "playbackSkipBack"
                    };
                    self.emit(name, self.playback_meta(json!({"playbackProgress": to_s})));
                }
                2 => {
                    self.rung = if self.rung > 0 && rng.random_bool(0.5) {
                        self.rung - 1
                    } else {
                        (self.rung + 1).min(LADDER.len() - 1)
                    };
                }
                _ => {
                    let ad = json!({"adId": format!("ad-{}", rng.random_range(100..120)),
                                    "adDuration": 20});
                    let name = if content.is_live() {
                        // Server-inserted on live: reported as delivered, sic.
                        "adDeliverd"
                    } else if rng.random_bool(0.8) {
                        "adWatched"
                    } else {
                        "adSkipped"
                    };
                    self.emit(name, self.playback_meta(ad));
                }
            }
        }
        left_ms -= elapsed;
        self.wait(left_ms);
        if fails {
            let version_key = if device.set_top {
                // The set-top release spells it as some of the docs do.
                "playerTypeversion"
            } else {
                "playerTypeVersion"
            };
            let code = [
                "DRM_LICENSE_EXPIRED",
                "NETWORK_UNREACHABLE",
                "DECODER_ERROR",
            ][rng.random_range(0..3)];
            let mut meta = self.playback_meta(json!({
                "playbackProgress": self.position_s(),
                "errorCode": code,
                "errorMsg": "playback stopped by a fatal error",
                "deviceId": self.envelope["deviceId"],
                "accountId": self.envelope["accountId"],
                "userId": self.envelope["userId"],
            }));
            meta[version_key] = json!(device.player);
            self.emit("playerError", meta);
            self.playing = false;
        } else {
            self.emit(
                "playbackStop",
                self.playback_meta(json!({"playbackProgress": self.position_s()})),
            );
            self.playing = false;
        }
        self.next_report = i64::MAX;
    }
}

fn merge(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    if let (Some(o), Value::Object(extra)) = (out.as_object_mut(), extra) {
        o.extend(extra);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use playhead_engine::{Playback, Rules};
    use playhead_model::{Protocol, SessionMeta};
    use playhead_protocols::{user_activity, RawRequest};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const START: i64 = 1_700_000_000_000;

    fn session(seed: u64) -> UavSessionPlan {
        plan_session(&mut StdRng::seed_from_u64(seed), START)
    }

    fn decode(a: &PlannedActivity) -> user_activity::Decoded {
        let body = a.body.to_string();
        let path = a.path_and_query("key");
        let (path, query) = path.split_once('?').unwrap();
        user_activity::decode(&RawRequest {
            method: "POST",
            path,
            query,
            content_type: Some("application/json"),
            body: body.as_bytes(),
            received_at: START + a.at_ms,
        })
        .unwrap_or_else(|e| panic!("{}: {e}: {body}", a.name))
    }

    #[test]
    fn every_activity_is_accepted_by_the_decoder_in_time_order() {
        for seed in 0..200 {
            let plan = session(seed);
            assert_eq!(plan.activities[0].name, "appStart", "seed {seed}");
            let mut last = 0;
            for a in &plan.activities {
                assert!(a.at_ms >= last, "seed {seed}: {} out of order", a.name);
                last = a.at_ms;
                let d = decode(a);
                let playback =
                    !matches!(a.name, "appStart" | "railView" | "railSelection" | "appEnd");
                let want = if playback {
                    plan.playback_session_id.clone()
                } else {
                    d.batch.key.session_id.clone()
                };
                assert_eq!(d.batch.key.session_id, want, "seed {seed}: {}", a.name);
                assert_eq!(
                    a.path_and_query("k").split('?').next().unwrap(),
                    format!("{PATH_PREFIX}{}", a.name)
                );
                assert!(a.body["userId"].is_string() && a.body["key"] == "");
            }
            assert!(plan.end_ms >= last);
            // Exactly one end of the viewing.
            let ends = plan.named("playbackStop").count() + plan.named("playerError").count();
            assert_eq!(ends, 1, "seed {seed}");
        }
    }

    #[test]
    fn metrics_follow_the_releases_cadence() {
        let mut cadences = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let plan = session(seed);
            cadences.insert(plan.metrics_interval_ms);
            let start = plan.named("playbackStart").next().unwrap().at_ms;
            for (k, m) in plan.named("playback_metrics").enumerate() {
                assert_eq!(
                    m.at_ms,
                    start + (k as i64 + 1) * plan.metrics_interval_ms,
                    "seed {seed}"
                );
                let md = &m.body["metadata"];
                assert!(md["playbackProgress"].is_i64());
                assert!(md["selectedBitrate"].is_u64() && md["totalVideoFrames"].is_u64());
            }
        }
        assert_eq!(
            cadences.into_iter().collect::<Vec<_>>(),
            [METRICS_INTERVAL_MS, SLOW_METRICS_INTERVAL_MS]
        );
    }

    #[test]
    fn population_has_every_kind_of_viewing() {
        let plans: Vec<UavSessionPlan> = (0..400).map(session).collect();
        let mut types = std::collections::BTreeSet::new();
        for p in &plans {
            types.insert(p.content.content_type);
        }
        assert_eq!(types.len(), 6, "{types:?}");
        let count = |f: &dyn Fn(&UavSessionPlan) -> bool| plans.iter().filter(|p| f(p)).count();
        let early = count(&|p| p.ending == Ending::StopBeforeProgress);
        let errors = count(&|p| p.ending == Ending::Error);
        assert!((8..=40).contains(&early), "{early} exits before start");
        assert!((6..=35).contains(&errors), "{errors} fatal errors");
        for name in [
            "playbackPause",
            "playbackResume",
            "playbackSkipAhead",
            "playbackSkipBack",
            "adWatched",
            "adSkipped",
            "adDeliverd",
            "appEnd",
        ] {
            assert!(
                plans.iter().any(|p| p.named(name).next().is_some()),
                "no `{name}` in 400 sessions"
            );
        }
        // Anonymous households send `userId` empty; some are logged in.
        assert!(plans.iter().any(|p| p.activities[0].body["userId"] == ""));
        assert!(plans.iter().any(|p| p.activities[0].body["userId"] != ""));
        // A household keeps its device.
        let mut by_device = std::collections::HashMap::new();
        for p in &plans {
            let ua = by_device.entry(p.device_id.clone()).or_insert(p.user_agent);
            assert_eq!(*ua, p.user_agent);
        }
    }

    #[test]
    fn the_engine_measures_the_planned_playing_time() {
        // Folded like the server does: the playing time is the planned one,
        // within the last report's reach (what played after the last
        // position report of an erroring viewing is not known).
        let mut checked = 0;
        for seed in 0..120 {
            let plan = session(seed);
            let mut events = Vec::new();
            let mut meta = SessionMeta::default();
            for a in &plan.activities {
                let d = decode(a);
                if d.batch.key.session_id == plan.playback_session_id {
                    meta.merge(&d.batch.meta);
                    events.extend(d.batch.events);
                }
            }
            let p = Playback::replay(
                Rules::for_session(Protocol::UserActivity, &meta),
                &mut events,
            );
            let m = p.metrics(&meta, p.closed_at());
            match plan.ending {
                Ending::StopBeforeProgress => {
                    assert!(
                        !m.played && m.exit_before_start,
                        "seed {seed}: {m:?} {:?}",
                        plan.activities.iter().map(|a| a.name).collect::<Vec<_>>()
                    );
                    assert_eq!(m.playing_time_ms, 0.0);
                }
                Ending::Error => assert!(m.failed, "seed {seed}"),
                Ending::Stop => {
                    // Skips credit nothing for the time since the last report.
                    let skipped = plan.named("playbackSkipAhead").count()
                        + plan.named("playbackSkipBack").count();
                    let got = m.playing_time_ms / 1000.0;
                    let want = plan.played_s as f64;
                    if skipped == 0 {
                        assert!((got - want).abs() <= 1.0, "seed {seed}: {got} vs {want}");
                        checked += 1;
                    } else {
                        assert!(got <= want + 1.0, "seed {seed}: {got} vs {want}");
                        assert_eq!(m.seek_count as usize, skipped, "seed {seed}");
                    }
                }
            }
        }
        assert!(checked > 50, "only {checked} sessions compared");
    }

    /// `playhead load --protocol user_activity` against the real server
    /// (`playhead_server::app` on a SQLite store): every activity is
    /// answered `200`, and every viewing started shows as a live or vod view.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn load_against_the_real_server() {
        use crate::load::{run, LoadOptions};
        use crate::real_server::RealServer;
        use playhead_server::ServerConfig;

        const KEY: &str = "ik_uav_load_test_0123456789";
        const READ: &str = "rk_uav_load_test_0123456789";
        let server = RealServer::start(ServerConfig::single("default", KEY, READ), READ).await;
        let addr = server.addr;

        let opts = LoadOptions {
            target: format!("http://{addr}"),
            protocol: Protocol::UserActivity,
            viewers: 8,
            duration: Duration::from_secs(3),
            ingest_key: KEY.to_owned(),
            report_suite: String::new(),
            speed: 200.0,
            seed: 7,
            admin_key: String::new(),
        };
        let report = tokio::time::timeout(Duration::from_secs(60), run(opts))
            .await
            .expect("the run ends")
            .unwrap();
        assert_eq!(
            report.statuses.keys().collect::<Vec<_>>(),
            ["200"],
            "{report}"
        );
        assert_eq!(report.events, report.requests, "{report}");
        assert!(report.sessions >= 8, "{report}");

        // Timestamps keep real rate: at speed 200 they run ahead of the clock.
        let to = i64::MAX / 4;
        let breakdown = server
            .get_json(&format!(
                "/data/v1/metrics/breakdown?metric=views&by=content_type&from=0&to={to}"
            ))
            .await;
        let views = |key: &str| {
            breakdown["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["key"] == key)
                .map_or(0, |r| r["views"].as_u64().unwrap())
        };
        assert_eq!(views("live") + views("vod"), report.sessions, "{breakdown}");
        // App sessions are no views: in no breakdown row, but still listed.
        assert_eq!(views("app"), 0, "app sessions are not views: {breakdown}");
        let listed = server
            .get_json(&format!(
                "/data/v1/sessions?content_type=app&limit=1000&from=0&to={to}"
            ))
            .await;
        let app_sessions = listed["sessions"].as_array().unwrap().len() as u64;
        assert!(app_sessions >= 8, "app sessions listed: {listed}");
    }
}
