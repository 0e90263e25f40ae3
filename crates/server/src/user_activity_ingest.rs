//! `POST /useractivityvault/v1/useractivity/{activityName}`: the User
//! Activity Vault route (NAGRA OpenTV compatible, `spec/protocols.md` §4).
//!
//! Thin: check the token → decode → pipeline → `200 {"status":"ok"}`.
//! The token is a property's ingest key, sent as `Authorization: Bearer
//! <token>` or as `?token=<token>`; missing or unknown → `401`. Refusals are
//! `400 {"error", "field"}` naming the field. An activity for a playback
//! session that already closed (after `playbackStop`, or a timeout) is
//! answered `200 {"status":"ok","late":<n>}` and not stored.

use crate::app::AppState;
use crate::config::Property;
use crate::error::ApiError;
use crate::ingest::{IngestOutcome, Requirement};
use crate::native_ingest::{body_rejection, content_type, ingest_error};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Uri};
use axum::Json;
use playhead_protocols::{user_activity, RawRequest};
use serde::Serialize;
use utoipa::ToSchema;

/// The answer to an accepted activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ok {
    /// Always `ok`.
    pub status: &'static str,
    /// Events not stored because their playback session had already closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<usize>,
}

/// The property of the request's token: the bearer token, else `?token=`.
fn property<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    query: &str,
) -> Result<&'a Property, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let token = bearer.or_else(|| user_activity::token_from_query(query));
    let unauthorized = |message: &str| ApiError {
        code: crate::error::ErrorCode::Unauthorized,
        message: message.into(),
        field: Some("token".into()),
    };
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
        unauthorized("token: required, as `Authorization: Bearer <token>` or `?token=<token>`")
    })?;
    state
        .config
        .property_by_ingest_key(&token)
        .ok_or_else(|| unauthorized("token: unknown ingest token"))
}

/// Store one activity (`playbackStart`, `playback_metrics`, `playerError`, ...).
#[utoipa::path(post, path = "/useractivityvault/v1/useractivity/{activityName}", tag = "ingest",
    params(("activityName" = String, Path, description = "the activity: `playback_metrics`, `playbackStart`, `playerError`, `railView`, ..."),
        ("token" = Option<String>, Query, description = "the ingest token, when not sent as `Authorization: Bearer`")),
    request_body(content = String, description = "the activity envelope `{accountId, userId, deviceId, key, name, timestamp, metadata}` (`spec/protocols.md` §4), as application/json"),
    responses((status = 200, body = Ok), (status = 400, description = "`{\"error\", \"field\"}` naming the bad field"),
        (status = 401, description = "missing or unknown token"), (status = 413), (status = 415),
        (status = 503, description = "overloaded; see Retry-After")))]
pub async fn post_activity(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Ok>, ApiError> {
    let query = query.unwrap_or_default();
    let property = property(&state, &headers, &query)?;
    let body = body.map_err(|r| body_rejection(&state, r))?;
    let ct = content_type(&headers);
    let decoded = user_activity::decode(&RawRequest {
        method: "POST",
        path: uri.path(),
        query: &query,
        content_type: ct.as_deref(),
        body: &body,
        received_at: state.clock.now_ms(),
    })
    .inspect_err(|_| state.telemetry.count_events("user_activity", "invalid", 1))?;
    let mut batch = decoded.batch;
    batch.key.property = property.name.clone();
    crate::user_agent::add_dimensions(&headers, &mut batch.meta.dimensions);
    let n = batch.events.len();
    let outcome = state
        .pipeline
        .submit(batch, Requirement::OpenOrCreate)
        .await
        .map_err(ingest_error)?;
    let late = match outcome {
        IngestOutcome::Applied { .. } => None,
        IngestOutcome::SessionClosed | IngestOutcome::UnknownSession => Some(n),
    };
    Ok(Json(Ok { status: "ok", late }))
}
