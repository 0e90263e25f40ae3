//! The Adobe Media Collection bodies of the P2/P3 runs. `bench/adobe_events.lua`
//! builds byte-for-byte the same events for `wrk`; keep the two in step.
//!
//! A session `j` is opened with a `sessionStart` (the fixture's keys:
//! tracking server, report suite, visitor ids, media id, name, length,
//! content type, player, channel, show metadata). Its `k`-th event after
//! that (k = 0, 1, ...) is a `play` when k is a multiple of 10, else a
//! `ping`, 10 s of player time apart (`playerTime.ts` = base + (k + 1) ×
//! 10 s, `playhead` = (k + 1) × 10 s), with the QoE a player attaches
//! (bitrate, dropped frames, frame rate) and the player's params: about 300
//! bytes, as PERFORMANCE.md P2 asks.

/// The report suite of the benchmark sessions (zero-config Playhead maps any
/// suite to its `default` property).
pub const REPORT_SUITE: &str = "playhead-bench";

const BITRATES: [u32; 4] = [800_000, 1_600_000, 2_500_000, 4_500_000];

/// A stable 32-hex visitor id for session `j` (j < 2^24; the Lua twin
/// computes it with 32-bit numbers).
pub fn visitor_id(j: u64) -> String {
    format!(
        "{:08x}{:08x}{:08x}{:08x}",
        j,
        j ^ 0x5bd1_e995,
        j * 31,
        j * 131
    )
}

/// The `sessionStart` of session `j`, at `ts` (ms since the epoch).
pub fn session_start(j: u64, ts: i64) -> String {
    let video = j % 500;
    format!(
        concat!(
            r#"{{"playerTime":{{"playhead":0,"ts":{ts}}},"eventType":"sessionStart","params":{{"#,
            r#""analytics.trackingServer":"metrics.example.com","analytics.reportSuite":"{rs}","#,
            r#""analytics.enableSSL":true,"visitor.marketingCloudOrgId":"0123456789ABCDEF01234567@AdobeOrg","#,
            r#""visitor.marketingCloudUserId":"{visitor}","analytics.visitorId":"{visitor}","#,
            r#""media.id":"episode-{video:04}","media.name":"Episode {video}","media.length":1800.5,"#,
            r#""media.contentType":"VOD","media.playerName":"html5-player","media.channel":"web","#,
            r#""media.streamType":"video","media.resume":false,"media.show":"The Show","#,
            r#""media.season":"1","media.episode":"{video}","media.genre":"Drama"}},"#,
            r#""qoeData":{{"media.qoe.bitrate":{bitrate}}},"customMetadata":{{"plan":"premium"}}}}"#
        ),
        ts = ts,
        rs = REPORT_SUITE,
        visitor = visitor_id(j),
        video = video,
        bitrate = BITRATES[(j % 4) as usize],
    )
}

/// The `k`-th event (k = 0, 1, ...) after session `j`'s `sessionStart`;
/// `base_ts` is the generator's start time (ms since the epoch), later
/// than every `sessionStart`.
pub fn event(j: u64, k: u64, base_ts: i64) -> String {
    let kind = if k.is_multiple_of(10) { "play" } else { "ping" };
    let ts = base_ts + (k as i64 + 1) * 10_000;
    let playhead = (k + 1) * 10;
    let frac = j % 1000;
    format!(
        concat!(
            r#"{{"playerTime":{{"playhead":{playhead}.{frac:03},"ts":{ts}}},"eventType":"{kind}","#,
            r#""params":{{"media.playerName":"html5-player","media.channel":"web","#,
            r#""analytics.visitorId":"{visitor}"}},"#,
            r#""qoeData":{{"media.qoe.bitrate":{bitrate},"media.qoe.droppedFrames":{dropped},"#,
            r#""media.qoe.framesPerSecond":29.97}}}}"#
        ),
        playhead = playhead,
        frac = frac,
        ts = ts,
        kind = kind,
        visitor = visitor_id(j),
        bitrate = BITRATES[(j % 4) as usize],
        dropped = k * 2,
    )
}

/// The path of session `sid`'s events.
pub fn events_path(sid: &str) -> String {
    format!("/api/v1/sessions/{sid}/events")
}
