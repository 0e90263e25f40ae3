//! User Activity Vault: the activity reports of NAGRA OpenTV set-top and OTT
//! apps (`spec/protocols.md` §4).
//!
//! `POST /useractivityvault/v1/useractivity/{activityName}` with a JSON
//! envelope `{accountId, userId, deviceId, key, name, timestamp, metadata}`.
//! The token (`Authorization: Bearer` or `?token=`) is the route's business;
//! [`token_from_query`] reads the query form. Everything else is decoded here,
//! and every refusal names its field (`metadata.editorialId: required ...`).
//!
//! Quirks of real clients, accepted as sent:
//! - `userId` and `key` are sent as empty strings;
//! - the player version is `playerTypeVersion`, and also `playerTypeversion`
//!   as some of the vendor's docs spell it;
//! - the ad activity is `adDeliverd` (sic) as well as `adDelivered`.
//!
//! # Sessions (our choices)
//! - An activity with a `playbackSessionId` belongs to that playback session
//!   (the id is the session id). The playback family (`playbackStart` …
//!   `playback_metrics`, `playerError`, the ad activities) requires one.
//! - An activity without one (`appStart`, `appEnd`, `railView`,
//!   `railSelection`, `deepLinkTriggered`, any unknown name) is stored in the
//!   app session `app:<appSessionId>` (or `device:<deviceId>` when the app
//!   sent no `appSessionId`), whose `content_type` is `app` so that it can be
//!   told apart from viewings (`content_type=live|vod`). Its events are
//!   `custom`; `appEnd` closes it. It is not a view (`spec/metrics.md`: a
//!   view is a playback session): its kind is [`SessionKind::App`], so it is
//!   stored and listed with its events but counts in no aggregate metric
//!   (views, viewers, concurrent and realtime viewers, breakdowns, ...).
//!
//! # Event mapping (progress mode, `spec/metrics.md`)
//!
//! | activity | events |
//! |---|---|
//! | `playbackStart` | `play`, `progress` at `playbackProgress` (0 when absent): opens the session at its start position |
//! | `playback_metrics` | `progress { shown: playbackProgress > 0 }`, with the bitrate (`selectedBitrate`, else `streamBitrate`) and the frame counts as QoE |
//! | `playbackPause` | `progress` (when it carries a position), `pause` |
//! | `playbackResume` | `playing`, `progress` (when it carries a position) |
//! | `playbackStop` | `progress` (when it carries a position), `viewend` |
//! | `playbackHeartbeat` | `progress` (when it carries a position), `heartbeat` |
//! | `playbackSkipAhead`, `playbackSkipBack` | `progress { seek }` at the position reached (required): a seek, no playing time for the jump |
//! | `playerError` | `progress` (when it carries a position), `error` (fatal, `errorCode`, `errorMsg`, source `player`) |
//! | `adDelivered`, `adDeliverd` | `adbreakstart`, `adstart`, `adbreakend`: one ad delivered (an impression) |
//! | `adWatched` | `adbreakstart`, `adstart`, `adcomplete`, `adbreakend` |
//! | `adSkipped` | `adbreakstart`, `adstart`, `adskip`, `adbreakend` |
//! | `appEnd` | `custom`, `viewend` |
//! | anything else | `custom` under the activity's name |
//!
//! Each UAV ad activity reports one ad after the fact, so each is its own
//! zero-length break: a client that sends `adDelivered` and then `adWatched`
//! for the same ad counts two ads started.
//!
//! # Data kept
//! - Session dimensions (custom metadata, and so `custom.<key>` or the bare
//!   name in filters and breakdowns): `contentType`, `contentSource`,
//!   `editorialId`, `technicalId`, `programmeId`, `deviceId`, plus
//!   `accountId` and `appSessionId`. `video_id` is `editorialId` (for a
//!   `live-event`, the channel's); `viewer_id` is `userId`, or `deviceId`
//!   when `userId` is empty; `player_name` is `playerTypeVersion`;
//!   `content_type` is `live` for `live-event` and `live-stcu-event` and
//!   `vod` for the four others, which play a programme from its start.
//! - Every event's `data`: `activity` (the name) and every metadata or
//!   envelope key not read above (`bytesDownloaded`, `downloadBitRate`,
//!   `downloadBitrateAverage`, `bufferedDuration`, `availableBitrates`,
//!   `sessionId`, `uri`, any unknown key), as sent. The envelope's `key` is
//!   never stored.

