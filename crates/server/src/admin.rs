//! The admin API (`/admin/v1`, `spec/api.md`): ping assets and live
//! channels with their ad schedules, and the ad-beacon outbox and delivery
//! log. Every route needs `Authorization: Bearer <admin key>`.
//!
//! - `PUT /admin/v1/assets/{asset}`: `{"duration_s", "play_url",
//!   "ad_schedule": [breaks] | "vmap": "<VMAP 1.0 with inline VAST>",
//!   "property"}` → `200` with the asset as stored (the parsed breaks).
//! - `PUT /admin/v1/channels/{channel}`: `{"play_url", "breaks": [{"id",
//!   "start_ms", "duration"?, "events", "ads"}], "property"}`.
//! - `GET` of either returns it; `GET /admin/v1/beacons?session=&limit=`
//!   lists beacons (newest first without `session`) with their attempts.
//! - `property` may be left out when one property (or a catch-all one)
//!   exists. Bad bodies get `400 {"error","field"}`.

use crate::api::{blocking, rfc3339 as iso};
use crate::app::AppState;
use crate::error::ApiError;
use crate::ping_ingest::load;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::Json;
use playhead_model::ads::{Asset, Channel};
use playhead_model::Millis;
use playhead_protocols::ping::{decode_live_breaks, decode_schedule, vmap};
use playhead_protocols::ProtocolError;
use playhead_store::AdStore;
use serde::Deserialize;
use serde_json::{json, Value};

/// Proof that the request carried the admin key.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(admin_key) = &state.config.admin_key else {
            return Err(ApiError::unauthorized(
                "the admin API is disabled: no admin key is configured",
            ));
        };
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing admin key: send `Authorization: Bearer <admin key>`",
                )
            })?;
        if !crate::config::secrets_equal(key, admin_key) {
            return Err(ApiError::unauthorized("unknown admin key"));
        }
        Ok(AdminAuth)
    }
}

/// Store `value` as JSON through `write` (off the async runtime).
async fn save<T: serde::Serialize>(
    state: &AppState,
    value: &T,
    write: impl FnOnce(&dyn AdStore, &str, Millis) -> playhead_store::Result<()> + Send + 'static,
) -> Result<(), ApiError> {
    let text = serde_json::to_string(value).map_err(ApiError::internal)?;
    let ads = state.store.ads();
    let now = state.clock.now_ms();
    blocking(move || write(&*ads, &text, now)).await
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ProtocolError::invalid(field, reason).into()
}

/// The property a new asset or channel belongs to.
fn property(state: &AppState, body: &Value) -> Result<String, ApiError> {
    match body.get("property") {
        Some(Value::String(name)) => state
            .config
            .property_by_name(name)
            .map(|p| p.name.clone())
            .ok_or_else(|| invalid("property", format!("`{name}` is not a configured property"))),
        Some(_) => Err(invalid("property", "must be a string")),
        None => {
            let props = &state.config.properties;
            props
                .iter()
                .find(|p| p.catch_all)
                .or(if props.len() == 1 {
                    props.first()
                } else {
                    None
                })
                .map(|p| p.name.clone())
                .ok_or_else(|| invalid("property", "required: several properties are configured"))
        }
    }
}

fn check_keys(body: &Value, allowed: &[&str]) -> Result<(), ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| invalid("body", "must be a JSON object"))?;
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(invalid(
                k,
                format!("unknown field; allowed: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn play_url(body: &Value) -> Result<String, ApiError> {
    match body.get("play_url") {
        Some(Value::String(u)) if !u.is_empty() => Ok(u.clone()),
        Some(_) => Err(invalid("play_url", "must be a non-empty string")),
        None => Err(invalid("play_url", "missing")),
    }
}

fn parse_body(body: &axum::body::Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| invalid("body", format!("not JSON: {e}")))
}

#[utoipa::path(put, path = "/admin/v1/assets/{asset}", tag = "admin",
    params(("asset" = String, Path)),
    request_body(content = String, description = "{\"duration_s\", \"play_url\", \"ad_schedule\": [breaks] | \"vmap\": \"<xml>\", \"property\"}"),
    responses((status = 200, description = "the asset as stored"), (status = 400), (status = 401)))]
