//! Playhead's own read API under `/data/v1` (`spec/api.md`): read-key auth,
//! query parameters shared by every route, and the routes themselves.
//!
//! - [`sessions`]: sessions list, detail and events.
//! - [`metrics`]: overview, timeseries, breakdown, realtime.
//! - [`videos`]: per-video retention curve.
//! - [`property`], [`errors`]: the read key's property; errors by code and message (for the dashboard).

pub mod errors;
pub mod metrics;
pub mod property;
pub mod sessions;
pub mod videos;

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use playhead_model::{Dimension, Millis};
use playhead_store::Filters;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The property a valid read key (`Authorization: Bearer <key>`) belongs to.
pub struct ReadAuth(pub String);

impl FromRequestParts<AppState> for ReadAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing read key: send `Authorization: Bearer <read key>`")
            })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "malformed Authorization header: expected `Bearer <read key>`",
                )
            })?;
        let property = state
            .config
            .property_by_read_key(key)
            .ok_or_else(|| ApiError::unauthorized("unknown read key"))?;
        Ok(ReadAuth(property.name.clone()))
    }
}

/// Run a store read off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, playhead_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)??)
}

/// Before a request reads session rows, once, after its input is checked:
/// the writer first writes the rows of open sessions that lag their events
/// ([`crate::ingest::Pipeline::flush`]), so every read of the request sees
/// every event acknowledged before it.
pub async fn flush_session_rows(state: &crate::AppState) {
    state.pipeline.flush().await;
}

/// RFC 3339 UTC, milliseconds.
pub fn rfc3339(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A time parameter: RFC 3339 or epoch milliseconds.
pub fn parse_time(name: &str, value: &str) -> Result<Millis, ApiError> {
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name}: `{value}` is neither RFC 3339 nor epoch milliseconds"
            ))
        })
}

/// Parsed query string: `from`, `to`, dimension filters and the other
/// parameters a route knows (`known`); anything else is a `400`.
pub struct Query {
    pub from: Millis,
    pub to: Millis,
    pub filters: Vec<(Dimension, Vec<String>)>,
    pub params: Vec<(String, String)>,
}

/// Default range: the last 24 hours.
const DEFAULT_RANGE_MS: Millis = 24 * 3600 * 1000;

impl Query {
    pub fn parse(raw: Option<&str>, now: Millis, known: &[&str]) -> Result<Query, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
        let mut from = None;
        let mut to = None;
        let mut filters: Vec<(Dimension, Vec<String>)> = Vec::new();
        let mut params = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "from" => from = Some(parse_time("from", &v)?),
                "to" => to = Some(parse_time("to", &v)?),
                k if known.contains(&k) => params.push((k.to_owned(), v)),
                k => {
                    let dim: Dimension = k.parse().map_err(|e: String| {
                        ApiError::bad_request(format!("unknown parameter `{k}`: {e}"))
                    })?;
                    if dim == Dimension::Property {
                        // Scoped by the read key already; another property is never visible.
                        continue;
                    }
                    match filters.iter_mut().find(|(d, _)| *d == dim) {
                        Some((_, vals)) => vals.push(v),
                        None => filters.push((dim, vec![v])),
                    }
                }
            }
        }
        // Default: up to now, this millisecond included (`to` is exclusive).
        let to = to.unwrap_or(now + 1);
        let from = from.unwrap_or(to - DEFAULT_RANGE_MS);
        if from >= to {
            return Err(ApiError::bad_request("from: must be before `to`"));
        }
        Ok(Query {
            from,
            to,
            filters,
            params,
        })
    }

    /// The `limit` parameter: 1..=1000, `default` when absent.
    pub fn limit(&self, default: usize) -> Result<usize, ApiError> {
        match self.param("limit") {
            None => Ok(default),
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("limit: `{l}` is not an integer in 1..=1000"))
                }),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn filters(&self, property: &str) -> Filters {
        Filters {
            property: property.to_owned(),
            from: self.from,
            to: self.to,
            dimensions: self.filters.clone(),
        }
    }
}
