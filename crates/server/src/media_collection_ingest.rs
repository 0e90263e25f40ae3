//! The Media Collection API (Adobe Media Analytics compatible,
//! `spec/protocols.md` §2), every path under `/api/v1`:
//!
//! - `POST /api/v1/sessions`: a `sessionStart` creates a session: `201`, an
//!   empty body and `Location: /api/v1/sessions/{sid}`. The deprecated form
//!   (a downloaded array with `media.downloaded`) is accepted here too.
//! - `POST /api/v1/sessions/{sid}/events`: `204`; `404` unknown sid (the
//!   player starts a new session); `410` session closed.
//! - `POST /api/v1/downloaded`: an offline batch (array), `201` or `400`.
//! - `GET /api/v1/schemas/{eventType}`: the JSON Schema an event is validated with.
//!
//! Errors are `{"message": "..."}` naming the field. CORS is exactly the
//! vendor's, on every answer, preflight included (`cors` below).
//!
//! A sid is 64 hex characters: 16 from a stable hash of the property's name,
//! then 48 random. The events route carries no report suite, so the prefix
//! tells which property the session belongs to; the random part makes the
//! sid unguessable.

use crate::app::AppState;
use crate::error::{respond, ApiError, ErrorCode};
use crate::ingest::{IngestError, IngestOutcome, Requirement};
use crate::native_ingest::body_rejection;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use playhead_model::hash::stable_hash;
use playhead_model::{Batch, Protocol, SessionKey, SessionMeta};
use playhead_protocols::media_collection::{self, Decoded};
use playhead_protocols::ProtocolError;
use serde_json::json;

/// An error in the protocol's form: `{"message": "..."}`.
pub struct MediaError(ApiError);

impl IntoResponse for MediaError {
    fn into_response(self) -> Response {
        respond(self.0.code, Json(json!({ "message": self.0.message })))
    }
}

impl From<ApiError> for MediaError {
    fn from(e: ApiError) -> Self {
        MediaError(e)
    }
}

impl From<ProtocolError> for MediaError {
    fn from(e: ProtocolError) -> Self {
        MediaError(e.into())
    }
}

fn overloaded(e: IngestError) -> MediaError {
    crate::native_ingest::ingest_error(e).into()
}

/// Whether a path is the Media Collection API's (`/api/v1` and below).
pub fn owns(path: &str) -> bool {
    path.strip_prefix("/api/v1")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The routes of every path under `/api/v1` ([`owns`]), with the layers
/// every route has. The app's dispatch ([`crate::app::App`]) answers
/// preflights, puts the vendor's CORS on every answer ([`cors`]) and sends
/// the events route's well-formed requests to [`post_event_direct`] rather
/// than through this router. Its paths are whole, not nested: a nested
/// router rewrites each request's URI (5 k instructions an event,
/// `bench/RESULTS.md`).
pub fn routes(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/v1/sessions", post(start_session))
        .route(EVENTS_ROUTE, post(post_event))
        .route("/api/v1/downloaded", post(downloaded))
        .route("/api/v1/schemas/{event_type}", get(schema))
        .fallback(|| async {
            MediaError(ApiError::not_found("no such Media Collection API route"))
        })
        .method_not_allowed_fallback(|method: Method| async move {
            MediaError(ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("method {method} is not allowed on this route"),
            ))
        });
    crate::app::with_route_layers(routes, &state).with_state(state)
}

/// The route of a session's events, as the request counter names it.
pub const EVENTS_ROUTE: &str = "/api/v1/sessions/{sid}/events";

/// The sid of a `POST /api/v1/sessions/{sid}/events` whose sid segment
/// needs no decoding (no `%`), which [`post_event_direct`] answers without
/// the router. Any other request to that route (a percent-encoded sid, a
/// wrong method) goes through the router and gets the same answer as before.
pub fn direct_event_sid<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    if method != Method::POST {
        return None;
    }
    let sid = path
        .strip_prefix("/api/v1/sessions/")?
        .strip_suffix("/events")?;
    (!sid.is_empty() && !sid.contains(['/', '%'])).then_some(sid)
}

/// `POST /api/v1/sessions/{sid}/events` without the router: the same
/// answer as [`post_event`] behind [`routes`]' layers (the body limit, the
/// request timeout's `408`), and the request counted under [`EVENTS_ROUTE`].
/// The router's matching, its boxed route and its extractors cost about a
/// tenth of an Adobe event's CPU (`bench/RESULTS.md`, eighth pass).
pub async fn post_event_direct(state: AppState, sid: &str, body: Body) -> Response {
    let answer = async {
        let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(
            body,
            state.config.body_limit_bytes,
        ))
        .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return MediaError(crate::native_ingest::body_too_large(&state)).into_response()
            }
            Err(e) => {
                return MediaError(ApiError::bad_request(format!(
                    "body: could not be read: {e}"
                )))
                .into_response()
            }
        };
        accept_event(&state, sid, &body).await.into_response()
    };
    crate::app::with_direct_route_layers(&state, EVENTS_ROUTE, answer).await
}

