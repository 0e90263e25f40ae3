//! The router: every route, and the layers around them (CORS, body limit,
//! timeouts, request metrics). `app(state)` is what tests call without a socket.

use crate::admin;
use crate::api;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::ingest::{Pipeline, PipelineConfig};
use crate::media_collection_ingest;
use crate::native_ingest;
use crate::ops;
use crate::ping_ingest;
use crate::pixel_ingest;
use crate::telemetry::{CountRequestsLayer, Telemetry};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use playhead_store::{Store, StoreError};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, ServiceExt};
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;

/// What every handler can reach ([`Shared`], through `Deref`). It is one
/// `Arc`, as it is cloned for every request: a clone of its nine `Arc`s,
/// and their drops, took about 1 % of the server's CPU per Adobe event.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The server's parts, shared by every request.
pub struct Shared {
    pub config: Arc<ServerConfig>,
    pub store: Arc<dyn Store>,
    pub pipeline: Pipeline,
    pub clock: Arc<dyn Clock>,
    pub telemetry: Arc<Telemetry>,
    /// Pings of one session run one at a time.
    pub ping_locks: Arc<crate::ping_ingest::PingLocks>,
    /// Wakes the ad-beacon sender.
    pub beacons: Arc<crate::beacons::Beacons>,
}

impl AppState {
    /// Restore open sessions from `store` and start the ingest pipeline.
    pub fn start(
        config: ServerConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<AppState, StoreError> {
        let telemetry = Arc::new(Telemetry::default());
        let pipeline = Pipeline::start(
            store.clone(),
            clock.clone(),
            telemetry.clone(),
            PipelineConfig {
                queue_capacity: config.ingest_queue_capacity,
                max_group_commit: config.max_group_commit,
            },
        )?;
        let beacons = crate::beacons::Beacons::start(
            store.ads(),
            clock.clone(),
            telemetry.clone(),
            config.beacons.clone(),
        )?;
        Ok(AppState(Arc::new(Shared {
            config: Arc::new(config),
            store,
            pipeline,
            clock,
            telemetry,
            ping_locks: crate::ping_ingest::locks(),
            beacons,
        })))
    }
}

/// Every route of the server.
pub fn app(state: AppState) -> App {
    // For the dispatch (`App`, `Rest`), which answers some routes itself,
    // and the Media Collection API's router; `state` goes to the main one.
    let dispatch_state = state.clone();
    // Players post from any page (sendBeacon's text/plain needs no
    // preflight, fetch's application/json does), and dashboards read with a
    // bearer key (no cookies), so any origin may call. One layer around the
    // whole router answers preflights before routing.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    let ingest = Router::new()
        .route("/v1/events", post(native_ingest::post_events))
        .route(
            "/v1/player-messages",
            post(crate::player_messages_ingest::post_messages),
        )
        .route(
            "/icon.gif",
            get(pixel_ingest::get_icon).post(pixel_ingest::post_icon),
        )
        .route("/realtime/icon.gif", get(pixel_ingest::get_live_icon))
        .route(
            "/useractivityvault/v1/useractivity/{activityName}",
            post(crate::user_activity_ingest::post_activity),
        );
    let ping = Router::new()
        .route("/preplay/{asset}", get(ping_ingest::preplay_vod))
        .route("/preplay/channel/{channel}", get(ping_ingest::preplay_live))
        .route("/api/v3/preplay/{asset}", get(ping_ingest::preplay_vod))
        .route(
            "/api/v3/preplay/channel/{channel}",
            get(ping_ingest::preplay_live),
        )
        .route("/session/ping/{sid}", get(ping_ingest::ping))
        .route("/api/v3/ping/ad/{sid}", get(ping_ingest::ping));
    let admin = Router::new()
        .route(
            "/admin/v1/assets/{asset}",
            put(admin::put_asset).get(admin::get_asset),
        )
        .route(
            "/admin/v1/channels/{channel}",
            put(admin::put_channel).get(admin::get_channel),
        )
        .route("/admin/v1/beacons", get(admin::beacons));
    let data = Router::new()
        .route("/data/v1/sessions", get(api::sessions::list))
        .route("/data/v1/sessions/{id}", get(api::sessions::detail))
        .route("/data/v1/sessions/{id}/events", get(api::sessions::events))
        .route("/data/v1/metrics", get(api::metrics::overview))
        .route("/data/v1/metrics/timeseries", get(api::metrics::timeseries))
        .route("/data/v1/metrics/breakdown", get(api::metrics::breakdown))
        .route("/data/v1/realtime", get(api::metrics::realtime))
        .route(
            "/data/v1/videos/{video_id}/retention",
            get(api::videos::retention),
        )
        .route("/data/v1/property", get(api::property::show))
        .route("/data/v1/errors", get(api::errors::list));
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi));
    let routes = Router::new()
        .merge(ingest)
        .merge(ping)
        .merge(admin)
        .merge(data)
        .merge(ops)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let routes = with_route_layers(routes, &state).with_state(state);
    // CORS wraps the whole router as one service, so it sees every request
    // (preflights included) before routing and its 404/405 fallbacks.
    App {
        rest: cors.layer(Rest {
            routes,
            state: dispatch_state.clone(),
        }),
        media: media_collection_ingest::routes(dispatch_state.clone()),
        state: dispatch_state,
    }
}

