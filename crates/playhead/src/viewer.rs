//! Simulated viewers speaking the native protocol (`spec/protocols.md` §6),
//! in [`pixel`] Panda Video's pixel beacons (§1), and in [`media_collection`]
//! Adobe's Media Collection API (§2).
//!
//! A session is planned up front, with no IO and no clock, from a random
//! number generator and a start time: [`plan_session`] draws who watches what
//! and how it goes ([`ViewerPlan`]), then plays it out into the requests an
//! SDK would send ([`SessionPlan`]). The same generator state gives the same
//! session, so a load run is reproducible from its seed.
//!
//! What the plans look like, so a dashboard fed by them shows real data:
//! - a viewer pool ([`VIEWER_POOL`]) drawn with a skew, so some viewers come
//!   back often and unique viewers stay below views; each viewer keeps one
//!   device ([`DEVICES`]: real User-Agent strings and players);
//! - about 20 videos ([`VIDEOS`]), 30–1200 s, three of them live;
//! - startup 200–4000 ms, pauses, stalls (`waiting` → `playing`), seeks
//!   (`seeking` → `seeked` → `playing`), rendition changes, playback-rate
//!   changes, player resizes, non-fatal errors;
//! - about 3 % fatal errors, 5 % exits before start, some views watched to
//!   `ended`, about 20 % with a preroll or midroll break of one or two ads.
//!
//! Batching follows an SDK: events are queued and flushed every 10 s of the
//! session, a `heartbeat` is queued every 10 s of playing, and `viewend` is
//! flushed at once. Event times are `start_ms` plus the session's own time;
//! a request's `at_ms` is when, in that same time, the SDK sends it, so every
//! event's `ts` is at or before its request's send time. [`time_scale`] turns
//! `at_ms` into a wall-clock delay for a faster-than-real load run, leaving
//! the `ts` values (and so the server-side metrics) at real rate.

use rand::Rng;
use serde_json::{json, Map, Value};
use std::time::Duration;
use uuid::Uuid;

/// How often the SDK flushes its queue, ms of session time.
pub const FLUSH_INTERVAL_MS: i64 = 10_000;
/// A heartbeat per this much playing time (content or ad), ms.
pub const HEARTBEAT_INTERVAL_MS: i64 = 10_000;
/// Number of distinct viewer ids sessions are drawn from.
pub const VIEWER_POOL: u32 = 500;

/// What kind of screen a device has: it bounds renditions and player sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceClass {
    Desktop,
    Phone,
    Tablet,
    Tv,
}

/// A browser/OS/device combination, as its User-Agent and player show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    /// A short label for humans ("Chrome/Windows").
    pub label: &'static str,
    pub user_agent: &'static str,
    pub player_name: &'static str,
    pub player_version: &'static str,
    pub class: DeviceClass,
    /// Relative share of viewers.
    pub weight: u32,
}

/// The device mix. User-Agent strings are copied from real browsers.
pub const DEVICES: &[Device] = &[
    Device {
        label: "Chrome/Windows",
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        player_name: "hls.js",
        player_version: "1.5.8",
        class: DeviceClass::Desktop,
        weight: 26,
    },
    Device {
        label: "Edge/Windows",
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        player_name: "hls.js",
        player_version: "1.5.8",
        class: DeviceClass::Desktop,
        weight: 8,
    },
    Device {
        label: "Chrome/macOS",
        user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        player_name: "video.js",
        player_version: "8.12.0",
        class: DeviceClass::Desktop,
        weight: 6,
    },
    Device {
        label: "Safari/macOS",
        user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
        player_name: "html5",
        player_version: "17.4",
        class: DeviceClass::Desktop,
        weight: 10,
    },
    Device {
        label: "Firefox/Linux",
        user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        player_name: "video.js",
        player_version: "8.12.0",
        class: DeviceClass::Desktop,
        weight: 4,
    },
    Device {
        label: "Safari/iPhone",
        user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        player_name: "html5",
        player_version: "17.4",
        class: DeviceClass::Phone,
        weight: 18,
    },
    Device {
        label: "Safari/iPad",
        user_agent: "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        player_name: "html5",
        player_version: "17.4",
        class: DeviceClass::Tablet,
        weight: 4,
    },
    Device {
        label: "Chrome/Android",
        user_agent: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
        player_name: "shaka-player",
        player_version: "4.8.3",
        class: DeviceClass::Phone,
        weight: 16,
    },
    Device {
        label: "Samsung Smart TV",
        user_agent: "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.5) AppleWebKit/537.36 (KHTML, like Gecko) 85.0.4183.93/6.5 TV Safari/537.36",
        player_name: "shaka-player",
        player_version: "4.7.11",
        class: DeviceClass::Tv,
        weight: 6,
    },
    Device {
        label: "LG Smart TV",
        user_agent: "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
        player_name: "shaka-player",
        player_version: "4.7.11",
        class: DeviceClass::Tv,
        weight: 2,
    },
];

/// A title in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Video {
    pub id: &'static str,
    /// Content length; `None` for live.
    pub duration_s: Option<u32>,
    /// Relative popularity.
    pub weight: u32,
}

impl Video {
    pub fn is_live(&self) -> bool {
        self.duration_s.is_none()
    }
}

const fn vod(id: &'static str, duration_s: u32, weight: u32) -> Video {
    Video {
        id,
        duration_s: Some(duration_s),
        weight,
    }
}

const fn live(id: &'static str, weight: u32) -> Video {
    Video {
        id,
        duration_s: None,
        weight,
    }
}

/// The catalogue: 17 on-demand titles of 30–1200 s and 3 live channels.
pub const VIDEOS: &[Video] = &[
    vod("football-highlights-w12", 540, 30),
    live("live-news-24", 22),
    vod("trailer-deep-sea", 95, 20),
    vod("how-to-brew-coffee", 245, 16),
    vod("short-cat-fails", 48, 14),
    vod("cooking-pasta-basics", 612, 12),
    live("live-match-center", 11),
    vod("music-video-echoes", 215, 10),
    vod("keynote-2024-highlights", 1180, 9),
    vod("travel-lisbon", 734, 8),
    vod("city-timelapse", 30, 7),
    vod("kids-dinosaurs-ep3", 660, 7),
    vod("product-demo-x1", 182, 6),
    vod("yoga-morning-flow", 900, 5),
    vod("bike-repair-chain", 410, 5),
    vod("documentary-bees", 1200, 4),
    vod("interview-architect", 1020, 3),
    live("live-radio-studio", 3),
    vod("tutorial-spreadsheets", 830, 3),
    vod("webinar-security", 1140, 2),
];

/// Where viewers come from; `None` is a direct visit.
const REFERRERS: &[Option<&str>] = &[
    None,
    None,
    Some("https://www.google.com/"),
    Some("https://www.google.com/"),
    Some("https://news.example.com/2024/05/match-report"),
    Some("https://t.co/x7QpL2"),
    Some("https://www.facebook.com/"),
    Some("https://blog.example.org/recipes/pasta"),
];

/// Ads a break draws from: (id, length in seconds).
const ADS: &[(&str, f64)] = &[
    ("ad-sneakers-15", 15.0),
    ("ad-coffee-15", 15.0),
    ("ad-phone-20", 20.0),
    ("ad-bank-30", 30.0),
    ("ad-car-30", 30.0),
];

/// Rendition ladder: (bitrate, width, height).
const LADDER: &[(u64, u32, u32)] = &[
    (400_000, 640, 360),
    (800_000, 854, 480),
    (1_600_000, 1280, 720),
    (3_000_000, 1280, 720),
    (4_500_000, 1920, 1080),
    (8_000_000, 3840, 2160),
];

/// How a view ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fate {
    /// `play`, then the viewer leaves (`viewend`) before a first frame.
    ExitBeforeStart,
    /// A fatal error, before the first frame or after `watch_s` of playing.
    FatalError { before_start: bool },
    /// Plays to the end of the content (`ended`), then `viewend`.
    Ended,
    /// Leaves after `watch_s` of playing (or at the end, if it comes first).
    Leaves,
}

/// Where an ad break sits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AdSlot {
    Preroll,
    /// When the content playhead reaches `at_s`.
    Midroll {
        at_s: f64,
    },
}

/// An ad break of one or two ads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdBreakPlan {
    pub slot: AdSlot,
    pub ads: u8,
}

/// Who watches what, and how the view will go; drawn before it is played out.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewerPlan {
    pub session_id: Uuid,
    pub viewer_id: String,
    pub device: &'static Device,
    pub video: &'static Video,
    pub fate: Fate,
    pub ad_break: Option<AdBreakPlan>,
    /// Seconds of content playing before leaving (`Leaves`) or failing
    /// (`FatalError` after start).
    pub watch_s: f64,
    /// Network quality, 0 (poor) to 1 (good): startup, stalls and renditions follow it.
    pub network: f64,
    /// The CDN serving the view (`session.cdn`).
    pub cdn: &'static str,
    /// The page that linked to the player (`session.referrer`); `None` for direct visits.
    pub referrer: Option<&'static str>,
    /// The viewer's subscription, sent as custom metadata (`custom.plan`).
    pub subscription: &'static str,
}

impl ViewerPlan {
    /// Draw a viewer, a video and the shape of the view.
    pub fn draw(rng: &mut impl Rng) -> ViewerPlan {
        let session_id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
        // Skewed towards low indices: a few viewers watch a lot.
        let u: f64 = rng.random();
        let viewer = ((u * u * f64::from(VIEWER_POOL)) as u32).min(VIEWER_POOL - 1);
        // A viewer keeps their device and plan across sessions.
        let mix = splitmix(u64::from(viewer));
        let device = pick_by_key(DEVICES, mix % total_weight(DEVICES, |d| d.weight), |d| {
            d.weight
        });
        let subscription = if (mix >> 32) & 3 == 0 {
            "premium"
        } else {
            "free"
        };
        let video = pick(rng, VIDEOS, |v| v.weight);
        let cdn = ["fastly", "cloudfront", "akamai"][rng.random_range(0..3)];
        let referrer = REFERRERS[rng.random_range(0..REFERRERS.len())];

        let class_penalty = match device.class {
            DeviceClass::Phone => 0.25,
            DeviceClass::Tablet => 0.1,
            _ => 0.0,
        };
        let network = (rng.random::<f64>().sqrt() - class_penalty).clamp(0.0, 1.0);

        let roll: f64 = rng.random();
        let fate = if roll < 0.05 {
            Fate::ExitBeforeStart
        } else if roll < 0.08 {
            Fate::FatalError {
                before_start: rng.random_bool(0.4),
            }
        } else {
            match video.duration_s {
                Some(d) => {
                    let p_end = if d <= 120 {
                        0.55
                    } else if d <= 600 {
                        0.3
                    } else {
                        0.15
                    };
                    if rng.random_bool(p_end) {
                        Fate::Ended
                    } else {
                        Fate::Leaves
                    }
                }
                None => Fate::Leaves,
            }
        };

        let watch_s = match video.duration_s {
            // Most leave early; the exponent puts the mass at the start.
            Some(d) => (f64::from(d) * rng.random::<f64>().powf(1.4)).max(3.0),
            None => 30.0 + 1170.0 * rng.random::<f64>().powi(2),
        };

        let starts = !matches!(
            fate,
            Fate::ExitBeforeStart | Fate::FatalError { before_start: true }
        );
        let ad_roll: f64 = rng.random();
        let ads = if rng.random_bool(0.3) { 2 } else { 1 };
        let ad_break = if !starts {
            None
        } else if ad_roll < 0.12 {
            Some(AdBreakPlan {
                slot: AdSlot::Preroll,
                ads,
            })
        } else if ad_roll < 0.22 {
            // Somewhere the viewer will likely reach.
            let reach = match (fate, video.duration_s) {
                (Fate::Ended, Some(d)) => f64::from(d),
                (_, Some(d)) => watch_s.min(f64::from(d)),
                (_, None) => watch_s,
            };
            Some(AdBreakPlan {
                slot: AdSlot::Midroll {
                    at_s: (reach * rng.random_range(0.2..0.7)).max(1.0),
                },
                ads,
            })
        } else {
            None
        };

        ViewerPlan {
            session_id,
            viewer_id: format!("viewer-{viewer:04}"),
            device,
            video,
            fate,
            ad_break,
            watch_s,
            network,
            cdn,
            referrer,
            subscription,
        }
    }

    /// The `session` object of every request of this view.
    fn session_json(&self) -> Value {
        let mut s = Map::new();
        s.insert("id".into(), json!(self.session_id.to_string()));
        s.insert("video_id".into(), json!(self.video.id));
        s.insert("viewer_id".into(), json!(self.viewer_id));
        if let Some(d) = self.video.duration_s {
            s.insert("video_duration_s".into(), json!(d));
        }
        s.insert(
            "content_type".into(),
            json!(if self.video.is_live() { "live" } else { "vod" }),
        );
        s.insert(
            "player".into(),
            json!({"name": self.device.player_name, "version": self.device.player_version}),
        );
        s.insert("cdn".into(), json!(self.cdn));
        if let Some(r) = self.referrer {
            s.insert("referrer".into(), json!(r));
        }
        s.insert("custom".into(), json!({ "plan": self.subscription }));
        Value::Object(s)
    }

    /// Play the view out into the requests its SDK sends; the first event is
    /// at `start_ms` (ms since the Unix epoch).
    pub fn play_out(&self, rng: &mut impl Rng, start_ms: i64) -> SessionPlan {
        let mut s = Script::new(self, start_ms);
        s.view(rng);
        SessionPlan {
            session_id: self.session_id,
            viewer_id: self.viewer_id.clone(),
            video_id: self.video.id,
            user_agent: self.device.user_agent,
            start_ms,
            requests: s.requests,
        }
    }
}

/// One request of a session: when to send it, what, and as which browser.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRequest {
    /// Send time, ms after the session's start, in the session's own (real-rate) time.
    pub at_ms: i64,
    /// The `POST /v1/events` JSON body.
    pub body: Value,
    /// The `User-Agent` header to send.
    pub user_agent: &'static str,
}

impl PlannedRequest {
    /// When to send it, after the session's start, at `speed` × real time.
    pub fn send_at(&self, speed: f64) -> Duration {
        time_scale(self.at_ms, speed)
    }

    /// The events of the body.
    pub fn events(&self) -> &[Value] {
        self.body["events"].as_array().map_or(&[], Vec::as_slice)
    }
}

