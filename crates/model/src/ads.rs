//! Ad schedules for the ping protocol (`spec/protocols.md` §3): breaks of
//! linear ads with their tracking URLs, as configured through the admin API
//! (JSON, or parsed from VMAP 1.0 + inline VAST) and served by preplay.
//!
//! Field names follow the preplay response (`timeOffset`, `events` keyed
//! `impressions`/`firstquartiles`/…), so an admin can post what a player gets.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a break sits in the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BreakPosition {
    Preroll,
    Midroll,
    Postroll,
}

impl BreakPosition {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakPosition::Preroll => "preroll",
            BreakPosition::Midroll => "midroll",
            BreakPosition::Postroll => "postroll",
        }
    }
}

/// The tracking URLs of one linear ad, by the preplay response's keys.
/// `impressions` holds the VAST `<Impression>` URLs and the `start`
/// tracking URLs together (both fire when the ad starts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdEvents {
    #[serde(default)]
    pub impressions: Vec<String>,
    #[serde(default)]
    pub firstquartiles: Vec<String>,
    #[serde(default)]
    pub midpoints: Vec<String>,
    #[serde(default)]
    pub thirdquartiles: Vec<String>,
    #[serde(default)]
    pub completes: Vec<String>,
}

impl AdEvents {
    /// The URLs fired at one moment of the ad: 0 = start, 1–3 = quartiles, 4 = end.
    pub fn at(&self, moment: u8) -> &[String] {
        match moment {
            0 => &self.impressions,
            1 => &self.firstquartiles,
            2 => &self.midpoints,
            3 => &self.thirdquartiles,
            _ => &self.completes,
        }
    }
}

/// The tracking URLs of a break (VMAP `breakStart`/`breakEnd`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakEvents {
    #[serde(default)]
    pub impressions: Vec<String>,
    #[serde(default)]
    pub completes: Vec<String>,
}

/// One linear ad of a break.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ad {
    /// The creative's id (VAST `Creative@id`, or the `Ad@id`).
    pub creative: String,
    /// Seconds.
    pub duration: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default)]
    pub events: AdEvents,
    /// FreeWheel parameters, passed through to the preplay response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fw_parameters: Option<BTreeMap<String, String>>,
}

/// One break of a VOD asset: at `time_offset` seconds of content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdBreak {
    #[serde(default = "default_position")]
    pub position: BreakPosition,
    /// Content time, seconds (a postroll's is the content duration).
    #[serde(rename = "timeOffset")]
    pub time_offset: f64,
    #[serde(default)]
    pub events: BreakEvents,
    pub ads: Vec<Ad>,
}

fn default_position() -> BreakPosition {
    BreakPosition::Midroll
}

impl AdBreak {
    /// Seconds: the sum of its ads.
    pub fn duration(&self) -> f64 {
        self.ads.iter().map(|a| a.duration).sum()
    }
}

/// One break of a live channel, at a wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveBreak {
    /// Unique within the channel; names the break in tracking (`b-<id>`).
    pub id: String,
    /// Start, ms since the epoch.
    pub start_ms: i64,
    /// Seconds; `None` while the break's end is not known yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default)]
    pub events: BreakEvents,
    #[serde(default)]
    pub ads: Vec<Ad>,
}

/// A VOD asset: content duration, playback URL and its breaks, in content order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub id: String,
    pub property: String,
    pub duration_s: f64,
    pub play_url: String,
    pub breaks: Vec<AdBreak>,
}

/// A live channel and its break plan, in start order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub property: String,
    pub play_url: String,
    pub breaks: Vec<LiveBreak>,
}

/// The ad server is asked for this much when a live break's length is not
/// known (`spec/protocols.md` §3: the 240-s default request).
pub const UNKNOWN_BREAK_REQUEST_S: f64 = 240.0;
