//! Media Collection API: the RESTful tracking protocol of Adobe Media
//! Analytics, spoken by players built for it (`spec/protocols.md` §2).
//!
//! A player opens a session with `POST /api/v1/sessions` (a `sessionStart`
//! event), reads the session id from the `Location` header, then posts one
//! event per request to `/api/v1/sessions/{sid}/events`. Content played
//! offline comes later as one JSON array (`POST /api/v1/downloaded`, or the
//! deprecated array to `/api/v1/sessions` with `media.downloaded: true`).
//! Routes, session ids, `404`/`410` and the 10-distinct-states limit are the
//! server's; this module turns one body into canonical events, pure.
//!
//! Every event is an envelope:
//! `{"eventType", "playerTime": {"playhead", "ts"}, "params", "qoeData", "customMetadata"}`.
//! [`decode_event`] validates it against its event type's rules (`rules.rs`)
//! and every refusal names the field as a JSON path: `playerTime.ts`,
//! `params."media.id"`, `customMetadata."bad key!"`, `[3].playerTime.ts` in a
//! batch. Keys of `params`, `qoeData` and `customMetadata` are data, so they
//! are quoted unless they are plain identifiers (like jq). [`schema`] serves
//! the same rules as draft-04 JSON Schemas.
//!
//! Quirks, accepted as players send them:
//! - The error id has two spellings: `qoeData."media.qoe.errorID"` (+
//!   `"media.qoe.errorSource"`), as documented, and the alias
//!   `params."media.errorId"` (+ `"media.errorSource"`). Either will do; when
//!   both come the `qoeData` one wins.
//! - `ping` should carry no `params`; it is accepted and ignored.
//! - There is no pause, seek or buffer end: `play` ends them. A seek is sent
//!   as `pauseStart`, so it decodes to `pause`.
//! - Live content reports the second of the day as playhead (0 ≤ playhead <
//!   86400). Only `sessionStart` says what the content is, so any playhead
//!   ≥ 0 is accepted on every event; the engine applies the live rules.
//! - Params and QoE keys Adobe may add later are accepted when their value is
//!   a string, number or boolean; the known ones are typed on every event.
//!
//! Mapping (`t` = `playerTime.ts`, 24-h clock-skew rule applied; every event
//! carries `playerTime.playhead`):
//!
//! | eventType | canonical events |
//! |---|---|
//! | `sessionStart` | `viewinit`, `play` (a media start is a play request) + the session meta |
//! | `play` | `playing` |
//! | `ping` | `heartbeat` |
//! | `bufferStart` | `waiting` |
//! | `pauseStart` | `pause` |
//! | `bitrateChange` | `renditionchange` with the QoE bitrate |
//! | `adBreakStart`, `adBreakComplete` | `adbreakstart`, `adbreakend` |
//! | `adStart` | `adstart` (`media.ad.id`, `media.ad.length`) |
//! | `adComplete`, `adSkip` | `adcomplete`, `adskip` |
//! | `chapterStart`, `chapterComplete`, `chapterSkip`, `stateStart`, `stateEnd` | `custom` named after the event type |
//! | `error` | `error`, `fatal_unless_resumed`: fails the session unless a `play` follows |
//! | `sessionComplete` | `ended`, `viewend` |
//! | `sessionEnd` | `viewend` |
//!
//! QoE: `media.qoe.bitrate` → `qoe.bitrate_bps` (rounded), `droppedFrames` →
//! `qoe.dropped_frames`, `timeToStart` → `qoe.startup_time_ms`. What has no
//! canonical field stays in the event's `data` under the wire's own names,
//! `{"params": {..}, "qoeData": {..}, "customMetadata": {..}}`, so the events
//! API shows it; a value that became a canonical or meta field is not
//! repeated there. When one wire event gives two canonical events, the first
//! carries the QoE and the data.
//!
//! Order: `order` = batch index × 8 + a rank (`sessionStart` 0, most events 2,
//! `sessionComplete`/`sessionEnd` 4) + the position among the wire event's
//! canonical events. So a batch keeps its order, `viewinit` comes before
//! `play` and `ended` before `viewend`, and among single requests with the
//! same `ts` the session start comes first and the end last.
//!
//! Files: `rules.rs` (the event types, typed keys and `validate`),
//! `schema.rs` (the JSON Schemas written from them), this file (mapping).

mod rules;
mod schema;

pub use schema::{schema, DRAFT_04};

use crate::raw::ProtocolError;
use playhead_model::{ErrorSeverity, Event, EventKind, Millis, Qoe, SessionMeta};
use rules::Valid;
use serde_json::{Map, Value};

/// The 19 event types, wire names.
pub const EVENT_TYPES: [&str; 19] = [
    "sessionStart",
    "play",
    "ping",
    "bufferStart",
    "pauseStart",
    "bitrateChange",
    "adBreakStart",
    "adStart",
    "adComplete",
    "adSkip",
    "adBreakComplete",
    "chapterStart",
    "chapterComplete",
    "chapterSkip",
    "stateStart",
    "stateEnd",
    "error",
    "sessionComplete",
    "sessionEnd",
];

/// Most events a downloaded batch may hold (a 27-hour session at one ping
/// every 10 s).
pub const MAX_BATCH_EVENTS: usize = 10_000;

/// `order` = batch index × this + rank + position (see the module doc).
const ORDER_STRIDE: u64 = 8;

/// Where a viewer id comes from, first present wins.
const VIEWER_ID_KEYS: [&str; 3] = [
    "visitor.marketingCloudUserId",
    "analytics.visitorId",
    "appInstallationId",
];

/// One validated event of the wire, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The wire name (`sessionStart`, `play`, ...).
    pub event_type: &'static str,
    /// Canonical events: usually one; `sessionStart` and `sessionComplete` give two.
    pub events: Vec<Event>,
    /// From `sessionStart` only: what the session is (else default).
    pub meta: SessionMeta,
    /// From `sessionStart` only: `analytics.reportSuite` (maps to a property).
    pub report_suite: Option<String>,
    /// From `sessionStart`: `media.downloaded` is true.
    pub downloaded: bool,
    /// From `sessionStart`: `media.resume` is true (a content resume).
    pub resumed: bool,
    /// From `stateStart`/`stateEnd`: the state name (the server enforces at
    /// most 10 distinct per session).
    pub state_name: Option<String>,
}

