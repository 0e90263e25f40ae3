//! Pixel beacon: the image beacons of Panda Video's player (`spec/protocols.md` §1).
//!
//! `GET /icon.gif?type=view|play|check&v=<video>&p=<pullzone>&u=<viewer>&...`
//! and the live variant `GET /realtime/icon.gif?quality=..&time=..&bandwidth=..&errors=..`.
//! Everything is in the query string; there is no session id and no client
//! time on the wire, so every event is timed at the server's receive time and
//! deduplicated by its content (`Event::content_key`). The server derives the
//! session from (`p`, `v`, `u`) and maps the pullzone `p` to a property.
//!
//! Quirks of the shipped player, accepted as sent:
//! - `check` and friends go out with `navigator.sendBeacon(url)`: a `POST`
//!   with an empty body and the data in the query. The body is never read.
//! - The tab-visibility flag is spelled `visibily`; `visibility` is accepted too.
//! - An empty value (`referrer=` on a page without one) says nothing: it is
//!   treated as absent (our choice).
//!
//! Event mapping (progress mode, `spec/metrics.md`):
//!
//! | beacon | events |
//! |---|---|
//! | `view` | `viewinit` |
//! | `play` | `play`, `playing` (sent at the first real play: both `play_requested` and `played`) |
//! | `check` | `progress { shown }` at `current_time` |
//! | live | `renditionchange` (`quality`, `bandwidth`), `progress { shown }` at `time`, `error` (warning) when `errors` > 0 |
//!
//! `visibility` goes into every event's `data`; `referrer` becomes the
//! `referrer_domain` dimension; every other parameter the protocol does not
//! define (`custom_name`, `utm_*`, anything unknown) is kept as custom
//! metadata under its own name, never rejected.

// The longest accepted id (`v`, `p`, `u`) is the native protocol's.
use crate::native::{referrer_domain, MAX_ID_LEN};
use crate::raw::{ProtocolError, RawRequest};
use playhead_model::{ErrorSeverity, Event, EventKind, Millis, SessionMeta};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest piece of a bad value echoed back in an error message.
const MAX_ECHO_CHARS: usize = 40;

/// Parameters `/icon.gif` defines; any other one is custom metadata.
const VOD_PARAMS: [&str; 8] = [
    "type",
    "v",
    "p",
    "u",
    "referrer",
    "visibility",
    "visibily",
    "current_time",
];
/// Parameters `/realtime/icon.gif` defines; any other one is custom metadata.
const LIVE_PARAMS: [&str; 10] = [
    "v",
    "p",
    "u",
    "referrer",
    "visibility",
    "visibily",
    "quality",
    "time",
    "bandwidth",
    "errors",
];

/// Which beacon a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beacon {
    /// `type=view`: the player loaded (once per page load, tab visible).
    View,
    /// `type=play`: the first real play of this load.
    Play,
    /// `type=check`: a progress heartbeat every 5 s of media while playing.
    Check,
    /// `/realtime/icon.gif`: a live stream's beacon, every 15 s.
    Live,
}

impl Beacon {
    /// The wire name (`view`, `play`, `check`), `live` for the live beacon.
    pub fn as_str(self) -> &'static str {
        match self {
            Beacon::View => "view",
            Beacon::Play => "play",
            Beacon::Check => "check",
            Beacon::Live => "live",
        }
    }
}

/// A decoded pixel beacon.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub beacon: Beacon,
    /// `p`: the pullzone (library), which the server maps to a property.
    pub pullzone: String,
    /// `v`: the video's external id.
    pub video_id: String,
    /// `u`: the viewer id the player keeps in localStorage.
    pub viewer_id: String,
    pub meta: SessionMeta,
    /// The beacon's events, all at the receive time, `order` = position here.
    pub events: Vec<Event>,
}