use crate::raw::{ProtocolError, RawRequest};
use playhead_model::{
    Batch, ErrorSeverity, Event, EventKind, Protocol, SessionKey, SessionKind, SessionMeta,
};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The route's path up to the activity name.
pub const PATH_PREFIX: &str = "/useractivityvault/v1/useractivity/";
/// `metadata.contentType` values.
pub const CONTENT_TYPES: [&str; 6] = [
    "live-event",
    "live-stcu-event",
    "start-over",
    "ltcu",
    "npvr-event",
    "vod-ed",
];
/// `metadata.contentSource` values.
pub const CONTENT_SOURCES: [&str; 3] = ["IPTV", "OTT", "Blend"];
/// The session dimensions a UAV session carries as custom metadata, by
/// their wire names (`spec/protocols.md` §4).
pub const DIMENSIONS: [&str; 6] = [
    "contentType",
    "contentSource",
    "editorialId",
    "technicalId",
    "programmeId",
    "deviceId",
];
/// Longest accepted id (session ids, editorial ids, ...) and activity name.
const MAX_ID_LEN: usize = 256;
const MAX_NAME_LEN: usize = 64;

/// A decoded activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The activity name from the path (`playback_metrics`, `railView`, ...).
    pub activity: String,
    /// The events; `batch.key.property` is empty until the server maps the token.
    pub batch: Batch,
}

/// The `token` query parameter (`?token=<ingest token>`), URL-decoded.
pub fn token_from_query(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .last()
}

/// Which activities need a playback session, and what they report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Start,
    Metrics,
    Pause,
    Resume,
    Stop,
    Heartbeat,
    Skip,
    Error,
    AdDelivered,
    AdWatched,
    AdSkipped,
    AppEnd,
    Other,
}

impl Kind {
    fn of(activity: &str) -> Kind {
        match activity {
            "playbackStart" => Kind::Start,
            "playback_metrics" => Kind::Metrics,
            "playbackPause" => Kind::Pause,
            "playbackResume" => Kind::Resume,
            "playbackStop" => Kind::Stop,
            "playbackHeartbeat" => Kind::Heartbeat,
            "playbackSkipAhead" | "playbackSkipBack" => Kind::Skip,
            "playerError" => Kind::Error,
            // Sic: `adDeliverd` is the vendor's spelling; both are accepted.
            "adDeliverd" | "adDelivered" => Kind::AdDelivered,
            "adWatched" => Kind::AdWatched,
            "adSkipped" => Kind::AdSkipped,
            "appEnd" => Kind::AppEnd,
            _ => Kind::Other,
        }
    }

    /// Needs a `playbackSessionId`.
    fn is_playback(self) -> bool {
        !matches!(self, Kind::AppEnd | Kind::Other)
    }

    /// Reads `playbackProgress` as the position (elsewhere it is kept as data).
    fn reports_position(self) -> bool {
        matches!(
            self,
            Kind::Start
                | Kind::Metrics
                | Kind::Pause
                | Kind::Resume
                | Kind::Stop
                | Kind::Heartbeat
                | Kind::Skip
                | Kind::Error
        )
    }
}

