//! `GET /data/v1/metrics`, `/metrics/timeseries`, `/metrics/breakdown`, `/realtime`.

use super::{blocking, flush_session_rows, rfc3339, Query, ReadAuth};
use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{RawQuery, State};
use axum::Json;
use playhead_engine::rollup::METRIC_NAMES;
use playhead_engine::{Aggregate, AggregateMetrics, Parts};
use playhead_model::{Dimension, Millis};
use playhead_store::{Filters, GroupBy, GroupKey};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Most points one timeseries answers.
const MAX_POINTS: i64 = 10_000;

async fn aggregate(
    state: &AppState,
    filters: Filters,
    group: GroupBy,
    parts: Parts,
) -> Result<BTreeMap<GroupKey, Aggregate>, ApiError> {
    let store = state.store.clone();
    blocking(move || store.aggregate_parts(&filters, &group, parts)).await
}

/// `concurrent_viewers` in each bucket `[b, b + interval)` from `start`.
async fn concurrency(
    state: &AppState,
    filters: Filters,
    start: Millis,
    interval: Millis,
) -> Result<Vec<u64>, ApiError> {
    let store = state.store.clone();
    blocking(move || store.concurrency(&filters, start, interval)).await
}

fn metric_name(q: &Query) -> Result<String, ApiError> {
    let m = q.param("metric").ok_or_else(|| {
        ApiError::bad_request(format!(
            "metric: required; valid: {}",
            METRIC_NAMES.join(", ")
        ))
    })?;
    AggregateMetrics::default()
        .get(m)
        .map_err(|e| ApiError::bad_request(format!("metric: {e}")))?;
    Ok(m.to_owned())
}

fn value_of(m: &AggregateMetrics, name: &str) -> Option<f64> {
    m.get(name).ok().flatten()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub from: String,
    pub to: String,
    /// Every aggregate of `spec/metrics.md`.
    #[schema(value_type = Object)]
    pub metrics: Value,
}

