//! Server-side ad beaconing (`spec/protocols.md` §3): the sender that
//! delivers what the outbox ([`playhead_store::AdStore`]) says is owed.
//!
//! - It runs on its own thread with its own runtime, so a slow or dead ad
//!   server never slows a ping: pings only write the outbox and wake it.
//! - Each attempt has a timeout; at most `concurrency` run at once; a
//!   failure (no answer, timeout, status ≥ 400) is retried with exponential
//!   backoff (`backoff`, 2×, 4×, …) up to `max_attempts`, then marked failed.
//!   Every attempt is logged (`GET /admin/v1/beacons`).
//! - Macros are substituted at send time (VAST 4.1 §6.1): `[TIMESTAMP]`
//!   (ISO 8601, UTC), `[CACHEBUSTING]` (8 random digits), `[CONTENTPLAYHEAD]`
//!   and `[ADPLAYHEAD]` (`HH:MM:SS.mmm`, `-1` when unknown), `[ERRORCODE]`
//!   (`-2`: not applicable to tracking events). Values are URL-encoded.
//! - The viewer's `User-Agent` and `X-Forwarded-For` go with the request
//!   (VAST §2.3.4, server-side beaconing).
//! - Exactly once: a beacon is marked delivered after its answer; a crash
//!   between the answer and the mark would send it again after restart —
//!   the one window left, a few milliseconds wide.

use crate::clock::Clock;
use crate::telemetry::Telemetry;
use playhead_model::Millis;
use playhead_store::ads::{AttemptOutcome, BeaconAttempt, BeaconRecord};
use playhead_store::AdStore;
use rand::Rng;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// How beacons are sent.
#[derive(Debug, Clone)]
pub struct BeaconConfig {
    /// One attempt's limit (connect + answer).
    pub timeout: Duration,
    /// Attempts before a beacon is marked failed.
    pub max_attempts: u32,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Wait before the first retry; doubles each time.
    pub backoff: Duration,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig {
            timeout: Duration::from_secs(5),
            max_attempts: 6,
            concurrency: 32,
            backoff: Duration::from_secs(1),
        }
    }
}

/// The handle pings use to wake the sender.
#[derive(Debug)]
pub struct Beacons {
    wake: Arc<Notify>,
}

impl Beacons {
    /// Start the sender thread. It runs until the process ends.
    pub fn start(
        ads: Arc<dyn AdStore>,
        clock: Arc<dyn Clock>,
        telemetry: Arc<Telemetry>,
        config: BeaconConfig,
    ) -> std::io::Result<Arc<Beacons>> {
        let wake = Arc::new(Notify::new());
        let beacons = Arc::new(Beacons { wake: wake.clone() });
        std::thread::Builder::new()
            .name("ad-beacons".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "ad beacons: no runtime; beacons stay owed");
                        return;
                    }
                };
                runtime.block_on(run(ads, clock, telemetry, config, wake));
            })?;
        Ok(beacons)
    }

    /// New beacons are owed: look now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

async fn run(
    ads: Arc<dyn AdStore>,
    clock: Arc<dyn Clock>,
    telemetry: Arc<Telemetry>,
    config: BeaconConfig,
    wake: Arc<Notify>,
) {
    let client = match reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "ad beacons: no HTTP client; beacons stay owed");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
    loop {
        let now = clock.now_ms();
        let due = match ads.due_beacons(now, config.concurrency.max(1) * 4) {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "ad beacons: outbox unreadable");
                Vec::new()
            }
        };
        for beacon in due {
            if !in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(beacon.id)
            {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (client, ads, clock, telemetry, config, in_flight) = (
                client.clone(),
                ads.clone(),
                clock.clone(),
                telemetry.clone(),
                config.clone(),
                in_flight.clone(),
            );
            tokio::spawn(async move {
                let id = beacon.id;
                deliver(&client, &*ads, &*clock, &telemetry, &config, beacon).await;
                in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                drop(permit);
            });
        }
        // Sleep until woken, or until the next retry may be due (the clock
        // may be a test's, so look at least every second).
        let wait = match ads.next_due() {
            Ok(Some(at)) => Duration::from_millis((at - clock.now_ms()).clamp(20, 1_000) as u64),
            _ => Duration::from_secs(1),
        };
        let _ = tokio::time::timeout(wait, wake.notified()).await;
    }
}