/// The server as one tower service: [`app`]'s dispatch.
///
/// - Paths under `/api/v1` are the Media Collection API's
///   ([`media_collection_ingest::owns`]). They get the vendor's CORS on every
///   answer, preflights are answered before routing, and a well-formed
///   `POST /api/v1/sessions/{sid}/events`, the API's one per-event route, is
///   answered without a router
///   ([`media_collection_ingest::post_event_direct`]). The rest go through
///   the API's own router.
/// - Every other path gets the common CORS layer, around [`Rest`].
///
/// A hand-written dispatch rather than a `Router` around the two: an outer
/// router cloned and boxed its fallback for every request
/// (`bench/RESULTS.md`, eighth pass).
#[derive(Clone)]
pub struct App {
    rest: tower_http::cors::Cors<Rest>,
    media: Router,
    state: AppState,
}

/// The future of [`App`] and [`Rest`]: boxed, as axum's routes box theirs.
pub type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Every path but the Media Collection API's, inside the common CORS layer:
/// `GET /icon.gif` and `GET /realtime/icon.gif`, the pixel beacons, are
/// answered without a router ([`pixel_ingest::get_beacon_direct`]); the
/// rest go through the main router.
#[derive(Clone)]
pub struct Rest {
    routes: Router,
    state: AppState,
}

impl tower::Service<Request> for Rest {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // axum's `Router` is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match pixel_ingest::direct_beacon_route(req.method(), req.uri().path()) {
            Some((route, decoder)) => {
                let state = self.state.clone();
                Box::pin(async move {
                    Ok(pixel_ingest::get_beacon_direct(state, route, decoder, req).await)
                })
            }
            None => Box::pin(self.routes.clone().oneshot(req)),
        }
    }
}

impl App {
    /// What `axum::serve` takes.
    pub fn into_make_service(self) -> axum::routing::IntoMakeService<App> {
        axum::ServiceExt::<Request>::into_make_service(self)
    }

    /// What `axum::serve` takes, with the peer's address of type `C` in each
    /// request (`ConnectInfo`).
    pub fn into_make_service_with_connect_info<C>(
        self,
    ) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<App, C> {
        axum::ServiceExt::<Request>::into_make_service_with_connect_info(self)
    }
}

impl tower::Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both are always ready (axum's `Router`, and `Cors` over `Rest`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let path = req.uri().path();
        if !media_collection_ingest::owns(path) {
            return Box::pin(self.rest.clone().oneshot(req));
        }
        if req.method() == Method::OPTIONS {
            let resp = media_collection_ingest::cors(StatusCode::OK.into_response());
            return Box::pin(std::future::ready(Ok(resp)));
        }
        if let Some(sid) = media_collection_ingest::direct_event_sid(req.method(), path) {
            let sid = sid.to_owned();
            let state = self.state.clone();
            return Box::pin(async move {
                let resp =
                    media_collection_ingest::post_event_direct(state, &sid, req.into_body()).await;
                Ok(media_collection_ingest::cors(resp))
            });
        }
        let media = self.media.clone().oneshot(req);
        Box::pin(async move { Ok(media_collection_ingest::cors(media.await?)) })
    }
}

/// The layers every route has, the Media Collection API's included: the
/// request counter, the body limit and the request timeout. The counter is
/// the outermost, so a request that timed out is counted too (its `408`).
pub(crate) fn with_route_layers(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(CountRequestsLayer(state.telemetry.clone()))
}

/// [`with_route_layers`] for a route answered without a router: the request
/// timeout's `408`, and the answer counted under `route`. (The body limit
/// is the handler's to apply as it reads the body.)
pub(crate) async fn with_direct_route_layers(
    state: &AppState,
    route: &str,
    answer: impl Future<Output = Response>,
) -> Response {
    let resp = match tokio::time::timeout(state.config.request_timeout, answer).await {
        Ok(resp) => resp,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    };
    state.telemetry.count_request(route, resp.status().as_u16());
    resp
}

/// The dashboard's files and pages (`assets`); any other path, and every
/// API path, gets the JSON `404`.
async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    crate::assets::page(&method, uri.path()).unwrap_or_else(|| {
        axum::response::IntoResponse::into_response(crate::error::ApiError::not_found(
            "no such route",
        ))
    })
}

async fn method_not_allowed(method: Method) -> crate::error::ApiError {
    crate::error::ApiError::new(
        crate::error::ErrorCode::MethodNotAllowed,
        format!("method {method} is not allowed on this route"),
    )
}
