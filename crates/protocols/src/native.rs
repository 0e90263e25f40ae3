//! Native protocol: the batches Playhead's own SDK sends (`spec/protocols.md` §6).
//!
//! `POST /v1/events` with a JSON body, sent as `application/json` or as
//! `text/plain` (what `navigator.sendBeacon` sends without a CORS preflight).
//! `seq` is both the dedup key and the tie-break order: a repeated
//! (session, seq) is acknowledged and ignored.
//!
//! The body is read as untyped JSON and validated field by field, so every
//! refusal names the field (`events[2].ts: required`).

use crate::raw::{ProtocolError, RawRequest};
use playhead_model::{
    Batch, ErrorSeverity, Event, EventKind, Protocol, Qoe, SessionKey, SessionMeta,
};
use serde_json::{Map, Value};

/// Most events one request may carry.
pub const MAX_EVENTS: usize = 1000;
/// Longest accepted id (session, video, viewer).
/// Longest id accepted (session, video, viewer, ad), bytes.
pub(crate) const MAX_ID_LEN: usize = 256;

/// A decoded native request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The `property` field: a property's public ingest key.
    pub ingest_key: String,
    /// The events; `batch.key.property` is empty until the server maps the key.
    pub batch: Batch,
}

/// Decode a `POST /v1/events` request.
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
    let ingest_key = required_str(body, "property", "property")?.to_owned();
    let session = body
        .get("session")
        .ok_or_else(|| ProtocolError::invalid("session", "required"))?
        .as_object()
        .ok_or_else(|| ProtocolError::invalid("session", "must be an object"))?;
    let session_id = id_field(session, "id", "session.id")?
        .ok_or_else(|| ProtocolError::invalid("session.id", "required"))?;
    let meta = session_meta(session)?;
    let events = body
        .get("events")
        .ok_or_else(|| ProtocolError::invalid("events", "required"))?
        .as_array()
        .ok_or_else(|| ProtocolError::invalid("events", "must be an array"))?;
    if events.is_empty() {
        return Err(ProtocolError::invalid(
            "events",
            "must hold at least one event",
        ));
    }
    if events.len() > MAX_EVENTS {
        return Err(ProtocolError::invalid(
            "events",
            format!(
                "at most {MAX_EVENTS} events per request, got {}",
                events.len()
            ),
        ));
    }
    let events = events
        .iter()
        .enumerate()
        .map(|(i, e)| event(e, &format!("events[{i}]"), req.received_at))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Decoded {
        ingest_key,
        batch: Batch {
            key: SessionKey::new("", session_id),
            protocol: Protocol::Native,
            meta,
            events,
        },
    })
}

fn session_meta(s: &Map<String, Value>) -> Result<SessionMeta, ProtocolError> {
    let mut meta = SessionMeta {
        video_id: id_field(s, "video_id", "session.video_id")?,
        viewer_id: id_field(s, "viewer_id", "session.viewer_id")?,
        duration_s: opt_number(s, "video_duration_s", "session.video_duration_s")?,
        ..SessionMeta::default()
    };
    if let Some(d) = meta.duration_s {
        if d < 0.0 {
            return Err(ProtocolError::invalid(
                "session.video_duration_s",
                "must not be negative",
            ));
        }
    }
    if let Some(ct) = opt_str(s, "content_type", "session.content_type")? {
        if ct != "vod" && ct != "live" {
            return Err(ProtocolError::invalid(
                "session.content_type",
                format!("must be `vod` or `live`, got `{ct}`"),
            ));
        }
        meta.content_type = Some(ct.to_owned());
    }
    if let Some(player) = s.get("player") {
        let player = player
            .as_object()
            .ok_or_else(|| ProtocolError::invalid("session.player", "must be an object"))?;
        meta.player_name = opt_str(player, "name", "session.player.name")?.map(str::to_owned);
        meta.player_version =
            opt_str(player, "version", "session.player.version")?.map(str::to_owned);
    }
    if let Some(cdn) = opt_str(s, "cdn", "session.cdn")? {
        meta.dimensions.insert("cdn".into(), cdn.to_owned());
    }
    if let Some(referrer) = opt_str(s, "referrer", "session.referrer")? {
        if let Some(domain) = referrer_domain(referrer) {
            meta.dimensions.insert("referrer_domain".into(), domain);
        }
    }
    if let Some(custom) = s.get("custom") {
        let custom = custom
            .as_object()
            .ok_or_else(|| ProtocolError::invalid("session.custom", "must be an object"))?;
        for (k, v) in custom {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => {
                    return Err(ProtocolError::invalid(
                        format!("session.custom.{k}"),
                        "must be a string, number or boolean",
                    ))
                }
            };
            meta.custom.insert(k.clone(), v);
        }
    }
    Ok(meta)
}