/// A whole planned view: its requests in send order, the last one ending with `viewend`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPlan {
    pub session_id: Uuid,
    pub viewer_id: String,
    pub video_id: &'static str,
    pub user_agent: &'static str,
    /// Time of the first event, ms since the Unix epoch.
    pub start_ms: i64,
    pub requests: Vec<PlannedRequest>,
}

impl SessionPlan {
    /// Put the ingest key in every body. Planned bodies carry an empty
    /// `property`, which a server refuses, until this is called.
    pub fn set_property(&mut self, ingest_key: &str) {
        for r in &mut self.requests {
            if let Some(body) = r.body.as_object_mut() {
                body.insert("property".into(), json!(ingest_key));
            }
        }
    }

    /// Every event of the session, in seq order.
    pub fn events(&self) -> impl Iterator<Item = &Value> {
        self.requests.iter().flat_map(|r| r.events())
    }

    pub fn event_count(&self) -> usize {
        self.requests.iter().map(|r| r.events().len()).sum()
    }
}

/// Plan one realistic view starting at `start_ms`: [`ViewerPlan::draw`] then
/// [`ViewerPlan::play_out`].
pub fn plan_session(rng: &mut impl Rng, start_ms: i64) -> SessionPlan {
    let viewer = ViewerPlan::draw(rng);
    viewer.play_out(rng, start_ms)
}

/// The wall-clock delay for `media_ms` of session time at `speed` × real
/// time (speed 10 sends ten times faster). An infinite speed gives zero; a
/// speed that is not a positive number counts as 1.
pub fn time_scale(media_ms: i64, speed: f64) -> Duration {
    let speed = if speed > 0.0 { speed } else { 1.0 };
    Duration::from_secs_f64((media_ms.max(0) as f64 / 1000.0) / speed)
}

/// What advances while time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Motion {
    /// Nothing plays (starting, paused, stalled, seeking, ended).
    Still,
    /// Main content plays: the playhead moves at the playback rate.
    Content,
    /// An ad plays: the ad's position moves.
    Ad,
}

/// Plays a view out: emits events at the session's time and batches them
/// into requests the way the SDK does.
struct Script<'a> {
    plan: &'a ViewerPlan,
    start_ms: i64,
    /// Session time, ms since start.
    now: i64,
    seq: u64,
    /// Content position, s.
    playhead: f64,
    /// Position in the current ad, s (events inside an ad report it).
    ad_pos: Option<f64>,
    rate: f64,
    motion: Motion,
    since_heartbeat: i64,
    next_flush: i64,
    fps: f64,
    total_frames: f64,
    drop_ratio: f64,
    rung: usize,
    max_rung: usize,
    session: Value,
    pending: Vec<Value>,
    requests: Vec<PlannedRequest>,
}

impl<'a> Script<'a> {
    fn new(plan: &'a ViewerPlan, start_ms: i64) -> Script<'a> {
        let max_rung = match plan.device.class {
            DeviceClass::Phone => 3,
            DeviceClass::Tablet | DeviceClass::Desktop => 4,
            DeviceClass::Tv => 5,
        };
        Script {
            plan,
            start_ms,
            now: 0,
            seq: 0,
            playhead: 0.0,
            ad_pos: None,
            rate: 1.0,
            motion: Motion::Still,
            since_heartbeat: 0,
            next_flush: FLUSH_INTERVAL_MS,
            fps: if plan.device.class == DeviceClass::Tv {
                50.0
            } else {
                30.0
            },
            total_frames: 0.0,
            drop_ratio: (1.0 - plan.network) * 0.03,
            rung: 0,
            max_rung,
            session: plan.session_json(),
            pending: Vec::new(),
            requests: Vec::new(),
        }
    }

    fn duration(&self) -> Option<f64> {
        self.plan.video.duration_s.map(f64::from)
    }

    /// Queue an event at the current time; `extra` holds its type's fields.
    fn emit(&mut self, kind: &str, extra: Value) {
        self.seq += 1;
        let position = self.ad_pos.unwrap_or(self.playhead);
        let mut ev = Map::new();
        ev.insert("seq".into(), json!(self.seq));
        ev.insert("ts".into(), json!(self.start_ms + self.now));
        ev.insert("type".into(), json!(kind));
        ev.insert(
            "playhead".into(),
            json!((position * 1000.0).round() / 1000.0),
        );
        if let Value::Object(fields) = extra {
            ev.extend(fields);
        }
        self.pending.push(Value::Object(ev));
    }

    /// Send what is queued, now.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.pending);
        self.requests.push(PlannedRequest {
            at_ms: self.now,
            body: json!({"property": "", "session": self.session.clone(), "events": events}),
            user_agent: self.plan.device.user_agent,
        });
    }

    /// Let `ms` of session time pass: media moves as `motion` says, the SDK's
    /// heartbeat and flush timers fire on the way.
    fn wait(&mut self, ms: i64) {
        let end = self.now + ms.max(0);
        while self.now < end {
            let heartbeat_at = (self.motion != Motion::Still)
                .then(|| self.now + HEARTBEAT_INTERVAL_MS - self.since_heartbeat);
            let next = end
                .min(self.next_flush)
                .min(heartbeat_at.unwrap_or(i64::MAX));
            self.advance(next - self.now);
            if heartbeat_at == Some(self.now) {
                let dropped = (self.total_frames * self.drop_ratio).floor();
                self.emit(
                    "heartbeat",
                    json!({"dropped_frames": dropped as u64, "total_frames": self.total_frames as u64}),
                );
                self.since_heartbeat = 0;
            }
            if self.now == self.next_flush {
                self.flush();
                self.next_flush += FLUSH_INTERVAL_MS;
            }
        }
    }

    fn advance(&mut self, dt: i64) {
        self.now += dt;
        let secs = dt as f64 / 1000.0;
        match self.motion {
            Motion::Still => return,
            Motion::Content => {
                self.playhead += secs * self.rate;
                if let Some(d) = self.duration() {
                    self.playhead = self.playhead.min(d);
                }
            }
            Motion::Ad => {
                if let Some(p) = self.ad_pos.as_mut() {
                    *p += secs;
                }
            }
        }
        self.since_heartbeat += dt;
        self.total_frames += secs * self.fps;
    }

    fn rendition(&mut self, rung: usize) {
        self.rung = rung.min(self.max_rung);
        let (bitrate, width, height) = LADDER[self.rung];
        self.emit(
            "renditionchange",
            json!({"bitrate_bps": bitrate, "width": width, "height": height}),
        );
    }

    fn player_size(&self, fullscreen: bool) -> (u32, u32) {
        match (self.plan.device.class, fullscreen) {
            (DeviceClass::Desktop, false) => (960, 540),
            (DeviceClass::Desktop, true) => (1920, 1080),
            (DeviceClass::Phone, false) => (390, 219),
            (DeviceClass::Phone, true) => (844, 390),
            (DeviceClass::Tablet, false) => (820, 461),
            (DeviceClass::Tablet, true) => (1180, 820),
            (DeviceClass::Tv, _) => (1920, 1080),
        }
    }

    fn end_view(&mut self) {
        self.motion = Motion::Still;
        self.emit("viewend", Value::Null);
        self.flush();
    }

    fn fatal_error(&mut self, rng: &mut impl Rng, before_start: bool) {
        self.motion = Motion::Still;
        let (code, message) = if before_start {
            [
                ("MEDIA_ERR_SRC_NOT_SUPPORTED", "manifest load failed: 404"),
                ("DRM_LICENSE_FAILED", "license request failed: 403"),
                ("manifestLoadTimeOut", "manifest load timed out"),
            ][rng.random_range(0..3)]
        } else {
            [
                ("MEDIA_ERR_DECODE", "video decode error"),
                ("MEDIA_ERR_NETWORK", "fragment load failed after 6 retries"),
                ("bufferAppendError", "source buffer append failed"),
            ][rng.random_range(0..3)]
        };
        self.emit(
            "error",
            json!({"code": code, "message": message, "fatal": true}),
        );
        self.wait(rng.random_range(200..3000));
        self.end_view();
    }

    /// The whole view, from page load to `viewend`.
    fn view(&mut self, rng: &mut impl Rng) {
        let plan = self.plan;
        self.emit("viewinit", Value::Null);
        let (w, h) = self.player_size(false);
        self.emit("resize", json!({"width": w, "height": h}));
        // Autoplay starts at once; otherwise the viewer clicks.
        let to_play = if rng.random_bool(0.4) {
            rng.random_range(50..400)
        } else {
            rng.random_range(500..6000)
        };
        self.wait(to_play);
        self.emit("play", Value::Null);

        // Poor networks start slower; always within 200–4000 ms.
        let k = 1.2 + 2.5 * plan.network;
        let startup = (200.0 + 3800.0 * rng.random::<f64>().powf(k)).round() as i64;

        match plan.fate {
            Fate::ExitBeforeStart => {
                self.wait(rng.random_range(1000..8000));
                self.end_view();
                return;
            }
            Fate::FatalError { before_start: true } => {
                self.wait(rng.random_range(300..startup.max(301)));
                self.fatal_error(rng, true);
                return;
            }
            _ => {}
        }

        self.rung = ((plan.network * 4.0) as usize).min(self.max_rung);
        if let Some(AdBreakPlan {
            slot: AdSlot::Preroll,
            ads,
        }) = plan.ad_break
        {
            self.ad_break(rng, ads, Some(startup));
        } else {
            self.wait(startup);
        }
        let rung = self.rung;
        self.rendition(rung);
        self.motion = Motion::Content;
        self.emit("playing", Value::Null);

        if !plan.video.is_live()
            && self.plan.device.class == DeviceClass::Desktop
            && rng.random_bool(0.08)
        {
            let rate = [1.25, 1.5, 2.0][rng.random_range(0..3)];
            self.rate = rate;
            self.emit("ratechange", json!({ "rate": rate }));
        }
        self.content(rng);
    }

    /// An ad break; `startup` is the wait for the first frame when nothing
    /// has played yet (preroll). Content does not move until the caller
    /// resumes it with `playing`.
    fn ad_break(&mut self, rng: &mut impl Rng, ads: u8, startup: Option<i64>) {
        self.motion = Motion::Still;
        self.emit("adbreakstart", Value::Null);
        for i in 0..ads {
            let (ad_id, length) = ADS[rng.random_range(0..ADS.len())];
            self.ad_pos = Some(0.0);
            self.emit("adstart", json!({"ad_id": ad_id, "duration_s": length}));
            self.motion = Motion::Still;
            match (i, startup) {
                (0, Some(ms)) => self.wait(ms),
                _ => self.wait(rng.random_range(50..600)),
            }
            self.motion = Motion::Ad;
            self.emit("playing", Value::Null);
            // Ads of 20 s or more are skippable after 5 s; some viewers do.
            let skip_at = (length >= 20.0 && rng.random_bool(0.35))
                .then(|| 5.0 + rng.random::<f64>() * (length - 5.0) * 0.6);
            let mut at = 0.0;
            for q in 1..=3u8 {
                let mark = length * f64::from(q) / 4.0;
                if skip_at.is_some_and(|s| s < mark) {
                    break;
                }
                self.wait(((mark - at) * 1000.0).round() as i64);
                at = mark;
                self.emit("adquartile", json!({ "quartile": q }));
            }
            match skip_at {
                Some(s) if s < length => {
                    self.wait(((s - at) * 1000.0).round() as i64);
                    self.emit("adskip", Value::Null);
                }
                _ => {
                    self.wait(((length - at) * 1000.0).round() as i64);
                    self.emit("adcomplete", Value::Null);
                }
            }
        }
        self.ad_pos = None;
        self.motion = Motion::Still;
        self.emit("adbreakend", Value::Null);
    }

