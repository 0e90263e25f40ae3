//! The ping protocol (Uplynk Preplay + Ping compatible, `spec/protocols.md`
//! §3): query strings of preplay and ping, and the ad schedules the admin
//! API takes (JSON breaks, or VMAP 1.0 with inline VAST: [`vmap`]).
//!
//! Pure: the timeline and the beacons are the engine's and the server's.

pub mod vmap;

use crate::raw::ProtocolError;
use playhead_model::ads::{AdBreak, BreakPosition, LiveBreak};
use serde_json::Value;

/// Feature bits of `ad.pingf`.
pub const FEATURE_AD_IMPRESSIONS: u8 = 1;
pub const FEATURE_VIDEO_VIEWS: u8 = 2;
pub const FEATURE_LINEAR_AD_DATA: u8 = 4;

/// What preplay was asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PreplayQuery {
    /// `ad`: the ad configuration's name (kept as session data).
    pub ad: Option<String>,
    /// `ad.cping=1` (or the `ad.pingc` typo): ping enabled.
    pub ping: bool,
    /// `ad.pingf` bitmask; when absent: 1|2 for VOD, 4 for live.
    pub features: Option<u8>,
    /// `ad.sssb=1`: the client fires the beacons, not the server.
    pub suppress_server_beacons: bool,
    /// Live: `ts`/`endts` (Unix seconds) select past breaks for the answer.
    pub ts: Option<f64>,
    pub endts: Option<f64>,
}

impl PreplayQuery {
    /// The features in force for a VOD or live session.
    pub fn features_for(&self, live: bool) -> u8 {
        self.features.unwrap_or(if live {
            FEATURE_LINEAR_AD_DATA
        } else {
            FEATURE_AD_IMPRESSIONS | FEATURE_VIDEO_VIEWS
        })
    }
}

fn flag(name: &str, value: &str) -> Result<bool, ProtocolError> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" | "" => Ok(false),
        other => Err(ProtocolError::invalid(
            name,
            format!("`{other}` is not 0 or 1"),
        )),
    }
}

fn number(name: &str, value: &str) -> Result<f64, ProtocolError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| ProtocolError::invalid(name, format!("`{value}` is not a number ≥ 0")))
}

/// Decode a preplay query string (without `?`).
pub fn decode_preplay(query: &str) -> Result<PreplayQuery, ProtocolError> {
    let mut q = PreplayQuery::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "ad" => q.ad = Some(v.into_owned()).filter(|s| !s.is_empty()),
            "ad.cping" | "ad.pingc" => q.ping |= flag(&k, &v)?,
            "ad.pingf" => {
                let f = v.trim().parse::<u8>().ok().filter(|f| *f <= 7).ok_or_else(|| {
                    ProtocolError::invalid(
                        "ad.pingf",
                        format!("`{v}` is not a feature bitmask (0–7: 1 ad impressions, 2 video views, 4 linear ad data)"),
                    )
                })?;
                q.features = Some(f);
            }
            "ad.sssb" => q.suppress_server_beacons = flag("ad.sssb", &v)?,
            "ts" => q.ts = Some(number("ts", &v)?),
            "endts" => q.endts = Some(number("endts", &v)?),
            _ => {}
        }
    }
    Ok(q)
}

/// `ev` of a ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingEv {
    Start,
    Seek,
}

/// A decoded ping query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingQuery {
    /// `v`: 2 or 3.
    pub version: u8,
    /// `pt`: player time, seconds.
    pub pt: f64,
    pub ev: Option<PingEv>,
    /// `ft`: the position before a seek.
    pub ft: Option<f64>,
}

