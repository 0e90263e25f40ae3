//! What a valid event is, as data: the event types, the typed `params` and
//! `qoeData` keys, and what each event type requires. [`validate`] checks an
//! event against these tables and `schema.rs` writes them out as JSON Schema,
//! so the decoder and the schemas served at `/api/v1/schemas/{eventType}`
//! cannot disagree (a unit test also runs both over many events).

use crate::raw::ProtocolError;
use serde_json::{Map, Number, Value};

/// The type of a `params` or `qoeData` value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Type {
    /// A string; not empty where the event type requires the key.
    Text,
    /// A number, at least `min` when there is one.
    Number {
        min: Option<f64>,
    },
    /// An integer as draft-04 defines it: written without a fraction or an
    /// exponent (`3`, not `3.0`; JavaScript's `JSON.stringify` never writes
    /// those), at least `min` when there is one.
    Integer {
        min: Option<i64>,
    },
    Boolean,
    /// One of these strings.
    OneOf(&'static [&'static str]),
}

/// A known key of `params` or `qoeData` and its type. A known key has its
/// type on every event type, required there or not.
#[derive(Debug)]
pub(crate) struct Key {
    pub name: &'static str,
    pub ty: Type,
}

const fn text(name: &'static str) -> Key {
    Key {
        name,
        ty: Type::Text,
    }
}

const fn number(name: &'static str, min: Option<f64>) -> Key {
    Key {
        name,
        ty: Type::Number { min },
    }
}

const fn integer(name: &'static str, min: Option<i64>) -> Key {
    Key {
        name,
        ty: Type::Integer { min },
    }
}

const fn boolean(name: &'static str) -> Key {
    Key {
        name,
        ty: Type::Boolean,
    }
}

/// Where an error comes from (`media.qoe.errorSource`, `media.errorSource`).
pub(crate) const ERROR_SOURCES: &[&str] = &["player", "external"];

/// Adobe's standard content metadata keys (video and audio). Strings; on
/// `sessionStart` they become the session's custom metadata under these names.
pub(crate) const STANDARD_METADATA: [&str; 23] = [
    "media.show",
    "media.season",
    "media.episode",
    "media.assetId",
    "media.genre",
    "media.firstAirDate",
    "media.firstDigitalDate",
    "media.rating",
    "media.originator",
    "media.network",
    "media.showType",
    "media.adLoad",
    "media.pass.mvpd",
    "media.pass.auth",
    "media.dayPart",
    "media.feed",
    "media.streamFormat",
    "media.artist",
    "media.album",
    "media.label",
    "media.author",
    "media.station",
    "media.publisher",
];

/// Every typed `params` key but the standard metadata (strings each). Any
/// other key is accepted when its value is a string, number or boolean
/// (Adobe adds optional params without notice).
/// Pod index and pod second have no lower bound: players built on Google IMA
/// pass on its `-1` for a postroll.
pub(crate) const PARAMS: [Key; 36] = [
    text("analytics.trackingServer"),
    text("analytics.reportSuite"),
    boolean("analytics.enableSSL"),
    text("analytics.visitorId"),
    text("analytics.aid"),
    text("visitor.marketingCloudOrgId"),
    text("visitor.marketingCloudUserId"),
    integer("visitor.aamLocationHint", None),
    text("appInstallationId"),
    text("media.id"),
    text("media.name"),
    number("media.length", Some(0.0)),
    text("media.contentType"),
    text("media.playerName"),
    text("media.channel"),
    text("media.streamType"),
    boolean("media.resume"),
    boolean("media.downloaded"),
    integer("media.ad.podIndex", None),
    number("media.ad.podSecond", None),
    text("media.ad.podFriendlyName"),
    integer("media.ad.podPosition", Some(1)),
    text("media.ad.id"),
    number("media.ad.length", Some(0.0)),
    text("media.ad.playerName"),
    text("media.ad.name"),
    text("media.ad.advertiser"),
    text("media.ad.campaignId"),
    text("media.ad.creativeId"),
    integer("media.chapter.index", None),
    number("media.chapter.offset", None),
    number("media.chapter.length", Some(0.0)),
    text("media.chapter.friendlyName"),
    text("media.state.name"),
    text("media.errorId"),
    Key {
        name: "media.errorSource",
        ty: Type::OneOf(ERROR_SOURCES),
    },
];