    /// Main content, from the first frame to `viewend`.
    fn content(&mut self, rng: &mut impl Rng) {
        let plan = self.plan;
        let duration = self.duration();
        let mut midroll = match plan.ad_break {
            Some(AdBreakPlan {
                slot: AdSlot::Midroll { at_s },
                ads,
            }) => Some((at_s, ads)),
            _ => None,
        };
        let fatal_at = matches!(
            plan.fate,
            Fate::FatalError {
                before_start: false
            }
        )
        .then_some(plan.watch_s);
        let watch_goal = match plan.fate {
            Fate::Ended => f64::INFINITY,
            _ => plan.watch_s,
        };
        // Random interruptions per second of playing, by kind.
        let poor = 1.0 - plan.network;
        let rates = [
            ("pause", 1.0 / 240.0),
            ("stall", (0.1 + 1.5 * poor) / 300.0),
            ("seek", if duration.is_some() { 1.0 / 200.0 } else { 0.0 }),
            ("switch", 1.0 / 90.0),
            ("warning", 1.0 / 2500.0),
            ("resize", 1.0 / 600.0),
        ];
        let hazard: f64 = rates.iter().map(|(_, r)| r).sum();
        let mut watched = 0.0;
        let mut fullscreen = false;

        loop {
            // Seconds of playing until each thing that may happen next.
            let to_goal = watch_goal - watched;
            let to_end = duration.map_or(f64::INFINITY, |d| (d - self.playhead) / self.rate);
            let to_fatal = fatal_at.map_or(f64::INFINITY, |f| f - watched);
            let to_midroll = midroll.map_or(f64::INFINITY, |(at, _)| {
                ((at - self.playhead) / self.rate).max(0.0)
            });
            let to_event = -(1.0 - rng.random::<f64>()).ln() / hazard;
            let step = to_goal
                .min(to_end)
                .min(to_fatal)
                .min(to_midroll)
                .min(to_event)
                .max(0.0);
            // Rounded up, so the loop always moves on: a step of 0.2 ms
            // before the end reaches the end.
            let ms = (step * 1000.0).ceil() as i64;
            self.wait(ms);
            watched += ms as f64 / 1000.0;

            if duration.is_some_and(|d| self.playhead >= d - 0.0005) {
                if let Some(d) = duration {
                    self.playhead = d;
                }
                self.motion = Motion::Still;
                self.emit("ended", Value::Null);
                self.wait(rng.random_range(300..5000));
                self.end_view();
                return;
            }
            if step >= to_fatal {
                self.fatal_error(rng, false);
                return;
            }
            if step >= to_goal {
                if rng.random_bool(0.3) {
                    self.motion = Motion::Still;
                    self.emit("pause", Value::Null);
                    self.wait(rng.random_range(500..30_000));
                }
                self.end_view();
                return;
            }
            if let Some((at, ads)) = midroll {
                if self.playhead >= at {
                    midroll = None;
                    self.ad_break(rng, ads, None);
                    self.motion = Motion::Content;
                    self.emit("playing", Value::Null);
                    continue;
                }
            }
            if step < to_event {
                continue;
            }
            // A random interruption, drawn by its share of the hazard.
            let mut x = rng.random::<f64>() * hazard;
            let mut kind = rates[0].0;
            for (name, r) in rates {
                kind = name;
                if x < r {
                    break;
                }
                x -= r;
            }
            match kind {
                "pause" => {
                    self.motion = Motion::Still;
                    self.emit("pause", Value::Null);
                    let ms = (1500.0 + 88_500.0 * rng.random::<f64>().powi(2)) as i64;
                    self.wait(ms);
                    if rng.random_bool(0.12) {
                        self.end_view();
                        return;
                    }
                    self.emit("play", Value::Null);
                    self.wait(rng.random_range(30..250));
                    self.motion = Motion::Content;
                    self.emit("playing", Value::Null);
                }
                "stall" => {
                    self.motion = Motion::Still;
                    self.emit("waiting", Value::Null);
                    let ms = 300.0 + (2000.0 + 6000.0 * poor) * rng.random::<f64>().powi(2);
                    self.wait(ms as i64);
                    if self.rung > 0 && rng.random_bool(0.5) {
                        let rung = self.rung - 1;
                        self.rendition(rung);
                    }
                    self.motion = Motion::Content;
                    self.emit("playing", Value::Null);
                }
                "seek" => {
                    let Some(d) = duration else { continue };
                    let target = if rng.random_bool(0.65) {
                        self.playhead + rng.random_range(10.0..120.0)
                    } else {
                        self.playhead - rng.random_range(5.0..60.0)
                    };
                    let target = target.clamp(0.0, (d - 2.0).max(0.0));
                    self.motion = Motion::Still;
                    self.emit("seeking", Value::Null);
                    self.wait(rng.random_range(100..1500));
                    self.playhead = target;
                    self.emit("seeked", Value::Null);
                    self.motion = Motion::Content;
                    self.emit("playing", Value::Null);
                }
                "switch" => {
                    let up = rng.random_bool(0.3 + 0.5 * plan.network);
                    let rung = if up {
                        (self.rung + 1).min(self.max_rung)
                    } else {
                        self.rung.saturating_sub(1)
                    };
                    if rung != self.rung {
                        self.rendition(rung);
                    }
                }
                "warning" => {
                    let (code, message) = [
                        ("fragLoadTimeOut", "fragment load timed out, retrying"),
                        ("levelLoadError", "playlist reload failed, retrying"),
                        ("bufferStalledError", "playback stalling, buffer empty"),
                    ][rng.random_range(0..3)];
                    self.emit(
                        "error",
                        json!({"code": code, "message": message, "fatal": false}),
                    );
                }
                _ => {
                    fullscreen = !fullscreen;
                    let (w, h) = self.player_size(fullscreen);
                    self.emit("resize", json!({"width": w, "height": h}));
                }
            }
        }
    }
}

/// A weighted pick.
pub(crate) fn pick<'t, T>(rng: &mut impl Rng, items: &'t [T], weight: impl Fn(&T) -> u32) -> &'t T {
    let total = total_weight(items, &weight);
    pick_by_key(items, rng.random_range(0..total), weight)
}

pub(crate) fn total_weight<T>(items: &[T], weight: impl Fn(&T) -> u32) -> u64 {
    items.iter().map(|i| u64::from(weight(i))).sum()
}

/// The item whose cumulative-weight interval holds `key` (< the total weight).
pub(crate) fn pick_by_key<T>(items: &[T], mut key: u64, weight: impl Fn(&T) -> u32) -> &T {
    for item in items {
        let w = u64::from(weight(item));
        if key < w {
            return item;
        }
        key -= w;
    }
    &items[items.len() - 1]
}