/// Validate and decode one event object: the body of `POST /api/v1/sessions`
/// or of `/api/v1/sessions/{sid}/events`. `received_at` is the server time;
/// `index` the event's position in a batch (0 for a single event).
pub fn decode_event(
    value: &Value,
    received_at: Millis,
    index: u64,
) -> Result<Decoded, ProtocolError> {
    let valid = rules::validate(value, "")?;
    let cloned = [valid.params, valid.qoe, valid.custom].map(|m| m.cloned().map(Value::Object));
    Ok(decode_valid(
        Checked::of(&valid).parts(cloned),
        received_at,
        index,
    ))
}

/// Validate and decode one event that the caller owns: its `params`,
/// `qoeData` and `customMetadata` move into the canonical events instead of
/// being copied (`decode_body`'s other way, and `decode_batch`).
fn decode_owned(
    value: Value,
    at: &str,
    received_at: Millis,
    index: u64,
) -> Result<Decoded, ProtocolError> {
    let valid = rules::validate(&value, at)?;
    let checked = Checked::of(&valid);
    let Value::Object(mut o) = value else {
        unreachable!("validate accepts only an object")
    };
    let parts = checked.parts([
        o.remove("params"),
        o.remove("qoeData"),
        o.remove("customMetadata"),
    ]);
    Ok(decode_valid(parts, received_at, index))
}

/// One event read straight from a request body into its members, without a
/// `Value` for the event itself (the request path's way; the event's three
/// open-ended objects are still `Value`s, as they stay in its data).
///
/// It reads only a body that is a JSON object holding each of these members
/// once, `eventType` a string and `playerTime` a `playhead` and a `ts` number
/// and nothing else; other members are ignored, as [`rules::validate`]
/// ignores them. Any other body, or one that fails validation, goes the
/// `Value` way, which accepts the same events and names what is wrong, so the
/// two ways differ only in speed (a test runs both over every case).
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "eventType", borrow)]
    event_type: std::borrow::Cow<'a, str>,
    #[serde(rename = "playerTime")]
    player_time: ObjectOnly<PlayerTime>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(rename = "qoeData", default, deserialize_with = "present")]
    qoe_data: Option<Value>,
    #[serde(rename = "customMetadata", default, deserialize_with = "present")]
    custom_metadata: Option<Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlayerTime {
    playhead: serde_json::Number,
    ts: serde_json::Number,
}

/// A struct read from a JSON object only: serde's derived structs also read
/// a JSON array, the fields in order, which is not an event.
struct ObjectOnly<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// A member that is there, `null` included (`Option`'s own reading would
/// take `null` for absent, which validation refuses).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

/// [`decode_body`]'s fast way (see [`Envelope`]): `None` sends the body the
/// `Value` way.
fn decode_envelope(body: &[u8], received_at: Millis) -> Option<Decoded> {
    let ObjectOnly(e) = serde_json::from_slice::<ObjectOnly<Envelope<'_>>>(body).ok()?;
    let rules = rules::find(&e.event_type)?;
    let times = rules::player_times(
        Some(&Value::Number(e.player_time.0.playhead)),
        Some(&Value::Number(e.player_time.0.ts)),
        "",
    )
    .ok()?;
    let members = [&e.params, &e.qoe_data, &e.custom_metadata].map(Option::as_ref);
    let valid = rules::members(rules, times, members, "").ok()?;
    let parts = Checked::of(&valid).parts([e.params, e.qoe_data, e.custom_metadata]);
    Some(decode_valid(parts, received_at, 0))
}

/// A valid event's facts and its three open-ended objects (empty when absent).
struct Parts {
    rules: &'static rules::EventRules,
    playhead: f64,
    ts: Millis,
    params: Map<String, Value>,
    qoe: Map<String, Value>,
    custom: Map<String, Value>,
}

/// What validation found of an event, without its borrows.
struct Checked {
    rules: &'static rules::EventRules,
    playhead: f64,
    ts: Millis,
    /// `params` is read (present, and not on `ping`, which ignores them).
    reads_params: bool,
}

impl Checked {
    fn of(valid: &Valid<'_>) -> Checked {
        Checked {
            rules: valid.rules,
            playhead: valid.playhead,
            ts: valid.ts,
            reads_params: valid.params.is_some(),
        }
    }

    /// The parts of the validated event, its `params`, `qoeData` and
    /// `customMetadata` moved in (validated: each an object when present).
    fn parts(self, [params, qoe, custom]: [Option<Value>; 3]) -> Parts {
        let map = |v: Option<Value>| match v {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        Parts {
            rules: self.rules,
            playhead: self.playhead,
            ts: self.ts,
            params: if self.reads_params {
                map(params)
            } else {
                Map::new()
            },
            qoe: map(qoe),
            custom: map(custom),
        }
    }
}

/// Parse a request body (JSON) and decode the one event in it. An array is
/// refused (field `body`): it is a batch, for [`decode_batch`].
pub fn decode_body(body: &[u8], received_at: Millis) -> Result<Decoded, ProtocolError> {
    match decode_envelope(body, received_at) {
        Some(decoded) => Ok(decoded),
        None => decode_body_by_value(body, received_at),
    }
}

/// [`decode_body`] through a `Value` of the whole event: the way of every
/// body the envelope does not read, which names what is wrong.
fn decode_body_by_value(body: &[u8], received_at: Millis) -> Result<Decoded, ProtocolError> {
    let value = parse(body)?;
    if value.is_array() {
        return Err(ProtocolError::invalid(
            "body",
            "must be one event (a JSON object); an array is a downloaded batch",
        ));
    }
    decode_owned(value, "", received_at, 0)
}

/// Parse and validate a downloaded batch (a JSON array): the first event must
/// be `sessionStart` and only the first, the last `sessionComplete` or
/// `sessionEnd` and only the last. One invalid event refuses the whole batch,
/// naming it (`[3].playerTime.ts`). `require_downloaded_flag`: the deprecated
/// array-to-`/api/v1/sessions` form, whose `sessionStart` must say
/// `params."media.downloaded": true`.
pub fn decode_batch(
    body: &[u8],
    received_at: Millis,
    require_downloaded_flag: bool,
) -> Result<Vec<Decoded>, ProtocolError> {
    let Value::Array(items) = parse(body)? else {
        return Err(ProtocolError::invalid(
            "body",
            "must be a JSON array of events (a downloaded session)",
        ));
    };
    if items.is_empty() {
        return Err(ProtocolError::invalid(
            "body",
            "must hold a sessionStart, the session's events and a sessionComplete or sessionEnd",
        ));
    }
    if items.len() > MAX_BATCH_EVENTS {
        return Err(ProtocolError::invalid(
            "body",
            format!(
                "at most {MAX_BATCH_EVENTS} events per batch, got {}",
                items.len()
            ),
        ));
    }
    let mut decoded = Vec::with_capacity(items.len());
    // Each event's own `playerTime.ts` (validated), before the clock-skew rule.
    let mut sent_ts = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        sent_ts.push(item["playerTime"]["ts"].as_i64());
        decoded.push(decode_owned(
            item,
            &format!("[{i}]"),
            received_at,
            i as u64,
        )?);
    }
    let last = decoded.len() - 1;
    for (i, d) in decoded.iter().enumerate() {
        let ty = d.event_type;
        let is_end = ty == "sessionComplete" || ty == "sessionEnd";
        let wrong = if i == 0 && ty != "sessionStart" {
            Some("the first event of a batch must be sessionStart")
        } else if i == last && !is_end {
            Some("the last event of a batch must be sessionComplete or sessionEnd")
        } else if i != 0 && ty == "sessionStart" {
            Some("sessionStart may only be the first event of a batch")
        } else if i != last && is_end {
            Some("sessionComplete and sessionEnd may only be the last event of a batch")
        } else {
            None
        };
        if let Some(reason) = wrong {
            return Err(ProtocolError::invalid(
                format!("[{i}].eventType"),
                format!("{reason}, got `{ty}`"),
            ));
        }
    }
    // Offline playback is uploaded after the fact, often days later: its
    // events keep their own times (the 24-h clock-skew rule is for live
    // traffic, where a far-off client clock is wrong).
    for (d, ts) in decoded.iter_mut().zip(sent_ts) {
        let Some(ts) = ts else {
            continue;
        };
        for ev in d.events.iter_mut().filter(|e| e.clock_skew_corrected) {
            ev.t = ts;
            ev.clock_skew_corrected = false;
            ev.dedup_key = ev.content_key();
        }
    }
    if require_downloaded_flag && !decoded[0].downloaded {
        return Err(ProtocolError::invalid(
            rules::member("[0].params", "media.downloaded"),
            "must be true to send a batch to /api/v1/sessions (or POST it to /api/v1/downloaded)",
        ));
    }
    Ok(decoded)
}

