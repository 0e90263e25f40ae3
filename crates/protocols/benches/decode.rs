//! Criterion benches of every decoder's pure entry point, on the inputs the
//! whole-server benchmarks send (`bench/`) or on the protocol's fixtures.
//!
//! Run with: cargo bench -p playhead-protocols --bench decode

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use playhead_protocols::{
    media_collection, native, ping, pixel, player_messages, user_activity, RawRequest,
};
use serde_json::Value;
use std::hint::black_box;
use std::path::Path;

/// A fixture request (`tests/data/<protocol>/<name>.json`).
fn fixture(protocol: &str, name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(protocol)
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of a JSON fixture request, as the wire carries it.
fn body_of(req: &Value) -> String {
    match &req["body"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn post<'a>(
    path: &'a str,
    content_type: Option<&'a str>,
    body: &'a [u8],
    t: i64,
) -> RawRequest<'a> {
    RawRequest {
        method: "POST",
        path,
        query: "",
        content_type,
        body,
        received_at: t,
    }
}

/// The ~300-byte `ping` the P2/P3 runs post (`bench/tools/src/adobe.rs`).
const ADOBE_PING: &str = r#"{"playerTime":{"playhead":20.001,"ts":1714564801000},"eventType":"ping","params":{"media.playerName":"html5-player","media.channel":"web","analytics.visitorId":"000000015bd1e9940000001f00000083"},"qoeData":{"media.qoe.bitrate":1600000,"media.qoe.droppedFrames":2,"media.qoe.framesPerSecond":29.97}}"#;

/// A pixel `check` as `bench/pixel_check.lua` sends it.
const PIXEL_CHECK: &str = "type=check&v=6d9a2b1c-4e8f-4a3b-9c2d-1f0e5a7b8c9d&p=vz-a06a6f7b-986&u=3f0e8c4a-2b1d-4f6e-8a9c-7d5b3e1f0a2c&referrer=https%3A%2F%2Fwww.google.com%2F&visibily=true&utm_source=newsletter&utm_campaign=black_friday&current_time=125";

fn decoders(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));

    let req = fixture("native", "sdk_batch.json");
    let body = body_of(&req);
    let t = req["received_at"].as_i64().unwrap_or_default();
    assert!(native::decode(&post(
        "/v1/events",
        Some("application/json"),
        body.as_bytes(),
        t
    ))
    .is_ok());
    g.bench_function("native/sdk_batch (6 events)", |b| {
        b.iter(|| {
            native::decode(black_box(&post(
                "/v1/events",
                Some("application/json"),
                body.as_bytes(),
                t,
            )))
        })
    });

    let check = RawRequest {
        method: "GET",
        path: "/icon.gif",
        query: PIXEL_CHECK,
        content_type: None,
        body: b"",
        received_at: 1_714_564_800_000,
    };
    assert!(pixel::decode(&check).is_ok());
    g.bench_function("pixel/check", |b| {
        b.iter(|| pixel::decode(black_box(&check)))
    });

    let t = 1_714_564_800_000;
    assert!(media_collection::decode_body(ADOBE_PING.as_bytes(), t).is_ok());
    g.bench_function("media_collection/ping (P2 body, 298 B)", |b| {
        b.iter(|| media_collection::decode_body(black_box(ADOBE_PING.as_bytes()), t))
    });
    let start = body_of(&fixture("media_collection", "session_start.json"));
    assert!(media_collection::decode_body(start.as_bytes(), t).is_ok());
    g.bench_function("media_collection/sessionStart", |b| {
        b.iter(|| media_collection::decode_body(black_box(start.as_bytes()), t))
    });

    let query = "v=3&pt=125.5&ev=seek&ft=60";
    assert!(ping::decode_ping(query).is_ok());
    g.bench_function("ping/ping query", |b| {
        b.iter(|| ping::decode_ping(black_box(query)))
    });

    let req = fixture("user_activity", "metrics_vod_ed.json");
    let body = body_of(&req);
    let path = req["path"].as_str().unwrap_or_default().to_owned();
    let t = req["received_at"].as_i64().unwrap_or_default();
    assert!(
        user_activity::decode(&post(&path, Some("application/json"), body.as_bytes(), t)).is_ok()
    );
    g.bench_function("user_activity/playback_metrics", |b| {
        b.iter(|| {
            user_activity::decode(black_box(&post(
                &path,
                Some("application/json"),
                body.as_bytes(),
                t,
            )))
        })
    });

    let req = fixture("player_messages", "v2_view_to_end.json");
    let body = body_of(&req);
    let t = req["received_at"].as_i64().unwrap_or_default();
    let n = req["body"]["messages"].as_array().map_or(0, Vec::len);
    assert!(player_messages::decode(&post(
        "/v1/player-messages",
        Some("text/plain"),
        body.as_bytes(),
        t
    ))
    .is_ok());
    g.bench_function(
        format!("player_messages/v2_view_to_end ({n} messages)"),
        |b| {
            b.iter(|| {
                player_messages::decode(black_box(&post(
                    "/v1/player-messages",
                    Some("text/plain"),
                    body.as_bytes(),
                    t,
                )))
            })
        },
    );
    g.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
