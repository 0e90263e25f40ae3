//! User Activity Vault decoder fixtures (`spec/protocols.md` §4, issue 6):
//! `tests/data/user_activity/<name>.json` is a request, `<name>.expected.json`
//! what it must decode to, written by hand. A request that must be refused
//! has no `.expected.json` and says so itself: `"expect_error": {"field":
//! "metadata.editorialId", "status": 400}` (optionally `"message"`, the whole
//! reason sent to the client). Never edit an old fixture to make a test pass;
//! add one.
//!
//! A request carries `path` (`/useractivityvault/v1/useractivity/<name>`),
//! `content_type` (optional), `received_at` and `body` (JSON, or a string
//! sent as is). The expected form is `{"activity", "session_id", "meta",
//! "events"}`; dedup keys are left out of it and checked to be the events'
//! content hashes.
//!
//! Run with: `cargo test -p playhead-protocols --test user_activity_fixtures`

use playhead_protocols::user_activity::{self, CONTENT_TYPES};
use playhead_protocols::{ProtocolError, RawRequest};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/user_activity")
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every request fixture by name (sorted), with its expectation.
fn fixtures() -> Vec<(String, Value, Value)> {
    let dir = dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in &names {
        if let Some(stem) = name.strip_suffix(".expected.json") {
            assert!(
                names.contains(&format!("{stem}.json")),
                "{name}: no request for it"
            );
            continue;
        }
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let req = read(&dir.join(name));
        let expected_path = dir.join(format!("{stem}.expected.json"));
        let expected = match req.get("expect_error") {
            Some(err) => {
                assert!(
                    !expected_path.exists(),
                    "{name}: both `expect_error` and an .expected.json"
                );
                err.clone()
            }
            None => read(&expected_path),
        };
        out.push((stem.to_owned(), req, expected));
    }
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

fn decode(req: &Value) -> Result<user_activity::Decoded, ProtocolError> {
    let body = match &req["body"] {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    };
    user_activity::decode(&RawRequest {
        method: "POST",
        path: req["path"].as_str().expect("path"),
        query: "",
        content_type: req["content_type"].as_str(),
        body: body.as_bytes(),
        received_at: req["received_at"].as_i64().expect("received_at"),
    })
}

fn status(err: &ProtocolError) -> u16 {
    match err {
        ProtocolError::Invalid { .. } => 400,
        ProtocolError::UnsupportedMediaType(_) => 415,
    }
}

/// The decoded request in the fixtures' form.
fn as_json(name: &str, d: &user_activity::Decoded) -> Value {
    let events: Vec<Value> = d
        .batch
        .events
        .iter()
        .map(|ev| {
            assert_eq!(ev.dedup_key, ev.content_key(), "{name}: dedup_key");
            let mut v = serde_json::to_value(ev).unwrap();
            v.as_object_mut().unwrap().remove("dedup_key");
            v
        })
        .collect();
    assert_eq!(
        d.batch.protocol,
        playhead_model::Protocol::UserActivity,
        "{name}"
    );
    assert_eq!(
        d.batch.key.property, "",
        "{name}: the server maps the token"
    );
    json!({
        "activity": d.activity,
        "session_id": d.batch.key.session_id,
        "meta": d.batch.meta,
        "events": events,
    })
}

#[test]
fn user_activity_fixtures_decode_to_their_expected_events() {
    for (name, req, expected) in fixtures() {
        let result = decode(&req);
        if req.get("expect_error").is_some() {
            let err = match result {
                Err(err) => err,
                Ok(d) => panic!("{name}: decoded, expected a refusal: {d:?}"),
            };
            let mut actual = json!({"field": err.field(), "status": status(&err)});
            if expected.get("message").is_some() {
                actual["message"] = json!(err.to_string());
            }
            assert_eq!(actual, expected, "{name}");
            continue;
        }
        let decoded = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(as_json(&name, &decoded), expected, "{name}");
    }
}

/// Every content type has a valid `playback_metrics` and a `playerError`
/// fixture, and a refused form for each field `playback_metrics` requires of
/// it (`live-event` also needs `technicalId` and `programmeId`).
#[test]
fn every_content_type_has_its_valid_and_missing_field_fixtures() {
    let all = fixtures();
    let by_name = |n: &str| all.iter().find(|(name, _, _)| name == n);
    for ct in CONTENT_TYPES {
        let slug = ct.replace('-', "_");
        for valid in [format!("metrics_{slug}"), format!("player_error_{slug}")] {
            let (_, req, expected) =
                by_name(&valid).unwrap_or_else(|| panic!("no fixture `{valid}`"));
            assert!(req.get("expect_error").is_none(), "{valid} must be valid");
            assert_eq!(expected["meta"]["custom"]["contentType"], ct, "{valid}");
        }
        let mut required = vec![
            "appSessionId",
            "playbackSessionId",
            "contentSource",
            "contentType",
            "editorialId",
            "playbackProgress",
        ];
        if ct == "live-event" {
            required.extend(["technicalId", "programmeId"]);
        }
        for field in required {
            let name = format!("metrics_{slug}_missing_{field}");
            let (_, req, expected) =
                by_name(&name).unwrap_or_else(|| panic!("no fixture `{name}`"));
            assert!(
                req["body"]["metadata"].get(field).is_none(),
                "{name} still sends {field}"
            );
            assert_eq!(expected["field"], format!("metadata.{field}"), "{name}");
        }
    }
    // Content types other than live-event do not need technicalId/programmeId.
    let (_, req, _) = by_name("metrics_ltcu").unwrap();
    assert!(req["body"]["metadata"].get("technicalId").is_none());
    assert!(req["body"]["metadata"].get("programmeId").is_none());
}

/// The envelope quirks of real clients each have a fixture that decodes.
#[test]
fn envelope_quirks_are_accepted() {
    let all = fixtures();
    let valid: BTreeSet<&str> = all
        .iter()
        .filter(|(_, req, _)| req.get("expect_error").is_none())
        .map(|(n, _, _)| n.as_str())
        .collect();
    // `userId` and `key` sent as empty strings (every envelope above).
    let (_, req, expected) = all.iter().find(|(n, _, _)| n == "playback_start").unwrap();
    assert_eq!(req["body"]["userId"], "");
    assert_eq!(req["body"]["key"], "");
    assert_eq!(
        expected["meta"]["viewer_id"], "stb-7f3a91",
        "deviceId stands in"
    );
    // `playerTypeversion`, the docs' other spelling.
    let (_, req, expected) = all
        .iter()
        .find(|(n, _, _)| n == "player_error_lowercase_typeversion_numeric_code")
        .unwrap();
    assert!(req["body"]["metadata"].get("playerTypeversion").is_some());
    assert_eq!(expected["meta"]["player_name"], "OTVPlayer 5.28.0");
    // `adDeliverd` (sic) and `adDelivered` decode alike.
    assert!(valid.contains("ad_deliverd_sic") && valid.contains("ad_delivered"));
    let events = |n: &str| {
        let (_, _, e) = all.iter().find(|(name, _, _)| name == n).unwrap();
        e["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ev| ev["type"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(events("ad_deliverd_sic"), events("ad_delivered"));
}

/// A repeated delivery decodes to the same dedup keys (so it changes
/// nothing), and two reports at different positions do not collide.
#[test]
fn dedup_keys_follow_the_content() {
    let all = fixtures();
    let (_, req, _) = all.iter().find(|(n, _, _)| n == "metrics_vod_ed").unwrap();
    let a = decode(req).unwrap();
    let mut later = req.clone();
    later["received_at"] = json!(req["received_at"].as_i64().unwrap() + 5_000);
    let b = decode(&later).unwrap();
    assert_eq!(a.batch.events[0].dedup_key, b.batch.events[0].dedup_key);
    let mut moved = req.clone();
    moved["body"]["metadata"]["playbackProgress"] = json!(180);
    let c = decode(&moved).unwrap();
    assert_ne!(a.batch.events[0].dedup_key, c.batch.events[0].dedup_key);
}
