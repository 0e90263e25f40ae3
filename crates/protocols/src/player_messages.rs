//! Embedded-player messages: what an iframe player (BlendVision compatible)
//! posts to its host page, forwarded by the SDK's bridge
//! (`spec/protocols.md` §5).
//!
//! `POST /v1/player-messages`, JSON sent as `application/json` or as
//! `text/plain` (what `navigator.sendBeacon` sends without a preflight):
//! `{"session_id","property","video_id","viewer_id","messages":[..]}`, each
//! message one `postMessage` payload as the player sent it, parsed. The
//! bridge does no mapping; this module does all of it:
//! - `infoDelivery` with `info.playlogEventName`: a playback event, by its v2
//!   (`playback_*`) or legacy v1 (`video_*`) name, timed by
//!   `playlogData.system_time`, else `info.currentTimeLastUpdated`;
//! - `infoDelivery` with `info.currentTime` and no name: a progress report
//!   (position and `playbackRate`), timed by `info.currentTimeLastUpdated`;
//! - `actionDelivery` (`{"event":"actionDelivery","name":"back"}`): a custom
//!   event named after the action;
//! - any other name or `event`: a custom event under its own name. Unknown
//!   names are stored, never refused.
//!
//! Our choices where the public record is silent:
//! - Unix times (`system_time`, `currentTimeLastUpdated`) are read as
//!   seconds (fractions allowed) below 10^11, else as milliseconds: the
//!   player docs write only `<unix>`, and no date of this century is below
//!   10^11 ms.
//! - `video_startup_time` is milliseconds.
//! - Every `playback_error_occurred` is fatal (`spec/metrics.md`); the code
//!   is kept as the error code and the reason as its message.
//! - `playback_video_buffering_ended` is `playing` (frames are shown again),
//!   as an HTML5 `<video>` fires `playing` after `waiting`; the end of a seek
//!   resumes the state before it (engine rule `seeked_resumes`).
//! - A message may also arrive as the JSON string the player posted; it is
//!   parsed here.
//!
//! The protocol has no sequence number: an event's dedup key is the hash of
//! its content, so a bridge's retry of a batch changes nothing.

use crate::native::id_field;
use crate::raw::{ProtocolError, RawRequest};
use playhead_model::{
    Batch, ErrorSeverity, Event, EventKind, Millis, Protocol, Qoe, SessionKey, SessionMeta,
};
use serde_json::{Map, Value};

/// Most messages one request may carry.
pub const MAX_MESSAGES: usize = 1000;
/// Canonical events one message may become (in-request order = message × this + k).
const ORDER_STRIDE: u64 = 4;
/// Below this a unix time is in seconds (see the module doc).
const SECONDS_BELOW: f64 = 1e11;

/// The error reasons the player documents, by code (`spec/protocols.md` §5).
/// Every one is fatal; the table is what the docs list, not a filter: an
/// unlisted code or reason is kept as sent.
pub const ERROR_REASONS: [(u32, &str); 6] = [
    (5, "ERROR_REASON_RESOURCE_NOT_FOUND"),
    (7, "ERROR_REASON_DOMAIN_INVALID"),
    (7, "ERROR_REASON_OVER_DEVICE_LIMIT"),
    (7, "ERROR_REASON_PLAYBACK_SESSION_EXPIRED"),
    (16, "ERROR_REASON_TOKEN_INVALID"),
    (16, "ERROR_REASON_TOKEN_EXPIRED"),
];

/// A decoded `POST /v1/player-messages` request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The `property` field: a property's public ingest key.
    pub ingest_key: String,
    /// The events; `batch.key.property` is empty until the server maps the key.
    pub batch: Batch,
}