/// Every typed `qoeData` key; any other key is accepted like an unknown param.
pub(crate) const QOE: [Key; 6] = [
    number("media.qoe.bitrate", Some(0.0)),
    integer("media.qoe.droppedFrames", Some(0)),
    number("media.qoe.framesPerSecond", None),
    number("media.qoe.timeToStart", Some(0.0)),
    text("media.qoe.errorID"),
    Key {
        name: "media.qoe.errorSource",
        ty: Type::OneOf(ERROR_SOURCES),
    },
];

/// The error id of an `error` event, in its documented spelling...
pub(crate) const QOE_ERROR_ID: &str = "media.qoe.errorID";
/// ...and in the alias players also send.
pub(crate) const PARAM_ERROR_ID: &str = "media.errorId";

/// Largest accepted `playerTime.ts`: JavaScript's largest safe integer.
pub(crate) const MAX_TS: i64 = (1 << 53) - 1;

/// `customMetadata` keys: `^[a-zA-Z0-9_.]+$`.
pub(crate) const CUSTOM_KEY_PATTERN: &str = "^[a-zA-Z0-9_.]+$";

/// What one event type requires beyond the envelope.
#[derive(Debug)]
pub(crate) struct EventRules {
    /// The wire name.
    pub name: &'static str,
    /// `params` itself is required (`sessionStart`).
    pub needs_params: bool,
    /// `params` keys that must be there (strings among them not empty).
    pub required: &'static [&'static str],
    /// `params` is read. `ping` should carry none: its params are accepted
    /// and ignored, whatever they hold.
    pub reads_params: bool,
    /// `customMetadata` is allowed (`sessionStart`, `adStart`, `chapterStart`).
    pub custom_metadata: bool,
    /// An error id is required in either spelling (`error`).
    pub needs_error_id: bool,
}

const PLAIN: EventRules = EventRules {
    name: "",
    needs_params: false,
    required: &[],
    reads_params: true,
    custom_metadata: false,
    needs_error_id: false,
};

const fn plain(name: &'static str) -> EventRules {
    EventRules { name, ..PLAIN }
}

/// The 19 event types, in the order of `EVENT_TYPES`.
pub(crate) const EVENTS: [EventRules; 19] = [
    EventRules {
        name: "sessionStart",
        needs_params: true,
        required: &[
            "analytics.trackingServer",
            "analytics.reportSuite",
            "visitor.marketingCloudOrgId",
            "media.id",
            "media.length",
            "media.contentType",
            "media.playerName",
            "media.channel",
        ],
        custom_metadata: true,
        ..PLAIN
    },
    plain("play"),
    EventRules {
        reads_params: false,
        ..plain("ping")
    },
    plain("bufferStart"),
    plain("pauseStart"),
    plain("bitrateChange"),
    EventRules {
        required: &["media.ad.podIndex", "media.ad.podSecond"],
        ..plain("adBreakStart")
    },
    EventRules {
        required: &[
            "media.ad.podPosition",
            "media.ad.id",
            "media.ad.length",
            "media.ad.playerName",
        ],
        custom_metadata: true,
        ..plain("adStart")
    },
    plain("adComplete"),
    plain("adSkip"),
    plain("adBreakComplete"),
    EventRules {
        required: &[
            "media.chapter.index",
            "media.chapter.offset",
            "media.chapter.length",
        ],
        custom_metadata: true,
        ..plain("chapterStart")
    },
    plain("chapterComplete"),
    plain("chapterSkip"),
    EventRules {
        required: &["media.state.name"],
        ..plain("stateStart")
    },
    EventRules {
        required: &["media.state.name"],
        ..plain("stateEnd")
    },
    EventRules {
        needs_error_id: true,
        ..plain("error")
    },
    plain("sessionComplete"),
    plain("sessionEnd"),
];