/// Decode one `POST /useractivityvault/v1/useractivity/{activityName}`.
pub fn decode(req: &RawRequest<'_>) -> Result<Decoded, ProtocolError> {
    match req.content_type {
        None | Some("application/json") | Some("text/plain") => {}
        Some(other) => return Err(ProtocolError::UnsupportedMediaType(other.to_owned())),
    }
    let activity = activity_name(req.path)?;
    let kind = Kind::of(&activity);
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| ProtocolError::invalid("body", format!("not valid JSON: {e}")))?;
    let Value::Object(mut envelope) = body else {
        return Err(ProtocolError::invalid("body", "must be a JSON object"));
    };
    let mut metadata = match envelope.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ProtocolError::invalid("metadata", "must be an object")),
    };
    if let Some(name) = take_str(&mut envelope, "name", "name")? {
        if !name.is_empty() && name != activity {
            return Err(ProtocolError::invalid(
                "name",
                format!("`{name}` is not the activity of the path (`{activity}`)"),
            ));
        }
    }
    let t = match envelope.remove("timestamp") {
        None | Some(Value::Null) => req.received_at,
        Some(v) => timestamp(&v)?,
    };
    // Real clients send `userId` and `key` as empty strings: accepted.
    let user_id = take_str(&mut envelope, "userId", "userId")?;
    take_str(&mut envelope, "key", "key")?;
    let account_id = take_id(&mut envelope, "accountId", "accountId")?;
    let device_id = take_id(&mut envelope, "deviceId", "deviceId")?;

    let m = |k: &str| format!("metadata.{k}");
    let playback_session = take_id(&mut metadata, "playbackSessionId", &m("playbackSessionId"))?;
    let app_session = take_id(&mut metadata, "appSessionId", &m("appSessionId"))?;
    let meta_device = take_id(&mut metadata, "deviceId", &m("deviceId"))?;
    let meta_account = take_id(&mut metadata, "accountId", &m("accountId"))?;
    let meta_user = take_str(&mut metadata, "userId", &m("userId"))?;
    let content = Content::take(&mut metadata)?;
    let player = match take_str(&mut metadata, "playerTypeVersion", &m("playerTypeVersion"))? {
        Some(v) => Some(v),
        // The vendor's docs also spell it `playerTypeversion`.
        None => take_str(&mut metadata, "playerTypeversion", &m("playerTypeversion"))?,
    }
    .filter(|v| !v.is_empty());

    // What each activity requires.
    let needs = |field: &str| ProtocolError::invalid(m(field), format!("required on `{activity}`"));
    if matches!(kind, Kind::Metrics | Kind::Error) {
        if app_session.is_none() {
            return Err(needs("appSessionId"));
        }
        if playback_session.is_none() {
            return Err(needs("playbackSessionId"));
        }
        if content.source.is_none() {
            return Err(needs("contentSource"));
        }
        if content.content_type.is_none() {
            return Err(needs("contentType"));
        }
    }
    content.check_requirements()?;
    if kind.is_playback() && playback_session.is_none() {
        return Err(needs("playbackSessionId"));
    }
    let position = if kind.reports_position() {
        non_negative(&mut metadata, "playbackProgress")?
    } else {
        None
    };
    if position.is_none() && matches!(kind, Kind::Metrics | Kind::Skip) {
        return Err(needs("playbackProgress"));
    }
    let error = if kind == Kind::Error {
        let code = match metadata.remove("errorCode") {
            None | Some(Value::Null) => return Err(needs("errorCode")),
            Some(Value::String(s)) if s.trim().is_empty() => return Err(needs("errorCode")),
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(ProtocolError::invalid(
                    m("errorCode"),
                    "must be a string or a number",
                ))
            }
        };
        let message = take_str(&mut metadata, "errorMsg", &m("errorMsg"))?
            .ok_or_else(|| needs("errorMsg"))?;
        Some((code, message))
    } else {
        None
    };
    let bitrate = match non_negative(&mut metadata, "selectedBitrate")? {
        Some(b) => Some(b),
        None => non_negative(&mut metadata, "streamBitrate")?,
    };
    let dropped = non_negative(&mut metadata, "droppedVideoFrames")?;
    let total = non_negative(&mut metadata, "totalVideoFrames")?;

    // The session.
    let device = device_id.or(meta_device);
    let session_id = match (&playback_session, &app_session, &device) {
        (Some(p), _, _) => p.clone(),
        (None, Some(a), _) => format!("app:{a}"),
        (None, None, Some(d)) => format!("device:{d}"),
        (None, None, None) => {
            return Err(ProtocolError::invalid(
                m("appSessionId"),
                format!(
                    "`{activity}` has no playbackSessionId, so it needs an appSessionId (or a deviceId) to be stored with"
                ),
            ))
        }
    };
    let in_playback = playback_session.is_some();
    let mut meta = SessionMeta {
        viewer_id: [user_id, meta_user]
            .into_iter()
            .flatten()
            .find(|u| !u.is_empty())
            .or_else(|| device.clone()),
        player_name: player,
        ..SessionMeta::default()
    };
    if in_playback {
        content.into_meta(&mut meta);
    } else {
        // Not a viewing: kept and listed, but counted in no aggregate.
        meta.kind = SessionKind::App;
        meta.content_type = Some("app".into());
        content.into_data(&mut metadata);
    }
    for (k, v) in [
        ("deviceId", device),
        ("accountId", account_id.or(meta_account)),
        ("appSessionId", app_session),
    ] {
        if let Some(v) = v {
            meta.custom.insert(k.into(), v);
        }
    }

    // The events.
    let mut data = Map::new();
    data.insert("activity".into(), Value::String(activity.clone()));
    // Envelope keys the protocol does not define are kept too.
    data.extend(envelope);
    data.extend(metadata);
    let progress = |shown: bool| EventKind::Progress {
        seek: false,
        from: None,
        shown,
    };
    let shown = position.is_some_and(|p| p > 0.0);
    let at = |k: EventKind| (k, position);
    let bare = |k: EventKind| (k, None);
    let mut kinds: Vec<(EventKind, Option<f64>)> = Vec::new();
    let report = |kinds: &mut Vec<_>| {
        if position.is_some() {
            kinds.push(at(progress(shown)));
        }
    };
    match kind {
        Kind::Start => {
            kinds.push(bare(EventKind::Play));
            kinds.push((progress(false), Some(position.unwrap_or(0.0))));
        }
        Kind::Metrics => report(&mut kinds),
        Kind::Pause => {
            report(&mut kinds);
            kinds.push(bare(EventKind::Pause));
        }
        Kind::Resume => {
            kinds.push(bare(EventKind::Playing));
            report(&mut kinds);
        }
        Kind::Stop => {
            report(&mut kinds);
            kinds.push(bare(EventKind::Viewend));
        }
        Kind::Heartbeat => {
            report(&mut kinds);
            kinds.push(bare(EventKind::Heartbeat));
        }
        Kind::Skip => kinds.push(at(EventKind::Progress {
            seek: true,
            from: None,
            shown: false,
        })),
        Kind::Error => {
            report(&mut kinds);
            let (code, message) = error.unwrap_or_default();
            kinds.push(bare(EventKind::Error {
                code,
                message,
                severity: ErrorSeverity::Fatal,
                source: Some("player".into()),
            }));
        }
        Kind::AdDelivered | Kind::AdWatched | Kind::AdSkipped => {
            kinds.push(bare(EventKind::Adbreakstart));
            kinds.push(bare(EventKind::Adstart {
                ad_id: None,
                duration_s: None,
            }));
            match kind {
                Kind::AdWatched => kinds.push(bare(EventKind::Adcomplete)),
                Kind::AdSkipped => kinds.push(bare(EventKind::Adskip)),
                _ => {}
            }
            kinds.push(bare(EventKind::Adbreakend));
        }
        Kind::AppEnd => {
            kinds.push(bare(EventKind::Custom {
                name: activity.clone(),
            }));
            kinds.push(bare(EventKind::Viewend));
        }
        Kind::Other => kinds.push(bare(EventKind::Custom {
            name: activity.clone(),
        })),
    }
    let events = kinds
        .into_iter()
        .enumerate()
        .map(|(i, (kind, playhead))| {
            let mut ev = Event::new(t, req.received_at, kind);
            ev.order = i as u64;
            ev.playhead = playhead;
            if i == 0 {
                // QoE rides on the activity's first event.
                ev.qoe.bitrate_bps = bitrate.map(|b| b.round() as u64);
                ev.qoe.dropped_frames = dropped.map(|d| d.round() as u64);
                ev.qoe.total_frames = total.map(|f| f.round() as u64);
            }
            ev.data = data.clone();
            ev.dedup_key = ev.content_key();
            ev
        })
        .collect();
    Ok(Decoded {
        activity,
        batch: Batch {
            key: SessionKey::new("", session_id),
            protocol: Protocol::UserActivity,
            meta,
            events,
        },
    })
}