/// Decode a ping query string: `v` (2|3) and `pt` are required.
pub fn decode_ping(query: &str) -> Result<PingQuery, ProtocolError> {
    let (mut version, mut pt, mut ev, mut ft) = (None, None, None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "v" => {
                version = Some(match v.as_ref() {
                    "2" => 2,
                    "3" => 3,
                    other => {
                        return Err(ProtocolError::invalid(
                            "v",
                            format!("`{other}` is not a ping version (2 or 3)"),
                        ))
                    }
                })
            }
            "pt" => pt = Some(number("pt", &v)?),
            "ft" => ft = Some(number("ft", &v)?),
            "ev" => {
                ev = match v.as_ref() {
                    "start" => Some(PingEv::Start),
                    "seek" => Some(PingEv::Seek),
                    "" => None,
                    other => {
                        return Err(ProtocolError::invalid(
                            "ev",
                            format!("`{other}` is not an event (start or seek)"),
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(PingQuery {
        version: version.ok_or_else(|| ProtocolError::invalid("v", "missing (2 or 3)"))?,
        pt: pt.ok_or_else(|| ProtocolError::invalid("pt", "missing (player time, seconds)"))?,
        ev,
        ft,
    })
}

/// Validate an asset's JSON breaks (`ad_schedule`) for content of
/// `duration_s` seconds. Field names in errors are paths like
/// `ad_schedule[1].ads[0].duration`.
pub fn decode_schedule(value: &Value, duration_s: f64) -> Result<Vec<AdBreak>, ProtocolError> {
    let items = value
        .as_array()
        .ok_or_else(|| ProtocolError::invalid("ad_schedule", "must be an array of breaks"))?;
    let mut breaks = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("ad_schedule[{i}]");
        let mut b: AdBreak = serde_json::from_value(item.clone())
            .map_err(|e| ProtocolError::invalid(&path, e.to_string()))?;
        if !b.time_offset.is_finite() || b.time_offset < 0.0 || b.time_offset > duration_s {
            return Err(ProtocolError::invalid(
                format!("{path}.timeOffset"),
                format!("must be within 0..{duration_s} (content seconds)"),
            ));
        }
        if item.get("position").is_none() {
            b.position = if b.time_offset == 0.0 {
                BreakPosition::Preroll
            } else if b.time_offset >= duration_s {
                BreakPosition::Postroll
            } else {
                BreakPosition::Midroll
            };
        }
        if b.ads.is_empty() {
            return Err(ProtocolError::invalid(
                format!("{path}.ads"),
                "a break needs at least one ad",
            ));
        }
        check_urls(&format!("{path}.events.impressions"), &b.events.impressions)?;
        check_urls(&format!("{path}.events.completes"), &b.events.completes)?;
        for (n, ad) in b.ads.iter().enumerate() {
            check_ad(&format!("{path}.ads[{n}]"), ad)?;
        }
        breaks.push(b);
    }
    Ok(breaks)
}

fn check_ad(path: &str, ad: &playhead_model::ads::Ad) -> Result<(), ProtocolError> {
    if !ad.duration.is_finite() || ad.duration <= 0.0 {
        return Err(ProtocolError::invalid(
            format!("{path}.duration"),
            "must be > 0 (seconds)",
        ));
    }
    if ad.creative.is_empty() {
        return Err(ProtocolError::invalid(
            format!("{path}.creative"),
            "must not be empty",
        ));
    }
    let e = &ad.events;
    for (name, urls) in [
        ("impressions", &e.impressions),
        ("firstquartiles", &e.firstquartiles),
        ("midpoints", &e.midpoints),
        ("thirdquartiles", &e.thirdquartiles),
        ("completes", &e.completes),
    ] {
        check_urls(&format!("{path}.events.{name}"), urls)?;
    }
    Ok(())
}

/// Tracking URLs must be absolute http(s) URLs.
pub fn check_urls(path: &str, urls: &[String]) -> Result<(), ProtocolError> {
    for (i, url) in urls.iter().enumerate() {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && url.len() > "https://".len()
            && !url.contains(char::is_whitespace);
        if !ok {
            return Err(ProtocolError::invalid(
                format!("{path}[{i}]"),
                format!("`{url}` is not an absolute http(s) URL"),
            ));
        }
    }
    Ok(())
}

/// Validate a live channel's break plan (`breaks` of `PUT /admin/v1/channels/{id}`):
/// `id`, `start_ms`, optional `duration` (seconds; absent while unknown),
/// `events`, `ads`. Ids are unique.
pub fn decode_live_breaks(value: &Value) -> Result<Vec<LiveBreak>, ProtocolError> {
    let items = value
        .as_array()
        .ok_or_else(|| ProtocolError::invalid("breaks", "must be an array of breaks"))?;
    let mut out: Vec<LiveBreak> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("breaks[{i}]");
        let b: LiveBreak = serde_json::from_value(item.clone())
            .map_err(|e| ProtocolError::invalid(&path, e.to_string()))?;
        if b.id.is_empty() || out.iter().any(|o| o.id == b.id) {
            return Err(ProtocolError::invalid(
                format!("{path}.id"),
                "must be non-empty and unique",
            ));
        }
        if let Some(d) = b.duration {
            if !d.is_finite() || d <= 0.0 {
                return Err(ProtocolError::invalid(
                    format!("{path}.duration"),
                    "must be > 0 (seconds)",
                ));
            }
        }
        check_urls(&format!("{path}.events.impressions"), &b.events.impressions)?;
        check_urls(&format!("{path}.events.completes"), &b.events.completes)?;
        for (n, ad) in b.ads.iter().enumerate() {
            check_ad(&format!("{path}.ads[{n}]"), ad)?;
        }
        out.push(b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preplay_flags_and_typo() {
        let q = decode_preplay("ad=fw&ad.pingc=1&ad.pingf=5&ad.sssb=1").unwrap();
        assert!(q.ping && q.suppress_server_beacons);
        assert_eq!(q.features, Some(5));
        assert_eq!(q.ad.as_deref(), Some("fw"));
        let q = decode_preplay("ad.cping=1").unwrap();
        assert_eq!(q.features_for(false), 3);
        assert_eq!(q.features_for(true), 4);
        assert!(!decode_preplay("").unwrap().ping);
        let e = decode_preplay("ad.pingf=9").unwrap_err();
        assert_eq!(e.field(), Some("ad.pingf"));
        assert_eq!(
            decode_preplay("ad.cping=yes").unwrap_err().field(),
            Some("ad.cping")
        );
    }

    #[test]
    fn ping_queries() {
        let p = decode_ping("v=3&pt=0&ev=start").unwrap();
        assert_eq!(
            (p.version, p.pt, p.ev, p.ft),
            (3, 0.0, Some(PingEv::Start), None)
        );
        let p = decode_ping("v=2&pt=80.5&ev=seek&ft=20").unwrap();
        assert_eq!((p.ev, p.ft), (Some(PingEv::Seek), Some(20.0)));
        for (q, field) in [
            ("pt=1", "v"),
            ("v=4&pt=1", "v"),
            ("v=3", "pt"),
            ("v=3&pt=abc", "pt"),
            ("v=3&pt=-1", "pt"),
            ("v=3&pt=1&ev=jump", "ev"),
            ("v=3&pt=1&ft=NaN", "ft"),
        ] {
            assert_eq!(decode_ping(q).unwrap_err().field(), Some(field), "{q}");
        }
    }
}
