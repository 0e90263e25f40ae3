//! `POST /v1/events`: the native protocol's route (`spec/protocols.md` §6).
//! Thin: decode → map the ingest key to a property → pipeline → `202`.

use crate::app::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::ingest::{IngestError, IngestOutcome, Requirement};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use playhead_model::Batch;
use playhead_protocols::{native, RawRequest};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Events stored by this request.
    pub accepted: usize,
    /// Events already stored before (same session and `seq`): ignored.
    pub duplicates: usize,
    /// Events refused because the session had already ended (`viewend`, timeout).
    pub late: usize,
}

/// The media type of a request, without parameters, lowercased.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// A body that could not be read: too large (`413`) or broken (`400`).
pub fn body_rejection(state: &AppState, r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        body_too_large(state)
    } else {
        ApiError::bad_request(format!("body: could not be read: {r}"))
    }
}

/// A body over `body_limit_bytes`: `413`, naming the limit.
pub fn body_too_large(state: &AppState) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "body: larger than the {}-byte limit",
            state.config.body_limit_bytes
        ),
    )
}

/// Map a pipeline failure to the client's answer.
pub fn ingest_error(e: IngestError) -> ApiError {
    match e {
        IngestError::Overloaded => {
            ApiError::new(ErrorCode::Overloaded, "ingest queue full; retry later")
        }
        IngestError::ShuttingDown => {
            ApiError::new(ErrorCode::Overloaded, "server shutting down; retry later")
        }
        IngestError::Storage => ApiError::internal("storage failure during ingest"),
    }
}

/// Ingest a batch of native events.
#[utoipa::path(post, path = "/v1/events", tag = "ingest",
    request_body(content = String, description = "native batch (`spec/protocols.md` §6), as application/json or text/plain"),
    responses((status = 202, body = Accepted), (status = 400, description = "names the bad field"),
        (status = 401, description = "unknown ingest key"), (status = 413), (status = 415),
        (status = 503, description = "overloaded; see Retry-After")))]
pub async fn post_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let body = body.map_err(|r| body_rejection(&state, r))?;
    let received_at = state.clock.now_ms();
    let ct = content_type(&headers);
    let decoded = native::decode(&RawRequest {
        method: "POST",
        path: "/v1/events",
        query: "",
        content_type: ct.as_deref(),
        body: &body,
        received_at,
    })
    .inspect_err(|_| state.telemetry.count_events("native", "invalid", 1))?;
    accept_batch(&state, &headers, &decoded.ingest_key, decoded.batch).await
}

/// The common end of the native-style routes (`/v1/events`,
/// `/v1/player-messages`): the ingest key picks the property (`401` when
/// unknown), the User-Agent adds dimensions, the batch is committed, and the
/// answer is `202 {"accepted","duplicates","late"}`.
pub(crate) async fn accept_batch(
    state: &AppState,
    headers: &HeaderMap,
    ingest_key: &str,
    mut batch: Batch,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let property = state
        .config
        .property_by_ingest_key(ingest_key)
        .ok_or_else(|| ApiError {
            code: ErrorCode::Unauthorized,
            message: "property: unknown ingest key".into(),
            field: Some("property".into()),
        })?;
    batch.key.property = property.name.clone();
    crate::user_agent::add_dimensions(headers, &mut batch.meta.dimensions);
    let n = batch.events.len();
    let outcome = state
        .pipeline
        .submit(batch, Requirement::OpenOrCreate)
        .await
        .map_err(ingest_error)?;
    let body = match outcome {
        IngestOutcome::Applied {
            accepted,
            duplicates,
            ..
        } => Accepted {
            accepted,
            duplicates,
            late: 0,
        },
        IngestOutcome::SessionClosed | IngestOutcome::UnknownSession => Accepted {
            accepted: 0,
            duplicates: 0,
            late: n,
        },
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}
