//! Simulated viewers speaking the native protocol (`spec/protocols.md` §6).
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
fn pick<'t, T>(rng: &mut impl Rng, items: &'t [T], weight: impl Fn(&T) -> u32) -> &'t T {
    let total = total_weight(items, &weight);
    pick_by_key(items, rng.random_range(0..total), weight)
}

fn total_weight<T>(items: &[T], weight: impl Fn(&T) -> u32) -> u64 {
    items.iter().map(|i| u64::from(weight(i))).sum()
}

/// The item whose cumulative-weight interval holds `key` (< the total weight).
fn pick_by_key<T>(items: &[T], mut key: u64, weight: impl Fn(&T) -> u32) -> &T {
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
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
