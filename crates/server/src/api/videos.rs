//! `GET /data/v1/videos/{video_id}/retention`: the retention curve.
//!
//! The share of a video's plays (playback sessions with `played`, started
//! in the range; app sessions are never plays) whose playhead reached each
//! 5-s position: a play reached position `b` when its `max_playhead_s` ≥ `b`
//! (for pixel beacons, the furthest `check`; a forward seek counts as
//! reaching, as the vendor's curve does).
//! Position 0 is reached by every play.

use super::{blocking, flush_session_rows, Query, ReadAuth};
use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use playhead_model::Dimension;
use playhead_store::SessionQuery;
use serde::Serialize;
use utoipa::ToSchema;

/// Width of a retention bucket, seconds.
pub const BUCKET_S: u32 = 5;
/// Most sessions read for one curve.
const MAX_SESSIONS: usize = 1_000_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionPoint {
    pub position_s: u32,
    pub share: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Retention {
    pub video_id: String,
    pub bucket_s: u32,
    /// Plays the shares are of.
    pub plays: u64,
    pub points: Vec<RetentionPoint>,
}

/// Share of plays that reached each 5-s position of a video.
#[utoipa::path(get, path = "/data/v1/videos/{video_id}/retention", tag = "metrics",
    params(("video_id" = String, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = Retention), (status = 400), (status = 401)),
    security(("read_key" = [])))]
pub async fn retention(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    Path(video_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Retention>, ApiError> {
    let q = Query::parse(raw.as_deref(), state.clock.now_ms(), &[])?;
    let mut filters = q.filters(&property);
    filters.dimensions.retain(|(d, _)| *d != Dimension::VideoId);
    filters
        .dimensions
        .push((Dimension::VideoId, vec![video_id.clone()]));
    flush_session_rows(&state).await;
    // The furthest position of each play.
    let mut reached: Vec<f64> = Vec::new();
    let mut cursor = None;
    loop {
        let query = SessionQuery {
            filters: filters.clone(),
            failed: None,
            limit: 1000,
            cursor: cursor.take(),
        };
        let store = state.store.clone();
        let page = blocking(move || store.list_sessions(&query)).await?;
        reached.extend(
            page.sessions
                .iter()
                .filter(|s| s.is_playback() && s.metrics.played)
                .map(|s| s.metrics.max_playhead_s.unwrap_or(0.0)),
        );
        match page.next_cursor {
            Some(c) if reached.len() < MAX_SESSIONS => cursor = Some(c),
            _ => break,
        }
    }
    Ok(Json(curve(video_id, &reached)))
}

/// The curve from each play's furthest position.
fn curve(video_id: String, reached: &[f64]) -> Retention {
    let plays = reached.len() as u64;
    let furthest = reached.iter().copied().fold(0.0_f64, f64::max);
    let last_bucket = (furthest / f64::from(BUCKET_S)).floor() as u32;
    let points = if plays == 0 {
        Vec::new()
    } else {
        (0..=last_bucket)
            .map(|i| {
                let position_s = i * BUCKET_S;
                let n = reached
                    .iter()
                    .filter(|r| position_s == 0 || **r >= f64::from(position_s))
                    .count();
                RetentionPoint {
                    position_s,
                    share: n as f64 / plays as f64,
                }
            })
            .collect()
    };
    Retention {
        video_id,
        bucket_s: BUCKET_S,
        plays,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::curve;

    #[test]
    fn shares_by_hand() {
        // Four plays reaching 0, 7, 12 and 20 s.
        // 0: 4/4; 5: 3/4 (7, 12, 20); 10: 2/4 (12, 20); 15: 1/4 (20); 20: 1/4.
        let r = curve("v".into(), &[0.0, 7.0, 12.0, 20.0]);
        let shares: Vec<(u32, f64)> = r.points.iter().map(|p| (p.position_s, p.share)).collect();
        assert_eq!(
            shares,
            vec![(0, 1.0), (5, 0.75), (10, 0.5), (15, 0.25), (20, 0.25)]
        );
        assert_eq!(r.plays, 4);
        assert!(curve("v".into(), &[]).points.is_empty());
    }
}