/// Decode a `GET` or `POST` (`navigator.sendBeacon`) `/icon.gif` request.
pub fn decode(req: &RawRequest<'_>) -> Result<Decoded, ProtocolError> {
    let q = Query::parse(req.query);
    let (beacon, mut events) = match q.get("type") {
        None => return Err(ProtocolError::invalid("type", "required")),
        Some("view") => (Beacon::View, vec![(EventKind::Viewinit, None)]),
        Some("play") => (
            Beacon::Play,
            vec![(EventKind::Play, None), (EventKind::Playing, None)],
        ),
        // The position is read below, once the ids are known to be there.
        Some("check") => (Beacon::Check, vec![(shown_progress(), None)]),
        Some(other) => {
            return Err(ProtocolError::invalid(
                "type",
                format!("must be view, play or check, got `{}`", echo(other)),
            ))
        }
    };
    let ids = Ids::read(&q)?;
    let mut data = visibility_data(&q)?;
    if beacon == Beacon::Check {
        let at = non_negative_number(&q, "current_time")?
            .ok_or_else(|| ProtocolError::invalid("current_time", "required on `check`"))?;
        events[0].1 = Some(at);
    } else if let Some(raw) = q.get("current_time") {
        // Only a check's position means anything; elsewhere it is kept as
        // sent: a number when it is one, else the text (never refused).
        let value = match non_negative_number(&q, "current_time") {
            Ok(Some(n)) => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
            _ => Value::String(raw.to_owned()),
        };
        data.insert("current_time".into(), value);
    }
    Ok(ids.into_decoded(
        beacon,
        session_meta(&q, "vod", &VOD_PARAMS),
        build_events(req.received_at, events, &data),
    ))
}

/// Decode a `GET /realtime/icon.gif` live beacon.
pub fn decode_live(req: &RawRequest<'_>) -> Result<Decoded, ProtocolError> {
    let q = Query::parse(req.query);
    let ids = Ids::read(&q)?;
    let data = visibility_data(&q)?;
    let quality = non_negative_integer(&q, "quality")?
        .map(|h| u32::try_from(h).map_err(|_| ProtocolError::invalid("quality", "too large")))
        .transpose()?;
    let time = non_negative_number(&q, "time")?;
    let bandwidth_kbps = non_negative_number(&q, "bandwidth")?;
    let errors = non_negative_integer(&q, "errors")?;

    let mut events = Vec::new();
    if quality.is_some() || bandwidth_kbps.is_some() {
        events.push((
            EventKind::Renditionchange {
                // Saturates on absurd values rather than failing: it is a report.
                bitrate_bps: bandwidth_kbps.map(|kbps| (kbps * 1000.0).round() as u64),
                width: None,
                height: quality,
            },
            None,
        ));
    }
    if let Some(t) = time {
        events.push((shown_progress(), Some(t)));
    }
    if let Some(n) = errors.filter(|&n| n > 0) {
        // Errors the player got over, not a failed session (`spec/metrics.md` `failed`).
        events.push((
            EventKind::Error {
                code: "live_errors".into(),
                message: format!("{n} playback errors since the last beacon"),
                severity: ErrorSeverity::Warning,
                source: Some("player".into()),
            },
            None,
        ));
    }
    if events.is_empty() {
        // Our choice: a beacon that reports nothing still says the viewer is
        // there (realtime users, inactivity timeout), so it yields one event.
        events.push((EventKind::Heartbeat, None));
    }
    Ok(ids.into_decoded(
        Beacon::Live,
        session_meta(&q, "live", &LIVE_PARAMS),
        build_events(req.received_at, events, &data),
    ))
}

/// The query's parameters, URL-decoded (`+` and `%20` are spaces); a
/// repeated parameter keeps its last value.
struct Query(BTreeMap<String, String>);