/// Decode a `POST /v1/player-messages` request.
pub fn decode(req: &RawRequest<'_>) -> Result<Decoded, ProtocolError> {
    match req.content_type {
        None | Some("application/json") | Some("text/plain") => {}
        Some(other) => return Err(ProtocolError::UnsupportedMediaType(other.to_owned())),
    }
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| ProtocolError::invalid("body", format!("not valid JSON: {e}")))?;
    let body = body
        .as_object()
        .ok_or_else(|| ProtocolError::invalid("body", "must be a JSON object"))?;
    let ingest_key = match body.get("property") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return Err(ProtocolError::invalid("property", "must not be empty"))
        }
        Some(_) => return Err(ProtocolError::invalid("property", "must be a string")),
        None => return Err(ProtocolError::invalid("property", "required")),
    };
    let session_id = id_field(body, "session_id", "session_id")?
        .ok_or_else(|| ProtocolError::invalid("session_id", "required"))?;
    let meta = SessionMeta {
        video_id: id_field(body, "video_id", "video_id")?,
        viewer_id: id_field(body, "viewer_id", "viewer_id")?,
        ..SessionMeta::default()
    };
    let messages = body
        .get("messages")
        .ok_or_else(|| ProtocolError::invalid("messages", "required"))?
        .as_array()
        .ok_or_else(|| ProtocolError::invalid("messages", "must be an array"))?;
    if messages.is_empty() {
        return Err(ProtocolError::invalid(
            "messages",
            "must hold at least one message",
        ));
    }
    if messages.len() > MAX_MESSAGES {
        return Err(ProtocolError::invalid(
            "messages",
            format!(
                "at most {MAX_MESSAGES} messages per request, got {}",
                messages.len()
            ),
        ));
    }
    let mut events = Vec::with_capacity(messages.len());
    // Progress reports carry the rate; a change of it is a `ratechange`.
    let mut rate = 1.0;
    for (i, m) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let mapped = message(m, &path, req.received_at, &mut rate)?;
        for (k, mut ev) in mapped.into_iter().enumerate() {
            ev.order = i as u64 * ORDER_STRIDE + k as u64;
            ev.dedup_key = ev.content_key();
            events.push(ev);
        }
    }
    Ok(Decoded {
        ingest_key,
        batch: Batch {
            key: SessionKey::new("", session_id),
            protocol: Protocol::PlayerMessages,
            meta,
            events,
        },
    })
}

