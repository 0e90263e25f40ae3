//! `GET|POST /icon.gif` and `GET /realtime/icon.gif`: pixel beacons (Panda
//! Video compatible, `spec/protocols.md` §1).
//!
//! Thin: decode → map the pullzone to a property → pipeline (the writer
//! sessionizes by (pullzone, video, viewer)) → the 43-byte GIF (GET) or
//! `204` (POST, what `navigator.sendBeacon` sends). Refusals are
//! `text/plain`, naming the parameter, as the protocol expects.

use crate::app::AppState;
use crate::error::{respond, ApiError};
use crate::ingest::{pixel_group, SessionRef};
use crate::native_ingest::{body_rejection, ingest_error};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use playhead_model::{Batch, Protocol, SessionKey};
use playhead_protocols::{pixel, ProtocolError, RawRequest};

/// A 1×1 transparent GIF (GIF89a, 43 bytes).
pub const TRANSPARENT_GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// A refusal in the pixel protocol's form: `text/plain`, one line.
pub struct PixelError(ApiError);

impl IntoResponse for PixelError {
    fn into_response(self) -> Response {
        respond(
            self.0.code,
            (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}\n", self.0.message),
            ),
        )
    }
}

impl From<ApiError> for PixelError {
    fn from(e: ApiError) -> Self {
        PixelError(e)
    }
}

impl From<ProtocolError> for PixelError {
    fn from(e: ProtocolError) -> Self {
        PixelError(e.into())
    }
}

pub type Decoder = fn(&RawRequest<'_>) -> Result<pixel::Decoded, ProtocolError>;

async fn beacon(
    state: &AppState,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    decoder: Decoder,
) -> Result<Response, PixelError> {
    let decoded = decoder(&RawRequest {
        method: method.as_str(),
        path,
        query,
        content_type: None,
        body: &[],
        received_at: state.clock.now_ms(),
    })
    .inspect_err(|_| state.telemetry.count_events("pixel", "invalid", 1))?;
    let property = state
        .config
        .property_by_pullzone(&decoded.pullzone)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "p: pullzone `{}` belongs to no property",
                decoded.pullzone
            ))
        })?;
    let mut meta = decoded.meta;
    meta.dimensions
        .insert("pullzone".into(), decoded.pullzone.clone());
    crate::user_agent::add_dimensions(headers, &mut meta.dimensions);
    let group = pixel_group(&meta).ok_or_else(|| ApiError::internal("pixel meta without group"))?;
    let batch = Batch {
        key: SessionKey::new(property.name.clone(), ""),
        protocol: Protocol::Pixel,
        meta,
        events: decoded.events,
    };
    let session = SessionRef::Derived {
        group,
        new_view: matches!(decoded.beacon, pixel::Beacon::View),
    };
    state
        .pipeline
        .submit_to(batch, session)
        .await
        .map_err(ingest_error)?;
    Ok(if method == Method::POST {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, "image/gif"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            TRANSPARENT_GIF.as_slice(),
        )
            .into_response()
    })
}

/// The decoder of a `GET` beacon route that [`get_beacon_direct`] answers
/// without the router: `/icon.gif` and `/realtime/icon.gif`.
pub fn direct_beacon_route(method: &Method, path: &str) -> Option<(&'static str, Decoder)> {
    if method != Method::GET {
        return None;
    }
    match path {
        "/icon.gif" => Some(("/icon.gif", pixel::decode as Decoder)),
        "/realtime/icon.gif" => Some(("/realtime/icon.gif", pixel::decode_live as Decoder)),
        _ => None,
    }
}

/// A `GET` beacon ([`direct_beacon_route`]) without the router: the same
/// answer as [`get_icon`] and [`get_live_icon`] behind the routes' layers
/// (the request timeout's `408`; a `GET` has no body to limit), counted
/// under its route. The router's matching, boxed route and extractors (the
/// headers and the query copied) cost several thousand instructions a
/// beacon (`bench/RESULTS.md`, eighth pass).
pub async fn get_beacon_direct(
    state: AppState,
    route: &'static str,
    decoder: Decoder,
    req: axum::extract::Request,
) -> Response {
    let query = req.uri().query().unwrap_or_default();
    // Borrowed apart from `req`, whose body is not `Sync`.
    let headers = req.headers();
    let answer = async {
        beacon(&state, &Method::GET, route, query, headers, decoder)
            .await
            .into_response()
    };
    crate::app::with_direct_route_layers(&state, route, answer).await
}

/// A view, play or check beacon: `200` + GIF.
#[utoipa::path(get, path = "/icon.gif", tag = "ingest",
    params(("type" = String, Query, description = "view, play or check"), ("v" = String, Query),
        ("p" = String, Query, description = "pullzone"), ("u" = String, Query, description = "viewer id"),
        ("current_time" = Option<u64>, Query, description = "on check"), ("visibility" = Option<bool>, Query),
        ("visibily" = Option<bool>, Query, description = "the shipped player's spelling")),
    responses((status = 200, content_type = "image/gif", description = "1×1 transparent GIF"),
        (status = 400, content_type = "text/plain", description = "names the bad parameter"),
        (status = 503, description = "overloaded; see Retry-After")))]
pub async fn get_icon(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PixelError> {
    beacon(
        &state,
        &Method::GET,
        "/icon.gif",
        query.as_deref().unwrap_or_default(),
        &headers,
        pixel::decode,
    )
    .await
}

/// The same beacon sent with `navigator.sendBeacon`: `204`.
#[utoipa::path(post, path = "/icon.gif", tag = "ingest",
    request_body(content = String, description = "empty: the data is in the query string, as on GET"),
    responses((status = 204), (status = 400, content_type = "text/plain"), (status = 503)))]
pub async fn post_icon(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PixelError> {
    // sendBeacon sends no body; one that cannot be read is still refused.
    body.map_err(|r| body_rejection(&state, r))?;
    beacon(
        &state,
        &Method::POST,
        "/icon.gif",
        query.as_deref().unwrap_or_default(),
        &headers,
        pixel::decode,
    )
    .await
}

/// A live beacon (every 15 s while a live stream plays): `200` + GIF.
#[utoipa::path(get, path = "/realtime/icon.gif", tag = "ingest",
    params(("v" = String, Query), ("p" = String, Query), ("u" = String, Query),
        ("quality" = Option<u32>, Query, description = "rendition height"),
        ("time" = Option<f64>, Query), ("bandwidth" = Option<f64>, Query, description = "kbps"),
        ("errors" = Option<u32>, Query)),
    responses((status = 200, content_type = "image/gif"), (status = 400, content_type = "text/plain"), (status = 503)))]
pub async fn get_live_icon(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PixelError> {
    beacon(
        &state,
        &Method::GET,
        "/realtime/icon.gif",
        query.as_deref().unwrap_or_default(),
        &headers,
        pixel::decode_live,
    )
    .await
}