pub async fn put_asset(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Asset>, ApiError> {
    let body = parse_body(&body)?;
    check_keys(
        &body,
        &["duration_s", "play_url", "ad_schedule", "vmap", "property"],
    )?;
    let duration_s = body
        .get("duration_s")
        .and_then(Value::as_f64)
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| {
            invalid(
                "duration_s",
                "required: the content's length in seconds, > 0",
            )
        })?;
    let breaks = match (body.get("ad_schedule"), body.get("vmap")) {
        (Some(_), Some(_)) => {
            return Err(invalid("vmap", "give `ad_schedule` or `vmap`, not both"))
        }
        (Some(schedule), None) => decode_schedule(schedule, duration_s)?,
        (None, Some(Value::String(xml))) => vmap::parse(xml, duration_s)?,
        (None, Some(_)) => return Err(invalid("vmap", "must be the VMAP document as a string")),
        (None, None) => Vec::new(),
    };
    let asset = Asset {
        id: id.clone(),
        property: property(&state, &body)?,
        duration_s,
        play_url: play_url(&body)?,
        breaks,
    };
    save(&state, &asset, move |ads, text, now| {
        ads.put_asset(&id, text, now)
    })
    .await?;
    Ok(Json(asset))
}

#[utoipa::path(get, path = "/admin/v1/assets/{asset}", tag = "admin",
    params(("asset" = String, Path)), responses((status = 200), (status = 401), (status = 404)))]
pub async fn get_asset(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = id.clone();
    load(&state, move |ads| ads.asset(&key))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown asset `{id}`")))
}

#[utoipa::path(put, path = "/admin/v1/channels/{channel}", tag = "admin",
    params(("channel" = String, Path)),
    request_body(content = String, description = "{\"play_url\", \"breaks\": [{\"id\", \"start_ms\", \"duration\", \"events\", \"ads\"}], \"property\"}"),
    responses((status = 200, description = "the channel as stored"), (status = 400), (status = 401)))]
pub async fn put_channel(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Channel>, ApiError> {
    let body = parse_body(&body)?;
    check_keys(&body, &["play_url", "breaks", "property"])?;
    let breaks = match body.get("breaks") {
        Some(b) => decode_live_breaks(b)?,
        None => Vec::new(),
    };
    let channel = Channel {
        id: id.clone(),
        property: property(&state, &body)?,
        play_url: play_url(&body)?,
        breaks,
    };
    save(&state, &channel, move |ads, text, now| {
        ads.put_channel(&id, text, now)
    })
    .await?;
    Ok(Json(channel))
}

#[utoipa::path(get, path = "/admin/v1/channels/{channel}", tag = "admin",
    params(("channel" = String, Path)), responses((status = 200), (status = 401), (status = 404)))]
pub async fn get_channel(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = id.clone();
    load(&state, move |ads| ads.channel(&key))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown channel `{id}`")))
}

#[derive(Debug, Deserialize)]
pub struct BeaconQuery {
    session: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/admin/v1/beacons", tag = "admin",
    params(("session" = Option<String>, Query, description = "a ping sid"),
        ("limit" = Option<usize>, Query, description = "≤ 1000, default 100")),
    responses((status = 200, description = "{\"counts\", \"beacons\": [..with attempts..]}"), (status = 401)))]
pub async fn beacons(
    _: AdminAuth,
    State(state): State<AppState>,
    Query(q): Query<BeaconQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit", "must be within 1..1000"));
    }
    let ads = state.store.ads();
    let (list, counts) = blocking(move || {
        Ok((
            ads.beacons(q.session.as_deref(), limit)?,
            ads.beacon_counts()?,
        ))
    })
    .await?;
    let beacons: Vec<Value> = list
        .into_iter()
        .map(|(b, attempts)| {
            json!({
                "id": b.id,
                "session": b.sid,
                "key": b.owed.key,
                "event": b.owed.event,
                "url": b.owed.url,
                "user_agent": b.owed.user_agent,
                "forwarded_for": b.owed.forwarded_for,
                "state": b.state,
                "attempts": b.attempts,
                "owed_at": iso(b.owed_at),
                "next_attempt_at": (b.state == "pending").then(|| iso(b.next_attempt_at)),
                "delivered_at": b.delivered_at.map(iso),
                "log": attempts.iter().map(|a| json!({
                    "at": iso(a.at),
                    "url": a.url,
                    "status": a.status,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "counts": {"pending": counts.0, "delivered": counts.1, "failed": counts.2},
        "beacons": beacons,
    })))
}