/// One message: its canonical events (at most [`ORDER_STRIDE`]).
fn message(
    raw: &Value,
    path: &str,
    received_at: Millis,
    rate: &mut f64,
) -> Result<Vec<Event>, ProtocolError> {
    let parsed;
    let m = match raw {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|e| ProtocolError::invalid(path, format!("not valid JSON: {e}")))?;
            &parsed
        }
        other => other,
    };
    let m = m.as_object().ok_or_else(|| {
        ProtocolError::invalid(path, "must be an object (or the JSON string of one)")
    })?;
    let f = |name: &str| format!("{path}.{name}");
    let event = match m.get("event") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(Value::String(_)) => {
            return Err(ProtocolError::invalid(f("event"), "must not be empty"))
        }
        Some(_) => return Err(ProtocolError::invalid(f("event"), "must be a string")),
        None => return Err(ProtocolError::invalid(f("event"), "required")),
    };
    match event {
        "infoDelivery" => {
            let info = m
                .get("info")
                .ok_or_else(|| ProtocolError::invalid(f("info"), "required"))?
                .as_object()
                .ok_or_else(|| ProtocolError::invalid(f("info"), "must be an object"))?;
            let info_path = f("info");
            let last_updated = opt_time(
                info,
                "currentTimeLastUpdated",
                &format!("{info_path}.currentTimeLastUpdated"),
            )?;
            if let Some(name) = info.get("playlogEventName") {
                let name = match name {
                    Value::String(s) if !s.is_empty() => s.as_str(),
                    _ => {
                        return Err(ProtocolError::invalid(
                            format!("{info_path}.playlogEventName"),
                            "must be a non-empty string",
                        ))
                    }
                };
                let data_path = format!("{info_path}.playlogData");
                let empty = Map::new();
                let data = match info.get("playlogData") {
                    None | Some(Value::Null) => &empty,
                    Some(Value::Object(o)) => o,
                    Some(_) => return Err(ProtocolError::invalid(data_path, "must be an object")),
                };
                let t = opt_time(data, "system_time", &format!("{data_path}.system_time"))?
                    .or(last_updated)
                    .unwrap_or(received_at);
                let playhead =
                    opt_position(info, "currentTime", &format!("{info_path}.currentTime"))?;
                let ctx = Playlog {
                    name,
                    data,
                    data_path: &data_path,
                    info,
                    info_path: &info_path,
                    t,
                    received_at,
                    playhead,
                };
                playback(&ctx)
            } else if info.contains_key("currentTime") {
                let position =
                    opt_position(info, "currentTime", &format!("{info_path}.currentTime"))?
                        .ok_or_else(|| {
                            ProtocolError::invalid(
                                format!("{info_path}.currentTime"),
                                "must be a number",
                            )
                        })?;
                let t = last_updated.unwrap_or(received_at);
                let mut out = Vec::with_capacity(2);
                if let Some(r) =
                    opt_rate(info, "playbackRate", &format!("{info_path}.playbackRate"))?
                {
                    if r != *rate {
                        *rate = r;
                        out.push(Event::new(
                            t,
                            received_at,
                            EventKind::Ratechange { rate: r },
                        ));
                    }
                }
                out.push(
                    Event::new(
                        t,
                        received_at,
                        EventKind::Progress {
                            seek: false,
                            from: None,
                            shown: false,
                        },
                    )
                    .with_playhead(position),
                );
                Ok(out)
            } else {
                // Some other state the player reports (volume, ...): kept.
                let t = last_updated.unwrap_or(received_at);
                Ok(vec![custom("infoDelivery", t, received_at, info.clone())])
            }
        }
        "actionDelivery" => {
            let name = match m.get("name") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                None | Some(Value::Null) => "actionDelivery".to_owned(),
                Some(_) => {
                    return Err(ProtocolError::invalid(
                        f("name"),
                        "must be a non-empty string",
                    ))
                }
            };
            let mut data: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| *k != "name")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            data.insert("event".into(), Value::from("actionDelivery"));
            Ok(vec![custom(&name, received_at, received_at, data)])
        }
        other => {
            let data = m
                .iter()
                .filter(|(k, _)| *k != "event")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(vec![custom(other, received_at, received_at, data)])
        }
    }
}

/// A playback event (`info.playlogEventName`) and what surrounds it.
struct Playlog<'a> {
    name: &'a str,
    data: &'a Map<String, Value>,
    data_path: &'a str,
    info: &'a Map<String, Value>,
    info_path: &'a str,
    t: Millis,
    received_at: Millis,
    playhead: Option<f64>,
}

