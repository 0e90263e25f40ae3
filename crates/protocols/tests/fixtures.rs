//! Decoder fixtures: `tests/data/<protocol>/<name>.json` is a request;
//! `<name>.expected.json` is what it must decode to, written by hand. A
//! request that must be refused has no `.expected.json` and says so itself:
//! `"expect_error": {"field": "v", "status": 400}` (optionally `"message"`,
//! the whole reason sent to the client). Never edit an old fixture to make a
//! test pass; add one.
//!
//! Native requests carry `content_type`, `received_at` and `body`; pixel
//! requests carry `method`, `path`, `query` and `received_at`. Media
//! Collection requests carry `path`, `received_at` and `body` (JSON, or a
//! string sent as is): an array is a downloaded batch, expected as
//! `{"batch": [..]}`.

use playhead_protocols::{media_collection, native, pixel, ProtocolError, RawRequest};
use serde_json::{json, Value};
use std::path::Path;

/// Every fixture of a protocol, by name: (name, request, expected), where
/// expected is `<name>.expected.json`, or the request's own `expect_error`.
fn fixtures(protocol: &str) -> Vec<(String, Value, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(protocol);
    let read = |p: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
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
                "{protocol}/{name}: no request for it"
            );
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        let path = dir.join(name);
        let expected = path.with_file_name(name.replace(".json", ".expected.json"));
        let req = read(&path);
        let expected = match req.get("expect_error") {
            Some(err) => {
                assert!(
                    !expected.exists(),
                    "{protocol}/{name}: both `expect_error` and an .expected.json"
                );
                err.clone()
            }
            None => read(&expected),
        };
        out.push((name.clone(), req, expected));
    }
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

/// The status the server answers a refused request with.
fn status(err: &ProtocolError) -> u16 {
    match err {
        ProtocolError::Invalid { .. } => 400,
        ProtocolError::UnsupportedMediaType(_) => 415,
    }
}

#[test]
fn native_fixtures_decode_to_their_expected_events() {
    for (name, req, expected) in fixtures("native") {
        let body = req["body"].to_string();
        let decoded = native::decode(&RawRequest {
            method: "POST",
            path: "/v1/events",
            query: "",
            content_type: req["content_type"].as_str(),
            body: body.as_bytes(),
            received_at: req["received_at"].as_i64().unwrap(),
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let actual = json!({
            "ingest_key": decoded.ingest_key,
            "session_id": decoded.batch.key.session_id,
            "meta": decoded.batch.meta,
            "events": decoded.batch.events,
        });
        assert_eq!(actual, expected, "{name}");
    }
}

#[test]
fn pixel_fixtures_decode_to_their_expected_events() {
    for (name, req, expected) in fixtures("pixel") {
        let path = req["path"].as_str().unwrap();
        let raw = RawRequest {
            method: req["method"].as_str().unwrap(),
            path,
            query: req["query"].as_str().unwrap(),
            content_type: req["content_type"].as_str(),
            body: req["body"].as_str().unwrap_or("").as_bytes(),
            received_at: req["received_at"].as_i64().unwrap(),
        };
        let result = match path {
            "/icon.gif" => pixel::decode(&raw),
            "/realtime/icon.gif" => pixel::decode_live(&raw),
            other => panic!("{name}: no pixel route `{other}`"),
        };
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
        // Content hashes cannot be written by hand: check the rule instead.
        let events: Vec<Value> = decoded
            .events
            .iter()
            .map(|ev| {
                assert_eq!(ev.dedup_key, ev.content_key(), "{name}: dedup_key");
                let mut v = serde_json::to_value(ev).unwrap();
                v.as_object_mut().unwrap().remove("dedup_key");
                v
            })
            .collect();
        let actual = json!({
            "beacon": decoded.beacon.as_str(),
            "pullzone": decoded.pullzone,
            "video_id": decoded.video_id,
            "viewer_id": decoded.viewer_id,
            "meta": decoded.meta,
            "events": events,
        });
        assert_eq!(actual, expected, "{name}");
    }
}

/// A decoded Media Collection event as its fixtures write it: what is
/// default (no meta, no flags) is left out, and so is the dedup key, which
/// is checked to be the content hash.
fn media_collection_json(name: &str, d: &media_collection::Decoded) -> Value {
    let events: Vec<Value> = d
        .events
        .iter()
        .map(|ev| {
            assert_eq!(ev.dedup_key, ev.content_key(), "{name}: dedup_key");
            let mut v = serde_json::to_value(ev).unwrap();
            v.as_object_mut().unwrap().remove("dedup_key");
            v
        })
        .collect();
    let mut out = json!({"event_type": d.event_type, "events": events});
    if d.meta != Default::default() {
        out["meta"] = json!(d.meta);
    }
    if let Some(rs) = &d.report_suite {
        out["report_suite"] = json!(rs);
    }
    if d.downloaded {
        out["downloaded"] = json!(true);
    }
    if d.resumed {
        out["resumed"] = json!(true);
    }
    if let Some(state) = &d.state_name {
        out["state_name"] = json!(state);
    }
    out
}

#[test]
fn media_collection_fixtures_decode_to_their_expected_events() {
    let mut seen = std::collections::BTreeSet::new();
    for (name, req, expected) in fixtures("media_collection") {
        let path = req["path"].as_str().unwrap();
        let received_at = req["received_at"].as_i64().unwrap();
        let body = match &req["body"] {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        };
        // The routes: an array is a batch on /downloaded, and on /sessions
        // only with the downloaded flag; anything else is one event.
        let result = match (path, req["body"].is_array()) {
            ("/api/v1/downloaded", _) => {
                media_collection::decode_batch(body.as_bytes(), received_at, false)
                    .map(|batch| json!({"batch": batch.iter().map(|d| media_collection_json(&name, d)).collect::<Vec<_>>()}))
            }
            ("/api/v1/sessions", true) => {
                media_collection::decode_batch(body.as_bytes(), received_at, true)
                    .map(|batch| json!({"batch": batch.iter().map(|d| media_collection_json(&name, d)).collect::<Vec<_>>()}))
            }
            _ => media_collection::decode_body(body.as_bytes(), received_at).map(|d| {
                seen.insert(d.event_type);
                media_collection_json(&name, &d)
            }),
        };
        schema_agrees(&name, &req["body"], result.is_ok());
        if req.get("expect_error").is_some() {
            let err = match result {
                Err(err) => err,
                Ok(d) => panic!("{name}: decoded, expected a refusal: {d}"),
            };
            let mut actual = json!({"field": err.field(), "status": status(&err)});
            if expected.get("message").is_some() {
                actual["message"] = json!(err.to_string());
            }
            assert_eq!(actual, expected, "{name}");
            continue;
        }
        let actual = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(actual, expected, "{name}");
    }
    let missing: Vec<_> = media_collection::EVENT_TYPES
        .iter()
        .filter(|ty| !seen.contains(**ty))
        .collect();
    assert!(missing.is_empty(), "no valid fixture for {missing:?}");
}

/// The served schema of a fixture's event type gives the decoder's verdict
/// (single events of a known type; a batch's verdict is more than its events').
fn schema_agrees(name: &str, body: &Value, decoded: bool) {
    let Some(schema) = body["eventType"]
        .as_str()
        .and_then(media_collection::schema)
    else {
        return;
    };
    let validator = jsonschema::draft4::new(&schema).unwrap();
    assert_eq!(
        validator.is_valid(body),
        decoded,
        "{name}: the schema disagrees"
    );
}
