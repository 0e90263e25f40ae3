//! `POST /v1/player-messages`: embedded-player messages forwarded by the
//! SDK's bridge (`spec/protocols.md` §5). Thin: decode → map the ingest key
//! to a property → pipeline → `202`, with the native route's answers
//! (`401` unknown key, `400` naming the field, `415`, `413`, `503`) and CORS.

use crate::app::AppState;
use crate::error::ApiError;
use crate::native_ingest::{body_rejection, content_type, Accepted};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use playhead_protocols::{player_messages, RawRequest};

/// Ingest a batch of iframe player messages.
#[utoipa::path(post, path = "/v1/player-messages", tag = "ingest",
    request_body(content = String, description = "`{\"session_id\",\"property\",\"video_id\",\"viewer_id\",\"messages\":[..]}` (`spec/protocols.md` §5), as application/json or text/plain"),
    responses((status = 202, body = Accepted), (status = 400, description = "names the bad field"),
        (status = 401, description = "unknown ingest key"), (status = 413), (status = 415),
        (status = 503, description = "overloaded; see Retry-After")))]
pub async fn post_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let body = body.map_err(|r| body_rejection(&state, r))?;
    let received_at = state.clock.now_ms();
    let ct = content_type(&headers);
    let decoded = player_messages::decode(&RawRequest {
        method: "POST",
        path: "/v1/player-messages",
        query: "",
        content_type: ct.as_deref(),
        body: &body,
        received_at,
    })
    .inspect_err(|_| {
        state
            .telemetry
            .count_events("player_messages", "invalid", 1)
    })?;
    crate::native_ingest::accept_batch(&state, &headers, &decoded.ingest_key, decoded.batch).await
}

#[cfg(test)]
mod tests {
    use crate::{app, AppState, ManualClock, ServerConfig};
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use playhead_store::{FsyncPolicy, SqliteStore};
    use serde_json::{json, Value};
    use std::sync::Arc;
    use tower::ServiceExt;

    async fn send(
        router: &crate::App,
        ct: &str,
        body: String,
    ) -> (StatusCode, Value, Option<String>) {
        let req = Request::post("/v1/player-messages")
            .header(header::CONTENT_TYPE, ct)
            .header(header::ORIGIN, "https://publisher.example")
            .body(Body::from(body))
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let cors = resp
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            cors,
        )
    }

    #[tokio::test]
    async fn answers_like_the_native_route() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap());
        let clock = Arc::new(ManualClock::new(1_700_000_010_000));
        let config = ServerConfig::single("default", "ingest-k", "read-k");
        let router = app(AppState::start(config, store, clock).unwrap());
        let ok = json!({"session_id": "s1", "property": "ingest-k", "video_id": "v", "viewer_id": "u",
            "messages": [{"event": "infoDelivery", "info": {"currentTimeLastUpdated": 1_700_000_000,
                "playlogEventName": "playback_began_player_loading",
                "playlogData": {"playback_module_version": "", "system_time": 1_700_000_000}}}]});
        let (status, body, cors) = send(&router, "text/plain;charset=UTF-8", ok.to_string()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body, json!({"accepted": 1, "duplicates": 0, "late": 0}));
        assert_eq!(cors.as_deref(), Some("*"));
        // The bridge's retry of the same batch changes nothing.
        let (_, body, _) = send(&router, "application/json", ok.to_string()).await;
        assert_eq!(body, json!({"accepted": 0, "duplicates": 1, "late": 0}));
        let mut bad_key = ok.clone();
        bad_key["property"] = json!("nope");
        let (status, body, _) = send(&router, "application/json", bad_key.to_string()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["field"], "property");
        let (status, body, _) = send(
            &router,
            "application/json",
            json!({"session_id": "s1", "property": "ingest-k", "messages": [{"event": 1}]})
                .to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "messages[0].event");
        let (status, _, _) = send(&router, "application/xml", ok.to_string()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