/// CORS exactly as the vendor answers it, on every response (`spec/protocols.md` §2).
pub fn cors(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("OPTIONS,POST,PUT"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location"),
    );
    resp
}

/// The 16-hex prefix of a property's sids.
fn sid_prefix(property: &str) -> String {
    format!("{:016x}", stable_hash(property.as_bytes()))
}

fn new_sid(property: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let more = uuid::Uuid::new_v4().simple().to_string();
    format!("{}{}{}", sid_prefix(property), random, &more[..16])
}

/// 64 hex digits. Every character is checked, with no branch on each: the
/// digits and letters of random hex mispredicted `all`'s early exits and
/// ranges half the time, which took 1 % of the server's CPU per Adobe event.
fn is_sid_shaped(sid: &str) -> bool {
    let hex = sid.bytes().fold(true, |hex, b| hex & b.is_ascii_hexdigit());
    sid.len() == 64 && hex
}

/// The property a sid belongs to, if it is a well-formed sid of one.
fn property_of_sid<'a>(state: &'a AppState, sid: &str) -> Option<&'a str> {
    if !is_sid_shaped(sid) {
        return None;
    }
    // The prefix's number, compared with each property's hash: no text is
    // written per request.
    let prefix = u64::from_str_radix(&sid[..16], 16).ok()?;
    state
        .config
        .properties
        .iter()
        .find(|p| stable_hash(p.name.as_bytes()) == prefix)
        .map(|p| p.name.as_str())
}

/// Merge a batch of decoded events into one ingest batch for a new session.
fn session_batch(property: &str, sid: &str, decoded: Vec<Decoded>) -> Batch {
    let mut meta = SessionMeta::default();
    let mut events = Vec::new();
    for d in decoded {
        meta.merge(&d.meta);
        if d.resumed {
            meta.dimensions.insert("resumed".into(), "true".into());
        }
        if d.downloaded {
            meta.dimensions.insert("downloaded".into(), "true".into());
        }
        events.extend(d.events);
    }
    Batch {
        key: SessionKey::new(property, sid),
        protocol: Protocol::MediaCollection,
        meta,
        events,
    }
}

/// Create a session from decoded events that start with `sessionStart`.
async fn create(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    decoded: Vec<Decoded>,
) -> Result<Response, MediaError> {
    let suite = decoded
        .first()
        .and_then(|d| d.report_suite.clone())
        .unwrap_or_default();
    let property = state
        .config
        .property_by_report_suite(&suite)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "params.analytics.reportSuite: `{suite}` belongs to no property"
            ))
        })?
        .name
        .clone();
    let sid = new_sid(&property);
    let mut batch = session_batch(&property, &sid, decoded);
    batch.meta.dimensions.insert("report_suite".into(), suite);
    crate::user_agent::add_dimensions(headers, &mut batch.meta.dimensions);
    state
        .pipeline
        .submit(batch, Requirement::OpenOrCreate)
        .await
        .map_err(overloaded)?;
    let location = format!("/api/v1/sessions/{sid}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Body::empty(),
    )
        .into_response())
}

fn read_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, MediaError> {
    body.map_err(|r| MediaError(body_rejection(state, r)))
}

/// `POST /api/v1/sessions`: a `sessionStart` (or the deprecated downloaded array).
#[utoipa::path(post, path = "/api/v1/sessions", tag = "ingest",
    request_body(content = String, description = "a sessionStart event (JSON), or a downloaded array with params.\"media.downloaded\": true"),
    responses((status = 201, description = "created; Location: /api/v1/sessions/{sid}"),
        (status = 400, description = "{\"message\"} naming the field"), (status = 503)))]
pub async fn start_session(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, MediaError> {
    let body = read_body(&state, body)?;
    let received_at = state.clock.now_ms();
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let decoded = if is_array {
        media_collection::decode_batch(&body, received_at, true)?
    } else {
        let d = media_collection::decode_body(&body, received_at)?;
        if d.event_type != "sessionStart" {
            return Err(ApiError::bad_request(format!(
                "eventType: `{}` cannot start a session; send `sessionStart` here and other events to /api/v1/sessions/{{sid}}/events",
                d.event_type
            ))
            .into());
        }
        vec![d]
    };
    create(&state, &headers, decoded).await
}

/// `POST /api/v1/downloaded`: an offline session in one array.
#[utoipa::path(post, path = "/api/v1/downloaded", tag = "ingest",
    request_body(content = String, description = "JSON array: sessionStart first, sessionComplete or sessionEnd last"),
    responses((status = 201), (status = 400), (status = 503)))]