async fn deliver(
    client: &reqwest::Client,
    ads: &dyn AdStore,
    clock: &dyn Clock,
    telemetry: &Telemetry,
    config: &BeaconConfig,
    beacon: BeaconRecord,
) {
    let at = clock.now_ms();
    let url = substitute_macros(&beacon, at);
    let mut request = client.get(&url);
    if let Some(ua) = &beacon.owed.user_agent {
        request = request.header(reqwest::header::USER_AGENT, ua);
    }
    if let Some(xff) = &beacon.owed.forwarded_for {
        request = request.header("X-Forwarded-For", xff);
    }
    let started = Instant::now();
    let (status, error) = match request.send().await {
        Ok(resp) => {
            let status = resp.status();
            // Read (and drop) the body so the connection can be reused.
            let _ = resp.bytes().await;
            let error = (status.as_u16() >= 400).then(|| format!("HTTP {status}"));
            (Some(status.as_u16()), error)
        }
        Err(e) => (
            None,
            Some(if e.is_timeout() {
                format!("timeout after {} ms", config.timeout.as_millis())
            } else {
                format!("{e}")
            }),
        ),
    };
    let attempt = BeaconAttempt {
        beacon_id: beacon.id,
        at,
        url,
        status,
        error: error.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let attempts = beacon.attempts + 1;
    let outcome = if error.is_none() {
        AttemptOutcome::Delivered
    } else if attempts >= config.max_attempts {
        AttemptOutcome::Failed
    } else {
        let backoff = config.backoff.as_millis() as Millis * (1 << (attempts - 1).min(16));
        AttemptOutcome::Retry {
            at: clock.now_ms() + backoff,
        }
    };
    let label = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retry { .. } => "retry",
        AttemptOutcome::Failed => "failed",
    };
    telemetry.beacon_attempt(label);
    if let Err(e) = ads.record_attempt(&attempt, &outcome) {
        tracing::error!(error = %e, beacon = beacon.id, "ad beacons: attempt not recorded");
    }
}

/// The URL with VAST macros replaced (values URL-encoded).
pub fn substitute_macros(beacon: &BeaconRecord, now: Millis) -> String {
    let url = &beacon.owed.url;
    if !url.contains('[') {
        return url.clone();
    }
    let timestamp = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| "-1".into());
    let cache_busting = format!("{:08}", rand::rng().random_range(0..100_000_000u32));
    url.replace("[TIMESTAMP]", &encode(&timestamp))
        .replace("[CACHEBUSTING]", &cache_busting)
        .replace(
            "[CONTENTPLAYHEAD]",
            &encode(&clock_value(beacon.owed.content_playhead)),
        )
        .replace(
            "[ADPLAYHEAD]",
            &encode(&clock_value(beacon.owed.ad_playhead)),
        )
        .replace("[ERRORCODE]", "-2")
}

/// Seconds as `HH:MM:SS.mmm`; `-1` when unknown.
fn clock_value(seconds: Option<f64>) -> String {
    match seconds.filter(|s| s.is_finite() && *s >= 0.0) {
        Some(s) => {
            let ms = (s * 1000.0).round() as u64;
            format!(
                "{:02}:{:02}:{:02}.{:03}",
                ms / 3_600_000,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            )
        }
        None => "-1".into(),
    }
}

fn encode(value: &str) -> String {
    value.replace(':', "%3A")
}

#[cfg(test)]
mod tests {
    use super::*;
    use playhead_store::ads::OwedBeacon;

    fn record(url: &str, content: Option<f64>, ad: Option<f64>) -> BeaconRecord {
        BeaconRecord {
            id: 1,
            sid: "s".into(),
            owed: OwedBeacon {
                key: "k".into(),
                event: "complete".into(),
                url: url.into(),
                user_agent: None,
                forwarded_for: None,
                content_playhead: content,
                ad_playhead: ad,
            },
            owed_at: 0,
            state: "pending".into(),
            attempts: 0,
            next_attempt_at: 0,
            delivered_at: None,
        }
    }

    #[test]
    fn macros_are_replaced() {
        let b = record(
            "http://a.test/t?ts=[TIMESTAMP]&cb=[CACHEBUSTING]&cp=[CONTENTPLAYHEAD]&ap=[ADPLAYHEAD]&e=[ERRORCODE]",
            Some(3723.25),
            None,
        );
        let url = substitute_macros(&b, 1_700_000_000_123);
        let (head, cb_and_rest) = url.split_once("&cb=").unwrap();
        assert_eq!(head, "http://a.test/t?ts=2023-11-14T22%3A13%3A20.123Z");
        let (cb, rest) = cb_and_rest.split_once('&').unwrap();
        assert_eq!(cb.len(), 8);
        assert!(cb.bytes().all(|c| c.is_ascii_digit()));
        assert_eq!(rest, "cp=01%3A02%3A03.250&ap=-1&e=-2");
        let plain = record("http://a.test/plain", None, None);
        assert_eq!(substitute_macros(&plain, 0), "http://a.test/plain");
    }
}