impl Query {
    fn parse(query: &str) -> Query {
        Query(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// A parameter's value; an empty value counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The three required ids.
struct Ids {
    video_id: String,
    pullzone: String,
    viewer_id: String,
}

impl Ids {
    fn read(q: &Query) -> Result<Ids, ProtocolError> {
        let id = |name: &str| -> Result<String, ProtocolError> {
            let v = q
                .get(name)
                .ok_or_else(|| ProtocolError::invalid(name, "required"))?;
            if v.len() > MAX_ID_LEN {
                return Err(ProtocolError::invalid(
                    name,
                    format!("longer than {MAX_ID_LEN} bytes"),
                ));
            }
            Ok(v.to_owned())
        };
        Ok(Ids {
            video_id: id("v")?,
            pullzone: id("p")?,
            viewer_id: id("u")?,
        })
    }

    fn into_decoded(self, beacon: Beacon, mut meta: SessionMeta, events: Vec<Event>) -> Decoded {
        meta.video_id = Some(self.video_id.clone());
        meta.viewer_id = Some(self.viewer_id.clone());
        Decoded {
            beacon,
            pullzone: self.pullzone,
            video_id: self.video_id,
            viewer_id: self.viewer_id,
            meta,
            events,
        }
    }
}

/// Content type, referrer domain, and every parameter not in `known` as custom metadata.
fn session_meta(q: &Query, content_type: &str, known: &[&str]) -> SessionMeta {
    let mut meta = SessionMeta {
        content_type: Some(content_type.to_owned()),
        ..SessionMeta::default()
    };
    if let Some(domain) = q.get("referrer").and_then(referrer_domain) {
        meta.dimensions.insert("referrer_domain".into(), domain);
    }
    let Query(params) = q;
    meta.custom = params
        .iter()
        .filter(|(k, v)| !k.is_empty() && !v.is_empty() && !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta
}

/// `{"visibility": bool}` from `visibility` or the shipped player's spelling
/// `visibily` (`visibility` wins when both come, our choice); empty without either.
fn visibility_data(q: &Query) -> Result<Map<String, Value>, ProtocolError> {
    let flag = |name: &str| -> Result<Option<bool>, ProtocolError> {
        match q.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ProtocolError::invalid(
                name,
                format!("must be `true` or `false`, got `{}`", echo(other)),
            )),
        }
    };
    let correct = flag("visibility")?;
    let shipped = flag("visibily")?;
    let mut data = Map::new();
    if let Some(visible) = correct.or(shipped) {
        data.insert("visibility".into(), Value::Bool(visible));
    }
    Ok(data)
}

fn shown_progress() -> EventKind {
    EventKind::Progress {
        seek: false,
        from: None,
        shown: true,
    }
}

/// The events at the receive time (there is no client time on the wire),
/// ordered by position, each deduplicated by its content.
fn build_events(
    received_at: Millis,
    kinds: Vec<(EventKind, Option<f64>)>,
    data: &Map<String, Value>,
) -> Vec<Event> {
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, (kind, playhead))| {
            let mut ev = Event::new(received_at, received_at, kind);
            ev.order = i as u64;
            ev.playhead = playhead;
            ev.data = data.clone();
            ev.dedup_key = ev.content_key();
            ev
        })
        .collect()
}

/// A non-negative finite decimal (`12`, `12.5`); the spec says integer
/// seconds for `current_time`, but players round differently, so any is taken.
fn non_negative_number(q: &Query, name: &str) -> Result<Option<f64>, ProtocolError> {
    let Some(raw) = q.get(name) else {
        return Ok(None);
    };
    match raw.trim().parse::<f64>() {
        // `+ 0.0` turns `-0` into `0`.
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x + 0.0)),
        _ => Err(ProtocolError::invalid(
            name,
            format!("must be a non-negative number, got `{}`", echo(raw)),
        )),
    }
}

fn non_negative_integer(q: &Query, name: &str) -> Result<Option<u64>, ProtocolError> {
    let Some(raw) = q.get(name) else {
        return Ok(None);
    };
    raw.trim().parse::<u64>().map(Some).map_err(|_| {
        ProtocolError::invalid(
            name,
            format!("must be a non-negative integer, got `{}`", echo(raw)),
        )
    })
}