/// Map a playback event name, v2 or legacy v1, to canonical events.
fn playback(p: &Playlog<'_>) -> Result<Vec<Event>, ProtocolError> {
    let field = |name: &str| format!("{}.{name}", p.data_path);
    let one = |kind: EventKind| {
        let mut ev = Event::new(p.t, p.received_at, kind);
        ev.playhead = p.playhead;
        ev.data = p.data.clone();
        ev
    };
    let startup = || -> Result<Qoe, ProtocolError> {
        Ok(Qoe {
            startup_time_ms: opt_position(
                p.data,
                "video_startup_time",
                &field("video_startup_time"),
            )?,
            ..Qoe::default()
        })
    };
    let events = match p.name {
        // The play request: the player began loading, or the viewer pressed play.
        "playback_began_player_loading" | "play" => vec![one(EventKind::Play)],
        // v1: the play request, carrying the startup times the player measured.
        "video_playback_began" => {
            let mut ev = one(EventKind::Play);
            ev.qoe = startup()?;
            vec![ev]
        }
        // v2: the startup time as its own report.
        "playback_began_video_startup_time" => {
            let mut ev = one(EventKind::Custom {
                name: p.name.to_owned(),
            });
            ev.qoe = startup()?;
            vec![ev]
        }
        // The first frame; the iOS docs spell it `playback_video_began`.
        "playback_video_started" | "playback_video_began" | "video_playback_started" => {
            vec![one(EventKind::Playing)]
        }
        "playback_video_paused" | "video_playback_stopped" => vec![one(EventKind::Pause)],
        "playback_video_buffering_began" | "video_buffering_started" => {
            vec![one(EventKind::Waiting)]
        }
        "playback_video_buffering_ended" | "video_buffering_ended" => {
            vec![one(EventKind::Playing)]
        }
        "playback_video_ended" | "video_playback_ended" => vec![one(EventKind::Ended)],
        "playback_seeking_began" => vec![one(EventKind::Seeking)],
        "playback_seeking_ended" => vec![one(EventKind::Seeked)],
        // v1 reports a whole seek at its end, with where it went from and to.
        "video_seeking_ended" => {
            let from = opt_position(p.data, "seeking_from", &field("seeking_from"))?;
            let to = opt_position(p.data, "seeking_to", &field("seeking_to"))?;
            let mut seeking = one(EventKind::Seeking);
            seeking.playhead = from;
            let mut seeked = one(EventKind::Seeked);
            seeked.playhead = to.or(p.playhead);
            vec![seeking, seeked]
        }
        "playback_error_occurred" | "video_playback_error_occurred" => {
            let code = match p.data.get("error_code") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                None | Some(Value::Null) => {
                    return Err(ProtocolError::invalid(field("error_code"), "required"))
                }
                Some(_) => {
                    return Err(ProtocolError::invalid(
                        field("error_code"),
                        "must be a number or a string",
                    ))
                }
            };
            let message = match p.data.get("error_reason") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    return Err(ProtocolError::invalid(
                        field("error_reason"),
                        "must be a string",
                    ))
                }
            };
            vec![one(EventKind::Error {
                code,
                message,
                severity: ErrorSeverity::Fatal,
                source: Some("player".into()),
            })]
        }
        // The new rate, when the message says it (else kept as is).
        "playback_speed_change" => {
            let rate = match opt_rate(p.data, "playbackRate", &field("playbackRate"))? {
                Some(r) => Some(r),
                None => opt_rate(
                    p.info,
                    "playbackRate",
                    &format!("{}.playbackRate", p.info_path),
                )?,
            };
            match rate {
                Some(rate) => vec![one(EventKind::Ratechange { rate })],
                None => vec![one(EventKind::Custom {
                    name: p.name.to_owned(),
                })],
            }
        }
        // v1 ads come as a start and a stop: one ad in its own break.
        "ad_playback_started" => vec![
            one(EventKind::Adbreakstart),
            one(EventKind::Adstart {
                ad_id: None,
                duration_s: None,
            }),
        ],
        "ad_playback_stopped" => vec![one(EventKind::Adbreakend)],
        // v2 `playback_ad_began` has no end event: kept, not a break that
        // would never close. Volume, mute, quality, UI and settings events,
        // and names we do not know: kept under their own name.
        other => vec![one(EventKind::Custom {
            name: other.to_owned(),
        })],
    };
    Ok(events)
}

fn custom(name: &str, t: Millis, received_at: Millis, data: Map<String, Value>) -> Event {
    let mut ev = Event::new(
        t,
        received_at,
        EventKind::Custom {
            name: name.to_owned(),
        },
    );
    ev.data = data;
    ev
}