fn parse(body: &[u8]) -> Result<Value, ProtocolError> {
    serde_json::from_slice(body)
        .map_err(|e| ProtocolError::invalid("body", format!("not valid JSON: {e}")))
}

/// The canonical events and session facts of a valid event.
fn decode_valid(v: Parts, received_at: Millis, index: u64) -> Decoded {
    let name = v.rules.name;
    let Parts {
        mut params,
        qoe: mut qoe_data,
        mut custom,
        ..
    } = v;
    let mut d = Decoded {
        event_type: name,
        events: Vec::new(),
        meta: SessionMeta::default(),
        report_suite: None,
        downloaded: false,
        resumed: false,
        state_name: None,
    };
    let mut qoe = Qoe {
        bitrate_bps: take_f64(&mut qoe_data, "media.qoe.bitrate")
            // Saturates on absurd values rather than failing: it is a report.
            .map(|bps| bps.round() as u64),
        dropped_frames: take_u64(&mut qoe_data, "media.qoe.droppedFrames"),
        total_frames: None,
        startup_time_ms: take_f64(&mut qoe_data, "media.qoe.timeToStart"),
    };
    let custom_named = |n: &str| EventKind::Custom { name: n.to_owned() };
    let kinds = match name {
        "sessionStart" => {
            session_start(&mut params, std::mem::take(&mut custom), &mut d);
            vec![EventKind::Viewinit, EventKind::Play]
        }
        "play" => vec![EventKind::Playing],
        "ping" => vec![EventKind::Heartbeat],
        "bufferStart" => vec![EventKind::Waiting],
        "pauseStart" => vec![EventKind::Pause],
        // The bitrate is the event itself, not repeated as QoE.
        "bitrateChange" => vec![EventKind::Renditionchange {
            bitrate_bps: qoe.bitrate_bps.take(),
            width: None,
            height: None,
        }],
        "adBreakStart" => vec![EventKind::Adbreakstart],
        "adStart" => vec![EventKind::Adstart {
            ad_id: take_str(&mut params, "media.ad.id"),
            duration_s: take_f64(&mut params, "media.ad.length"),
        }],
        "adComplete" => vec![EventKind::Adcomplete],
        "adSkip" => vec![EventKind::Adskip],
        "adBreakComplete" => vec![EventKind::Adbreakend],
        "stateStart" | "stateEnd" => {
            // Kept in data too: the custom event has no field for it.
            d.state_name = params
                .get("media.state.name")
                .and_then(Value::as_str)
                .map(str::to_owned);
            vec![custom_named(name)]
        }
        "error" => vec![error(&mut params, &mut qoe_data)],
        "sessionComplete" => vec![EventKind::Ended, EventKind::Viewend],
        "sessionEnd" => vec![EventKind::Viewend],
        // chapterStart, chapterComplete, chapterSkip: the params stay in data.
        _ => vec![custom_named(name)],
    };

    let mut data = Map::new();
    for (key, part) in [
        ("params", params),
        ("qoeData", qoe_data),
        ("customMetadata", custom),
    ] {
        if !part.is_empty() {
            data.insert(key.to_owned(), Value::Object(part));
        }
    }
    let rank = match name {
        "sessionStart" => 0,
        "sessionComplete" | "sessionEnd" => 4,
        _ => 2,
    };
    d.events = kinds
        .into_iter()
        .enumerate()
        .map(|(k, kind)| {
            let mut ev = Event::new(v.ts, received_at, kind);
            ev.order = index.saturating_mul(ORDER_STRIDE) + rank + k as u64;
            ev.playhead = Some(v.playhead);
            if k == 0 {
                ev.qoe = std::mem::take(&mut qoe);
                ev.data = std::mem::take(&mut data);
            }
            ev.dedup_key = ev.content_key();
            ev
        })
        .collect();
    d
}