/// The host of a referrer URL (`https://www.example.com/page` → `www.example.com`).
pub fn referrer_domain(referrer: &str) -> Option<String> {
    let rest = referrer.split_once("://").map_or(referrer, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Fields of an event that the canonical model reads; the rest goes to `data`.
const KNOWN_FIELDS: [&str; 16] = [
    "seq",
    "ts",
    "type",
    "playhead",
    "rate",
    "bitrate_bps",
    "width",
    "height",
    "dropped_frames",
    "total_frames",
    "code",
    "message",
    "fatal",
    "ad_id",
    "duration_s",
    "quartile",
];

fn event(v: &Value, path: &str, received_at: i64) -> Result<Event, ProtocolError> {
    let o = v
        .as_object()
        .ok_or_else(|| ProtocolError::invalid(path, "must be an object"))?;
    let f = |name: &str| format!("{path}.{name}");
    let seq = opt_u64(o, "seq", &f("seq"))?
        .ok_or_else(|| ProtocolError::invalid(f("seq"), "required"))?;
    let ts = opt_number(o, "ts", &f("ts"))?
        .ok_or_else(|| ProtocolError::invalid(f("ts"), "required"))?;
    if !(0.0..=9.0e15).contains(&ts) {
        return Err(ProtocolError::invalid(
            f("ts"),
            "must be ms since the Unix epoch",
        ));
    }
    let ty = required_str(o, "type", &f("type"))?;
    let kind = match ty {
        "viewinit" => EventKind::Viewinit,
        "play" => EventKind::Play,
        "playing" => EventKind::Playing,
        "pause" => EventKind::Pause,
        "seeking" => EventKind::Seeking,
        "seeked" => EventKind::Seeked,
        "waiting" => EventKind::Waiting,
        "ratechange" => {
            let rate = opt_number(o, "rate", &f("rate"))?
                .ok_or_else(|| ProtocolError::invalid(f("rate"), "required"))?;
            if rate <= 0.0 {
                return Err(ProtocolError::invalid(f("rate"), "must be positive"));
            }
            EventKind::Ratechange { rate }
        }
        "renditionchange" => EventKind::Renditionchange {
            bitrate_bps: opt_u64(o, "bitrate_bps", &f("bitrate_bps"))?,
            width: opt_u32(o, "width", &f("width"))?,
            height: opt_u32(o, "height", &f("height"))?,
        },
        "resize" => EventKind::Resize {
            width: opt_u32(o, "width", &f("width"))?,
            height: opt_u32(o, "height", &f("height"))?,
        },
        "heartbeat" => EventKind::Heartbeat,
        "error" => {
            let code = match o.get("code") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(_) => {
                    return Err(ProtocolError::invalid(
                        f("code"),
                        "must be a string or number",
                    ))
                }
                None => return Err(ProtocolError::invalid(f("code"), "required")),
            };
            let fatal = match o.get("fatal") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(ProtocolError::invalid(f("fatal"), "must be a boolean")),
            };
            EventKind::Error {
                code,
                message: opt_str(o, "message", &f("message"))?
                    .unwrap_or("")
                    .to_owned(),
                severity: if fatal {
                    ErrorSeverity::Fatal
                } else {
                    ErrorSeverity::Warning
                },
                source: Some("player".into()),
            }
        }
        "ended" => EventKind::Ended,
        "viewend" => EventKind::Viewend,
        "adbreakstart" => EventKind::Adbreakstart,
        "adstart" => EventKind::Adstart {
            ad_id: id_field(o, "ad_id", &f("ad_id"))?,
            duration_s: opt_number(o, "duration_s", &f("duration_s"))?,
        },
        "adquartile" => {
            let q = opt_u64(o, "quartile", &f("quartile"))?
                .ok_or_else(|| ProtocolError::invalid(f("quartile"), "required"))?;
            if !(1..=3).contains(&q) {
                return Err(ProtocolError::invalid(f("quartile"), "must be 1, 2 or 3"));
            }
            EventKind::Adquartile { quartile: q as u8 }
        }
        "adcomplete" => EventKind::Adcomplete,
        "adskip" => EventKind::Adskip,
        "adbreakend" => EventKind::Adbreakend,
        other => {
            return Err(ProtocolError::invalid(
                f("type"),
                format!("unknown event type `{other}`"),
            ))
        }
    };
    let mut ev = Event::new(ts as i64, received_at, kind);
    ev.dedup_key = seq;
    ev.order = seq;
    if let Some(p) = opt_number(o, "playhead", &f("playhead"))? {
        if p < 0.0 {
            return Err(ProtocolError::invalid(
                f("playhead"),
                "must not be negative",
            ));
        }
        ev.playhead = Some(p);
    }
    ev.qoe = Qoe {
        // On a renditionchange the bitrate is part of the event itself.
        bitrate_bps: if ty == "renditionchange" {
            None
        } else {
            opt_u64(o, "bitrate_bps", &f("bitrate_bps"))?
        },
        dropped_frames: opt_u64(o, "dropped_frames", &f("dropped_frames"))?,
        total_frames: opt_u64(o, "total_frames", &f("total_frames"))?,
        startup_time_ms: None,
    };
    ev.data = o
        .iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(ev)
}

