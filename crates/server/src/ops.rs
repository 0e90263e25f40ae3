//! Operations routes: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

use crate::app::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use utoipa::OpenApi;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The store is writable and ingest is not shedding load.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200), (status = 503)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let store = state.store.clone();
    let writable = tokio::task::spawn_blocking(move || store.is_writable())
        .await
        .unwrap_or(false);
    let shedding = state.pipeline.queue_depth() >= state.config.ingest_queue_capacity;
    match (writable, shedding) {
        (true, false) => (StatusCode::OK, "ready\n"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "store not writable\n"),
        (true, true) => (StatusCode::SERVICE_UNAVAILABLE, "ingest queue full\n"),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render(),
    )
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Playhead", description = "Self-hosted video playback analytics: ingest, query and operations API."),
    paths(
        healthz, readyz, metrics, openapi,
        crate::native_ingest::post_events,
        crate::player_messages_ingest::post_messages,
        crate::pixel_ingest::get_icon, crate::pixel_ingest::post_icon, crate::pixel_ingest::get_live_icon,
        crate::user_activity_ingest::post_activity,
        crate::api::videos::retention,
        crate::media_collection_ingest::start_session, crate::media_collection_ingest::post_event,
        crate::media_collection_ingest::downloaded, crate::media_collection_ingest::schema,
        crate::api::sessions::list, crate::api::sessions::detail, crate::api::sessions::events,
        crate::api::metrics::overview, crate::api::metrics::timeseries,
        crate::api::metrics::breakdown, crate::api::metrics::realtime,
        crate::ping_ingest::preplay_vod, crate::ping_ingest::preplay_live, crate::ping_ingest::ping,
        crate::admin::put_asset, crate::admin::get_asset, crate::admin::put_channel,
        crate::admin::get_channel, crate::admin::beacons,
        crate::api::property::show, crate::api::errors::list,
    ),
    modifiers(&ReadKeyScheme)
)]
pub struct ApiDoc;

struct ReadKeyScheme;

impl utoipa::Modify for ReadKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "read_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document: OpenAPI 3 of every route.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200)))]
pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