/// The session meta of a `sessionStart`; what it takes from `params` is
/// removed from them (not repeated in the event's data).
fn session_start(params: &mut Map<String, Value>, custom: Map<String, Value>, d: &mut Decoded) {
    let flag = |key: &str| params.get(key) == Some(&Value::Bool(true));
    d.downloaded = flag("media.downloaded");
    d.resumed = flag("media.resume");
    let meta = &mut d.meta;
    meta.video_id = take_str(params, "media.id");
    meta.duration_s = take_f64(params, "media.length");
    meta.content_type = take_str(params, "media.contentType").map(|ct| content_type(&ct));
    meta.player_name = take_str(params, "media.playerName");
    meta.viewer_id = VIEWER_ID_KEYS
        .iter()
        .find(|k| {
            params
                .get(**k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
        .and_then(|k| take_str(params, k));
    let mut dimension = |dim: &str, key: &str| {
        if let Some(v) = take_str(params, key).filter(|v| !v.is_empty()) {
            meta.dimensions.insert(dim.to_owned(), v);
        }
    };
    dimension("channel", "media.channel");
    dimension("stream_type", "media.streamType");
    dimension("report_suite", "analytics.reportSuite");
    d.report_suite = meta.dimensions.get("report_suite").cloned();
    // customMetadata first: a standard metadata param of the same name wins.
    for (k, v) in custom {
        if let Value::String(v) = v {
            meta.custom.insert(k, v);
        }
    }
    for key in rules::STANDARD_METADATA {
        if let Some(v) = take_str(params, key).filter(|v| !v.is_empty()) {
            meta.custom.insert(key.to_owned(), v);
        }
    }
}

/// `VOD` → `vod`; `Live` and `Linear` → `live`; anything else lowercased.
fn content_type(ct: &str) -> String {
    let ct = ct.to_lowercase();
    if ct == "linear" {
        "live".to_owned()
    } else {
        ct
    }
}

/// The error of an `error` event: the id from either spelling (validated to
/// be there), the source from either.
fn error(params: &mut Map<String, Value>, qoe_data: &mut Map<String, Value>) -> EventKind {
    let non_empty = |m: &Map<String, Value>, key: &str| {
        m.get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let code = if non_empty(qoe_data, rules::QOE_ERROR_ID) {
        take_str(qoe_data, rules::QOE_ERROR_ID)
    } else {
        take_str(params, rules::PARAM_ERROR_ID)
    };
    let source = take_str(qoe_data, "media.qoe.errorSource")
        .or_else(|| take_str(params, "media.errorSource"));
    EventKind::Error {
        code: code.unwrap_or_default(),
        message: String::new(),
        severity: ErrorSeverity::FatalUnlessResumed,
        source,
    }
}

fn take_str(m: &mut Map<String, Value>, key: &str) -> Option<String> {
    match m.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn take_f64(m: &mut Map<String, Value>, key: &str) -> Option<f64> {
    m.remove(key).and_then(|v| v.as_f64())
}

fn take_u64(m: &mut Map<String, Value>, key: &str) -> Option<u64> {
    m.remove(key).and_then(|v| v.as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AT: Millis = 1_714_564_800_000;
    const TS: Millis = 1_714_564_790_000;

    /// A valid event of each type, with only what it requires.
    fn sample(event_type: &str) -> Value {
        let mut v = json!({"eventType": event_type, "playerTime": {"playhead": 12.5, "ts": TS}});
        let params = match event_type {
            "sessionStart" => json!({
                "analytics.trackingServer": "metrics.example.com",
                "analytics.reportSuite": "example-prod",
                "visitor.marketingCloudOrgId": "0123456789ABCDEF@AdobeOrg",
                "media.id": "vid-1",
                "media.length": 600,
                "media.contentType": "VOD",
                "media.playerName": "html5",
                "media.channel": "web",
            }),
            "adBreakStart" => json!({"media.ad.podIndex": 1, "media.ad.podSecond": 300}),
            "adStart" => json!({
                "media.ad.podPosition": 1,
                "media.ad.id": "ad-1",
                "media.ad.length": 15,
                "media.ad.playerName": "ima",
            }),
            "chapterStart" => json!({
                "media.chapter.index": 2,
                "media.chapter.offset": 120,
                "media.chapter.length": 300,
            }),
            "stateStart" | "stateEnd" => json!({"media.state.name": "fullscreen"}),
            _ => Value::Null,
        };
        if !params.is_null() {
            v["params"] = params;
        }
        if event_type == "error" {
            v["qoeData"] = json!({"media.qoe.errorID": "E42"});
        }
        v
    }

    fn decode(v: &Value) -> Result<Decoded, ProtocolError> {
        decode_event(v, AT, 0)
    }

    fn types(d: &Decoded) -> Vec<&'static str> {
        d.events.iter().map(Event::type_name).collect()
    }

    /// `v` with `value` at the JSON pointer `at` (created), or removed for `None`.
    fn with(mut v: Value, at: &str, value: Option<Value>) -> Value {
        let (parent, key) = at.rsplit_once('/').unwrap();
        if v.pointer(parent).is_none() {
            v[&parent[1..]] = json!({});
        }
        let o = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        let key = key.replace("~1", "/");
        match value {
            Some(value) => o.insert(key, value),
            None => o.remove(&key),
        };
        v
    }

    #[test]
    fn event_types_are_the_rules_event_types() {
        let names: Vec<_> = rules::EVENTS.iter().map(|r| r.name).collect();
        assert_eq!(names, EVENT_TYPES);
    }

    #[test]
    fn every_sample_decodes() {
        for ty in EVENT_TYPES {
            let d = decode(&sample(ty)).unwrap_or_else(|e| panic!("{ty}: {e}"));
            assert_eq!(d.event_type, ty);
            for ev in &d.events {
                assert_eq!(ev.t, TS);
                assert_eq!(ev.playhead, Some(12.5));
                assert_eq!(ev.dedup_key, ev.content_key(), "{ty}");
            }
        }
    }

    /// Invalid events, each with the field its error must name.
    fn bad_events() -> Vec<(Value, &'static str)> {
        let start = sample("sessionStart");
        vec![
            (json!([]), "body"),
            (
                json!({"playerTime": {"playhead": 0, "ts": TS}}),
                "eventType",
            ),
            (
                with(sample("play"), "/eventType", Some(json!(3))),
                "eventType",
            ),
            (
                with(sample("play"), "/eventType", Some(json!("Play"))),
                "eventType",
            ),
            (with(sample("play"), "/playerTime", None), "playerTime"),
            (
                with(sample("play"), "/playerTime", Some(json!([1, 2]))),
                "playerTime",
            ),
            (
                with(sample("play"), "/playerTime/playhead", None),
                "playerTime.playhead",
            ),
            (
                with(sample("play"), "/playerTime/playhead", Some(json!(-1))),
                "playerTime.playhead",
            ),
            (
                with(sample("play"), "/playerTime/ts", None),
                "playerTime.ts",
            ),
            (
                with(sample("play"), "/playerTime/ts", Some(json!(1.5e12))),
                "playerTime.ts",
            ),
            (
                with(sample("play"), "/playerTime/ts", Some(json!(-1))),
                "playerTime.ts",
            ),
            (
                with(sample("play"), "/playerTime/ts", Some(json!(1u64 << 53))),
                "playerTime.ts",
            ),
            (
                with(sample("play"), "/playerTime/rate", Some(json!(1))),
                "playerTime.rate",
            ),
            (with(sample("play"), "/params", Some(json!("x"))), "params"),
            (with(sample("ping"), "/params", Some(json!(null))), "params"),
            (with(start.clone(), "/params", None), "params"),
            (
                with(start.clone(), "/params/media.id", None),
                "params.\"media.id\"",
            ),
            (
                with(start.clone(), "/params/media.id", Some(json!(""))),
                "params.\"media.id\"",
            ),
            (
                with(start.clone(), "/params/media.length", Some(json!("600"))),
                "params.\"media.length\"",
            ),
            (
                with(start.clone(), "/params/media.length", Some(json!(-1))),
                "params.\"media.length\"",
            ),
            (
                with(start.clone(), "/params/media.resume", Some(json!("true"))),
                "params.\"media.resume\"",
            ),
            (
                with(start.clone(), "/params/media.show", Some(json!(3))),
                "params.\"media.show\"",
            ),
            (
                with(start.clone(), "/params/x.unknown", Some(json!([]))),
                "params.\"x.unknown\"",
            ),
            (
                with(start.clone(), "/customMetadata", Some(json!([]))),
                "customMetadata",
            ),
            (
                with(start.clone(), "/customMetadata/a b", Some(json!("c"))),
                "customMetadata.\"a b\"",
            ),
            (
                with(start, "/customMetadata/season", Some(json!(2))),
                "customMetadata.season",
            ),
            (
                with(
                    sample("adStart"),
                    "/params/media.ad.podPosition",
                    Some(json!(0)),
                ),
                "params.\"media.ad.podPosition\"",
            ),
            (
                with(
                    sample("adBreakStart"),
                    "/params/media.ad.podIndex",
                    Some(json!(1.5)),
                ),
                "params.\"media.ad.podIndex\"",
            ),
            (
                with(sample("adBreakStart"), "/params", None),
                "params.\"media.ad.podIndex\"",
            ),
            (
                with(
                    sample("play"),
                    "/params/media.ad.podIndex",
                    Some(json!("1")),
                ),
                "params.\"media.ad.podIndex\"",
            ),
            (
                with(sample("play"), "/customMetadata", Some(json!({}))),
                "customMetadata",
            ),
            (with(sample("play"), "/qoeData", Some(json!(1))), "qoeData"),
            (
                with(
                    sample("play"),
                    "/qoeData/media.qoe.bitrate",
                    Some(json!("fast")),
                ),
                "qoeData.\"media.qoe.bitrate\"",
            ),
            (
                with(
                    sample("play"),
                    "/qoeData/media.qoe.droppedFrames",
                    Some(json!(-3)),
                ),
                "qoeData.\"media.qoe.droppedFrames\"",
            ),
            (
                with(
                    sample("play"),
                    "/qoeData/media.qoe.timeToStart",
                    Some(json!(-3.5)),
                ),
                "qoeData.\"media.qoe.timeToStart\"",
            ),
            (
                with(sample("error"), "/qoeData", None),
                "qoeData.\"media.qoe.errorID\"",
            ),
            (
                with(
                    sample("error"),
                    "/qoeData/media.qoe.errorID",
                    Some(json!("")),
                ),
                "qoeData.\"media.qoe.errorID\"",
            ),
            (
                with(
                    sample("error"),
                    "/qoeData/media.qoe.errorID",
                    Some(json!(42)),
                ),
                "qoeData.\"media.qoe.errorID\"",
            ),
            (
                with(
                    sample("error"),
                    "/qoeData/media.qoe.errorSource",
                    Some(json!("cdn")),
                ),
                "qoeData.\"media.qoe.errorSource\"",
            ),
            (
                with(sample("stateEnd"), "/params/media.state.name", None),
                "params.\"media.state.name\"",
            ),
        ]
    }

    #[test]
    fn names_the_bad_field() {
        for (body, field) in bad_events() {
            let err = decode(&body).unwrap_err();
            assert_eq!(err.field(), Some(field), "{body}: {err}");
        }
    }

    /// The P2 benchmark's body (`bench/adobe_events.lua`), as players send it.
    const BENCH_BODY: &str = r#"{"playerTime":{"playhead":20.007,"ts":1714564790000},"eventType":"ping","params":{"media.playerName":"html5-player","media.channel":"web","analytics.visitorId":"0000000700000007"},"qoeData":{"media.qoe.bitrate":2500000,"media.qoe.droppedFrames":2,"media.qoe.framesPerSecond":29.97}}"#;

    #[test]
    fn the_envelope_reads_what_the_value_way_reads() {
        let mut valid: Vec<String> = EVENT_TYPES.iter().map(|t| sample(t).to_string()).collect();
        valid.push(BENCH_BODY.to_owned());
        let every_part = with(
            with(
                sample("sessionStart"),
                "/customMetadata/season",
                Some(json!("2")),
            ),
            "/qoeData/media.qoe.bitrate",
            Some(json!(1.6e6)),
        );
        valid.push(every_part.to_string());
        // Escaped names and values, members in another order, a member
        // validation ignores, `-0`.
        valid.push(
            r#"{"x":[1,{"y":null}],"playerTime":{"ts":1714564790000,"playhead":-0},"event\u0054ype":"p\u006cay","params":{"a.b":"\"q\""}}"#.to_owned(),
        );
        for body in &valid {
            assert!(
                decode_envelope(body.as_bytes(), AT).is_some(),
                "the envelope reads {body}"
            );
            assert_eq!(
                decode_body(body.as_bytes(), AT).unwrap(),
                decode_body_by_value(body.as_bytes(), AT).unwrap(),
                "{body}"
            );
        }

        // What the envelope does not read goes the `Value` way: the same
        // verdict, the same error.
        let mut other: Vec<String> = bad_events().iter().map(|(v, _)| v.to_string()).collect();
        other.extend(
            [
                // A member twice: the last one counts.
                r#"{"eventType":"bogus","eventType":"play","playerTime":{"playhead":1,"ts":1714564790000}}"#,
                r#"{"eventType":"play","playerTime":{"playhead":1,"ts":1714564790000,"ts":1714564791000}}"#,
                r#"{"eventType":"ping","playerTime":{"playhead":1,"ts":1714564790000},"params":1,"params":{}}"#,
                // `null` is not an absent member.
                r#"{"eventType":"play","playerTime":{"playhead":1,"ts":1714564790000},"qoeData":null}"#,
                r#"{"eventType":"play","playerTime":{"playhead":1,"ts":1714564790000},"customMetadata":null}"#,
                r#"{"eventType":"play","playerTime":null}"#,
                // serde reads a struct from an array too; an event is not one.
                r#"["play",{"playhead":1,"ts":1714564790000}]"#,
                r#"{"eventType":"play","playerTime":[1,1714564790000]}"#,
                r#"{"eventType":null,"playerTime":{"playhead":1,"ts":1714564790000}}"#,
                r#"{"eventType":"play","playerTime":{"playhead":"1","ts":1714564790000}}"#,
                r#"{"eventType":"play","playerTime":{"playhead":1,"ts":1.71456479e12}}"#,
                r#"{"eventType":"play","playerTime":{"playhead":1,"ts":18446744073709551615}}"#,
                r#"{"eventType":"play","playerTime":{"playhead":1e400,"ts":1714564790000}}"#,
                r#"{"eventType":"play","playerTime":{"playhead":1,"ts":1714564790000}} x"#,
                r#"{"eventType":"play","playerTime":{"playhead":1,"ts":1714564790000}"#,
                r#"[{"eventType":"play","playerTime":{"playhead":1,"ts":1714564790000}}]"#,
                "null",
                "",
            ]
            .map(str::to_owned),
        );
        for body in &other {
            let fast = decode_body(body.as_bytes(), AT);
            let by_value = decode_body_by_value(body.as_bytes(), AT);
            match (&fast, &by_value) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{body}"),
                _ => panic!("{body}: {fast:?} against {by_value:?}"),
            }
        }
        // A member twice is read, the last one counting.
        let twice = decode_body(other[bad_events().len()].as_bytes(), AT).unwrap();
        assert_eq!(twice.event_type, "play");
    }

    #[test]
    fn error_messages_read_well() {
        let msg = |v: Value| decode(&v).unwrap_err().to_string();
        assert_eq!(
            msg(with(sample("play"), "/eventType", Some(json!("seek")))),
            "eventType: unknown event type `seek`"
        );
        assert_eq!(
            msg(with(sample("sessionStart"), "/params/media.channel", None)),
            "params.\"media.channel\": required on `sessionStart`"
        );
        assert_eq!(
            msg(with(sample("play"), "/customMetadata", Some(json!({"a": "b"})))),
            "customMetadata: not allowed on `play` (only on sessionStart, adStart and chapterStart)"
        );
        assert_eq!(
            msg(with(sample("error"), "/qoeData", None)),
            "qoeData.\"media.qoe.errorID\": required on `error` (or its alias params.\"media.errorId\")"
        );
        assert_eq!(
            msg(with(sample("play"), "/playerTime/ts", Some(json!(1.0)))),
            "playerTime.ts: must be an integer (no fraction, no exponent)"
        );
        let long = msg(with(
            sample("play"),
            "/eventType",
            Some(json!("z".repeat(500))),
        ));
        assert!(long.len() < 100, "{long}");
    }

    #[test]
    fn a_body_is_one_event_and_a_batch_an_array() {
        let body = sample("play").to_string();
        assert_eq!(decode_body(body.as_bytes(), AT).unwrap().event_type, "play");
        let err = decode_body(b"[]", AT).unwrap_err();
        assert_eq!(err.field(), Some("body"));
        let err = decode_body(b"{\"eventType\":", AT).unwrap_err();
        assert_eq!(err.field(), Some("body"));
        assert!(err.to_string().starts_with("body: not valid JSON"), "{err}");
        let err = decode_batch(body.as_bytes(), AT, false).unwrap_err();
        assert_eq!(err.field(), Some("body"));
        assert_eq!(
            decode_batch(b"[]", AT, false).unwrap_err().field(),
            Some("body")
        );
    }

    #[test]
    fn session_start_fills_the_meta() {
        let mut v = sample("sessionStart");
        let p = v["params"].as_object_mut().unwrap();
        p.insert("media.contentType".into(), json!("Linear"));
        p.insert("analytics.visitorId".into(), json!("aid-7"));
        p.insert("visitor.marketingCloudUserId".into(), json!(""));
        p.insert("media.streamType".into(), json!("video"));
        p.insert("media.show".into(), json!("The Show"));
        p.insert("media.genre".into(), json!(""));
        p.insert("media.resume".into(), json!(true));
        v["customMetadata"] = json!({"media.show": "custom loses", "plan": "pro"});
        let d = decode(&v).unwrap();
        assert_eq!(types(&d), ["viewinit", "play"]);
        assert_eq!(d.meta.video_id.as_deref(), Some("vid-1"));
        assert_eq!(d.meta.viewer_id.as_deref(), Some("aid-7"));
        assert_eq!(d.meta.duration_s, Some(600.0));
        assert_eq!(d.meta.content_type.as_deref(), Some("live"));
        assert_eq!(d.meta.player_name.as_deref(), Some("html5"));
        assert_eq!(d.meta.dimensions["channel"], "web");
        assert_eq!(d.meta.dimensions["stream_type"], "video");
        assert_eq!(d.meta.dimensions["report_suite"], "example-prod");
        assert_eq!(d.report_suite.as_deref(), Some("example-prod"));
        assert_eq!(d.meta.custom["media.show"], "The Show");
        assert_eq!(d.meta.custom["plan"], "pro");
        assert!(!d.meta.custom.contains_key("media.genre"));
        assert!(d.resumed);
        assert!(!d.downloaded);
        // What became meta is not repeated; the rest stays.
        let params = d.events[0].data["params"].as_object().unwrap();
        let keys: Vec<_> = params.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "analytics.trackingServer",
                "media.resume",
                "visitor.marketingCloudOrgId",
                "visitor.marketingCloudUserId"
            ]
        );
        assert!(!d.events[0].data.contains_key("customMetadata"));
        assert!(d.events[1].data.is_empty());
    }

    #[test]
    fn content_types_are_lowercased_and_linear_is_live() {
        for (sent, kept) in [
            ("VOD", "vod"),
            ("Live", "live"),
            ("linear", "live"),
            ("AOD", "aod"),
        ] {
            let v = with(
                sample("sessionStart"),
                "/params/media.contentType",
                Some(json!(sent)),
            );
            assert_eq!(decode(&v).unwrap().meta.content_type.as_deref(), Some(kept));
        }
    }

    #[test]
    fn only_session_start_says_what_the_session_is() {
        let mut v = sample("play");
        v["params"] = json!({"media.id": "other", "media.downloaded": true, "media.resume": true});
        let d = decode(&v).unwrap();
        assert_eq!(d.meta, SessionMeta::default());
        assert!(!d.downloaded && !d.resumed && d.report_suite.is_none());
        assert_eq!(d.events[0].data["params"]["media.id"], "other");
    }

    #[test]
    fn qoe_data_feeds_qoe_and_the_rest_stays_in_data() {
        let v = with(
            sample("ping"),
            "/qoeData",
            Some(json!({
                "media.qoe.bitrate": 2_500_000.4,
                "media.qoe.droppedFrames": 3,
                "media.qoe.framesPerSecond": 29.97,
                "media.qoe.timeToStart": 850,
            })),
        );
        let v = with(v, "/params", Some(json!({"media.id": ["ignored on ping"]})));
        let d = decode(&v).unwrap();
        let ev = &d.events[0];
        assert_eq!(ev.kind, EventKind::Heartbeat);
        assert_eq!(
            ev.qoe,
            Qoe {
                bitrate_bps: Some(2_500_000),
                dropped_frames: Some(3),
                total_frames: None,
                startup_time_ms: Some(850.0),
            }
        );
        assert_eq!(
            Value::Object(ev.data.clone()),
            json!({"qoeData": {"media.qoe.framesPerSecond": 29.97}})
        );
    }

    #[test]
    fn a_bitrate_change_carries_its_bitrate_once() {
        let v = with(
            sample("bitrateChange"),
            "/qoeData/media.qoe.bitrate",
            Some(json!(800000)),
        );
        let ev = &decode(&v).unwrap().events[0];
        assert_eq!(
            ev.kind,
            EventKind::Renditionchange {
                bitrate_bps: Some(800_000),
                width: None,
                height: None
            }
        );
        assert!(ev.qoe.is_empty());
    }

    #[test]
    fn both_error_id_spellings_are_accepted() {
        let qoe = decode(&sample("error")).unwrap();
        let mut alias = sample("error");
        alias.as_object_mut().unwrap().remove("qoeData");
        alias["params"] = json!({"media.errorId": "E42", "media.errorSource": "external"});
        let alias = decode(&alias).unwrap();
        let kind = |d: &Decoded| d.events[0].kind.clone();
        assert_eq!(
            kind(&qoe),
            EventKind::Error {
                code: "E42".into(),
                message: String::new(),
                severity: ErrorSeverity::FatalUnlessResumed,
                source: None
            }
        );
        assert_eq!(
            kind(&alias),
            EventKind::Error {
                code: "E42".into(),
                message: String::new(),
                severity: ErrorSeverity::FatalUnlessResumed,
                source: Some("external".into())
            }
        );
        assert!(
            alias.events[0].data.is_empty(),
            "{:?}",
            alias.events[0].data
        );
        // An empty documented spelling falls back to the alias.
        let mut both = sample("error");
        both["qoeData"] = json!({"media.qoe.errorID": ""});
        both["params"] = json!({"media.errorId": "E7"});
        let EventKind::Error { code, .. } = kind(&decode(&both).unwrap()) else {
            panic!("not an error")
        };
        assert_eq!(code, "E7");
    }

    #[test]
    fn state_and_chapter_events_are_custom_with_their_params() {
        let d = decode(&sample("stateStart")).unwrap();
        assert_eq!(d.state_name.as_deref(), Some("fullscreen"));
        assert_eq!(
            d.events[0].kind,
            EventKind::Custom {
                name: "stateStart".into()
            }
        );
        assert_eq!(d.events[0].data["params"]["media.state.name"], "fullscreen");
        let v = with(
            sample("chapterStart"),
            "/customMetadata/segment",
            Some(json!("intro")),
        );
        let d = decode(&v).unwrap();
        assert_eq!(
            d.events[0].kind,
            EventKind::Custom {
                name: "chapterStart".into()
            }
        );
        assert_eq!(d.events[0].data["params"]["media.chapter.index"], 2);
        assert_eq!(d.events[0].data["customMetadata"]["segment"], "intro");
        assert_eq!(d.state_name, None);
    }

    #[test]
    fn order_keeps_starts_first_and_ends_last() {
        let order = |ty: &str, index: u64| -> Vec<u64> {
            decode_event(&sample(ty), AT, index)
                .unwrap()
                .events
                .iter()
                .map(|e| e.order)
                .collect()
        };
        assert_eq!(order("sessionStart", 0), [0, 1]);
        assert_eq!(order("play", 0), [2]);
        assert_eq!(order("sessionComplete", 0), [4, 5]);
        assert_eq!(order("sessionEnd", 0), [4]);
        assert_eq!(order("play", 3), [26]);
        let d = decode(&sample("sessionComplete")).unwrap();
        assert_eq!(types(&d), ["ended", "viewend"]);
    }

    #[test]
    fn a_client_clock_a_day_off_is_replaced() {
        let v = with(
            sample("play"),
            "/playerTime/ts",
            Some(json!(TS - 2 * 86_400_000)),
        );
        let ev = &decode(&v).unwrap().events[0];
        assert_eq!(ev.t, AT);
        assert!(ev.clock_skew_corrected);
    }

    #[test]
    fn the_same_event_twice_has_the_same_dedup_keys() {
        let a = decode_event(&sample("sessionStart"), AT, 0).unwrap();
        let b = decode_event(&sample("sessionStart"), AT + 5_000, 0).unwrap();
        let keys = |d: &Decoded| d.events.iter().map(|e| e.dedup_key).collect::<Vec<_>>();
        assert_eq!(keys(&a), keys(&b));
        assert_ne!(a.events[0].dedup_key, a.events[1].dedup_key);
    }

    #[test]
    fn a_negative_zero_playhead_is_zero() {
        let v = with(sample("play"), "/playerTime/playhead", Some(json!(-0.0)));
        assert!(decode(&v).unwrap().events[0]
            .playhead
            .unwrap()
            .is_sign_positive());
    }

    fn batch(events: &[Value]) -> Vec<u8> {
        serde_json::to_vec(events).unwrap()
    }

    #[test]
    fn a_batch_is_a_whole_session_in_order() {
        let body = batch(&[
            sample("sessionStart"),
            sample("play"),
            sample("ping"),
            sample("sessionComplete"),
        ]);
        let decoded = decode_batch(&body, AT, false).unwrap();
        let orders: Vec<u64> = decoded
            .iter()
            .flat_map(|d| d.events.iter().map(|e| e.order))
            .collect();
        assert_eq!(orders, [0, 1, 10, 18, 28, 29]);
    }

    #[test]
    fn a_downloaded_batch_keeps_its_own_times_even_days_old() {
        // Played offline three days before the upload: the events keep their
        // times (single events that far off are corrected to the receive time).
        let three_days = 3 * 24 * 3600 * 1000;
        let old = |ty: &str, dt: i64| {
            let v = sample(ty);
            let ts = v["playerTime"]["ts"].as_i64().unwrap() - three_days + dt;
            with(v, "/playerTime/ts", Some(json!(ts)))
        };
        let events = [
            old("sessionStart", 0),
            old("play", 1000),
            old("sessionEnd", 5000),
        ];
        let decoded = decode_batch(&batch(&events), AT, false).unwrap();
        for (d, raw) in decoded.iter().zip(&events) {
            for ev in &d.events {
                assert_eq!(ev.t, raw["playerTime"]["ts"].as_i64().unwrap());
                assert!(!ev.clock_skew_corrected);
                assert_eq!(ev.dedup_key, ev.content_key());
            }
        }
        let single = decode_event(&events[1], AT, 0).unwrap();
        assert!(single.events[0].clock_skew_corrected);
    }

    #[test]
    fn a_batch_refuses_starts_and_ends_out_of_place() {
        let s = || sample("sessionStart");
        let e = || sample("sessionEnd");
        let p = || sample("play");
        let cases = [
            (vec![p(), e()], "[0].eventType"),
            (vec![s(), p()], "[1].eventType"),
            (vec![s()], "[0].eventType"),
            (vec![s(), s(), e()], "[1].eventType"),
            (vec![s(), e(), e()], "[1].eventType"),
            (
                vec![s(), with(p(), "/playerTime/ts", Some(json!("x"))), e()],
                "[1].playerTime.ts",
            ),
            (vec![s(), json!(1), e()], "[1]"),
        ];
        for (events, field) in cases {
            let err = decode_batch(&batch(&events), AT, false).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
    }

    #[test]
    fn the_deprecated_batch_form_needs_the_downloaded_flag() {
        let events = [sample("sessionStart"), sample("sessionEnd")];
        let err = decode_batch(&batch(&events), AT, true).unwrap_err();
        assert_eq!(err.field(), Some("[0].params.\"media.downloaded\""));
        assert!(decode_batch(&batch(&events), AT, false).is_ok());
        let flagged = with(
            events[0].clone(),
            "/params/media.downloaded",
            Some(json!(true)),
        );
        let decoded = decode_batch(&batch(&[flagged, events[1].clone()]), AT, true).unwrap();
        assert!(decoded[0].downloaded);
    }

    #[test]
    fn a_batch_has_a_size_limit() {
        let mut events = vec![sample("sessionStart")];
        events.extend(std::iter::repeat_n(sample("ping"), MAX_BATCH_EVENTS - 1));
        events.push(sample("sessionEnd"));
        let err = decode_batch(&batch(&events), AT, false).unwrap_err();
        assert_eq!(err.field(), Some("body"));
    }

    /// Mutations of every sample: the decoder and the served schema must
    /// give the same verdict on each (`schema.rs` is written from the same
    /// tables; this checks the two readings of them).
    #[test]
    fn the_decoder_and_the_schemas_agree() {
        let wrong_values = [
            json!(null),
            json!(""),
            json!("x"),
            json!("player"),
            json!(0),
            json!(-1),
            json!(1),
            json!(1.5),
            json!(2.0),
            json!(true),
            json!([]),
            json!({}),
        ];
        let mut checked = 0;
        for ty in EVENT_TYPES {
            let validator = jsonschema::draft4::new(&schema(ty).unwrap()).unwrap();
            let base = sample(ty);
            let mut bodies = vec![base.clone()];
            for at in [
                "/eventType",
                "/playerTime",
                "/params",
                "/qoeData",
                "/customMetadata",
            ] {
                bodies.push(with(base.clone(), at, None));
                for w in &wrong_values {
                    bodies.push(with(base.clone(), at, Some(w.clone())));
                }
            }
            for at in [
                "/playerTime/playhead",
                "/playerTime/ts",
                "/playerTime/extra",
            ] {
                bodies.push(with(base.clone(), at, None));
                for w in wrong_values.iter().chain(&[json!(1e3), json!(1u64 << 53)]) {
                    bodies.push(with(base.clone(), at, Some(w.clone())));
                }
            }
            let params = rules::PARAMS
                .iter()
                .map(|k| k.name)
                .chain(rules::STANDARD_METADATA)
                .chain(["x.unknown"]);
            for key in params {
                let at = format!("/params/{key}");
                bodies.push(with(base.clone(), &at, None));
                for w in &wrong_values {
                    bodies.push(with(base.clone(), &at, Some(w.clone())));
                }
            }
            for key in rules::QOE.iter().map(|k| k.name).chain(["media.qoe.other"]) {
                let at = format!("/qoeData/{key}");
                bodies.push(with(base.clone(), &at, None));
                for w in &wrong_values {
                    bodies.push(with(base.clone(), &at, Some(w.clone())));
                }
            }
            for (k, w) in [
                ("ok.key_1", json!("v")),
                ("bad key", json!("v")),
                ("", json!("v")),
                ("k", json!(1)),
            ] {
                bodies.push(with(base.clone(), &format!("/customMetadata/{k}"), Some(w)));
            }
            for w in &wrong_values {
                bodies.push(with(base.clone(), "/params/media.errorId", Some(w.clone())));
                let no_qoe = with(base.clone(), "/qoeData", None);
                bodies.push(with(no_qoe, "/params/media.errorId", Some(w.clone())));
            }
            for body in bodies {
                let decoded = decode(&body);
                let valid = validator.is_valid(&body);
                assert_eq!(
                    decoded.is_ok(),
                    valid,
                    "{ty}: {body}\ndecoder: {decoded:?}\nschema: {:?}",
                    validator
                        .iter_errors(&body)
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                );
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
    }
}