/// A fixed bit mixer (SplitMix64's finalizer): a viewer's device depends on
/// their id only, not on the generator.
pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub mod pixel {
    //! Simulated viewers of Panda Video's player, speaking pixel beacons
    //! (`spec/protocols.md` §1).
    //!
    //! A pixel visit is planned like a native view: [`plan_session`] draws a
    //! viewer, a video and how the visit goes, and lays out the beacons the
    //! player sends at the visit's own times, with no IO and no clock.
    //!
    //! The cadence is the shipped player's:
    //! - `view` (`GET`, an `<img>` pixel) once per page load, the tab visible;
    //! - `play` (`POST` by `navigator.sendBeacon`: empty body, data in the
    //!   query) at the first real play, and with it the forced `check` at
    //!   `current_time=0`;
    //! - `check` (`POST`, sendBeacon) each time the media position reaches a
    //!   multiple of 5 s while playing: a pause sends nothing, and a seek makes
    //!   `current_time` jump (the next check is the first 5-s mark at or after
    //!   the seek's target);
    //! - on a live channel, `GET /realtime/icon.gif` every 15 s of playing
    //!   instead of checks, with the rendition height, the stream time, the
    //!   measured bandwidth and the errors since the previous beacon.
    //!
    //! The population: viewer UUIDs from a reused, skewed pool
    //! ([`VIEWER_POOL`]), so unique viewers stay below views; the catalogue of
    //! [`super::VIDEOS`] (live channels included); about 10 % of page loads
    //! end before playing (a view only) and 8 % of visits reload the page (a
    //! second `view` for the same video and viewer); pauses, seeks and a tab
    //! hidden for a while (`visibily=false`) while playing; a referrer, or
    //! `referrer=` empty as a page without one sends it; `utm_source` and
    //! `utm_campaign` on a fifth of the visits.
    //!
    //! Pixel beacons carry no client time: the server times each one at its
    //! arrival. A load run at `speed` ≠ 1 compresses the send schedule, so the
    //! durations the server sees (watch time, pauses) are compressed by the
    //! same factor, unlike the native protocol's, whose events carry `ts`.

    use super::{
        pick, pick_by_key, splitmix, time_scale, total_weight, Video, DEVICES, LADDER, REFERRERS,
        VIDEOS,
    };
    use rand::Rng;
    use std::fmt::Write as _;
    use std::time::Duration;

    /// The pullzone (`p`) beacons carry unless told otherwise.
    pub const DEFAULT_PULLZONE: &str = "vz-a06a6f7b-986";
    /// A `check` per this much media position, ms.
    pub const CHECK_STEP_MS: i64 = 5_000;
    /// A live beacon per this much playing time, ms.
    pub const LIVE_INTERVAL_MS: i64 = 15_000;
    /// Number of distinct viewer UUIDs visits are drawn from.
    pub const VIEWER_POOL: u32 = 500;
    /// Keeps the pixel viewers' UUIDs and devices apart from the native ones'.
    const VIEWER_SALT: u64 = 0x7069_7865_6c5f_7575;

    /// Campaigns some visits come from: (`utm_source`, `utm_campaign`).
    const CAMPAIGNS: &[(&str, &str)] = &[
        ("newsletter", "black_friday"),
        ("facebook", "spring_launch"),
        ("google", "brand_search"),
        ("instagram", "course_promo"),
    ];

    /// Which beacon.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum BeaconKind {
        View,
        Play,
        Check,
        /// `/realtime/icon.gif`.
        Live,
    }

    impl BeaconKind {
        /// `type` on the wire; `live` for the live beacon, which has none.
        pub fn as_str(self) -> &'static str {
            match self {
                BeaconKind::View => "view",
                BeaconKind::Play => "play",
                BeaconKind::Check => "check",
                BeaconKind::Live => "live",
            }
        }

        /// `POST` for what the player sends with `navigator.sendBeacon`,
        /// `GET` for the `<img>` pixels.
        pub fn method(self) -> &'static str {
            match self {
                BeaconKind::View | BeaconKind::Live => "GET",
                BeaconKind::Play | BeaconKind::Check => "POST",
            }
        }

        pub fn path(self) -> &'static str {
            match self {
                BeaconKind::Live => "/realtime/icon.gif",
                _ => "/icon.gif",
            }
        }
    }

    /// What a live beacon reports.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct LiveReport {
        /// `quality`: the rendition's height.
        pub quality: u32,
        /// `time`: the stream's current time, ms (sent in s, 2 decimals).
        pub time_ms: i64,
        /// `bandwidth`: the measured bandwidth, kbps (sent with 2 decimals).
        pub bandwidth_kbps: f64,
        /// `errors`: playback errors since the previous beacon.
        pub errors: u32,
    }

    /// One beacon of a visit.
    #[derive(Debug, Clone, PartialEq)]
    pub struct PlannedBeacon {
        /// Send time, ms after the visit's start, at real rate.
        pub at_ms: i64,
        pub kind: BeaconKind,
        /// `current_time` (s): on every `check`, and 0 on `play` as the player sends it.
        pub current_time: Option<u32>,
        /// On live beacons.
        pub live: Option<LiveReport>,
        /// `visibily`: whether the tab was visible.
        pub visible: bool,
    }

    impl PlannedBeacon {
        /// When to send it, after the visit's start, at `speed` × real time.
        pub fn send_at(&self, speed: f64) -> Duration {
            time_scale(self.at_ms, speed)
        }
    }

    /// A planned visit: one page load, or two when the viewer reloads.
    #[derive(Debug, Clone, PartialEq)]
    pub struct PixelSessionPlan {
        /// `u`: the UUID the player keeps in localStorage.
        pub viewer_id: String,
        pub video: &'static Video,
        /// `p`.
        pub pullzone: String,
        /// `referrer`; `None` is sent as `referrer=` (empty).
        pub referrer: Option<&'static str>,
        /// `utm_source` and `utm_campaign`.
        pub campaign: Option<(&'static str, &'static str)>,
        pub user_agent: &'static str,
        /// In send order.
        pub beacons: Vec<PlannedBeacon>,
        /// When the viewer leaves the page, ms after the start (at or after the last beacon).
        pub end_ms: i64,
    }

    impl PixelSessionPlan {
        pub fn set_pullzone(&mut self, pullzone: &str) {
            pullzone.clone_into(&mut self.pullzone);
        }

        /// Page loads (`view` beacons): the sessions the server opens.
        pub fn views(&self) -> usize {
            self.beacons
                .iter()
                .filter(|b| b.kind == BeaconKind::View)
                .count()
        }

        /// The beacon's path and query, parameters in the player's order.
        pub fn path_and_query(&self, b: &PlannedBeacon) -> String {
            let mut q = String::with_capacity(256);
            q.push_str(b.kind.path());
            q.push('?');
            if let Some(l) = &b.live {
                let _ = write!(
                    q,
                    "quality={}&time={:.2}&bandwidth={:.2}&errors={}&",
                    l.quality,
                    l.time_ms as f64 / 1000.0,
                    l.bandwidth_kbps,
                    l.errors
                );
                param(&mut q, "v", self.video.id);
                param(&mut q, "u", &self.viewer_id);
                param(&mut q, "p", &self.pullzone);
            } else {
                param(&mut q, "type", b.kind.as_str());
                param(&mut q, "v", self.video.id);
                param(&mut q, "p", &self.pullzone);
                param(&mut q, "u", &self.viewer_id);
            }
            param(&mut q, "referrer", self.referrer.unwrap_or(""));
            // Sic: the shipped player's spelling.
            param(&mut q, "visibily", if b.visible { "true" } else { "false" });
            if let Some(t) = b.current_time {
                param(&mut q, "current_time", &t.to_string());
            }
            if let Some((source, campaign)) = self.campaign {
                param(&mut q, "utm_source", source);
                param(&mut q, "utm_campaign", campaign);
            }
            q.pop(); // the last `&`
            q
        }
    }

    /// `name=value&`, the value escaped as `encodeURIComponent` does.
    fn param(out: &mut String, name: &str, value: &str) {
        out.push_str(name);
        out.push('=');
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
        out.push('&');
    }

    /// Plan one realistic visit of a pixel-tracked player page.
    pub fn plan_session(rng: &mut impl Rng) -> PixelSessionPlan {
        // Skewed towards low indices: a few viewers come back a lot.
        let u: f64 = rng.random();
        let viewer = ((u * u * f64::from(VIEWER_POOL)) as u32).min(VIEWER_POOL - 1);
        let mix = splitmix(u64::from(viewer) ^ VIEWER_SALT);
        let bytes = ((u128::from(mix) << 64) | u128::from(splitmix(mix))).to_be_bytes();
        let viewer_id = uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string();
        // A viewer keeps their browser.
        let device = pick_by_key(DEVICES, mix % total_weight(DEVICES, |d| d.weight), |d| {
            d.weight
        });
        let video = pick(rng, VIDEOS, |v| v.weight);
        let referrer = REFERRERS[rng.random_range(0..REFERRERS.len())];
        let campaign = rng
            .random_bool(0.2)
            .then(|| CAMPAIGNS[rng.random_range(0..CAMPAIGNS.len())]);
        let network = rng.random::<f64>().sqrt();

        let mut s = Script {
            now: 0,
            reload_at: i64::MAX,
            visible: true,
            beacons: Vec::new(),
        };
        if rng.random_bool(0.08) {
            // The viewer reloads the page at some point of the first load.
            let at = rng.random_range(3_000..180_000);
            s.reload_at = at;
            s.page_load(rng, video, network);
            s.now = at;
            s.reload_at = i64::MAX;
            s.wait(rng.random_range(500..3_000));
        }
        s.page_load(rng, video, network);
        PixelSessionPlan {
            viewer_id,
            video,
            pullzone: DEFAULT_PULLZONE.to_owned(),
            referrer,
            campaign,
            user_agent: device.user_agent,
            beacons: s.beacons,
            end_ms: s.now,
        }
    }

    /// Lays a visit out into beacons.
    struct Script {
        /// Visit time, ms since its start.
        now: i64,
        /// The page reloads then: the current load sends nothing after it.
        reload_at: i64,
        visible: bool,
        beacons: Vec<PlannedBeacon>,
    }

    impl Script {
        fn wait(&mut self, ms: i64) {
            self.now += ms.max(0);
        }

        /// Whether the page was reloaded under the current load.
        fn gone(&self) -> bool {
            self.now > self.reload_at
        }

        fn send(&mut self, kind: BeaconKind, current_time: Option<u32>, live: Option<LiveReport>) {
            self.beacons.push(PlannedBeacon {
                at_ms: self.now,
                kind,
                current_time,
                live,
                visible: self.visible,
            });
        }

        /// One page load, from `view` until the viewer leaves (or the reload).
        fn page_load(&mut self, rng: &mut impl Rng, video: &Video, network: f64) {
            self.visible = true;
            self.send(BeaconKind::View, None, None);
            if rng.random_bool(0.1) {
                // Leaves before playing: a view only.
                self.wait(rng.random_range(2_000..30_000));
                return;
            }
            // Autoplay starts at once; otherwise the viewer clicks.
            let to_play = if rng.random_bool(0.35) {
                rng.random_range(300..1_500)
            } else {
                rng.random_range(1_500..9_000)
            };
            self.wait(to_play);
            if self.gone() {
                return;
            }
            self.send(BeaconKind::Play, Some(0), None);
            match video.duration_s {
                Some(d) => self.vod(rng, d),
                None => self.live(rng, network),
            }
        }

        /// On-demand playing: a check at each 5-s mark of the position.
        fn vod(&mut self, rng: &mut impl Rng, duration_s: u32) {
            let duration = i64::from(duration_s) * 1000;
            let p_end = if duration_s <= 120 {
                0.55
            } else if duration_s <= 600 {
                0.3
            } else {
                0.15
            };
            // Most leave early; the exponent puts the mass at the start.
            let goal = if rng.random_bool(p_end) {
                i64::MAX
            } else {
                ((f64::from(duration_s) * rng.random::<f64>().powf(1.4)).max(3.0) * 1000.0) as i64
            };
            // Interruptions per second of playing (the tab's visibility flips, too).
            let (pause, seek) = (1.0 / 120.0, 1.0 / 150.0);

            // The forced check at first play.
            self.send(BeaconKind::Check, Some(0), None);
            let mut pos = 0;
            let mut watched = 0;
            let mut next_mark = CHECK_STEP_MS;
            loop {
                // A hidden tab comes back sooner than a visible one is left.
                let flip = if self.visible {
                    1.0 / 400.0
                } else {
                    1.0 / 60.0
                };
                let hazard = pause + seek + flip;
                let to_event =
                    ((-(1.0 - rng.random::<f64>()).ln() / hazard) * 1000.0).ceil() as i64;
                let to_event = to_event.max(1);
                let step = to_event
                    .min(next_mark - pos)
                    .min(duration - pos)
                    .min(goal.saturating_sub(watched))
                    .max(0);
                self.wait(step);
                pos += step;
                watched += step;
                if self.gone() {
                    return;
                }
                if pos == next_mark {
                    self.send(BeaconKind::Check, Some((next_mark / 1000) as u32), None);
                    next_mark += CHECK_STEP_MS;
                }
                if pos >= duration || watched >= goal {
                    // Ended, or had enough: stays a moment, then leaves.
                    self.wait(rng.random_range(300..15_000));
                    return;
                }
                if step < to_event {
                    continue;
                }
                let x = rng.random::<f64>() * hazard;
                if x < pause {
                    // Paused: time passes, no checks.
                    let ms = 3_000.0 + 87_000.0 * rng.random::<f64>().powi(2);
                    self.wait(ms as i64);
                    if rng.random_bool(0.12) {
                        return;
                    }
                } else if x < pause + seek {
                    let last = next_mark - CHECK_STEP_MS;
                    let target = if last >= CHECK_STEP_MS && rng.random_bool(0.35) {
                        // Back to before the last check's mark.
                        (pos - rng.random_range(5_000..60_000)).min(last - CHECK_STEP_MS)
                    } else if pos + 10_000 <= duration - 2_000 {
                        (pos + rng.random_range(10_000..120_000)).min(duration - 2_000)
                    } else {
                        continue;
                    };
                    self.wait(rng.random_range(100..1_500));
                    pos = target.max(0);
                    // The first mark at or after the target (at once when on one).
                    next_mark = (pos + CHECK_STEP_MS - 1) / CHECK_STEP_MS * CHECK_STEP_MS;
                } else {
                    self.visible = !self.visible;
                }
            }
        }

        /// Live playing: a live beacon every 15 s of playing.
        fn live(&mut self, rng: &mut impl Rng, network: f64) {
            let goal = ((30.0 + 1170.0 * rng.random::<f64>().powi(2)) * 1000.0) as i64;
            // The stream's own clock: somewhere in its window.
            let mut time = rng.random_range(60_000..7_200_000);
            let mut rung = ((network * 4.0) as usize).min(4);
            let pause = 1.0 / 300.0;
            let mut since = 0;
            let mut watched = 0;
            loop {
                let to_pause = ((-(1.0 - rng.random::<f64>()).ln() / pause) * 1000.0).ceil() as i64;
                let to_pause = to_pause.max(1);
                let step = to_pause
                    .min(LIVE_INTERVAL_MS - since)
                    .min(goal - watched)
                    .max(0);
                self.wait(step);
                time += step;
                since += step;
                watched += step;
                if self.gone() {
                    return;
                }
                if since >= LIVE_INTERVAL_MS {
                    since = 0;
                    if rng.random_bool(0.15) {
                        let up = rng.random_bool(0.3 + 0.5 * network);
                        rung = if up {
                            (rung + 1).min(4)
                        } else {
                            rung.saturating_sub(1)
                        };
                    }
                    let errors = if rng.random_bool(0.02 + 0.1 * (1.0 - network)) {
                        rng.random_range(1..=3)
                    } else {
                        0
                    };
                    let (bitrate, _, height) = LADDER[rung];
                    let kbps =
                        bitrate as f64 / 1000.0 * (1.1 + 2.5 * network * rng.random::<f64>());
                    self.send(
                        BeaconKind::Live,
                        None,
                        Some(LiveReport {
                            quality: height,
                            // Timers fire a little late, so `time` is not a round step.
                            time_ms: time + rng.random_range(0..250),
                            bandwidth_kbps: (kbps * 100.0).round() / 100.0,
                            errors,
                        }),
                    );
                }
                if watched >= goal {
                    self.wait(rng.random_range(300..5_000));
                    return;
                }
                if step == to_pause {
                    // Paused: the stream's time stands still (DVR), no beacons.
                    self.wait(rng.random_range(2_000..60_000));
                    if rng.random_bool(0.1) {
                        return;
                    }
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use rand::rngs::StdRng;
        use rand::SeedableRng;
        use std::collections::HashSet;

        fn visit(seed: u64) -> PixelSessionPlan {
            plan_session(&mut StdRng::seed_from_u64(seed))
        }

        /// The visit's page loads, each a run of beacons starting with `view`.
        fn loads(plan: &PixelSessionPlan) -> Vec<&[PlannedBeacon]> {
            let starts: Vec<usize> = plan
                .beacons
                .iter()
                .enumerate()
                .filter(|(_, b)| b.kind == BeaconKind::View)
                .map(|(i, _)| i)
                .collect();
            starts
                .iter()
                .enumerate()
                .map(|(n, &i)| {
                    let end = starts.get(n + 1).copied().unwrap_or(plan.beacons.len());
                    &plan.beacons[i..end]
                })
                .collect()
        }

        fn checks(load: &[PlannedBeacon]) -> Vec<&PlannedBeacon> {
            load.iter()
                .filter(|b| b.kind == BeaconKind::Check)
                .collect()
        }

        #[test]
        fn beacons_follow_the_players_cadence() {
            for seed in 0..500 {
                let plan = visit(seed);
                assert_eq!(plan.beacons[0].kind, BeaconKind::View, "seed {seed}");
                assert!(
                    plan.beacons.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
                    "seed {seed}: out of order"
                );
                assert!(plan.end_ms >= plan.beacons.last().unwrap().at_ms);
                for load in loads(&plan) {
                    let kinds: Vec<BeaconKind> = load.iter().map(|b| b.kind).collect();
                    // View first and visible, at most one play, everything else after it.
                    assert!(load[0].visible, "seed {seed}");
                    assert_eq!(
                        kinds.iter().filter(|k| **k == BeaconKind::Play).count(),
                        kinds.len().min(2) - 1,
                        "seed {seed}: {kinds:?}"
                    );
                    if let Some(play) = load.get(1) {
                        assert_eq!(play.kind, BeaconKind::Play, "seed {seed}");
                        assert_eq!(play.current_time, Some(0));
                    }
                    for b in load {
                        let method = if matches!(b.kind, BeaconKind::Play | BeaconKind::Check) {
                            "POST"
                        } else {
                            "GET"
                        };
                        assert_eq!(b.kind.method(), method);
                    }
                    let checks = checks(load);
                    if plan.video.is_live() {
                        assert!(checks.is_empty(), "seed {seed}: checks on live");
                        let live: Vec<&PlannedBeacon> =
                            load.iter().filter(|b| b.kind == BeaconKind::Live).collect();
                        if let Some(first) = live.first() {
                            // The first after 15 s of playing.
                            assert!(
                                first.at_ms - load[1].at_ms >= LIVE_INTERVAL_MS,
                                "seed {seed}"
                            );
                        }
                        for w in live.windows(2) {
                            let (a, b) = (w[0].live.unwrap(), w[1].live.unwrap());
                            let d_time = b.time_ms - a.time_ms;
                            assert!(
                                (d_time - LIVE_INTERVAL_MS).abs() < 250,
                                "seed {seed}: {d_time}"
                            );
                            assert!(w[1].at_ms - w[0].at_ms >= LIVE_INTERVAL_MS, "seed {seed}");
                        }
                        continue;
                    }
                    assert!(
                        load.iter().all(|b| b.kind != BeaconKind::Live),
                        "seed {seed}"
                    );
                    let duration = plan.video.duration_s.unwrap();
                    if let Some(first) = checks.first() {
                        // The forced check with the play.
                        assert_eq!(first.current_time, Some(0), "seed {seed}");
                        assert_eq!(first.at_ms, load[1].at_ms, "seed {seed}");
                    }
                    for c in &checks {
                        let t = c.current_time.expect("checks carry current_time");
                        assert!(t % 5 == 0 && t <= duration, "seed {seed}: {t}");
                    }
                    for w in checks.windows(2) {
                        let d_pos = i64::from(w[1].current_time.unwrap())
                            - i64::from(w[0].current_time.unwrap());
                        let d_t = w[1].at_ms - w[0].at_ms;
                        if d_pos == 5 {
                            // Played on: 5 s later, or later still after a pause.
                            assert!(d_t >= CHECK_STEP_MS, "seed {seed}: {d_t} ms for 5 s");
                        } else {
                            // A seek: the position jumped.
                            assert!(d_pos >= 10 || d_pos <= -5, "seed {seed}: {d_pos}");
                        }
                    }
                }
            }
        }

        #[test]
        fn population_has_every_kind_of_visit() {
            let plans: Vec<PixelSessionPlan> = (0..1000).map(visit).collect();
            let mut found: HashSet<&str> = HashSet::new();
            let (mut view_only, mut reloads, mut live) = (0, 0, 0);
            for p in &plans {
                if p.views() == 2 {
                    reloads += 1;
                    found.insert("reload");
                }
                assert!(p.views() <= 2);
                for load in loads(p) {
                    if load.len() == 1 {
                        found.insert("view only");
                        view_only += 1;
                    }
                    let checks = checks(load);
                    for w in checks.windows(2) {
                        let d_pos = i64::from(w[1].current_time.unwrap())
                            - i64::from(w[0].current_time.unwrap());
                        let d_t = w[1].at_ms - w[0].at_ms;
                        if d_pos == 5 && d_t == CHECK_STEP_MS {
                            found.insert("steady check");
                        } else if d_pos == 5 {
                            found.insert("pause");
                        } else if d_pos > 0 {
                            found.insert("forward seek");
                        } else {
                            found.insert("backward seek");
                        }
                    }
                }
                if p.beacons.iter().any(|b| b.kind == BeaconKind::Live) {
                    found.insert("live");
                    live += 1;
                    let reports: Vec<LiveReport> =
                        p.beacons.iter().filter_map(|b| b.live).collect();
                    if reports.iter().any(|r| r.errors > 0) {
                        found.insert("live errors");
                    }
                    if reports.windows(2).any(|w| w[0].quality != w[1].quality) {
                        found.insert("quality change");
                    }
                }
                if p.beacons.iter().any(|b| !b.visible) {
                    found.insert("hidden tab");
                }
                if p.campaign.is_some() {
                    found.insert("utm");
                }
                if p.referrer.is_none() {
                    found.insert("no referrer");
                }
                if p.beacons.iter().any(|b| {
                    b.kind == BeaconKind::Check
                        && b.current_time == Some(p.video.duration_s.unwrap_or(1) / 5 * 5)
                }) {
                    found.insert("watched to the end");
                }
            }
            for kind in [
                "reload",
                "view only",
                "steady check",
                "pause",
                "forward seek",
                "backward seek",
                "live",
                "live errors",
                "quality change",
                "hidden tab",
                "utm",
                "no referrer",
                "watched to the end",
            ] {
                assert!(found.contains(kind), "no `{kind}` in 1000 visits");
            }
            assert!((40..=130).contains(&reloads), "{reloads} reloads in 1000");
            assert!(
                (60..=180).contains(&view_only),
                "{view_only} view-only loads in 1000"
            );
            assert!((100..=300).contains(&live), "{live} live visits in 1000");

            let views: usize = plans.iter().map(PixelSessionPlan::views).sum();
            let viewers: HashSet<&str> = plans.iter().map(|p| p.viewer_id.as_str()).collect();
            assert!(
                viewers.len() < views / 2,
                "{} viewers for {views} views",
                viewers.len()
            );
            assert!(viewers.iter().all(|u| uuid::Uuid::parse_str(u).is_ok()));
            let videos: HashSet<&str> = plans.iter().map(|p| p.video.id).collect();
            assert_eq!(videos.len(), VIDEOS.len());
        }

        #[test]
        fn a_viewer_keeps_their_uuid_and_browser() {
            let mut by_viewer = std::collections::HashMap::new();
            for seed in 0..1000 {
                let p = visit(seed);
                let ua = *by_viewer.entry(p.viewer_id.clone()).or_insert(p.user_agent);
                assert_eq!(ua, p.user_agent, "{}", p.viewer_id);
            }
        }

        #[test]
        fn same_seed_same_visit() {
            assert_eq!(visit(42), visit(42));
        }

        #[test]
        fn urls_are_what_the_player_sends() {
            let video = VIDEOS.iter().find(|v| !v.is_live()).unwrap();
            let channel = VIDEOS.iter().find(|v| v.is_live()).unwrap();
            let mut plan = PixelSessionPlan {
                viewer_id: "3f0e8c4a-2b1d-4f6e-8a9c-7d5b3e1f0a2c".into(),
                video,
                pullzone: DEFAULT_PULLZONE.into(),
                referrer: Some("https://news.example.com/2024/05/match report"),
                campaign: Some(("newsletter", "black_friday")),
                user_agent: DEVICES[0].user_agent,
                beacons: Vec::new(),
                end_ms: 0,
            };
            let check = PlannedBeacon {
                at_ms: 5_000,
                kind: BeaconKind::Check,
                current_time: Some(5),
                live: None,
                visible: false,
            };
            assert_eq!(
                plan.path_and_query(&check),
                format!(
                    "/icon.gif?type=check&v={}&p=vz-a06a6f7b-986&u=3f0e8c4a-2b1d-4f6e-8a9c-7d5b3e1f0a2c\
                     &referrer=https%3A%2F%2Fnews.example.com%2F2024%2F05%2Fmatch%20report&visibily=false\
                     &current_time=5&utm_source=newsletter&utm_campaign=black_friday",
                    video.id
                )
            );
            plan.referrer = None;
            plan.campaign = None;
            plan.set_pullzone("vz-other");
            plan.video = channel;
            let live = PlannedBeacon {
                at_ms: 20_000,
                kind: BeaconKind::Live,
                current_time: None,
                live: Some(LiveReport {
                    quality: 720,
                    time_ms: 1_834_560,
                    bandwidth_kbps: 2450.57,
                    errors: 2,
                }),
                visible: true,
            };
            assert_eq!(
                plan.path_and_query(&live),
                format!(
                    "/realtime/icon.gif?quality=720&time=1834.56&bandwidth=2450.57&errors=2&v={}\
                     &u=3f0e8c4a-2b1d-4f6e-8a9c-7d5b3e1f0a2c&p=vz-other&referrer=&visibily=true",
                    channel.id
                )
            );
        }
    }
}

pub mod media_collection {
    //! Simulated players instrumented for Adobe Media Analytics, speaking the
    //! Media Collection API (`spec/protocols.md` §2).
    //!
    //! A session is planned like a native view, from the same population
    //! ([`ViewerPlan::draw`]: viewers, devices, videos, fates, ad breaks), and
    //! played out into the events the player posts, one event per request:
    //! - `sessionStart` first (it is the body of `POST /api/v1/sessions`; the
    //!   others go to the `Location` it answers with), with the required
    //!   params, a report suite ([`DEFAULT_REPORT_SUITE`] until
    //!   [`AdobeSessionPlan::set_report_suite`]), the viewer's ECID
    //!   (`visitor.marketingCloudUserId`, 38 digits, from the same skewed pool
    //!   as the native viewers, so unique viewers stay below views), standard
    //!   metadata (`media.genre`, `media.network`, `media.show`, …) and
    //!   `customMetadata` (CDN, subscription, player version, referrer);
    //! - `play` at the first frame, after the startup time, and sometimes
    //!   with `qoeData."media.qoe.timeToStart"`; a `bitrateChange` with
    //!   `qoeData."media.qoe.bitrate"` for the first rendition and every switch;
    //! - `ping` on a timer that starts with playback and runs whatever else
    //!   is sent (pauses and stalls included, as the vendor asks): every
    //!   [`CONTENT_PING_MS`] on content and every [`AD_PING_MS`] inside an ad
    //!   break, the timer restarting at `adBreakStart` and `adBreakComplete`;
    //! - there is no resume event: `bufferStart` … `play` for a stall,
    //!   `pauseStart` … `play` for a pause, and a seek is `pauseStart` then
    //!   `play` at another playhead; rarely the picture freezes with nothing
    //!   reported but the pings, whose unmoving playhead is the vendor's
    //!   stall rule;
    //! - ad breaks as preroll (pod 0) or midroll (pod 1): `adBreakStart`,
    //!   then per ad `adStart`, `play`, `adComplete` or `adSkip`, then
    //!   `adBreakComplete` and `play` for the content; the playhead stays at
    //!   the content position during ads;
    //! - chapters on titles of 10 min or more: `chapterStart` when the
    //!   playhead enters one, `chapterComplete` at its end, `chapterSkip`
    //!   when a seek leaves it;
    //! - `stateStart`/`stateEnd` (`fullscreen`, `mute`, `closedCaptioning`);
    //! - `error`s with either spelling of the error id: recoverable ones
    //!   followed by `play`, fatal ones by `sessionEnd` only;
    //! - a few sessions resume a title (`media.resume`, starting mid-way);
    //! - `sessionComplete` when the content ends, `sessionEnd` when the
    //!   viewer leaves (or after a fatal error, or before the first frame).
    //!
    //! Live content reports the second of the day as its playhead and
    //! [`LIVE_LENGTH_S`] as its length. Event times are the session's start
    //! plus its own (real-rate) time, as for native viewers; a load run's
    //! `speed` compresses only when the requests leave.

    use super::{
        splitmix, time_scale, AdBreakPlan, AdSlot, DeviceClass, Fate, Motion, Video, ViewerPlan,
        ADS, LADDER,
    };
    use rand::Rng;
    use serde_json::{json, Map, Value};
    use std::time::Duration;

    /// `analytics.reportSuite` unless told otherwise; a zero-config server
    /// maps any suite to its `default` property.
    pub const DEFAULT_REPORT_SUITE: &str = "playhead-demo";
    /// `analytics.trackingServer`: required, not used by Playhead.
    pub const TRACKING_SERVER: &str = "playhead-demo.hb-api.omtrdc.net";
    /// `visitor.marketingCloudOrgId`: required, not used by Playhead.
    pub const MARKETING_CLOUD_ORG_ID: &str = "6D9A2C1F5E3B4A7D8C0E1F2A@AdobeOrg";
    /// The ping interval on main content, ms.
    pub const CONTENT_PING_MS: i64 = 10_000;
    /// The ping interval inside an ad break, ms.
    pub const AD_PING_MS: i64 = 1_000;
    /// `media.length` of live content (a day of seconds, the vendor's default).
    pub const LIVE_LENGTH_S: u32 = 86_400;
    /// `media.ad.playerName`.
    const AD_PLAYER: &str = "Google IMA";
    /// Titles at least this long (s) have chapters.
    const CHAPTERS_FROM_S: u32 = 600;
    /// Keeps the ECIDs apart from the other viewers' ids.
    const VIEWER_SALT: u64 = 0x6164_6f62_655f_6d63;
    /// The player states toggled with `stateStart`/`stateEnd`, with their weights.
    const STATES: [(&str, u32); 3] = [("fullscreen", 6), ("mute", 3), ("closedCaptioning", 1)];

    /// One event of a session: one request.
    #[derive(Debug, Clone, PartialEq)]
    pub struct PlannedEvent {
        /// Send time, ms after the session's start, at real rate (`playerTime.ts`
        /// is the session's start plus this).
        pub at_ms: i64,
        /// The JSON body.
        pub body: Value,
        /// Main content was playing when it was sent: a player that has to
        /// start a new session there (`404`/`410`) sends `play` after the
        /// new `sessionStart`.
        pub content_playing: bool,
    }

    impl PlannedEvent {
        /// When to send it, after the session's start, at `speed` × real time.
        pub fn send_at(&self, speed: f64) -> Duration {
            time_scale(self.at_ms, speed)
        }

        pub fn event_type(&self) -> &str {
            self.body["eventType"].as_str().unwrap_or("")
        }

        /// `sessionComplete` or `sessionEnd`.
        pub fn is_close(&self) -> bool {
            matches!(self.event_type(), "sessionComplete" | "sessionEnd")
        }

        /// `playerTime.ts`.
        pub fn ts(&self) -> i64 {
            self.body["playerTime"]["ts"].as_i64().unwrap_or_default()
        }

        /// `playerTime.playhead`.
        pub fn playhead(&self) -> f64 {
            self.body["playerTime"]["playhead"]
                .as_f64()
                .unwrap_or_default()
        }
    }

    /// A planned session: `sessionStart` first, `sessionComplete` or
    /// `sessionEnd` last, every event in send order.
    #[derive(Debug, Clone, PartialEq)]
    pub struct AdobeSessionPlan {
        /// `visitor.marketingCloudUserId` (an ECID: 38 digits).
        pub viewer_id: String,
        pub video: &'static Video,
        pub user_agent: &'static str,
        /// `playerTime.ts` of the `sessionStart`, ms since the Unix epoch.
        pub start_ms: i64,
        pub events: Vec<PlannedEvent>,
    }

    impl AdobeSessionPlan {
        /// Set `analytics.reportSuite` (which picks the property).
        pub fn set_report_suite(&mut self, suite: &str) {
            if let Some(start) = self.events.first_mut() {
                start.body["params"]["analytics.reportSuite"] = json!(suite);
            }
        }

        /// When the viewer is done, ms after the start (the last event's time).
        pub fn end_ms(&self) -> i64 {
            self.events.last().map_or(0, |e| e.at_ms)
        }

        /// The `sessionStart` a player sends to start over when the server
        /// answers `at` with `404` or `410`: the same params with
        /// `media.resume: true`, at `at`'s playhead and time.
        pub fn restart_body(&self, at: &PlannedEvent) -> Value {
            let mut body = self.events[0].body.clone();
            body["playerTime"] = at.body["playerTime"].clone();
            body["params"]["media.resume"] = json!(true);
            body
        }

        /// The `play` sent after that `sessionStart` when content was playing.
        pub fn restart_play_body(&self, at: &PlannedEvent) -> Value {
            json!({"eventType": "play", "playerTime": at.body["playerTime"].clone()})
        }
    }

    /// Plan one realistic Adobe-tracked session whose `sessionStart` is at
    /// `start_ms` (ms since the Unix epoch).
    pub fn plan_session(rng: &mut impl Rng, start_ms: i64) -> AdobeSessionPlan {
        let viewer = ViewerPlan::draw(rng);
        let viewer_id = ecid(&viewer.viewer_id);
        let mut s = Script::new(&viewer, start_ms);
        s.view(rng, &viewer_id);
        AdobeSessionPlan {
            viewer_id,
            video: viewer.video,
            user_agent: viewer.device.user_agent,
            start_ms,
            events: s.events,
        }
    }

    /// An Experience Cloud ID (38 digits) for a viewer: fixed per viewer.
    fn ecid(viewer_id: &str) -> String {
        let h = viewer_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let a = splitmix(h ^ VIEWER_SALT);
        let b = splitmix(a);
        const E19: u64 = 10_000_000_000_000_000_000;
        format!("{:019}{:019}", a % E19, b % E19)
    }

    /// What the catalogue says about a title, as Adobe metadata.
    struct About {
        name: &'static str,
        /// `media.channel`.
        channel: &'static str,
        /// `media.genre`.
        genre: &'static str,
        /// `media.show`, `media.season`, `media.episode`.
        show: Option<(&'static str, &'static str, &'static str)>,
    }

    fn about(video_id: &str) -> About {
        let (name, channel, genre) = match video_id {
            "football-highlights-w12" => ("Football Highlights, Week 12", "sports", "Sports"),
            "live-news-24" => ("News 24", "news", "News"),
            "trailer-deep-sea" => ("Deep Sea: Official Trailer", "movies", "Documentary"),
            "how-to-brew-coffee" => ("How to Brew Coffee", "lifestyle", "Food"),
            "short-cat-fails" => ("Cat Fails", "entertainment", "Comedy"),
            "cooking-pasta-basics" => ("Pasta Basics", "lifestyle", "Food"),
            "live-match-center" => ("Match Center Live", "sports", "Sports"),
            "music-video-echoes" => ("Echoes", "music", "Music"),
            "keynote-2024-highlights" => ("Keynote 2024 Highlights", "tech", "Technology"),
            "travel-lisbon" => ("Lisbon in Three Days", "lifestyle", "Travel"),
            "city-timelapse" => ("City Timelapse", "entertainment", "Art"),
            "kids-dinosaurs-ep3" => ("Dinosaurs: The Great Migration", "kids", "Kids"),
            "product-demo-x1" => ("X1 Product Demo", "tech", "Technology"),
            "yoga-morning-flow" => ("Morning Flow", "lifestyle", "Health"),
            "bike-repair-chain" => ("Bike Repair: The Chain", "lifestyle", "DIY"),
            "documentary-bees" => ("The Secret Life of Bees", "documentary", "Documentary"),
            "interview-architect" => ("Interview with an Architect", "culture", "Culture"),
            "live-radio-studio" => ("Radio Studio Live", "music", "Music"),
            "tutorial-spreadsheets" => ("Spreadsheets for Beginners", "education", "Education"),
            "webinar-security" => ("Security Webinar", "tech", "Technology"),
            _ => ("Untitled", "general", "General"),
        };
        let show = (video_id == "kids-dinosaurs-ep3").then_some(("Dinosaurs", "1", "3"));
        About {
            name,
            channel,
            genre,
            show,
        }
    }

    /// An ad's advertiser and campaign.
    fn advertiser(ad_id: &str) -> (&'static str, &'static str) {
        match ad_id {
            "ad-sneakers-15" => ("Stride Sneakers", "spring_run"),
            "ad-coffee-15" => ("Bean & Co", "morning_blend"),
            "ad-phone-20" => ("Nova Phones", "nova_x_launch"),
            "ad-bank-30" => ("First Harbor Bank", "savings_2024"),
            _ => ("Drive Motors", "summer_drive"),
        }
    }

    /// The ping timer.
    #[derive(Debug, Clone, Copy)]
    struct Pinger {
        next: i64,
        interval: i64,
    }

    impl Pinger {
        fn every(now: i64, interval: i64) -> Option<Pinger> {
            Some(Pinger {
                next: now + interval,
                interval,
            })
        }
    }

    /// Plays a session out into events, one per request.
    struct Script<'a> {
        plan: &'a ViewerPlan,
        start_ms: i64,
        /// Session time, ms since the `sessionStart`.
        now: i64,
        /// Content position, s (kept during ads: it is what they report).
        playhead: f64,
        /// Live: the second of the day where the stream was at the start.
        live_offset: Option<f64>,
        motion: Motion,
        pinger: Option<Pinger>,
        rung: usize,
        max_rung: usize,
        fps: f64,
        total_frames: f64,
        drop_ratio: f64,
        /// (offset, length) in s.
        chapters: Vec<(f64, f64)>,
        chapter: Option<usize>,
        /// Which of [`STATES`] are on.
        states: [bool; 3],
        events: Vec<PlannedEvent>,
    }

    impl<'a> Script<'a> {
        fn new(plan: &'a ViewerPlan, start_ms: i64) -> Script<'a> {
            let max_rung = match plan.device.class {
                DeviceClass::Phone => 3,
                DeviceClass::Tablet | DeviceClass::Desktop => 4,
                DeviceClass::Tv => 5,
            };
            let chapters = match plan.video.duration_s {
                Some(d) if d >= CHAPTERS_FROM_S => {
                    let d = f64::from(d);
                    let n = (d / 200.0).round().clamp(3.0, 6.0);
                    let len = (d / n).round();
                    let n = n as usize;
                    (0..n)
                        .map(|i| {
                            let offset = len * i as f64;
                            let length = if i + 1 == n { d - offset } else { len };
                            (offset, length)
                        })
                        .collect()
                }
                _ => Vec::new(),
            };
            let live_offset = plan.video.is_live().then(|| {
                let ms_of_day = start_ms.rem_euclid(86_400_000);
                ms_of_day as f64 / 1000.0
            });
            Script {
                plan,
                start_ms,
                now: 0,
                playhead: 0.0,
                live_offset,
                motion: Motion::Still,
                pinger: None,
                rung: 0,
                max_rung,
                fps: if plan.device.class == DeviceClass::Tv {
                    50.0
                } else {
                    30.0
                },
                total_frames: 0.0,
                drop_ratio: (1.0 - plan.network) * 0.03,
                chapters,
                chapter: None,
                states: [false; 3],
                events: Vec::new(),
            }
        }

        fn duration(&self) -> Option<f64> {
            self.plan.video.duration_s.map(f64::from)
        }

        /// `playerTime.playhead`: the content position, or for live the
        /// second of the day.
        fn reported_playhead(&self) -> f64 {
            match self.live_offset {
                Some(offset) => {
                    let sod = (offset + self.playhead).rem_euclid(86_400.0);
                    ((sod * 1000.0).floor() / 1000.0).min(86_399.999)
                }
                None => (self.playhead * 1000.0).round() / 1000.0,
            }
        }

        /// An event now; `extra` holds its `params`, `qoeData`, `customMetadata`.
        /// A millisecond passes between two events (a ping due then goes
        /// first): every event has its own `ts`, so the server, which orders
        /// by `ts`, sees them in the order they were sent.
        fn emit(&mut self, kind: &str, extra: Value) {
            while self.events.last().is_some_and(|e| e.at_ms >= self.now) {
                self.wait(1);
            }
            let mut ev = Map::new();
            ev.insert("eventType".into(), json!(kind));
            ev.insert(
                "playerTime".into(),
                json!({"playhead": self.reported_playhead(), "ts": self.start_ms + self.now}),
            );
            if let Value::Object(fields) = extra {
                ev.extend(fields);
            }
            self.events.push(PlannedEvent {
                at_ms: self.now,
                body: Value::Object(ev),
                content_playing: self.motion == Motion::Content,
            });
        }

        /// Let `ms` pass: content moves as `motion` says, pings fire on the way.
        fn wait(&mut self, ms: i64) {
            let end = self.now + ms.max(0);
            loop {
                let next = match self.pinger {
                    Some(p) if p.next <= end => p.next,
                    _ => end,
                };
                self.advance(next - self.now);
                if let Some(p) = self.pinger.filter(|p| p.next == self.now) {
                    self.emit("ping", Value::Null);
                    self.pinger = Some(Pinger {
                        next: p.next + p.interval,
                        ..p
                    });
                }
                if self.now >= end {
                    return;
                }
            }
        }

        fn advance(&mut self, dt: i64) {
            self.now += dt;
            let secs = dt as f64 / 1000.0;
            if self.motion == Motion::Still {
                return;
            }
            if self.motion == Motion::Content {
                self.playhead += secs;
                if let Some(d) = self.duration() {
                    self.playhead = self.playhead.min(d);
                }
            }
            self.total_frames += secs * self.fps;
        }

        fn bitrate_change(&mut self, rung: usize) {
            self.rung = rung.min(self.max_rung);
            let (bitrate, _, _) = LADDER[self.rung];
            let dropped = (self.total_frames * self.drop_ratio).floor() as u64;
            self.emit(
                "bitrateChange",
                json!({"qoeData": {
                    "media.qoe.bitrate": bitrate,
                    "media.qoe.framesPerSecond": self.fps,
                    "media.qoe.droppedFrames": dropped,
                }}),
            );
        }

        /// `sessionComplete` or `sessionEnd`: the timer stops.
        fn close(&mut self, kind: &str) {
            self.emit(kind, Value::Null);
            self.motion = Motion::Still;
            self.pinger = None;
        }

        /// An `error`, in either spelling of the error id.
        fn error(&mut self, rng: &mut impl Rng, code: &str, source: &str) {
            let body = if rng.random_bool(0.7) {
                json!({"qoeData": {"media.qoe.errorID": code, "media.qoe.errorSource": source}})
            } else {
                json!({"params": {"media.errorId": code, "media.errorSource": source}})
            };
            self.emit("error", body);
        }

        /// An error the player does not recover from, then `sessionEnd`.
        fn fatal_error(&mut self, rng: &mut impl Rng, before_start: bool) {
            let (code, source) = if before_start {
                [
                    ("MEDIA_ERR_SRC_NOT_SUPPORTED", "player"),
                    ("DRM_LICENSE_FAILED", "external"),
                    ("manifestLoadTimeOut", "external"),
                ][rng.random_range(0..3)]
            } else {
                [
                    ("MEDIA_ERR_DECODE", "player"),
                    ("MEDIA_ERR_NETWORK", "external"),
                    ("bufferAppendError", "player"),
                ][rng.random_range(0..3)]
            };
            self.error(rng, code, source);
            // The player is torn down: no more pings.
            self.motion = Motion::Still;
            self.pinger = None;
            self.wait(rng.random_range(200..3000));
            self.close("sessionEnd");
        }

        fn start_params(&self, viewer_id: &str, resume: bool) -> Value {
            let plan = self.plan;
            let video = plan.video;
            let about = about(video.id);
            let mut p = Map::new();
            let mut put = |k: &str, v: Value| {
                p.insert(k.to_owned(), v);
            };
            put("analytics.trackingServer", json!(TRACKING_SERVER));
            put("analytics.reportSuite", json!(DEFAULT_REPORT_SUITE));
            put("analytics.enableSSL", json!(true));
            put("visitor.marketingCloudOrgId", json!(MARKETING_CLOUD_ORG_ID));
            put("visitor.marketingCloudUserId", json!(viewer_id));
            put("media.id", json!(video.id));
            put("media.name", json!(about.name));
            put(
                "media.length",
                json!(f64::from(video.duration_s.unwrap_or(LIVE_LENGTH_S))),
            );
            put(
                "media.contentType",
                json!(if video.is_live() { "Live" } else { "VOD" }),
            );
            put("media.streamType", json!("video"));
            put("media.playerName", json!(plan.device.player_name));
            put("media.channel", json!(about.channel));
            put("media.genre", json!(about.genre));
            put("media.network", json!("Playhead TV"));
            if let Some((show, season, episode)) = about.show {
                put("media.show", json!(show));
                put("media.season", json!(season));
                put("media.episode", json!(episode));
            }
            if resume {
                put("media.resume", json!(true));
            }
            Value::Object(p)
        }

        fn custom_metadata(&self) -> Value {
            let plan = self.plan;
            let mut c = Map::new();
            c.insert("cdn".into(), json!(plan.cdn));
            c.insert("plan".into(), json!(plan.subscription));
            c.insert("player.version".into(), json!(plan.device.player_version));
            if let Some(r) = plan.referrer {
                c.insert("referrer".into(), json!(r));
            }
            Value::Object(c)
        }

        fn chapter_of(&self, position: f64) -> Option<usize> {
            let last = self.chapters.len().checked_sub(1)?;
            self.chapters
                .iter()
                .position(|(o, l)| position >= *o && position < o + l)
                .or(Some(last))
        }

        fn chapter_start(&mut self, c: usize) {
            let (offset, length) = self.chapters[c];
            self.chapter = Some(c);
            self.emit(
                "chapterStart",
                json!({"params": {
                    "media.chapter.index": c + 1,
                    "media.chapter.offset": offset,
                    "media.chapter.length": length,
                    "media.chapter.friendlyName": format!("Chapter {}", c + 1),
                }}),
            );
        }

        /// The whole session, from `sessionStart` to its close.
        fn view(&mut self, rng: &mut impl Rng, viewer_id: &str) {
            let plan = self.plan;
            // Poor networks start slower; always within 200–4000 ms.
            let k = 1.2 + 2.5 * plan.network;
            let startup = (200.0 + 3800.0 * rng.random::<f64>().powf(k)).round() as i64;
            let report_startup = rng.random_bool(0.6);
            // Some come back to a title they left mid-way.
            let resume_at = match (plan.video.duration_s, plan.ad_break) {
                (
                    Some(d),
                    None
                    | Some(AdBreakPlan {
                        slot: AdSlot::Preroll,
                        ..
                    }),
                ) if d >= 300 && rng.random_bool(0.06) => {
                    Some((f64::from(d) * rng.random_range(0.1..0.6)).round())
                }
                _ => None,
            };
            self.playhead = resume_at.unwrap_or(0.0);
            let params = self.start_params(viewer_id, resume_at.is_some());
            let custom = self.custom_metadata();
            self.emit(
                "sessionStart",
                json!({"params": params, "customMetadata": custom}),
            );

            match plan.fate {
                Fate::ExitBeforeStart => {
                    self.wait(rng.random_range(1000..8000));
                    self.close("sessionEnd");
                    return;
                }
                Fate::FatalError { before_start: true } => {
                    self.wait(rng.random_range(300..startup.max(301)));
                    self.fatal_error(rng, true);
                    return;
                }
                _ => {}
            }

            self.rung = ((plan.network * 4.0) as usize).min(self.max_rung);
            if let Some(AdBreakPlan {
                slot: AdSlot::Preroll,
                ads,
            }) = plan.ad_break
            {
                self.ad_break(rng, ads, Some((startup, report_startup)));
                self.emit("play", Value::Null);
            } else {
                self.wait(startup);
                let qoe = if report_startup {
                    json!({"qoeData": {"media.qoe.timeToStart": startup}})
                } else {
                    Value::Null
                };
                self.emit("play", qoe);
                self.pinger = Pinger::every(self.now, CONTENT_PING_MS);
            }
            self.motion = Motion::Content;
            let rung = self.rung;
            self.bitrate_change(rung);
            if let Some(c) = self.chapter_of(self.playhead) {
                self.chapter_start(c);
            }
            self.content(rng);
        }

        /// An ad break; `startup` (ms, and whether `play` reports it) is the
        /// wait for the first frame of a preroll. The caller resumes the
        /// content with `play`.
        fn ad_break(&mut self, rng: &mut impl Rng, ads: u8, startup: Option<(i64, bool)>) {
            let (pod_index, name) = if startup.is_some() {
                (0, "preroll")
            } else {
                (1, "midroll")
            };
            self.emit(
                "adBreakStart",
                json!({"params": {
                    "media.ad.podIndex": pod_index,
                    "media.ad.podSecond": self.reported_playhead(),
                    "media.ad.podFriendlyName": name,
                }}),
            );
            self.motion = Motion::Still;
            self.pinger = Pinger::every(self.now, AD_PING_MS);
            for i in 0..ads {
                let (ad_id, length) = ADS[rng.random_range(0..ADS.len())];
                let (advertiser, campaign) = advertiser(ad_id);
                let mut ad = json!({"params": {
                    "media.ad.podPosition": i + 1,
                    "media.ad.id": ad_id,
                    "media.ad.length": length,
                    "media.ad.playerName": AD_PLAYER,
                    "media.ad.name": ad_id.trim_start_matches("ad-"),
                    "media.ad.advertiser": advertiser,
                    "media.ad.campaignId": campaign,
                    "media.ad.creativeId": format!("cr-{ad_id}"),
                }});
                if rng.random_bool(0.5) {
                    ad["customMetadata"] = json!({"ad.format": "linear", "ad.campaign": campaign});
                }
                self.emit("adStart", ad);
                let (load, reported) = match (i, startup) {
                    (0, Some((ms, report))) => (ms, report),
                    _ => (rng.random_range(50..600), false),
                };
                self.wait(load);
                let qoe = if reported {
                    json!({"qoeData": {"media.qoe.timeToStart": load}})
                } else {
                    Value::Null
                };
                self.emit("play", qoe);
                self.motion = Motion::Ad;
                // Ads of 20 s or more are skippable after 5 s; some viewers do.
                let skip_at = (length >= 20.0 && rng.random_bool(0.35))
                    .then(|| 5.0 + rng.random::<f64>() * (length - 5.0) * 0.6);
                match skip_at {
                    Some(s) => {
                        self.wait((s * 1000.0).round() as i64);
                        self.emit("adSkip", Value::Null);
                    }
                    None => {
                        self.wait((length * 1000.0).round() as i64);
                        self.emit("adComplete", Value::Null);
                    }
                }
                self.motion = Motion::Still;
            }
            self.emit("adBreakComplete", Value::Null);
            self.pinger = Pinger::every(self.now, CONTENT_PING_MS);
        }

        /// Main content, from the first frame to the close.
        fn content(&mut self, rng: &mut impl Rng) {
            let plan = self.plan;
            let duration = self.duration();
            let mut midroll = match plan.ad_break {
                Some(AdBreakPlan {
                    slot: AdSlot::Midroll { at_s },
                    ads,
                }) => Some((at_s, ads)),
                _ => None,
            };
            let fatal_at = matches!(
                plan.fate,
                Fate::FatalError {
                    before_start: false
                }
            )
            .then_some(plan.watch_s);
            let watch_goal = match plan.fate {
                Fate::Ended => f64::INFINITY,
                _ => plan.watch_s,
            };
            // Random interruptions per second of playing, by kind.
            let poor = 1.0 - plan.network;
            let rates = [
                ("pause", 1.0 / 240.0),
                ("stall", (0.1 + 1.5 * poor) / 300.0),
                ("seek", if duration.is_some() { 1.0 / 200.0 } else { 0.0 }),
                ("switch", 1.0 / 90.0),
                ("error", 1.0 / 1500.0),
                ("state", 1.0 / 400.0),
                ("freeze", (0.02 + 0.3 * poor) / 1000.0),
            ];
            let hazard: f64 = rates.iter().map(|(_, r)| r).sum();
            let mut watched = 0.0;

            loop {
                // Seconds of playing until each thing that may happen next.
                let to_goal = watch_goal - watched;
                let to_end = duration.map_or(f64::INFINITY, |d| d - self.playhead);
                let to_chapter_end = self.chapter.map_or(f64::INFINITY, |c| {
                    let (offset, length) = self.chapters[c];
                    offset + length - self.playhead
                });
                let to_fatal = fatal_at.map_or(f64::INFINITY, |f| f - watched);
                let to_midroll =
                    midroll.map_or(f64::INFINITY, |(at, _)| (at - self.playhead).max(0.0));
                let to_event = -(1.0 - rng.random::<f64>()).ln() / hazard;
                let step = to_goal
                    .min(to_end)
                    .min(to_chapter_end)
                    .min(to_fatal)
                    .min(to_midroll)
                    .min(to_event)
                    .max(0.0);
                // Rounded up, so the loop always moves on.
                let ms = (step * 1000.0).ceil() as i64;
                self.wait(ms);
                watched += ms as f64 / 1000.0;

                if let Some(c) = self.chapter {
                    let (offset, length) = self.chapters[c];
                    if self.playhead >= offset + length - 0.0005 {
                        self.emit("chapterComplete", Value::Null);
                        self.chapter = None;
                        if c + 1 < self.chapters.len() {
                            self.chapter_start(c + 1);
                        }
                    }
                }
                if let Some(d) = duration.filter(|d| self.playhead >= d - 0.0005) {
                    self.playhead = d;
                    self.close("sessionComplete");
                    return;
                }
                if step >= to_fatal {
                    self.fatal_error(rng, false);
                    return;
                }
                if step >= to_goal {
                    if rng.random_bool(0.3) {
                        self.emit("pauseStart", Value::Null);
                        self.motion = Motion::Still;
                        self.wait(rng.random_range(500..30_000));
                    }
                    self.close("sessionEnd");
                    return;
                }
                if let Some((at, ads)) = midroll {
                    if self.playhead >= at {
                        midroll = None;
                        self.ad_break(rng, ads, None);
                        self.emit("play", Value::Null);
                        self.motion = Motion::Content;
                        continue;
                    }
                }
                if step < to_event {
                    continue;
                }
                // A random interruption, drawn by its share of the hazard.
                let mut x = rng.random::<f64>() * hazard;
                let mut kind = rates[0].0;
                for (name, r) in rates {
                    kind = name;
                    if x < r {
                        break;
                    }
                    x -= r;
                }
                match kind {
                    "pause" => {
                        self.emit("pauseStart", Value::Null);
                        self.motion = Motion::Still;
                        let ms = (1500.0 + 88_500.0 * rng.random::<f64>().powi(2)) as i64;
                        self.wait(ms);
                        if rng.random_bool(0.12) {
                            self.close("sessionEnd");
                            return;
                        }
                        self.emit("play", Value::Null);
                        self.motion = Motion::Content;
                    }
                    "stall" => {
                        self.emit("bufferStart", Value::Null);
                        self.motion = Motion::Still;
                        let ms = 300.0 + (2000.0 + 6000.0 * poor) * rng.random::<f64>().powi(2);
                        self.wait(ms as i64);
                        if self.rung > 0 && rng.random_bool(0.5) {
                            let rung = self.rung - 1;
                            self.bitrate_change(rung);
                        }
                        self.emit("play", Value::Null);
                        self.motion = Motion::Content;
                    }
                    "seek" => {
                        let Some(d) = duration else { continue };
                        let target = if rng.random_bool(0.65) {
                            self.playhead + rng.random_range(10.0..120.0)
                        } else {
                            self.playhead - rng.random_range(5.0..60.0)
                        };
                        let target = target.clamp(0.0, (d - 2.0).max(0.0)).round();
                        // A seek is a pause, then play somewhere else.
                        self.emit("pauseStart", Value::Null);
                        self.motion = Motion::Still;
                        self.wait(rng.random_range(100..1500));
                        let from = self.chapter;
                        let to = self.chapter_of(target);
                        if from.is_some() && from != to {
                            self.emit("chapterSkip", Value::Null);
                            self.chapter = None;
                        }
                        self.playhead = target;
                        self.emit("play", Value::Null);
                        self.motion = Motion::Content;
                        if let Some(c) = to.filter(|_| from != to) {
                            self.chapter_start(c);
                        }
                    }
                    "switch" => {
                        let up = rng.random_bool(0.3 + 0.5 * plan.network);
                        let rung = if up {
                            (self.rung + 1).min(self.max_rung)
                        } else {
                            self.rung.saturating_sub(1)
                        };
                        if rung != self.rung {
                            self.bitrate_change(rung);
                        }
                    }
                    "error" => {
                        // Recovered: the player retries and plays on.
                        let (code, source) = [
                            ("fragLoadTimeOut", "external"),
                            ("levelLoadError", "external"),
                            ("bufferStalledError", "player"),
                        ][rng.random_range(0..3)];
                        self.error(rng, code, source);
                        self.motion = Motion::Still;
                        self.wait(rng.random_range(500..4000));
                        self.emit("play", Value::Null);
                        self.motion = Motion::Content;
                    }
                    "state" => {
                        let total: u32 = STATES.iter().map(|(_, w)| w).sum();
                        let mut key = rng.random_range(0..total);
                        let mut i = 0;
                        while key >= STATES[i].1 {
                            key -= STATES[i].1;
                            i += 1;
                        }
                        let on = !self.states[i];
                        self.states[i] = on;
                        self.emit(
                            if on { "stateStart" } else { "stateEnd" },
                            json!({"params": {"media.state.name": STATES[i].0}}),
                        );
                    }
                    _ => {
                        // The picture freezes and the player reports
                        // nothing: only the pings' playhead stops moving.
                        self.motion = Motion::Still;
                        self.wait(rng.random_range(20_000..45_000));
                        self.motion = Motion::Content;
                    }
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::VIDEOS;
        use super::*;
        use playhead_protocols::media_collection::decode_event;
        use rand::rngs::StdRng;
        use rand::SeedableRng;
        use std::collections::HashSet;

        const START: i64 = 1_700_000_000_000;

        /// What `sessionStart` must carry (`spec/protocols.md` §2).
        const REQUIRED: [&str; 8] = [
            "analytics.trackingServer",
            "analytics.reportSuite",
            "visitor.marketingCloudOrgId",
            "media.id",
            "media.length",
            "media.contentType",
            "media.playerName",
            "media.channel",
        ];

        fn session(seed: u64) -> AdobeSessionPlan {
            plan_session(&mut StdRng::seed_from_u64(seed), START)
        }

        fn types(plan: &AdobeSessionPlan) -> Vec<&str> {
            plan.events.iter().map(PlannedEvent::event_type).collect()
        }

        #[test]
        fn a_session_starts_with_session_start_and_closes_once() {
            for seed in 0..500 {
                let p = session(seed);
                let t = types(&p);
                assert_eq!(t[0], "sessionStart", "seed {seed}");
                assert!(
                    matches!(t[t.len() - 1], "sessionComplete" | "sessionEnd"),
                    "seed {seed}: {t:?}"
                );
                assert_eq!(t.iter().filter(|x| **x == "sessionStart").count(), 1);
                let closes = p.events.iter().filter(|e| e.is_close()).count();
                assert_eq!(closes, 1, "seed {seed}: {t:?}");
                assert_eq!(p.events[0].at_ms, 0);
                assert_eq!(p.end_ms(), p.events[p.events.len() - 1].at_ms);
                // One event per millisecond at most: the server orders by ts.
                for w in p.events.windows(2) {
                    assert!(
                        w[0].at_ms < w[1].at_ms,
                        "seed {seed}: {} then {}",
                        w[0].body,
                        w[1].body
                    );
                }
                for e in &p.events {
                    assert_eq!(e.ts(), START + e.at_ms, "seed {seed}");
                    let ph = e.playhead();
                    match p.video.duration_s {
                        Some(d) => assert!((0.0..=f64::from(d)).contains(&ph), "seed {seed}: {ph}"),
                        None => assert!((0.0..86_400.0).contains(&ph), "seed {seed}: {ph}"),
                    }
                }
            }
        }

        #[test]
        fn every_planned_event_is_accepted_by_the_decoder() {
            for seed in 0..500 {
                let mut p = session(seed);
                p.set_report_suite("rs-load-test");
                for e in &p.events {
                    let d = decode_event(&e.body, START, 0)
                        .unwrap_or_else(|err| panic!("seed {seed}: {}: {err}", e.body));
                    assert_eq!(d.event_type, e.event_type());
                }
                let params = p.events[0].body["params"].as_object().unwrap();
                for key in REQUIRED {
                    let v = &params[key];
                    assert!(
                        v.as_str().is_some_and(|s| !s.is_empty()) || v.is_number(),
                        "seed {seed}: {key} = {v}"
                    );
                }
                let start = decode_event(&p.events[0].body, START, 0).unwrap();
                assert_eq!(start.report_suite.as_deref(), Some("rs-load-test"));
                assert_eq!(start.meta.video_id.as_deref(), Some(p.video.id));
                assert_eq!(start.meta.viewer_id.as_deref(), Some(p.viewer_id.as_str()));
                assert!(!start.meta.custom.is_empty(), "seed {seed}");

                // Starting over in the middle: a resumed sessionStart there, then play.
                let at = &p.events[p.events.len() / 2];
                let restart = p.restart_body(at);
                let d = decode_event(&restart, START, 0).unwrap();
                assert_eq!(d.event_type, "sessionStart");
                assert!(d.resumed);
                assert_eq!(d.report_suite.as_deref(), Some("rs-load-test"));
                assert_eq!(restart["playerTime"], at.body["playerTime"]);
                let play = decode_event(&p.restart_play_body(at), START, 0).unwrap();
                assert_eq!(play.event_type, "play");
            }
        }

        #[test]
        fn pings_every_10_s_on_content_and_every_second_in_ads() {
            let (mut content_pings, mut ad_pings) = (0, 0);
            for seed in 0..500 {
                let p = session(seed);
                let mut in_break = false;
                // The ping timer's last start or tick.
                let mut anchor: Option<i64> = None;
                let mut prev_at = 0;
                for e in &p.events {
                    let interval = if in_break {
                        AD_PING_MS
                    } else {
                        CONTENT_PING_MS
                    };
                    // Never silent for longer than a ping interval.
                    assert!(
                        e.at_ms - prev_at <= interval,
                        "seed {seed}: {} ms before {}",
                        e.at_ms - prev_at,
                        e.body
                    );
                    prev_at = e.at_ms;
                    match e.event_type() {
                        "ping" => {
                            let a = anchor.expect("a ping before playback");
                            assert_eq!(e.at_ms - a, interval, "seed {seed}: {}", e.body);
                            assert!(e.body.get("params").is_none());
                            anchor = Some(e.at_ms);
                            if in_break {
                                ad_pings += 1;
                            } else {
                                content_pings += 1;
                            }
                        }
                        "adBreakStart" => {
                            in_break = true;
                            anchor = Some(e.at_ms);
                        }
                        "adBreakComplete" => {
                            in_break = false;
                            anchor = Some(e.at_ms);
                        }
                        "play" if anchor.is_none() => anchor = Some(e.at_ms),
                        _ => {}
                    }
                }
                assert!(!in_break, "seed {seed}: an ad break left open");
            }
            assert!(content_pings > 1000, "{content_pings}");
            assert!(ad_pings > 500, "{ad_pings}");
        }

        #[test]
        fn population_has_every_kind_of_session() {
            let plans: Vec<AdobeSessionPlan> = (0..1000).map(session).collect();
            let mut found: HashSet<&str> = HashSet::new();
            let (mut completes, mut leaves, mut ad_breaks, mut chaptered) = (0, 0, 0, 0);
            for p in &plans {
                let t = types(p);
                let ev = &p.events;
                match t[t.len() - 1] {
                    "sessionComplete" => {
                        found.insert("complete");
                        completes += 1;
                        let d = f64::from(p.video.duration_s.expect("a VOD completes"));
                        assert_eq!(ev[ev.len() - 1].playhead(), d);
                    }
                    _ => {
                        found.insert("leave");
                        leaves += 1;
                    }
                }
                if t.len() == 2 {
                    found.insert("exit before play");
                }
                if t.contains(&"adBreakStart") {
                    found.insert("ad break");
                    ad_breaks += 1;
                    assert!(t.contains(&"adStart") && t.contains(&"adBreakComplete"));
                    assert!(t.contains(&"adComplete") || t.contains(&"adSkip"));
                    if t[1] == "adBreakStart" {
                        found.insert("preroll");
                    } else {
                        found.insert("midroll");
                    }
                }
                if t.contains(&"adSkip") {
                    found.insert("ad skip");
                }
                if t.contains(&"bufferStart") {
                    found.insert("stall");
                }
                if t.contains(&"bitrateChange") {
                    found.insert("bitrate change");
                }
                if t.contains(&"chapterStart") {
                    chaptered += 1;
                    found.insert("chapters");
                    assert!(p.video.duration_s.is_some_and(|d| d >= CHAPTERS_FROM_S));
                }
                for kind in ["chapterComplete", "chapterSkip", "stateStart", "stateEnd"] {
                    if t.contains(&kind) {
                        found.insert(kind);
                    }
                }
                let start = &ev[0].body;
                if start["params"]["media.contentType"] == "Live" {
                    found.insert("live");
                }
                if start["params"]["media.resume"] == true {
                    found.insert("resume");
                    assert!(ev[0].playhead() > 0.0);
                }
                if start["customMetadata"]["referrer"].is_string() {
                    found.insert("referrer");
                }
                if ev
                    .iter()
                    .any(|e| e.body["qoeData"]["media.qoe.timeToStart"].is_number())
                {
                    found.insert("time to start");
                }
                // Pauses and seeks: pauseStart, then play at the same or another playhead.
                for (i, e) in ev.iter().enumerate() {
                    match e.event_type() {
                        "pauseStart" => {
                            let next = ev[i + 1..]
                                .iter()
                                .find(|n| !matches!(n.event_type(), "ping" | "chapterSkip"));
                            match next {
                                Some(n) if n.event_type() == "play" => {
                                    if n.playhead() == e.playhead() {
                                        found.insert("pause");
                                    } else {
                                        found.insert("seek");
                                    }
                                }
                                Some(n) => {
                                    assert_eq!(n.event_type(), "sessionEnd", "{}", n.body);
                                    found.insert("leave while paused");
                                }
                                None => panic!("pauseStart last"),
                            }
                        }
                        "error" => {
                            if e.body["qoeData"]["media.qoe.errorID"].is_string() {
                                found.insert("errorID");
                            } else {
                                assert!(e.body["params"]["media.errorId"].is_string());
                                found.insert("errorId alias");
                            }
                            if t[i + 1..].contains(&"play") {
                                found.insert("recovered error");
                            } else {
                                found.insert("fatal error");
                                assert_eq!(t[t.len() - 1], "sessionEnd");
                            }
                        }
                        _ => {}
                    }
                }
                if frozen(p) {
                    found.insert("frozen playhead");
                }
            }
            for kind in [
                "complete",
                "leave",
                "exit before play",
                "ad break",
                "preroll",
                "midroll",
                "ad skip",
                "stall",
                "bitrate change",
                "chapters",
                "chapterComplete",
                "chapterSkip",
                "stateStart",
                "stateEnd",
                "live",
                "resume",
                "referrer",
                "time to start",
                "pause",
                "seek",
                "leave while paused",
                "errorID",
                "errorId alias",
                "recovered error",
                "fatal error",
                "frozen playhead",
            ] {
                assert!(found.contains(kind), "no `{kind}` in 1000 sessions");
            }
            assert!((150..=500).contains(&completes), "{completes} completes");
            assert_eq!(completes + leaves, plans.len());
            assert!((120..=300).contains(&ad_breaks), "{ad_breaks} ad breaks");
            assert!(chaptered >= 50, "{chaptered} sessions with chapters");

            let viewers: HashSet<&str> = plans.iter().map(|p| p.viewer_id.as_str()).collect();
            assert!(viewers.len() < plans.len() / 2, "{} viewers", viewers.len());
            assert!(viewers
                .iter()
                .all(|v| v.len() == 38 && v.bytes().all(|b| b.is_ascii_digit())));
            let videos: HashSet<&str> = plans.iter().map(|p| p.video.id).collect();
            assert_eq!(videos.len(), VIDEOS.len());
        }

        /// A frozen picture: three pings in a row at one playhead while
        /// content plays (the vendor's stall rule).
        fn frozen(p: &AdobeSessionPlan) -> bool {
            let mut playing = false;
            let mut in_break = false;
            let mut run = 0;
            let mut last = None;
            for e in &p.events {
                match e.event_type() {
                    "play" => playing = true,
                    "pauseStart" | "bufferStart" | "error" => playing = false,
                    "adBreakStart" => in_break = true,
                    "adBreakComplete" => in_break = false,
                    "ping" if playing && !in_break => {
                        if last == Some(e.playhead()) {
                            run += 1;
                            if run >= 2 {
                                return true;
                            }
                        } else {
                            run = 0;
                        }
                        last = Some(e.playhead());
                    }
                    _ => {}
                }
            }
            false
        }

        /// The planned sessions folded by the engine, as the server would:
        /// what they meant to show is what it measures.
        #[test]
        fn the_engine_measures_what_was_planned() {
            use playhead_engine::{Playback, Rules};
            use playhead_model::Protocol;
            let mut stalled = 0;
            for seed in 0..500 {
                let p = session(seed);
                let decoded: Vec<_> = p
                    .events
                    .iter()
                    .map(|e| decode_event(&e.body, START + e.at_ms, 0).unwrap())
                    .collect();
                let mut meta = decoded[0].meta.clone();
                if decoded[0].resumed {
                    // As the server records `media.resume`.
                    meta.dimensions.insert("resumed".into(), "true".into());
                }
                let mut events: Vec<_> = decoded.into_iter().flat_map(|d| d.events).collect();
                let rules = Rules::for_session(Protocol::MediaCollection, &meta);
                let playback = Playback::replay(rules, &mut events);
                // Closed by its sessionComplete or sessionEnd.
                assert!(playback.closed_at().is_some(), "seed {seed}");
                let m = playback.metrics(&meta, playback.closed_at());
                let t = types(&p);
                let count = |k: &str| t.iter().filter(|x| **x == k).count() as u64;
                let fatal = t
                    .iter()
                    .rposition(|x| *x == "error")
                    .is_some_and(|i| !t[i..].contains(&"play"));
                assert_eq!(m.completed, t.contains(&"sessionComplete"), "seed {seed}");
                assert_eq!(m.failed, fatal, "seed {seed}: {t:?}");
                assert_eq!(m.exit_before_start, t.len() == 2, "seed {seed}: {t:?}");
                assert_eq!(m.ad_breaks, count("adBreakStart"), "seed {seed}");
                assert_eq!(m.ads_started, count("adStart"), "seed {seed}");
                assert_eq!(m.ads_skipped, count("adSkip"), "seed {seed}");
                assert_eq!(m.ads_ignored, 0, "seed {seed}");
                assert_eq!(m.rebuffer_count, count("bufferStart"), "seed {seed}");
                let resumed = p.events[0].body["params"]["media.resume"] == true;
                assert_eq!(m.resumed, resumed, "seed {seed}");
                let content_play = t.contains(&"bitrateChange");
                assert_eq!(m.content_started, content_play, "seed {seed}: {t:?}");
                // No stall but where the picture froze (or an error held it).
                if m.stall_count > 0 {
                    stalled += 1;
                    assert!(frozen(&p) || t.contains(&"error"), "seed {seed}: {t:?}");
                }
                if frozen(&p) {
                    assert!(m.stall_count > 0, "seed {seed}");
                }
            }
            assert!(
                stalled > 0 && stalled < 50,
                "{stalled} sessions with stalls"
            );
        }

        #[test]
        fn the_catalogue_has_adobe_metadata() {
            for v in VIDEOS {
                assert_ne!(about(v.id).name, "Untitled", "{}", v.id);
            }
        }

        #[test]
        fn same_seed_same_session() {
            assert_eq!(session(42), session(42));
            assert_ne!(session(42), session(43));
        }

        #[test]
        fn a_viewer_keeps_their_ecid() {
            assert_eq!(ecid("viewer-0001"), ecid("viewer-0001"));
            assert_ne!(ecid("viewer-0001"), ecid("viewer-0002"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    const START: i64 = 1_700_000_000_000;

    fn session(seed: u64) -> SessionPlan {
        plan_session(&mut StdRng::seed_from_u64(seed), START)
    }

    fn types(plan: &SessionPlan) -> Vec<&str> {
        plan.events()
            .map(|e| e["type"].as_str().unwrap_or(""))
            .collect()
    }

    #[test]
    fn seqs_are_one_to_n_without_gaps() {
        for seed in 0..300 {
            let plan = session(seed);
            let seqs: Vec<u64> = plan.events().map(|e| e["seq"].as_u64().unwrap()).collect();
            let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, expected, "seed {seed}");
        }
    }

    #[test]
    fn times_are_ordered_and_never_after_the_send() {
        for seed in 0..300 {
            let plan = session(seed);
            let mut last_ts = START;
            let mut last_at = 0;
            for r in &plan.requests {
                assert!(r.at_ms >= last_at, "seed {seed}: requests out of order");
                last_at = r.at_ms;
                assert!(!r.events().is_empty(), "seed {seed}: empty batch");
                for e in r.events() {
                    let ts = e["ts"].as_i64().unwrap();
                    assert!(ts >= last_ts, "seed {seed}: ts went back at {e}");
                    assert!(ts <= START + r.at_ms, "seed {seed}: ts after send at {e}");
                    last_ts = ts;
                }
            }
        }
    }

    #[test]
    fn every_session_ends_with_viewend_flushed_at_once() {
        for seed in 0..300 {
            let plan = session(seed);
            let last = plan.requests.last().expect("at least one request");
            let last_event = last.events().last().unwrap();
            assert_eq!(last_event["type"], "viewend", "seed {seed}");
            assert_eq!(
                START + last.at_ms,
                last_event["ts"].as_i64().unwrap(),
                "seed {seed}: viewend waited for the timer"
            );
            assert_eq!(
                types(&plan).iter().filter(|t| **t == "viewend").count(),
                1,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn batches_follow_the_flush_timer_and_heartbeats_the_playing_time() {
        for seed in 0..100 {
            let plan = session(seed);
            let (last, timed) = plan.requests.split_last().unwrap();
            for r in timed {
                assert_eq!(r.at_ms % FLUSH_INTERVAL_MS, 0, "seed {seed}");
            }
            assert!(
                last.at_ms % FLUSH_INTERVAL_MS == 0
                    || last.events().last().unwrap()["type"] == "viewend"
            );
            for r in &plan.requests {
                assert_eq!(r.body["session"]["id"], plan.session_id.to_string());
                assert_eq!(r.user_agent, plan.user_agent);
            }
        }
        // A long view carries heartbeats with growing frame counts.
        let long = (0..200)
            .map(session)
            .find(|p| types(p).iter().filter(|t| **t == "heartbeat").count() >= 3)
            .expect("a session with heartbeats");
        let frames: Vec<u64> = long
            .events()
            .filter(|e| e["type"] == "heartbeat")
            .map(|e| e["total_frames"].as_u64().unwrap())
            .collect();
        assert!(frames.windows(2).all(|w| w[0] < w[1]), "{frames:?}");
    }

    #[test]
    fn same_seed_same_session() {
        assert_eq!(session(42), session(42));
        assert_ne!(session(42).session_id, session(43).session_id);
    }

    #[test]
    fn property_is_set_in_every_body() {
        let mut plan = session(7);
        plan.set_property("ik_test");
        assert!(plan
            .requests
            .iter()
            .all(|r| r.body["property"] == "ik_test"));
    }

    #[test]
    fn population_has_every_kind_of_view() {
        let plans: Vec<SessionPlan> = (0..1000).map(session).collect();
        let mut found: HashSet<&str> = HashSet::new();
        let mut fatal = 0;
        let mut exits = 0;
        let mut ad_breaks = 0;
        for p in &plans {
            let t = types(p);
            let first_playing = t.iter().position(|x| *x == "playing");
            if p.events()
                .any(|e| e["type"] == "error" && e["fatal"] == true)
            {
                found.insert("fatal error");
                fatal += 1;
            }
            if p.events()
                .any(|e| e["type"] == "error" && e["fatal"] == false)
            {
                found.insert("non-fatal error");
            }
            if first_playing.is_none() && t.contains(&"play") && !t.contains(&"error") {
                let ts = |ty: &str| {
                    p.events()
                        .find(|e| e["type"] == ty)
                        .and_then(|e| e["ts"].as_i64())
                        .unwrap()
                };
                assert!(ts("viewend") - ts("play") >= 1000);
                found.insert("exit before start");
                exits += 1;
            }
            if t.contains(&"adbreakstart") {
                found.insert("ad break");
                ad_breaks += 1;
                // A skip may come before the first quartile.
                assert!(t.contains(&"adstart") && t.contains(&"adbreakend"));
                assert!(t.contains(&"adcomplete") || t.contains(&"adskip"));
            }
            if t.contains(&"adquartile") {
                let quartiles: Vec<u64> = p
                    .events()
                    .filter(|e| e["type"] == "adquartile")
                    .map(|e| e["quartile"].as_u64().unwrap())
                    .collect();
                assert!(quartiles.iter().all(|q| (1..=3).contains(q)));
                if quartiles.len() == 3 {
                    found.insert("all ad quartiles");
                }
            }
            if t.contains(&"adskip") {
                found.insert("ad skip");
            }
            if first_playing.is_some_and(|i| t[i..].contains(&"waiting")) {
                found.insert("stall");
            }
            if t.windows(3).any(|w| w == ["seeking", "seeked", "playing"]) {
                found.insert("seek");
            }
            if t.contains(&"ended") {
                found.insert("ended");
            }
            if t.contains(&"pause") {
                found.insert("pause");
            }
            if t.contains(&"renditionchange") {
                found.insert("rendition change");
            }
            let meta = &p.requests[0].body["session"];
            if meta["content_type"] == "live" {
                found.insert("live");
            }
            if meta["referrer"].is_string() {
                found.insert("referrer");
            }
            assert!(meta["cdn"].is_string() && meta["custom"]["plan"].is_string());
        }
        for kind in [
            "fatal error",
            "non-fatal error",
            "exit before start",
            "ad break",
            "ad skip",
            "all ad quartiles",
            "stall",
            "seek",
            "ended",
            "pause",
            "rendition change",
            "live",
            "referrer",
        ] {
            assert!(found.contains(kind), "no `{kind}` in 1000 sessions");
        }
        assert!((10..=60).contains(&fatal), "{fatal} fatal errors in 1000");
        assert!(
            (20..=90).contains(&exits),
            "{exits} exits before start in 1000"
        );
        assert!(
            (120..=300).contains(&ad_breaks),
            "{ad_breaks} ad breaks in 1000"
        );

        let viewers: HashSet<&str> = plans.iter().map(|p| p.viewer_id.as_str()).collect();
        assert!(viewers.len() < plans.len() / 2, "{} viewers", viewers.len());
        let agents: HashSet<&str> = plans.iter().map(|p| p.user_agent).collect();
        assert_eq!(agents.len(), DEVICES.len());
        let videos: HashSet<&str> = plans.iter().map(|p| p.video_id).collect();
        assert_eq!(videos.len(), VIDEOS.len());
    }

    #[test]
    fn startup_is_between_200_and_4000_ms() {
        for seed in 0..300 {
            let plan = session(seed);
            let ts_of = |ty: &str| {
                plan.events()
                    .find(|e| e["type"] == ty)
                    .and_then(|e| e["ts"].as_i64())
            };
            if let (Some(play), Some(playing)) = (ts_of("play"), ts_of("playing")) {
                let startup = playing - play;
                assert!((200..=4000).contains(&startup), "seed {seed}: {startup} ms");
            }
        }
    }

    #[test]
    fn a_viewer_keeps_their_device() {
        let mut by_viewer = std::collections::HashMap::new();
        for seed in 0..1000 {
            let p = session(seed);
            let ua = *by_viewer.entry(p.viewer_id.clone()).or_insert(p.user_agent);
            assert_eq!(ua, p.user_agent, "{}", p.viewer_id);
        }
    }

    #[test]
    fn time_scale_compresses_the_schedule() {
        assert_eq!(time_scale(10_000, 1.0), Duration::from_secs(10));
        assert_eq!(time_scale(10_000, 10.0), Duration::from_secs(1));
        assert_eq!(time_scale(10_000, f64::INFINITY), Duration::ZERO);
        assert_eq!(time_scale(10_000, 0.0), Duration::from_secs(10));
        assert_eq!(time_scale(-5, 2.0), Duration::ZERO);
    }
}