/// A bad value as quoted back to the client: bounded, so a huge parameter
/// does not make a huge error body.
fn echo(value: &str) -> String {
    if value.chars().count() <= MAX_ECHO_CHARS {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(MAX_ECHO_CHARS).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_700_000_000_000;
    const IDS: &str = "v=vid-1&p=vz-a06a6f7b-986&u=viewer-1";

    fn req<'a>(path: &'a str, query: &'a str) -> RawRequest<'a> {
        RawRequest {
            method: "GET",
            path,
            query,
            content_type: None,
            body: b"",
            received_at: AT,
        }
    }

    fn vod(query: &str) -> Result<Decoded, ProtocolError> {
        decode(&req("/icon.gif", query))
    }

    fn live(query: &str) -> Result<Decoded, ProtocolError> {
        decode_live(&req("/realtime/icon.gif", query))
    }

    fn types(d: &Decoded) -> Vec<&'static str> {
        d.events.iter().map(Event::type_name).collect()
    }

    #[test]
    fn names_the_bad_parameter() {
        let cases = [
            ("", "type"),
            ("type=stop&v=a&p=b&u=c", "type"),
            ("type=VIEW&v=a&p=b&u=c", "type"),
            ("type=view&p=b&u=c", "v"),
            ("type=view&v=&p=b&u=c", "v"),
            ("type=view&v=a&u=c", "p"),
            ("type=view&v=a&p=b", "u"),
            ("type=check&v=a&p=b&u=c", "current_time"),
            ("type=check&v=a&p=b&u=c&current_time=abc", "current_time"),
            ("type=check&v=a&p=b&u=c&current_time=-5", "current_time"),
            ("type=check&v=a&p=b&u=c&current_time=NaN", "current_time"),
            ("type=check&v=a&p=b&u=c&current_time=inf", "current_time"),
            ("type=view&v=a&p=b&u=c&visibily=yes", "visibily"),
            ("type=view&v=a&p=b&u=c&visibility=1", "visibility"),
        ];
        for (query, field) in cases {
            let err = vod(query).unwrap_err();
            assert_eq!(err.field(), Some(field), "{query}: {err}");
        }
    }

    #[test]
    fn names_the_bad_live_parameter() {
        let cases = [
            ("p=b&u=c", "v"),
            ("v=a&u=c", "p"),
            ("v=a&p=b", "u"),
            ("v=a&p=b&u=c&quality=hd", "quality"),
            ("v=a&p=b&u=c&quality=720.5", "quality"),
            ("v=a&p=b&u=c&quality=-1", "quality"),
            ("v=a&p=b&u=c&quality=99999999999", "quality"),
            ("v=a&p=b&u=c&time=x", "time"),
            ("v=a&p=b&u=c&bandwidth=fast", "bandwidth"),
            ("v=a&p=b&u=c&bandwidth=-1.5", "bandwidth"),
            ("v=a&p=b&u=c&errors=1.5", "errors"),
            ("v=a&p=b&u=c&errors=-1", "errors"),
            ("v=a&p=b&u=c&visibily=maybe", "visibily"),
        ];
        for (query, field) in cases {
            let err = live(query).unwrap_err();
            assert_eq!(err.field(), Some(field), "{query}: {err}");
        }
    }

    #[test]
    fn error_messages_read_well() {
        assert_eq!(
            vod("type=stop").unwrap_err().to_string(),
            "type: must be view, play or check, got `stop`"
        );
        assert_eq!(vod("type=view").unwrap_err().to_string(), "v: required");
        assert_eq!(
            vod(&format!("type=check&{IDS}")).unwrap_err().to_string(),
            "current_time: required on `check`"
        );
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            vod(&format!("type=view&v={long}&p=b&u=c"))
                .unwrap_err()
                .to_string(),
            "v: longer than 256 bytes"
        );
        let err = vod(&format!("type={}", "z".repeat(500))).unwrap_err();
        assert!(err.to_string().len() < 100, "{err}");
    }

    #[test]
    fn an_id_of_exactly_the_limit_is_accepted() {
        let id = "é".repeat(MAX_ID_LEN / 2);
        let d = vod(&format!("type=view&v={id}&p=b&u=c")).unwrap();
        assert_eq!(d.video_id, id);
    }

    #[test]
    fn view_play_and_check_map_to_their_events() {
        let view = vod(&format!("type=view&{IDS}")).unwrap();
        assert_eq!(view.beacon, Beacon::View);
        assert_eq!(types(&view), ["viewinit"]);

        let play = vod(&format!("type=play&{IDS}")).unwrap();
        assert_eq!(types(&play), ["play", "playing"]);
        assert_eq!(
            play.events.iter().map(|e| e.order).collect::<Vec<_>>(),
            [0, 1]
        );

        let check = vod(&format!("type=check&{IDS}&current_time=35")).unwrap();
        assert_eq!(check.beacon, Beacon::Check);
        let ev = &check.events[0];
        assert_eq!(
            ev.kind,
            EventKind::Progress {
                seek: false,
                from: None,
                shown: true
            }
        );
        assert_eq!(ev.playhead, Some(35.0));
        assert_eq!((ev.t, ev.received_at), (AT, AT));
        assert_eq!(ev.dedup_key, ev.content_key());
    }

    #[test]
    fn ids_and_content_type_fill_the_meta() {
        let d = vod(&format!("type=view&{IDS}")).unwrap();
        assert_eq!(d.pullzone, "vz-a06a6f7b-986");
        assert_eq!(d.meta.video_id.as_deref(), Some("vid-1"));
        assert_eq!(d.meta.viewer_id.as_deref(), Some("viewer-1"));
        assert_eq!(d.meta.content_type.as_deref(), Some("vod"));
        assert_eq!(d.meta.player_name, None);
        assert!(d.meta.custom.is_empty(), "{:?}", d.meta.custom);
        let d = live(IDS).unwrap();
        assert_eq!(d.meta.content_type.as_deref(), Some("live"));
    }

    #[test]
    fn a_decimal_current_time_is_accepted() {
        let d = vod(&format!("type=check&{IDS}&current_time=12.75")).unwrap();
        assert_eq!(d.events[0].playhead, Some(12.75));
        let d = vod(&format!("type=check&{IDS}&current_time=-0")).unwrap();
        assert!(d.events[0].playhead.unwrap().is_sign_positive());
    }

    #[test]
    fn current_time_outside_check_is_kept_in_data_not_checked() {
        let d = vod(&format!("type=play&{IDS}&current_time=0")).unwrap();
        assert_eq!(d.events[0].playhead, None);
        assert_eq!(d.events[0].data["current_time"], 0.0);
        let d = vod(&format!("type=view&{IDS}&current_time=undefined")).unwrap();
        assert_eq!(d.events[0].data["current_time"], "undefined");
    }

    #[test]
    fn the_shipped_spelling_visibily_is_accepted() {
        let d = vod(&format!("type=view&{IDS}&visibily=true")).unwrap();
        assert_eq!(d.events[0].data["visibility"], true);
        let d = vod(&format!("type=play&{IDS}&visibility=false")).unwrap();
        assert!(d.events.iter().all(|e| e.data["visibility"] == false));
        let d = vod(&format!("type=view&{IDS}&visibily=false&visibility=true")).unwrap();
        assert_eq!(d.events[0].data["visibility"], true);
        let d = vod(&format!("type=view&{IDS}")).unwrap();
        assert!(d.events[0].data.is_empty());
        // Neither spelling is custom metadata.
        let d = vod(&format!("type=view&{IDS}&visibily=true&visibility=true")).unwrap();
        assert!(d.meta.custom.is_empty());
    }

    #[test]
    fn a_send_beacon_post_is_read_from_the_query_and_its_body_ignored() {
        let mut r = req("/icon.gif", "type=check&v=a&p=b&u=c&current_time=10");
        r.method = "POST";
        r.content_type = Some("text/plain");
        r.body = b"\xff not anything";
        let d = decode(&r).unwrap();
        assert_eq!(d.events[0].playhead, Some(10.0));
    }

    #[test]
    fn url_decoding_and_repeated_parameters() {
        let d = vod(
            "type=view&v=a&p=b&u=c&custom_name=Aula+1%20intro&utm_source=x&utm_source=news%26letter",
        )
        .unwrap();
        assert_eq!(d.meta.custom["custom_name"], "Aula 1 intro");
        assert_eq!(d.meta.custom["utm_source"], "news&letter");
        let d = vod("type=view&type=play&v=a&p=b&u=c").unwrap();
        assert_eq!(d.beacon, Beacon::Play);
    }

    #[test]
    fn referrer_becomes_the_referrer_domain() {
        let d = vod(&format!(
            "type=view&{IDS}&referrer=https%3A%2F%2FWWW.Example.com%2Fcourse%3Fid%3D3"
        ))
        .unwrap();
        assert_eq!(d.meta.dimensions["referrer_domain"], "www.example.com");
        assert!(!d.meta.custom.contains_key("referrer"));
        let d = vod(&format!("type=view&{IDS}&referrer=")).unwrap();
        assert!(d.meta.dimensions.is_empty());
    }

    #[test]
    fn unknown_and_marketing_parameters_are_custom_metadata() {
        let d = vod(&format!(
            "type=view&{IDS}&utm_campaign=launch&utm_medium=email&utm_term=t&utm_content=c&plan=pro&empty="
        ))
        .unwrap();
        let keys: Vec<_> = d.meta.custom.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "plan",
                "utm_campaign",
                "utm_content",
                "utm_medium",
                "utm_term"
            ]
        );
    }

    #[test]
    fn a_live_beacon_maps_quality_bandwidth_time_and_errors() {
        let d = live(&format!(
            "{IDS}&quality=720&time=3605.25&bandwidth=2450.57&errors=2&visibily=true"
        ))
        .unwrap();
        assert_eq!(d.beacon, Beacon::Live);
        assert_eq!(types(&d), ["renditionchange", "progress", "error"]);
        assert_eq!(
            d.events[0].kind,
            EventKind::Renditionchange {
                bitrate_bps: Some(2_450_570),
                width: None,
                height: Some(720)
            }
        );
        assert_eq!(d.events[1].playhead, Some(3605.25));
        assert_eq!(
            d.events[2].kind,
            EventKind::Error {
                code: "live_errors".into(),
                message: "2 playback errors since the last beacon".into(),
                severity: ErrorSeverity::Warning,
                source: Some("player".into()),
            }
        );
        assert!(d.events.iter().all(|e| e.data["visibility"] == true));
        assert_eq!(
            d.events.iter().map(|e| e.order).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    #[test]
    fn a_live_beacon_without_errors_or_quality_has_no_such_events() {
        let d = live(&format!("{IDS}&time=12.00&errors=0")).unwrap();
        assert_eq!(types(&d), ["progress"]);
        let d = live(&format!("{IDS}&bandwidth=800")).unwrap();
        assert_eq!(
            d.events[0].kind,
            EventKind::Renditionchange {
                bitrate_bps: Some(800_000),
                width: None,
                height: None
            }
        );
    }

    #[test]
    fn a_live_beacon_reporting_nothing_still_yields_an_event() {
        let d = live(IDS).unwrap();
        assert_eq!(types(&d), ["heartbeat"]);
    }

    #[test]
    fn live_parameters_are_not_custom_on_live_and_type_is_not_needed() {
        let d = live(&format!("{IDS}&quality=360&time=1&bandwidth=1&errors=0")).unwrap();
        assert!(d.meta.custom.is_empty(), "{:?}", d.meta.custom);
    }

    #[test]
    fn the_same_beacon_twice_has_the_same_dedup_keys() {
        let a = vod(&format!("type=play&{IDS}")).unwrap();
        let mut r = req("/icon.gif", "");
        let q = format!("type=play&{IDS}");
        r.query = &q;
        r.method = "POST";
        let b = decode(&r).unwrap();
        assert_eq!(a.events, b.events);
        assert_ne!(a.events[0].dedup_key, a.events[1].dedup_key);
    }

    #[test]
    fn echo_bounds_long_values() {
        assert_eq!(echo("short"), "short");
        let long = echo(&"é".repeat(100));
        assert_eq!(long.chars().count(), MAX_ECHO_CHARS + 1);
    }
}