/// The rules of a wire event type.
pub(crate) fn find(event_type: &str) -> Option<&'static EventRules> {
    EVENTS.iter().find(|r| r.name == event_type)
}

/// The type of a known `params` key.
pub(crate) fn param(name: &str) -> Option<Type> {
    PARAMS
        .iter()
        .find(|k| k.name == name)
        .map(|k| k.ty)
        .or_else(|| STANDARD_METADATA.contains(&name).then_some(Type::Text))
}

/// The type of a known `qoeData` key.
pub(crate) fn qoe(name: &str) -> Option<Type> {
    QOE.iter().find(|k| k.name == name).map(|k| k.ty)
}

/// An event that passed [`validate`], its parts borrowed from the JSON.
#[derive(Debug)]
pub(crate) struct Valid<'a> {
    pub rules: &'static EventRules,
    pub playhead: f64,
    pub ts: i64,
    /// `params` as sent; `None` when absent, and on `ping` (ignored).
    pub params: Option<&'a Map<String, Value>>,
    pub qoe: Option<&'a Map<String, Value>>,
    pub custom: Option<&'a Map<String, Value>>,
}

/// Check one event. `at` is where it is in the request: `""` for a body of
/// one event, `[3]` for the fourth event of a batch; every error names the
/// field under it (`[3].playerTime.ts`).
pub(crate) fn validate<'a>(value: &'a Value, at: &str) -> Result<Valid<'a>, ProtocolError> {
    let o = value.as_object().ok_or_else(|| {
        ProtocolError::invalid(
            if at.is_empty() { "body" } else { at },
            "must be a JSON object",
        )
    })?;
    let f = |name: &str| field(at, name);

    let rules = match o.get("eventType") {
        None => return Err(ProtocolError::invalid(f("eventType"), "required")),
        Some(Value::String(s)) => find(s).ok_or_else(|| {
            ProtocolError::invalid(f("eventType"), format!("unknown event type `{}`", echo(s)))
        })?,
        Some(_) => return Err(ProtocolError::invalid(f("eventType"), "must be a string")),
    };

    let player_time = object(o.get("playerTime"), || f("playerTime"))?
        .ok_or_else(|| ProtocolError::invalid(f("playerTime"), "required"))?;
    let (playhead, ts) = player_times(player_time.get("playhead"), player_time.get("ts"), at)?;
    if let Some(extra) = player_time
        .keys()
        .find(|k| k.as_str() != "playhead" && k.as_str() != "ts")
    {
        return Err(ProtocolError::invalid(
            member(&f("playerTime"), extra),
            "not allowed: playerTime holds only playhead and ts",
        ));
    }
    members(
        rules,
        (playhead, ts),
        [o.get("params"), o.get("qoeData"), o.get("customMetadata")],
        at,
    )
}

/// `playerTime.playhead` and `playerTime.ts`, checked: the playhead a number
/// of seconds (`-0` read as `0`), `ts` an integer of milliseconds.
pub(crate) fn player_times(
    playhead: Option<&Value>,
    ts: Option<&Value>,
    at: &str,
) -> Result<(f64, i64), ProtocolError> {
    let f = |name: &str| field(at, name);
    let playhead = match playhead {
        None => return Err(ProtocolError::invalid(f("playerTime.playhead"), "required")),
        Some(v) => {
            check(v, Type::Number { min: Some(0.0) }, false, || {
                f("playerTime.playhead")
            })?;
            // `+ 0.0` turns `-0` into `0`.
            v.as_f64().unwrap_or_default() + 0.0
        }
    };
    let ts = match ts {
        None => return Err(ProtocolError::invalid(f("playerTime.ts"), "required")),
        Some(v) => {
            check(v, Type::Integer { min: Some(0) }, false, || {
                f("playerTime.ts")
            })?;
            v.as_i64()
                .filter(|ts| *ts <= MAX_TS)
                .ok_or_else(|| ProtocolError::invalid(f("playerTime.ts"), "too large"))?
        }
    };
    Ok((playhead, ts))
}