/// The activity name from the path: `[A-Za-z0-9_.-]`, 1 to 64 characters.
fn activity_name(path: &str) -> Result<String, ProtocolError> {
    let name = path.strip_prefix(PATH_PREFIX).unwrap_or("");
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(ProtocolError::invalid(
            "activityName",
            format!(
                "the path must end with an activity name of 1 to {MAX_NAME_LEN} letters, digits, `_`, `.` or `-`"
            ),
        ))
    }
}

/// `timestamp`: RFC 3339 (`2025-03-01T12:00:00Z`), or ms since the epoch.
fn timestamp(v: &Value) -> Result<i64, ProtocolError> {
    let bad = || ProtocolError::invalid("timestamp", "must be an RFC 3339 date-time or epoch ms");
    match v {
        Value::String(s) => OffsetDateTime::parse(s.trim(), &Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|_| bad()),
        Value::Number(n) => n
            .as_i64()
            .filter(|ms| (0..=9_000_000_000_000_000).contains(ms))
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// A string field, removed from `o` (`null` counts as absent).
fn take_str(
    o: &mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, ProtocolError> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ProtocolError::invalid(field, "must be a string")),
    }
}

/// An id: a non-empty string (or an integer, as some ids are numeric),
/// removed from `o`; an empty string counts as absent.
fn take_id(
    o: &mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, ProtocolError> {
    let id = match o.remove(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => return Err(ProtocolError::invalid(field, "must be a string")),
    };
    if id.len() > MAX_ID_LEN {
        return Err(ProtocolError::invalid(
            field,
            format!("at most {MAX_ID_LEN} bytes"),
        ));
    }
    Ok((!id.is_empty()).then_some(id))
}

/// A non-negative number under `metadata.<key>`, removed: a JSON number or a
/// string holding one (some clients send numbers as strings).
fn non_negative(o: &mut Map<String, Value>, key: &str) -> Result<Option<f64>, ProtocolError> {
    let bad = || ProtocolError::invalid(format!("metadata.{key}"), "must be a non-negative number");
    let x = match o.remove(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(bad)?,
        Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    if x.is_finite() && x >= 0.0 {
        // `+ 0.0` turns `-0` into `0`.
        Ok(Some(x + 0.0))
    } else {
        Err(bad())
    }
}

/// What an activity says about the content played.
struct Content {
    content_type: Option<String>,
    source: Option<String>,
    editorial_id: Option<String>,
    technical_id: Option<String>,
    programme_id: Option<String>,
}

impl Content {
    fn take(metadata: &mut Map<String, Value>) -> Result<Content, ProtocolError> {
        let content_type = take_str(metadata, "contentType", "metadata.contentType")?;
        if let Some(ct) = &content_type {
            if !CONTENT_TYPES.contains(&ct.as_str()) {
                return Err(ProtocolError::invalid(
                    "metadata.contentType",
                    format!("must be one of {}, got `{ct}`", CONTENT_TYPES.join(", ")),
                ));
            }
        }
        let source = take_str(metadata, "contentSource", "metadata.contentSource")?;
        if let Some(s) = &source {
            if !CONTENT_SOURCES.contains(&s.as_str()) {
                return Err(ProtocolError::invalid(
                    "metadata.contentSource",
                    format!("must be one of {}, got `{s}`", CONTENT_SOURCES.join(", ")),
                ));
            }
        }
        Ok(Content {
            content_type,
            source,
            editorial_id: take_id(metadata, "editorialId", "metadata.editorialId")?,
            technical_id: take_id(metadata, "technicalId", "metadata.technicalId")?,
            programme_id: take_id(metadata, "programmeId", "metadata.programmeId")?,
        })
    }

    /// Every content type needs `editorialId`; `live-event` also
    /// `technicalId` and `programmeId`.
    fn check_requirements(&self) -> Result<(), ProtocolError> {
        let Some(ct) = self.content_type.as_deref() else {
            return Ok(());
        };
        let need = |v: &Option<String>, field: &str| match v {
            Some(_) => Ok(()),
            None => Err(ProtocolError::invalid(
                format!("metadata.{field}"),
                format!("required for contentType `{ct}`"),
            )),
        };
        need(&self.editorial_id, "editorialId")?;
        if ct == "live-event" {
            need(&self.technical_id, "technicalId")?;
            need(&self.programme_id, "programmeId")?;
        }
        Ok(())
    }

    /// A playback session's dimensions.
    fn into_meta(self, meta: &mut SessionMeta) {
        if let Some(ct) = &self.content_type {
            let live = ct == "live-event" || ct == "live-stcu-event";
            meta.content_type = Some(if live { "live" } else { "vod" }.into());
        }
        meta.video_id.clone_from(&self.editorial_id);
        for (k, v) in self.pairs() {
            if let Some(v) = v {
                meta.custom.insert(k.into(), v);
            }
        }
    }

    /// An app session keeps what an activity says of content as event data only.
    fn into_data(self, data: &mut Map<String, Value>) {
        for (k, v) in self.pairs() {
            if let Some(v) = v {
                data.insert(k.into(), Value::String(v));
            }
        }
    }

    fn pairs(self) -> [(&'static str, Option<String>); 5] {
        [
            ("contentType", self.content_type),
            ("contentSource", self.source),
            ("editorialId", self.editorial_id),
            ("technicalId", self.technical_id),
            ("programmeId", self.programme_id),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_json(activity: &str, body: Value) -> Result<Decoded, ProtocolError> {
        let path = format!("{PATH_PREFIX}{activity}");
        let body = body.to_string();
        decode(&RawRequest {
            method: "POST",
            path: &path,
            query: "",
            content_type: Some("application/json"),
            body: body.as_bytes(),
            received_at: 1_740_830_400_000,
        })
    }

    #[test]
    fn token_comes_from_the_query() {
        assert_eq!(token_from_query("token=abc%2Bd").as_deref(), Some("abc+d"));
        assert_eq!(token_from_query("x=1&token=t").as_deref(), Some("t"));
        assert_eq!(token_from_query("x=1"), None);
    }

    #[test]
    fn activity_names_are_checked() {
        let err = decode_json("", json!({})).unwrap_err();
        assert_eq!(err.field(), Some("activityName"));
        let err = decode_json("a/b", json!({})).unwrap_err();
        assert_eq!(err.field(), Some("activityName"));
    }

    #[test]
    fn timestamps_parse_as_rfc3339_or_ms() {
        assert_eq!(
            timestamp(&json!("2025-03-01T12:00:00Z")).unwrap(),
            1_740_830_400_000
        );
        assert_eq!(
            timestamp(&json!("2025-03-01T13:00:00.250+01:00")).unwrap(),
            1_740_830_400_250
        );
        assert_eq!(
            timestamp(&json!(1_740_830_400_000_i64)).unwrap(),
            1_740_830_400_000
        );
        assert_eq!(
            timestamp(&json!("yesterday")).unwrap_err().field(),
            Some("timestamp")
        );
        assert_eq!(
            timestamp(&json!(-5)).unwrap_err().field(),
            Some("timestamp")
        );
    }

    #[test]
    fn content_fields_of_an_app_session_stay_event_data() {
        let d = decode_json(
            "railSelection",
            json!({"deviceId": "stb-1", "metadata": {"appSessionId": "a1",
                "contentType": "vod-ed", "editorialId": "ed-9", "railId": "top"}}),
        )
        .unwrap();
        assert_eq!(d.batch.key.session_id, "app:a1");
        assert_eq!(d.batch.meta.content_type.as_deref(), Some("app"));
        assert_eq!(d.batch.meta.kind, SessionKind::App);
        assert!(!d.batch.meta.custom.contains_key("contentType"));
        let data = &d.batch.events[0].data;
        assert_eq!(data["contentType"], "vod-ed");
        assert_eq!(data["railId"], "top");
    }
}
