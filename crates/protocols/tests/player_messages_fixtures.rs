//! Decoder fixtures of the embedded-player messages (`spec/protocols.md` §5):
//! `tests/data/player_messages/<name>.json` is a `POST /v1/player-messages`
//! request (`content_type`, `received_at`, `body`: JSON, or a string sent as
//! is); `<name>.expected.json` is what it must decode to, written by hand. A
//! request that must be refused has no `.expected.json` and says so itself:
//! `"expect_error": {"field": "messages[0].event", "status": 400}`
//! (optionally `"message"`, the whole reason sent to the client). Never edit
//! an old fixture to make a test pass; add one.
//!
//! Events are written without their dedup key: a content hash cannot be
//! written by hand, so the test checks the rule (`dedup_key ==
//! content_key()`) instead.

use playhead_protocols::{player_messages, ProtocolError, RawRequest};
use serde_json::{json, Value};
use std::path::Path;

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn player_messages_fixtures_decode_to_their_expected_events() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/player_messages");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.ends_with(".expected.json"))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "too few fixtures: {names:?}");
    let (mut decoded_ok, mut refused) = (0, 0);
    for name in &names {
        let path = dir.join(name);
        let expected_path = path.with_file_name(name.replace(".json", ".expected.json"));
        let req = read(&path);
        let body = match &req["body"] {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        };
        let result = player_messages::decode(&RawRequest {
            method: "POST",
            path: "/v1/player-messages",
            query: "",
            content_type: req["content_type"].as_str(),
            body: body.as_bytes(),
            received_at: req["received_at"].as_i64().unwrap(),
        });
        if let Some(expected) = req.get("expect_error") {
            assert!(
                !expected_path.exists(),
                "{name}: both `expect_error` and an .expected.json"
            );
            let err = match result {
                Err(err) => err,
                Ok(d) => panic!("{name}: decoded, expected a refusal: {d:?}"),
            };
            let status = match err {
                ProtocolError::Invalid { .. } => 400,
                ProtocolError::UnsupportedMediaType(_) => 415,
            };
            let mut actual = json!({"field": err.field(), "status": status});
            if expected.get("message").is_some() {
                actual["message"] = json!(err.to_string());
            }
            assert_eq!(&actual, expected, "{name}");
            refused += 1;
            continue;
        }
        let decoded = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let events: Vec<Value> = decoded
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
        let actual = json!({
            "ingest_key": decoded.ingest_key,
            "session_id": decoded.batch.key.session_id,
            "protocol": decoded.batch.protocol,
            "meta": decoded.batch.meta,
            "events": events,
        });
        assert_eq!(actual, read(&expected_path), "{name}");
        decoded_ok += 1;
    }
    assert!(
        decoded_ok > 0 && refused > 0,
        "{decoded_ok} decoded, {refused} refused"
    );
}