/// The rest of an event of type `rules`, once its `playerTime` is checked:
/// its `params`, `qoeData` and `customMetadata` as sent (`None` when absent).
pub(crate) fn members<'a>(
    rules: &'static EventRules,
    (playhead, ts): (f64, i64),
    [params, qoe_data, custom]: [Option<&'a Value>; 3],
    at: &str,
) -> Result<Valid<'a>, ProtocolError> {
    let f = |name: &str| field(at, name);
    let params = object(params, || f("params"))?;
    if rules.needs_params && params.is_none() {
        return Err(ProtocolError::invalid(
            f("params"),
            format!("required on `{}`", rules.name),
        ));
    }
    let params = if rules.reads_params { params } else { None };
    if let Some(params) = params {
        // Paths are written only for an error: most events have none.
        let at = || f("params");
        for name in rules.required {
            if !params.contains_key(*name) {
                return Err(ProtocolError::invalid(
                    member(&at(), name),
                    format!("required on `{}`", rules.name),
                ));
            }
        }
        for (name, v) in params {
            let required = rules.required.contains(&name.as_str());
            check_member(v, param(name), required, || member(&at(), name))?;
        }
    } else if let Some(name) = rules.required.first() {
        return Err(ProtocolError::invalid(
            member(&f("params"), name),
            format!("required on `{}`", rules.name),
        ));
    }

    let qoe_data = object(qoe_data, || f("qoeData"))?;
    if let Some(q) = qoe_data {
        for (name, v) in q {
            check_member(v, qoe(name), false, || member(&f("qoeData"), name))?;
        }
    }

    let custom = object(custom, || f("customMetadata"))?;
    if let Some(custom) = custom {
        let at = f("customMetadata");
        if !rules.custom_metadata {
            return Err(ProtocolError::invalid(
                at,
                format!(
                    "not allowed on `{}` (only on sessionStart, adStart and chapterStart)",
                    rules.name
                ),
            ));
        }
        for (k, v) in custom {
            if !is_custom_key(k) {
                return Err(ProtocolError::invalid(
                    member(&at, k),
                    format!("key must match {CUSTOM_KEY_PATTERN}"),
                ));
            }
            if !v.is_string() {
                return Err(ProtocolError::invalid(member(&at, k), "must be a string"));
            }
        }
    }

    if rules.needs_error_id {
        let present = |m: Option<&Map<String, Value>>, key: &str| {
            m.and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        if !present(qoe_data, QOE_ERROR_ID) && !present(params, PARAM_ERROR_ID) {
            return Err(ProtocolError::invalid(
                member(&f("qoeData"), QOE_ERROR_ID),
                format!(
                    "required on `error` (or its alias {})",
                    member("params", PARAM_ERROR_ID)
                ),
            ));
        }
    }

    Ok(Valid {
        rules,
        playhead,
        ts,
        params,
        qoe: qoe_data,
        custom,
    })
}

/// `value` when it is an object; `None` when absent.
fn object(
    value: Option<&Value>,
    path: impl Fn() -> String,
) -> Result<Option<&Map<String, Value>>, ProtocolError> {
    match value {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(ProtocolError::invalid(path(), "must be an object")),
    }
}

/// A `params` or `qoeData` value: typed when the key is known, else any
/// string, number or boolean.
fn check_member(
    v: &Value,
    ty: Option<Type>,
    required: bool,
    path: impl Fn() -> String,
) -> Result<(), ProtocolError> {
    match ty {
        Some(ty) => check(v, ty, required, path),
        None if matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) => Ok(()),
        None => Err(ProtocolError::invalid(
            path(),
            "must be a string, number or boolean",
        )),
    }
}