/// A finite number; players sometimes send numbers as strings: accepted.
fn opt_number(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, ProtocolError> {
    let x = match o.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    x.filter(|x| x.is_finite())
        .map(Some)
        .ok_or_else(|| ProtocolError::invalid(path, "must be a finite number"))
}

/// A unix time in seconds or milliseconds (see the module doc), as ms.
fn opt_time(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Millis>, ProtocolError> {
    let Some(x) = opt_number(o, key, path)? else {
        return Ok(None);
    };
    if !(0.0..9.0e15).contains(&x) {
        return Err(ProtocolError::invalid(path, "must be a unix time"));
    }
    let ms = if x < SECONDS_BELOW { x * 1000.0 } else { x };
    Ok(Some(ms.round() as Millis))
}

/// A position (s) or a duration (`video_startup_time`, ms): not negative.
fn opt_position(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<f64>, ProtocolError> {
    match opt_number(o, key, path)? {
        Some(x) if x < 0.0 => Err(ProtocolError::invalid(path, "must not be negative")),
        other => Ok(other),
    }
}

fn opt_rate(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, ProtocolError> {
    match opt_number(o, key, path)? {
        Some(x) if x <= 0.0 => Err(ProtocolError::invalid(path, "must be positive")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_json(body: Value) -> Result<Decoded, ProtocolError> {
        let body = body.to_string();
        decode(&RawRequest {
            method: "POST",
            path: "/v1/player-messages",
            query: "",
            content_type: Some("text/plain"),
            body: body.as_bytes(),
            received_at: 1_700_000_100_000,
        })
    }

    fn batch(messages: Value) -> Value {
        json!({"session_id": "s", "property": "k", "messages": messages})
    }

    fn event(name: &str, data: Value) -> Value {
        json!({"event": "infoDelivery", "info": {"currentTimeLastUpdated": 1_700_000_000,
            "playlogEventName": name, "playlogData": data}})
    }

    fn kinds(d: &Decoded) -> Vec<&'static str> {
        d.batch.events.iter().map(Event::type_name).collect()
    }

    #[test]
    fn v2_and_v1_names_map_to_the_same_canonical_events() {
        let pairs = [
            ("playback_began_player_loading", "play"),
            ("video_playback_began", "play"),
            ("playback_video_started", "playing"),
            ("playback_video_began", "playing"),
            ("video_playback_started", "playing"),
            ("playback_video_paused", "pause"),
            ("video_playback_stopped", "pause"),
            ("playback_video_buffering_began", "waiting"),
            ("video_buffering_started", "waiting"),
            ("playback_video_buffering_ended", "playing"),
            ("video_buffering_ended", "playing"),
            ("playback_video_ended", "ended"),
            ("video_playback_ended", "ended"),
            ("playback_seeking_began", "seeking"),
            ("playback_seeking_ended", "seeked"),
            ("playback_audio_volume_change", "custom"),
            ("setting_page_entered", "custom"),
            ("something_new", "custom"),
        ];
        for (name, kind) in pairs {
            let d = decode_json(batch(json!([event(name, json!({}))]))).unwrap();
            assert_eq!(kinds(&d), vec![kind], "{name}");
            assert_eq!(d.batch.events[0].t, 1_700_000_000_000, "{name}");
        }
    }

    #[test]
    fn every_documented_error_is_fatal_with_code_and_reason() {
        for (code, reason) in ERROR_REASONS {
            let d = decode_json(batch(json!([event(
                "playback_error_occurred",
                json!({"error_code": code, "error_reason": reason})
            )])))
            .unwrap();
            match &d.batch.events[0].kind {
                EventKind::Error {
                    code: c,
                    message,
                    severity,
                    ..
                } => {
                    assert_eq!(c, &code.to_string());
                    assert_eq!(message, reason);
                    assert_eq!(*severity, ErrorSeverity::Fatal);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn unix_seconds_and_milliseconds_are_both_read() {
        for (raw, ms) in [
            (json!(1_700_000_000), 1_700_000_000_000_i64),
            (json!(1_700_000_000.25), 1_700_000_000_250),
            (json!(1_700_000_000_250_i64), 1_700_000_000_250),
        ] {
            let d = decode_json(batch(json!([{"event": "infoDelivery",
                "info": {"currentTime": 3, "currentTimeLastUpdated": raw}}])))
            .unwrap();
            assert_eq!(d.batch.events[0].t, ms);
        }
    }

    #[test]
    fn progress_rate_changes_become_ratechanges_once() {
        let p = |t: f64, rate: f64| {
            json!({"event": "infoDelivery", "info": {"currentTime": t,
                "currentTimeLastUpdated": 1_700_000_000.0 + t, "playbackRate": rate}})
        };
        let d = decode_json(batch(json!([
            p(1.0, 1.0),
            p(2.0, 1.25),
            p(3.0, 1.25),
            p(4.0, 1.0)
        ])))
        .unwrap();
        assert_eq!(
            kinds(&d),
            vec![
                "progress",
                "ratechange",
                "progress",
                "progress",
                "ratechange",
                "progress"
            ]
        );
        let orders: Vec<u64> = d.batch.events.iter().map(|e| e.order).collect();
        assert_eq!(orders, vec![0, 4, 5, 8, 12, 13]);
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (json!([]), "messages"),
            (json!([42]), "messages[0]"),
            (json!(["{not json"]), "messages[0]"),
            (json!([{"info": {}}]), "messages[0].event"),
            (json!([{"event": "infoDelivery"}]), "messages[0].info"),
            (
                json!([{"event": "infoDelivery", "info": {"currentTime": "soon"}}]),
                "messages[0].info.currentTime",
            ),
            (
                json!([{"event": "infoDelivery", "info": {"currentTime": -1}}]),
                "messages[0].info.currentTime",
            ),
            (
                json!([{"event": "infoDelivery", "info": {"currentTime": 1, "playbackRate": 0}}]),
                "messages[0].info.playbackRate",
            ),
            (
                json!([{"event": "infoDelivery", "info": {"playlogEventName": 7}}]),
                "messages[0].info.playlogEventName",
            ),
            (
                json!([event(
                    "playback_error_occurred",
                    json!({"error_reason": "x"})
                )]),
                "messages[0].info.playlogData.error_code",
            ),
            (
                json!([event(
                    "playback_video_started",
                    json!({"system_time": "yesterday"})
                )]),
                "messages[0].info.playlogData.system_time",
            ),
        ];
        for (messages, field) in cases {
            let err = decode_json(batch(messages.clone())).unwrap_err();
            assert_eq!(err.field(), Some(field), "{messages}: {err}");
        }
        for (body, field) in [
            (
                json!({"session_id": "s", "messages": [event("play", json!({}))]}),
                "property",
            ),
            (
                json!({"property": "k", "messages": [event("play", json!({}))]}),
                "session_id",
            ),
            (json!({"property": "k", "session_id": "s"}), "messages"),
            (
                json!({"property": "k", "session_id": "s", "video_id": [], "messages": []}),
                "video_id",
            ),
        ] {
            assert_eq!(decode_json(body).unwrap_err().field(), Some(field));
        }
    }

    #[test]
    fn a_json_string_message_is_parsed() {
        let raw = event(
            "playback_video_paused",
            json!({"system_time": 1_700_000_005}),
        )
        .to_string();
        let d = decode_json(batch(json!([raw]))).unwrap();
        assert_eq!(kinds(&d), vec!["pause"]);
        assert_eq!(d.batch.events[0].t, 1_700_000_005_000);
    }

    #[test]
    fn rejects_a_wrong_content_type() {
        let err = decode(&RawRequest {
            method: "POST",
            path: "/v1/player-messages",
            query: "",
            content_type: Some("application/x-www-form-urlencoded"),
            body: b"{}",
            received_at: 0,
        })
        .unwrap_err();
        assert!(matches!(err, ProtocolError::UnsupportedMediaType(_)));
    }
}
