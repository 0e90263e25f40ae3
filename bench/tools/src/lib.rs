//! Load and data generators for the whole-server benchmarks in `bench/`
//! (`bench/README.md`). Not part of Playhead; nothing here is shipped.
//!
//! - [`http`]: a minimal blocking HTTP/1.1 keep-alive client, one request in
//!   flight per connection, so a generator thread costs little and times
//!   exactly what it sends.
//! - [`adobe`]: the Adobe Media Collection bodies the P2/P3 runs post
//!   (`bench/adobe_events.lua` builds the same ones for `wrk`).
//! - binaries: `open-sessions` (P2/P3 set-up, P4), `paced` (P3's
//!   constant-rate generator), `p5` (P5's data generator and query timer).

pub mod adobe;
pub mod http;

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