fn check(
    v: &Value,
    ty: Type,
    required: bool,
    path: impl Fn() -> String,
) -> Result<(), ProtocolError> {
    let fail = |reason: String| Err(ProtocolError::invalid(path(), reason));
    match (ty, v) {
        (Type::Text, Value::String(s)) => {
            if required && s.is_empty() {
                return fail("must not be empty".into());
            }
        }
        (Type::Text, _) => return fail("must be a string".into()),
        (Type::Boolean, Value::Bool(_)) => {}
        (Type::Boolean, _) => return fail("must be a boolean".into()),
        (Type::OneOf(allowed), Value::String(s)) if allowed.contains(&s.as_str()) => {}
        (Type::OneOf(allowed), _) => return fail(format!("must be one of {}", allowed.join(", "))),
        (Type::Number { min }, Value::Number(n)) => {
            // Always finite: JSON has no NaN or infinity, and serde_json
            // refuses numbers beyond f64.
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = min.filter(|min| x < *min) {
                return fail(at_least(min));
            }
        }
        (Type::Number { .. }, _) => return fail("must be a number".into()),
        (Type::Integer { min }, Value::Number(n)) if is_integer(n) => {
            let below = match (min, n.as_i64()) {
                (None, _) => false,
                (Some(min), Some(x)) => x < min,
                // Beyond i64: only a huge positive (u64) number gets here.
                (Some(_), None) => false,
            };
            if below {
                return fail(at_least(min.unwrap_or_default() as f64));
            }
        }
        (Type::Integer { .. }, _) => {
            return fail("must be an integer (no fraction, no exponent)".into())
        }
    }
    Ok(())
}

fn at_least(min: f64) -> String {
    if min == 0.0 {
        "must not be negative".into()
    } else {
        format!("must be at least {min}")
    }
}

/// Draft-04's integer: written without a fraction or an exponent.
fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64()
}

/// `^[a-zA-Z0-9_.]+$`.
pub(crate) fn is_custom_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// A fixed field under `at`: `playerTime.ts`, `[3].playerTime.ts`.
pub(crate) fn field(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

/// A member of an object whose keys are data: quoted unless it is a plain
/// identifier, like jq (`params."media.id"`, `customMetadata.genre`,
/// `customMetadata."bad key!"`); bounded, so a huge key does not make a huge
/// error body.
pub(crate) fn member(at: &str, key: &str) -> String {
    let mut chars = key.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        return field(at, &echo(key));
    }
    let quoted = echo(key).replace('\\', "\\\\").replace('"', "\\\"");
    field(at, &format!("\"{quoted}\""))
}

/// Longest piece of a client's text echoed back in an error.
const MAX_ECHO_CHARS: usize = 40;

/// A client's text as quoted back in an error: bounded.
pub(crate) fn echo(value: &str) -> String {
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

    #[test]
    fn the_tables_hold_each_key_once() {
        for table in [&PARAMS[..], &QOE[..]] {
            let mut names: Vec<_> = table.iter().map(|k| k.name).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n);
        }
        for key in STANDARD_METADATA {
            assert_eq!(param(key), Some(Type::Text), "{key}");
            assert!(PARAMS.iter().all(|k| k.name != key), "{key}");
        }
    }

    #[test]
    fn required_params_are_known_keys() {
        for rules in &EVENTS {
            for name in rules.required {
                assert!(param(name).is_some(), "{}: {name}", rules.name);
            }
        }
    }

    #[test]
    fn member_paths_quote_keys_that_are_not_identifiers() {
        assert_eq!(member("params", "media.id"), "params.\"media.id\"");
        assert_eq!(member("customMetadata", "genre"), "customMetadata.genre");
        assert_eq!(
            member("customMetadata", "bad key!"),
            "customMetadata.\"bad key!\""
        );
        assert_eq!(member("[2].x", "a\"b"), "[2].x.\"a\\\"b\"");
        assert_eq!(member("x", ""), "x.\"\"");
        assert_eq!(field("", "eventType"), "eventType");
        assert_eq!(field("[0]", "eventType"), "[0].eventType");
        assert!(member("x", &"k".repeat(500)).len() < 60);
    }

    #[test]
    fn custom_keys() {
        assert!(is_custom_key("a.b_C9"));
        for bad in ["", "a b", "a-b", "é", "a\n"] {
            assert!(!is_custom_key(bad), "{bad:?}");
        }
    }
}
