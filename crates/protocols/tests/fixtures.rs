//! Decoder fixtures: `tests/data/<protocol>/<name>.json` is a request
//! (`content_type`, `received_at`, `body`); `<name>.expected.json` is what it
//! must decode to, written by hand. Never edit an old fixture to make a test
//! pass; add one.

use playhead_protocols::{native, RawRequest};
use serde_json::{json, Value};
use std::path::Path;

fn fixtures(protocol: &str) -> Vec<(String, Value, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(protocol);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".expected.json") || !name.ends_with(".json") {
            continue;
        }
        let expected = path.with_file_name(name.replace(".json", ".expected.json"));
        let read = |p: &Path| -> Value {
            serde_json::from_str(&std::fs::read_to_string(p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        out.push((name, read(&path), read(&expected)));
    }
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
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