pub async fn downloaded(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, MediaError> {
    let body = read_body(&state, body)?;
    let decoded = media_collection::decode_batch(&body, state.clock.now_ms(), false)?;
    create(&state, &headers, decoded).await
}

/// `POST /api/v1/sessions/{sid}/events`.
#[utoipa::path(post, path = "/api/v1/sessions/{sid}/events", tag = "ingest",
    params(("sid" = String, Path, description = "64 hex characters, from Location")),
    request_body(content = String, description = "one event (JSON)"),
    responses((status = 204), (status = 400), (status = 404, description = "unknown session: start a new one"),
        (status = 410, description = "session closed: start a new one"), (status = 503)))]
pub async fn post_event(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, MediaError> {
    let body = read_body(&state, body)?;
    accept_event(&state, &sid, &body).await
}

/// Decode one event of session `sid` and wait until it is durable.
async fn accept_event(state: &AppState, sid: &str, body: &[u8]) -> Result<Response, MediaError> {
    let Some(property) = property_of_sid(state, sid) else {
        return Err(
            ApiError::not_found(format!("unknown session `{sid}`; start a new session")).into(),
        );
    };
    let property = property.to_owned();
    let decoded = media_collection::decode_body(body, state.clock.now_ms())?;
    if decoded.event_type == "sessionStart" {
        return Err(ApiError::bad_request(
            "eventType: `sessionStart` starts a new session: POST it to /api/v1/sessions",
        )
        .into());
    }
    let key = SessionKey::new(property, sid);
    if decoded.event_type == "stateStart" {
        if let Some(name) = &decoded.state_name {
            check_state_limit(state, &key, name).await?;
        }
    }
    let batch = Batch {
        key,
        protocol: Protocol::MediaCollection,
        meta: SessionMeta::default(),
        events: decoded.events,
    };
    match state
        .pipeline
        .submit(batch, Requirement::MustExist)
        .await
        .map_err(overloaded)?
    {
        IngestOutcome::Applied { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        IngestOutcome::UnknownSession => {
            Err(ApiError::not_found(format!("unknown session `{sid}`; start a new session")).into())
        }
        IngestOutcome::SessionClosed => Err(ApiError::new(
            ErrorCode::Gone,
            format!("session `{sid}` is closed; start a new session"),
        )
        .into()),
    }
}

/// Most distinct `media.state.name` values one session may start (`spec/protocols.md` §2).
pub const MAX_STATES_PER_SESSION: usize = 10;

/// Refuse an 11th distinct player state in a session. Reads the session's
/// stored events; `stateStart` is rare, and a player sends a session's
/// events one after another, so the committed events are up to date.
async fn check_state_limit(
    state: &AppState,
    key: &SessionKey,
    name: &str,
) -> Result<(), MediaError> {
    let store = state.store.clone();
    let k = key.clone();
    let events = crate::api::blocking(move || store.session_events(&k)).await?;
    let names: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|e| matches!(&e.kind, playhead_model::EventKind::Custom { name } if name == "stateStart"))
        .filter_map(|e| e.data.get("params")?.get("media.state.name")?.as_str())
        .collect();
    if names.contains(name) || names.len() < MAX_STATES_PER_SESSION {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "params.\"media.state.name\": a session may track at most {MAX_STATES_PER_SESSION} distinct states; `{name}` would be the {}th",
        names.len() + 1
    ))
    .into())
}

/// `GET /api/v1/schemas/{eventType}`.
#[utoipa::path(get, path = "/api/v1/schemas/{event_type}", tag = "ingest",
    params(("event_type" = String, Path)),
    responses((status = 200, description = "JSON Schema draft-04"), (status = 404)))]
pub async fn schema(Path(event_type): Path<String>) -> Result<Response, MediaError> {
    media_collection::schema(&event_type)
        .map(|s| Json(s).into_response())
        .ok_or_else(|| {
            MediaError(ApiError::not_found(format!(
                "unknown eventType `{event_type}`; valid: {}",
                media_collection::EVENT_TYPES.join(", ")
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sid_is_64_hex_digits() {
        let sid = new_sid("default");
        assert!(is_sid_shaped(&sid), "{sid}");
        assert!(is_sid_shaped(&sid.to_uppercase()));
        assert!(!is_sid_shaped(&sid[..63]));
        assert!(!is_sid_shaped(&format!("{sid}0")));
        assert!(!is_sid_shaped(""));
        // One character out of place, at each position.
        for at in 0..64 {
            for c in ['g', 'G', '/', ':', '@', '`', ' ', '\0'] {
                let mut bad = sid.clone().into_bytes();
                bad[at] = c as u8;
                let bad = String::from_utf8(bad).unwrap();
                assert!(!is_sid_shaped(&bad), "{bad:?}");
            }
        }
        // Multi-byte characters are not hex (and change the length).
        assert!(!is_sid_shaped(&format!("{}é", &sid[..62])));
    }
}