/// Every aggregate metric over a range.
#[utoipa::path(get, path = "/data/v1/metrics", tag = "metrics",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = Overview), (status = 400), (status = 401)),
    security(("read_key" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Overview>, ApiError> {
    let q = Query::parse(raw.as_deref(), state.clock.now_ms(), &[])?;
    let filters = q.filters(&property);
    flush_session_rows(&state).await;
    let groups = aggregate(&state, filters.clone(), GroupBy::All, Parts::All).await?;
    let mut metrics = groups
        .get(&GroupKey::All)
        .map(Aggregate::metrics)
        .unwrap_or_else(|| Aggregate::default().metrics());
    metrics.concurrent_viewers = concurrency(&state, filters, q.from, q.to - q.from)
        .await?
        .first()
        .copied()
        .unwrap_or(0);
    Ok(Json(Overview {
        from: rfc3339(q.from),
        to: rfc3339(q.to),
        metrics: serde_json::to_value(&metrics).map_err(ApiError::internal)?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    pub t: String,
    pub value: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeseries {
    pub metric: String,
    pub interval: String,
    pub points: Vec<Point>,
}

/// One metric per interval; every interval present.
#[utoipa::path(get, path = "/data/v1/metrics/timeseries", tag = "metrics",
    params(("metric" = String, Query), ("interval" = String, Query, description = "1m, 5m, 1h or 1d"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = Timeseries), (status = 400), (status = 401)),
    security(("read_key" = [])))]
pub async fn timeseries(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Timeseries>, ApiError> {
    let q = Query::parse(
        raw.as_deref(),
        state.clock.now_ms(),
        &["metric", "interval"],
    )?;
    let metric = metric_name(&q)?;
    let interval_name = q.param("interval").unwrap_or("1h").to_owned();
    let interval: Millis = match interval_name.as_str() {
        "1m" => 60_000,
        "5m" => 300_000,
        "1h" => 3_600_000,
        "1d" => 86_400_000,
        other => {
            return Err(ApiError::bad_request(format!(
                "interval: unknown interval `{other}`; valid: 1m, 5m, 1h, 1d"
            )))
        }
    };
    let start = q.from.div_euclid(interval) * interval;
    let n_points = (q.to - start + interval - 1) / interval;
    if n_points > MAX_POINTS {
        return Err(ApiError::bad_request(format!(
            "interval: {interval_name} over this range gives more than {MAX_POINTS} points; use a larger interval"
        )));
    }
    // Buckets are aligned to the interval, but only sessions inside
    // [from, to) count, as in the overview over the same range.
    let filters = q.filters(&property);
    flush_session_rows(&state).await;
    let points = if metric == "concurrent_viewers" {
        concurrency(&state, filters, start, interval)
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, v)| Point {
                t: rfc3339(start + i as i64 * interval),
                value: Some(v as f64),
            })
            .collect()
    } else {
        let groups = aggregate(
            &state,
            filters,
            GroupBy::Interval(interval),
            Parts::for_metric(&metric),
        )
        .await?;
        let empty = Aggregate::default().metrics();
        let mut points = Vec::new();
        let mut b = start;
        while b < q.to {
            let m = groups.get(&GroupKey::Bucket(b)).map(Aggregate::metrics);
            points.push(Point {
                t: rfc3339(b),
                value: value_of(m.as_ref().unwrap_or(&empty), &metric),
            });
            b += interval;
        }
        points
    };
    Ok(Json(Timeseries {
        metric,
        interval: interval_name,
        points,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownRow {
    pub key: String,
    pub value: Option<f64>,
    pub views: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Breakdown {
    pub metric: String,
    pub by: String,
    pub rows: Vec<BreakdownRow>,
}

/// One metric per value of a dimension, largest first.
#[utoipa::path(get, path = "/data/v1/metrics/breakdown", tag = "metrics",
    params(("metric" = String, Query), ("by" = String, Query), ("limit" = Option<usize>, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = Breakdown), (status = 400), (status = 401)),
    security(("read_key" = [])))]
pub async fn breakdown(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Breakdown>, ApiError> {
    let q = Query::parse(
        raw.as_deref(),
        state.clock.now_ms(),
        &["metric", "by", "limit"],
    )?;
    let metric = metric_name(&q)?;
    if metric == "concurrent_viewers" {
        return Err(ApiError::bad_request(
            "metric: concurrent_viewers has no breakdown; use /data/v1/realtime for viewers by video",
        ));
    }
    let by_name = q.param("by").ok_or_else(|| {
        ApiError::bad_request(format!("by: required; valid: {}", Dimension::valid_names()))
    })?;
    let by: Dimension = by_name
        .parse()
        .map_err(|e: String| ApiError::bad_request(format!("by: {e}")))?;
    let limit = q.limit(10)?;
    flush_session_rows(&state).await;
    let groups = aggregate(
        &state,
        q.filters(&property),
        GroupBy::Dimension(by.clone()),
        Parts::for_metric(&metric),
    )
    .await?;
    let mut rows: Vec<BreakdownRow> = groups
        .iter()
        .filter_map(|(k, agg)| match k {
            GroupKey::Value(v) => {
                let m = agg.metrics();
                Some(BreakdownRow {
                    key: v.clone(),
                    value: value_of(&m, &metric),
                    views: m.views,
                })
            }
            _ => None,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.value
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.value.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| a.key.cmp(&b.key))
    });
    rows.truncate(limit);
    Ok(Json(Breakdown {
        metric,
        by: by.name(),
        rows,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VideoViewers {
    pub video_id: String,
    pub viewers: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RealtimeView {
    pub concurrent_viewers: u64,
    pub by_video: Vec<VideoViewers>,
    pub viewers_last_5m: u64,
}

/// Viewers now: sessions with an event in the last 60 s, viewers in the last 5 min.
#[utoipa::path(get, path = "/data/v1/realtime", tag = "metrics",
    responses((status = 200, body = RealtimeView), (status = 400), (status = 401)),
    security(("read_key" = [])))]
pub async fn realtime(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<RealtimeView>, ApiError> {
    let now = state.clock.now_ms();
    let q = Query::parse(raw.as_deref(), now, &[])?;
    let filters = q.filters(&property);
    let store = state.store.clone();
    flush_session_rows(&state).await;
    let r = blocking(move || store.realtime(&filters, now)).await?;
    Ok(Json(RealtimeView {
        concurrent_viewers: r.concurrent_viewers,
        by_video: r
            .by_video
            .into_iter()
            .map(|(video_id, viewers)| VideoViewers { video_id, viewers })
            .collect(),
        viewers_last_5m: r.viewers_last_5m,
    }))
}
