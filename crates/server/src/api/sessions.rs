//! `GET /data/v1/sessions`, `/sessions/{id}`, `/sessions/{id}/events`.

use super::{blocking, flush_session_rows, rfc3339, Query, ReadAuth};
use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use playhead_engine::{Playback, Rules};
use playhead_model::{Dimension, SessionKey, SessionSummary};
use playhead_store::SessionQuery;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A session as the API shows it (`spec/api.md`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub property: String,
    pub protocol: String,
    pub video_id: Option<String>,
    pub viewer_id: Option<String>,
    /// `init|starting|playing|paused|buffering|seeking|ended` while open, `closed` after.
    pub state: String,
    pub open: bool,
    pub started_at: String,
    pub last_event_at: String,
    pub ended_at: Option<String>,
    pub duration_s: Option<f64>,
    pub content_type: Option<String>,
    #[schema(value_type = Object)]
    pub dimensions: Map<String, Value>,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    /// Every per-session metric of `spec/metrics.md`.
    #[schema(value_type = Object)]
    pub metrics: Value,
}

impl SessionView {
    pub fn from_summary(s: &SessionSummary) -> SessionView {
        let mut dimensions = Map::new();
        for dim in [
            Dimension::Browser,
            Dimension::Os,
            Dimension::DeviceType,
            Dimension::PlayerName,
            Dimension::ReferrerDomain,
            Dimension::Cdn,
            Dimension::Country,
        ] {
            if let Some(v) = s.dimension_values(&dim).into_iter().next() {
                dimensions.insert(dim.name(), Value::String(v));
            }
        }
        for (k, v) in &s.meta.dimensions {
            dimensions
                .entry(k.clone())
                .or_insert_with(|| Value::String(v.clone()));
        }
        if let Some(v) = &s.meta.player_version {
            dimensions.insert("player_version".into(), Value::String(v.clone()));
        }
        SessionView {
            id: s.key.session_id.clone(),
            property: s.key.property.clone(),
            protocol: s.protocol.as_str().to_owned(),
            video_id: s.meta.video_id.clone(),
            viewer_id: s.meta.viewer_id.clone(),
            state: if s.open {
                s.state.as_str().to_owned()
            } else {
                "closed".to_owned()
            },
            open: s.open,
            started_at: rfc3339(s.started_at),
            last_event_at: rfc3339(s.last_event_at),
            ended_at: s.ended_at.map(rfc3339),
            duration_s: s.meta.duration_s,
            content_type: s.meta.content_type.clone(),
            dimensions,
            custom: s
                .meta
                .custom
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
            metrics: serde_json::to_value(&s.metrics).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
    pub next_cursor: Option<String>,
}

/// Sessions, newest first.
#[utoipa::path(get, path = "/data/v1/sessions", tag = "sessions",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or epoch ms; default `to` − 24 h"),
        ("to" = Option<String>, Query, description = "RFC 3339 or epoch ms; default now"),
        ("video_id" = Option<String>, Query), ("viewer_id" = Option<String>, Query),
        ("protocol" = Option<String>, Query), ("failed" = Option<bool>, Query),
        ("limit" = Option<usize>, Query, description = "1..=1000, default 100"),
        ("cursor" = Option<String>, Query),
    ),
    responses((status = 200, body = SessionList), (status = 400), (status = 401)),
    security(("read_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<SessionList>, ApiError> {
    let q = Query::parse(
        raw.as_deref(),
        state.clock.now_ms(),
        &["limit", "cursor", "failed"],
    )?;
    let limit = q.limit(100)?;
    let failed = match q.param("failed") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "failed: `{other}` is not `true` or `false`"
            )))
        }
    };
    let query = SessionQuery {
        filters: q.filters(&property),
        failed,
        limit,
        cursor: q.param("cursor").map(str::to_owned),
    };
    let store = state.store.clone();
    flush_session_rows(&state).await;
    let page = blocking(move || store.list_sessions(&query)).await?;
    Ok(Json(SessionList {
        sessions: page
            .sessions
            .iter()
            .map(SessionView::from_summary)
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn load_session(
    state: &AppState,
    property: &str,
    id: &str,
) -> Result<SessionSummary, ApiError> {
    let key = SessionKey::new(property, id);
    let store = state.store.clone();
    flush_session_rows(state).await;
    blocking(move || store.session(&key))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session `{id}` in this property")))
}

/// One session with every per-session metric.
#[utoipa::path(get, path = "/data/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path)),
    responses((status = 200, body = SessionView), (status = 401), (status = 404)),
    security(("read_key" = [])))]
pub async fn detail(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let s = load_session(&state, &property, &id).await?;
    Ok(Json(SessionView::from_summary(&s)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub t: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub playhead: Option<f64>,
    /// The player state after this event.
    pub state_after: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
}

/// A session's canonical timeline, in processing order.
#[utoipa::path(get, path = "/data/v1/sessions/{id}/events", tag = "sessions",
    params(("id" = String, Path)),
    responses((status = 200, body = EventList), (status = 401), (status = 404)),
    security(("read_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    ReadAuth(property): ReadAuth,
    Path(id): Path<String>,
) -> Result<Json<EventList>, ApiError> {
    let s = load_session(&state, &property, &id).await?;
    let store = state.store.clone();
    let key = s.key.clone();
    let mut events = blocking(move || store.session_events(&key)).await?;
    events.sort_by_key(playhead_model::Event::sort_key);
    let mut fold = Playback::new(Rules::for_session(s.protocol, &s.meta));
    let views = events
        .iter()
        .map(|ev| {
            fold.apply(ev);
            let mut data = match serde_json::to_value(ev) {
                Ok(Value::Object(o)) => o,
                _ => Map::new(),
            };
            for k in ["t", "received_at", "dedup_key", "order", "type", "playhead"] {
                data.remove(k);
            }
            if let Some(Value::Object(extra)) = data.remove("data") {
                data.extend(extra);
            }
            data.insert("received_at".into(), Value::String(rfc3339(ev.received_at)));
            if s.protocol == playhead_model::Protocol::Native {
                // The SDK's own sequence number (the dedup key), for tracing retries.
                data.insert("seq".into(), Value::from(ev.order));
            }
            EventView {
                t: rfc3339(ev.t),
                kind: ev.type_name().to_owned(),
                playhead: ev.playhead,
                state_after: fold.state().as_str().to_owned(),
                data,
            }
        })
        .collect();
    Ok(Json(EventList { events: views }))
}