fn required_str<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, ProtocolError> {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(ProtocolError::invalid(path, "must not be empty")),
        Some(_) => Err(ProtocolError::invalid(path, "must be a string")),
        None => Err(ProtocolError::invalid(path, "required")),
    }
}

fn opt_str<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, ProtocolError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ProtocolError::invalid(path, "must be a string")),
    }
}

/// An id: a non-empty string (numbers accepted and kept as text), bounded;
/// errors name `path`. Shared by the decoders whose ids follow the native rules.
pub(crate) fn id_field(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, ProtocolError> {
    let id = match o.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(ProtocolError::invalid(path, "must be a string")),
    };
    if id.is_empty() {
        return Err(ProtocolError::invalid(path, "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(ProtocolError::invalid(
            path,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    Ok(Some(id))
}

fn opt_number(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, ProtocolError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| ProtocolError::invalid(path, "must be a finite number")),
        Some(_) => Err(ProtocolError::invalid(path, "must be a number")),
    }
}

fn opt_u64(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>, ProtocolError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < 1.8e19)
                    .map(|x| x as u64)
            })
            .map(Some)
            .ok_or_else(|| ProtocolError::invalid(path, "must be a non-negative integer")),
        Some(_) => Err(ProtocolError::invalid(
            path,
            "must be a non-negative integer",
        )),
    }
}

fn opt_u32(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u32>, ProtocolError> {
    opt_u64(o, key, path)?
        .map(|v| u32::try_from(v).map_err(|_| ProtocolError::invalid(path, "too large")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> RawRequest<'_> {
        RawRequest {
            method: "POST",
            path: "/v1/events",
            query: "",
            content_type: Some("application/json"),
            body: body.as_bytes(),
            received_at: 1_700_000_000_000,
        }
    }

    #[test]
    fn referrer_domains() {
        assert_eq!(
            referrer_domain("https://www.Example.com/a?b").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            referrer_domain("http://u:p@host:8080/").as_deref(),
            Some("host")
        );
        assert_eq!(referrer_domain(""), None);
    }

    #[test]
    fn rejects_a_wrong_content_type() {
        let mut r = req("{}");
        r.content_type = Some("application/xml");
        assert_eq!(
            decode(&r).unwrap_err(),
            ProtocolError::UnsupportedMediaType("application/xml".into())
        );
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            ("nope", "body"),
            ("[]", "body"),
            (r#"{"session":{"id":"s"},"events":[]}"#, "property"),
            (r#"{"property":"k","events":[]}"#, "session"),
            (r#"{"property":"k","session":{},"events":[]}"#, "session.id"),
            (
                r#"{"property":"k","session":{"id":"s"},"events":[]}"#,
                "events",
            ),
            (
                r#"{"property":"k","session":{"id":"s"},"events":[{"ts":1700000000000,"type":"play"}]}"#,
                "events[0].seq",
            ),
            (
                r#"{"property":"k","session":{"id":"s"},"events":[{"seq":1,"type":"play"}]}"#,
                "events[0].ts",
            ),
            (
                r#"{"property":"k","session":{"id":"s"},"events":[{"seq":1,"ts":1,"type":"jump"}]}"#,
                "events[0].type",
            ),
            (
                r#"{"property":"k","session":{"id":"s","content_type":"film"},"events":[{"seq":1,"ts":1,"type":"play"}]}"#,
                "session.content_type",
            ),
            (
                r#"{"property":"k","session":{"id":"s"},"events":[{"seq":1,"ts":1,"type":"adquartile","quartile":4}]}"#,
                "events[0].quartile",
            ),
            (
                r#"{"property":"k","session":{"id":"s"},"events":[{"seq":1,"ts":1,"type":"error"}]}"#,
                "events[0].code",
            ),
            (
                r#"{"property":"k","session":{"id":"s"},"events":[{"seq":-1,"ts":1,"type":"play"}]}"#,
                "events[0].seq",
            ),
            (
                r#"{"property":"k","session":{"id":"s"},"events":[{"seq":1,"ts":1,"type":"play","playhead":"x"}]}"#,
                "events[0].playhead",
            ),
        ];
        for (body, field) in cases {
            let err = decode(&req(body)).unwrap_err();
            assert_eq!(err.field(), Some(field), "{body}: {err}");
        }
    }
}
