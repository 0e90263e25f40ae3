//! Simulated players of the ping protocol (Uplynk Preplay + Ping), for
//! `playhead load --protocol ping` and the demo.
//!
//! A ping player is interactive: the server says when to ping next
//! (`next_time`), so only the viewer's intent is planned here ([`plan`]):
//! which asset, how far they watch, whether they seek once. The load
//! generator asks preplay for a session, pings `ev=start` at 0, then pings
//! at each `next_time` (sleeping the player-time distance, compressed by
//! `speed`), seeking or leaving as planned.
//!
//! The assets ([`assets`]) are configured through the admin API at the
//! start of a run. Their tracking URLs point to `ads.example.invalid`, and
//! the players ask preplay with `ad.sssb=1` (client-side beaconing), so a
//! load run never sends beacons off the machine.

use crate::viewer::DEVICES;
use rand::Rng;
use serde_json::{json, Value};

/// Assets the ping players watch: (id, `PUT /admin/v1/assets/{id}` body).
pub fn assets() -> Vec<(String, Value)> {
    let ad = |id: &str, duration: u32| {
        let u =
            |what: &str| format!("https://ads.example.invalid/{what}?ad={id}&cb=[CACHEBUSTING]");
        json!({"creative": id, "duration": duration, "events": {
            "impressions": [u("impression")], "firstquartiles": [u("q1")], "midpoints": [u("q2")],
            "thirdquartiles": [u("q3")], "completes": [u("complete")]}})
    };
    let plan: [(&str, u32, &[u32]); 4] = [
        ("playhead-ping-news", 240, &[]),
        ("playhead-ping-episode", 1_320, &[440, 880]),
        ("playhead-ping-movie", 5_400, &[1_200, 2_400, 3_600]),
        ("playhead-ping-clip", 90, &[]),
    ];
    plan.iter()
        .map(|(id, duration, midrolls)| {
            let mut breaks = vec![json!({"timeOffset": 0, "ads": [ad(&format!("{id}-pre"), 15)]})];
            for (i, at) in midrolls.iter().enumerate() {
                breaks.push(json!({"timeOffset": at, "ads": [
                    ad(&format!("{id}-m{i}a"), 15), ad(&format!("{id}-m{i}b"), 30)]}));
            }
            let body = json!({"duration_s": duration,
                "play_url": format!("https://cdn.example.invalid/{id}/master.m3u8"),
                "ad_schedule": breaks});
            ((*id).to_owned(), body)
        })
        .collect()
}

/// What one viewer intends to do.
#[derive(Debug, Clone, PartialEq)]
pub struct PingPlan {
    pub asset: String,
    pub user_agent: &'static str,
    /// Stop pinging (leave) once the player time reaches this; `None`:
    /// watch to the end (`next_time` = -1).
    pub leave_at: Option<f64>,
    /// Seek once: at this player time, to that one.
    pub seek: Option<(f64, f64)>,
}

/// Draw a viewer: half watch to the end, the rest leave after 1–20 min;
/// one in five seeks forward once, 1–5 min into the video.
pub fn plan(rng: &mut impl Rng) -> PingPlan {
    let assets = assets();
    let (asset, _) = &assets[rng.random_range(0..assets.len())];
    let device = &DEVICES[rng.random_range(0..DEVICES.len())];
    let leave_at = rng
        .random_bool(0.5)
        .then(|| f64::from(rng.random_range(60..1_200u32)));
    let seek = rng.random_bool(0.2).then(|| {
        let at = f64::from(rng.random_range(60..300u32));
        (at, at + f64::from(rng.random_range(30..600u32)))
    });
    PingPlan {
        asset: asset.clone(),
        user_agent: device.user_agent,
        leave_at,
        seek,
    }
}

/// The next ping's query after one at `pt` answered `next_time`, and the
/// player-time distance to wait before it; `None` when the player stops.
pub fn next_ping(plan: &PingPlan, pt: f64, next_time: f64, seeked: bool) -> Option<(String, f64)> {
    if next_time < 0.0 {
        return None;
    }
    if let Some((at, to)) = plan.seek.filter(|_| !seeked) {
        if at > pt && at <= next_time {
            return Some((format!("v=3&pt={to}&ev=seek&ft={at}"), at - pt));
        }
    }
    if plan.leave_at.is_some_and(|leave| next_time > leave) {
        return None;
    }
    Some((format!("v=3&pt={next_time}"), next_time - pt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn assets_are_valid_admin_bodies() {
        for (id, body) in assets() {
            let duration = body["duration_s"].as_f64().unwrap();
            let breaks = playhead_protocols::ping::decode_schedule(&body["ad_schedule"], duration)
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(breaks[0].time_offset, 0.0, "{id} has a preroll");
        }
    }

    #[test]
    fn the_player_follows_next_time_seeks_once_and_leaves() {
        let plan = PingPlan {
            asset: "a".into(),
            user_agent: "UA",
            leave_at: Some(200.0),
            seek: Some((90.0, 150.0)),
        };
        assert_eq!(
            next_ping(&plan, 0.0, 60.0, false),
            Some(("v=3&pt=60".into(), 60.0))
        );
        // The seek falls before the next ping: it is sent at 90.
        assert_eq!(
            next_ping(&plan, 60.0, 120.0, false),
            Some(("v=3&pt=150&ev=seek&ft=90".into(), 30.0))
        );
        assert_eq!(
            next_ping(&plan, 150.0, 180.0, true),
            Some(("v=3&pt=180".into(), 30.0))
        );
        // Leaves before 240.
        assert_eq!(next_ping(&plan, 180.0, 240.0, true), None);
        // The end of the content.
        assert_eq!(next_ping(&plan, 180.0, -1.0, true), None);
    }

    #[test]
    fn a_population_has_every_kind_of_viewer() {
        let mut rng = StdRng::seed_from_u64(7);
        let plans: Vec<PingPlan> = (0..400).map(|_| plan(&mut rng)).collect();
        assert!(plans.iter().any(|p| p.leave_at.is_none()));
        assert!(plans.iter().any(|p| p.leave_at.is_some()));
        assert!(plans.iter().any(|p| p.seek.is_some()));
        let distinct: std::collections::BTreeSet<_> = plans.iter().map(|p| &p.asset).collect();
        assert_eq!(distinct.len(), assets().len());
    }
}
