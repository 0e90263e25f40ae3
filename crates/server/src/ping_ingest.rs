//! Uplynk-compatible Preplay + Ping (`spec/protocols.md` §3).
//!
//! - Preplay (`/preplay/{asset}.json`, `/preplay/channel/{channel}.json` and
//!   the `/api/v3/preplay/...` forms) creates a session: its state (a
//!   snapshot of the asset's schedule, features, the viewer's User-Agent and
//!   address, the timeline cursor) goes to the ad store, and a `viewinit`
//!   opens the analytics session (protocol `ping`, video = asset or channel).
//! - Ping (`/session/ping/{sid}.json`, `/api/v3/ping/ad/{sid}.json`) moves
//!   the cursor ([`playhead_engine::ad_timeline`]): the analytics events go
//!   through the ingest pipeline (committed), then the new cursor and the
//!   beacons owed are committed together in the ad store, then the sender is
//!   woken and `next_time` answered. Pings of one session are serialized.
//!   A ping retried after a crash at any point owes nothing twice (beacons are
//!   unique by key) and counts nothing twice (events are deduplicated).
//! - Errors: `{"error", "next_time": -1.0}` with `400` (bad query), `404`
//!   (unknown session, asset or channel), or `200` when ping was not
//!   enabled at preplay.

use crate::app::AppState;
use crate::error::{respond, ApiError};
use crate::ingest::Requirement;
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use playhead_engine::ad_timeline::{
    self, AdInfo, Cursor, Mark, Ping, PingEvent, PlacedBreak, Timeline,
};
use playhead_model::ads::{Ad, Asset, BreakEvents, Channel};
use playhead_model::hash::stable_hash;
use playhead_model::{Batch, Event, EventKind, Millis, Protocol, SessionKey, SessionMeta};
use playhead_protocols::ping::{
    self as wire, PingEv, PreplayQuery, FEATURE_AD_IMPRESSIONS, FEATURE_LINEAR_AD_DATA,
};
use playhead_store::ads::OwedBeacon;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

/// Pings of one session are serialized by one of these locks (by sid hash).
pub const PING_LOCK_SHARDS: usize = 64;

/// The locks pings take, one shard per sid hash.
pub struct PingLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for PingLocks {
    fn default() -> Self {
        PingLocks(
            (0..PING_LOCK_SHARDS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        )
    }
}

impl PingLocks {
    fn for_sid(&self, sid: &str) -> &tokio::sync::Mutex<()> {
        &self.0[(stable_hash(sid.as_bytes()) % PING_LOCK_SHARDS as u64) as usize]
    }
}

/// The peer's address, when the server was started with connect info.
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// A ping session's state, kept in the ad store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingSession {
    pub sid: String,
    pub property: String,
    /// The asset (VOD) as it was at preplay: later admin changes do not
    /// move a session's ads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<Asset>,
    /// The live channel (its break plan is read at each ping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `ad.cping`.
    pub ping: bool,
    /// `ad.pingf` (or its default).
    pub features: u8,
    /// Not `ad.sssb`: Playhead fires the beacons.
    pub server_beacons: bool,
    pub user_agent: Option<String>,
    pub forwarded_for: Option<String>,
    pub created_at: Millis,
    pub cursor: Cursor,
}

/// A ping-protocol error: `{"error", "next_time": -1.0}`.
pub struct PingError(ApiError);

impl IntoResponse for PingError {
    fn into_response(self) -> Response {
        respond(
            self.0.code,
            Json(json!({ "error": self.0.message, "next_time": -1.0 })),
        )
    }
}

impl<E: Into<ApiError>> From<E> for PingError {
    fn from(e: E) -> Self {
        PingError(e.into())
    }
}

fn strip_json<'a>(file: &'a str, what: &str) -> Result<&'a str, PingError> {
    file.strip_suffix(".json")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            PingError(ApiError::not_found(format!(
                "no such {what}: the path must end in `.json`"
            )))
        })
}

/// The viewer's address for `X-Forwarded-For`: the chain this request
/// brought (behind a proxy), else the peer.
fn forwarded_for(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<String> {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| peer.map(|p| p.ip().to_string()))
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `prefix`: this server's base URL, as the player reached it.
fn prefix(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|s| *s == "https" || *s == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// Read one JSON record of the ad store (off the async runtime) and decode it.
pub(crate) async fn load<T: serde::de::DeserializeOwned + Send + 'static>(
    state: &AppState,
    read: impl FnOnce(&dyn playhead_store::AdStore) -> playhead_store::Result<Option<String>>
        + Send
        + 'static,
) -> Result<Option<T>, ApiError> {
    let ads = state.store.ads();
    let body = crate::api::blocking(move || read(&*ads)).await?;
    match body {
        Some(b) => Ok(Some(serde_json::from_str(&b).map_err(ApiError::internal)?)),
        None => Ok(None),
    }
}

#[utoipa::path(get, path = "/preplay/{asset}.json", tag = "ingest",
    params(("asset" = String, Path, description = "asset id, with `.json`"),
        ("ad.cping" = Option<String>, Query, description = "1 enables ping (also `ad.pingc`)"),
        ("ad.pingf" = Option<u8>, Query, description = "features: 1 ad impressions, 2 video views, 4 linear ad data"),
        ("ad.sssb" = Option<String>, Query, description = "1: the client fires beacons")),
    responses((status = 200, description = "sid, prefix, playURL, drm, interstitialURL, ads"),
        (status = 400), (status = 404)))]
pub async fn preplay_vod(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, PingError> {
    let (id, q, asset): (_, _, Asset) =
        resolve(&state, &file, "asset", query, |ads, id| ads.asset(id)).await?;
    let mut session = new_session(&state, &q, &headers, peer, asset.property.clone(), false);
    session.asset = Some(asset.clone());
    start_session(&state, &session, &id, Some(asset.duration_s), &headers).await?;
    let sid = session.sid;
    let tl = Timeline::vod(&asset);
    let breaks: Vec<Value> = tl
        .breaks
        .iter()
        .map(|placed| {
            let b = &asset.breaks[placed.source];
            json!({
                "type": "linear",
                "position": b.position.as_str(),
                "timeOffset": placed.start,
                "duration": b.duration(),
                "events": {"impressions": b.events.impressions, "completes": b.events.completes},
                "ads": b.ads.iter().map(ad_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let offsets: Vec<Value> = tl
        .breaks
        .iter()
        .enumerate()
        .map(|(i, b)| json!({"index": i, "timeOffset": b.start}))
        .collect();
    Ok(Json(json!({
        "sid": sid,
        "prefix": prefix(&headers),
        "playURL": asset.play_url,
        "drm": null,
        "interstitialURL": null,
        "ads": {"breaks": breaks, "breakOffsets": offsets, "placeholderOffsets": []},
    }))
    .into_response())
}

fn ad_json(ad: &playhead_model::ads::Ad) -> Value {
    let mut v = json!({
        "creative": ad.creative,
        "mimeType": "uplynk/m3u8",
        "apiFramework": null,
        "duration": ad.duration,
        "width": ad.width,
        "height": ad.height,
        "companions": [],
        "events": ad.events,
    });
    if let Some(fw) = &ad.fw_parameters {
        v["fw_parameters"] = json!(fw);
    }
    v
}

#[utoipa::path(get, path = "/preplay/channel/{channel}.json", tag = "ingest",
    params(("channel" = String, Path, description = "channel id, with `.json`"),
        ("ts" = Option<f64>, Query, description = "Unix s: report breaks from here"),
        ("endts" = Option<f64>, Query, description = "Unix s: report breaks until here (default now)")),
    responses((status = 200), (status = 400), (status = 404)))]
pub async fn preplay_live(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, PingError> {
    let (id, q, channel): (_, _, Channel) =
        resolve(&state, &file, "channel", query, |ads, id| ads.channel(id)).await?;
    let mut session = new_session(&state, &q, &headers, peer, channel.property.clone(), true);
    session.channel = Some(id.clone());
    start_session(&state, &session, &id, None, &headers).await?;
    let sid = session.sid;
    // Past breaks between `ts` and `endts` (default: now), when asked.
    let now_s = state.clock.now_ms() as f64 / 1000.0;
    let breaks: Vec<Value> = match q.ts {
        Some(ts) => channel
            .breaks
            .iter()
            .filter(|b| {
                let start = b.start_ms as f64 / 1000.0;
                start >= ts && start <= q.endts.unwrap_or(now_s)
            })
            .map(|b| {
                let mut v = json!({
                    "type": "linear",
                    "position": "midroll",
                    "timeOffset": b.start_ms as f64 / 1000.0,
                    "events": {"impressions": b.events.impressions, "completes": b.events.completes},
                    "ads": b.ads.iter().map(ad_json).collect::<Vec<_>>(),
                });
                if let Some(d) = b.duration {
                    v["duration"] = json!(d);
                }
                v
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Json(json!({
        "sid": sid,
        "prefix": prefix(&headers),
        "playURL": channel.play_url,
        "drm": null,
        "interstitialURL": null,
        "ads": {"breaks": breaks, "breakOffsets": [], "placeholderOffsets": []},
    }))
    .into_response())
}

fn new_session(
    state: &AppState,
    q: &PreplayQuery,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    property: String,
    live: bool,
) -> PingSession {
    PingSession {
        sid: uuid::Uuid::new_v4().simple().to_string(),
        property,
        asset: None,
        channel: None,
        ping: q.ping,
        features: q.features_for(live),
        server_beacons: !q.suppress_server_beacons,
        user_agent: user_agent(headers),
        forwarded_for: forwarded_for(headers, peer),
        created_at: state.clock.now_ms(),
        cursor: Cursor::default(),
    }
}

/// Preplay's common start: the id from `{id}.json`, the query, and the
/// configured asset or channel (`404` when unknown).
async fn resolve<T: serde::de::DeserializeOwned + Send + 'static>(
    state: &AppState,
    file: &str,
    what: &'static str,
    query: Option<String>,
    read: fn(&dyn playhead_store::AdStore, &str) -> playhead_store::Result<Option<String>>,
) -> Result<(String, PreplayQuery, T), PingError> {
    let id = strip_json(file, what)?.to_owned();
    let q = wire::decode_preplay(query.as_deref().unwrap_or(""))?;
    let key = id.clone();
    let found = load(state, move |ads| read(ads, &key))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("unknown {what} `{id}`")))?;
    Ok((id, q, found))
}

/// Store the session, then open its analytics session with a `viewinit`.
async fn start_session(
    state: &AppState,
    session: &PingSession,
    video_id: &str,
    duration_s: Option<f64>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let live = session.channel.is_some();
    let body = serde_json::to_string(session).map_err(ApiError::internal)?;
    let ads = state.store.ads();
    let (sid, now) = (session.sid.clone(), session.created_at);
    crate::api::blocking(move || ads.put_ping_session(&sid, &body, now)).await?;
    let mut meta = SessionMeta {
        video_id: Some(video_id.to_owned()),
        duration_s,
        content_type: Some(if live { "live" } else { "vod" }.to_owned()),
        ..SessionMeta::default()
    };
    crate::user_agent::add_dimensions(headers, &mut meta.dimensions);
    let mut ev = Event::new(now, now, EventKind::Viewinit);
    ev.dedup_key = stable_hash(format!("{}|preplay", session.sid).as_bytes());
    let batch = Batch {
        key: SessionKey::new(session.property.clone(), session.sid.clone()),
        protocol: Protocol::Ping,
        meta,
        events: vec![ev],
    };
    state
        .pipeline
        .submit(batch, Requirement::OpenOrCreate)
        .await
        .map_err(crate::native_ingest::ingest_error)?;
    Ok(())
}

#[utoipa::path(get, path = "/session/ping/{sid}.json", tag = "ingest",
    params(("sid" = String, Path, description = "the preplay sid, with `.json`"),
        ("v" = u8, Query, description = "2 or 3"), ("pt" = f64, Query, description = "player time, s"),
        ("ev" = Option<String>, Query, description = "start | seek"),
        ("ft" = Option<f64>, Query, description = "position before a seek, s")),
    responses((status = 200, description = "{\"next_time\"} (v=3 live: `ads`, `currentBreakEnd`)"),
        (status = 400, description = "{\"error\", \"next_time\": -1.0}"), (status = 404)))]
pub async fn ping(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, PingError> {
    let sid = strip_json(&file, "session")?.to_owned();
    let q = wire::decode_ping(query.as_deref().unwrap_or(""))?;
    let locks = state.ping_locks.clone();
    let _guard = locks.for_sid(&sid).lock().await;
    let key = sid.clone();
    let mut session: PingSession = load(&state, move |ads| ads.ping_session(&key))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("unknown session `{sid}`")))?;
    if !session.ping {
        return Ok(Json(json!({
            "error": "ping is not enabled for this session: request preplay with ad.cping=1",
            "next_time": -1.0,
        }))
        .into_response());
    }
    let now = state.clock.now_ms();
    let live_channel = match &session.channel {
        Some(id) => {
            let key = id.clone();
            let channel: Channel = load(&state, move |ads| ads.channel(&key))
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("channel `{id}` is no longer configured"))
                })?;
            Some(channel)
        }
        None => None,
    };
    let ev = q.ev.map(|e| match e {
        PingEv::Start => PingEvent::Start,
        PingEv::Seek => PingEvent::Seek,
    });
    // Live: player time 0 is when the player started (`ev=start`).
    if live_channel.is_some()
        && (session.cursor.origin_ms.is_none() || ev == Some(PingEvent::Start))
    {
        session.cursor.origin_ms = Some(now - (q.pt * 1000.0).round() as Millis);
    }
    let tl = match (&session.asset, &live_channel) {
        (Some(asset), _) => Timeline::vod(asset),
        (None, Some(channel)) => Timeline::live(channel, session.cursor.origin_ms.unwrap_or(now)),
        (None, None) => {
            return Err(ApiError::internal("ping session without asset or channel").into())
        }
    };
    // What analytics keep of each placed break's ads, in timeline order.
    let infos: Vec<Vec<AdInfo>> = tl
        .breaks
        .iter()
        .map(|p| {
            configured(&session, live_channel.as_ref(), p)
                .map(|(_, ads)| ads.iter().map(info).collect())
                .unwrap_or_default()
        })
        .collect();
    let before = session.cursor.clone();
    let adv = ad_timeline::advance(
        &tl,
        &mut session.cursor,
        Ping {
            pt: q.pt,
            ev,
            ft: q.ft,
        },
    );
    let events = ad_timeline::ping_events(&tl, &before, &adv, now, &infos);
    session.cursor.last_ms = Some(now);
    // Analytics first: a crash after this owes the beacons on the retry.
    let mut events = events;
    let stamp = format!(
        "{}|{:?}|{}|{:?}|{:?}|{:?}",
        sid, adv.from, adv.played_to, adv.jump_to, q.ev, q.ft
    );
    for (i, e) in events.iter_mut().enumerate() {
        e.order = i as u64;
        e.dedup_key = stable_hash(format!("{stamp}|{i}").as_bytes());
    }
    if !events.is_empty() {
        let batch = Batch {
            key: SessionKey::new(session.property.clone(), sid.clone()),
            protocol: Protocol::Ping,
            meta: SessionMeta::default(),
            events,
        };
        state
            .pipeline
            .submit(batch, Requirement::OpenOrCreate)
            .await
            .map_err(crate::native_ingest::ingest_error)?;
    }
    let fires_beacons = session.server_beacons
        && (live_channel.is_some() || session.features & FEATURE_AD_IMPRESSIONS != 0);
    let owed = if fires_beacons {
        owed_beacons(
            &tl,
            &adv,
            &session,
            live_channel.as_ref(),
            user_agent(&headers).or_else(|| session.user_agent.clone()),
            forwarded_for(&headers, peer).or_else(|| session.forwarded_for.clone()),
        )
    } else {
        Vec::new()
    };
    let body = serde_json::to_string(&session).map_err(ApiError::internal)?;
    let ads = state.store.ads();
    let sid_for_store = sid.clone();
    let new_ids =
        crate::api::blocking(move || ads.advance_ping_session(&sid_for_store, &body, &owed, now))
            .await?;
    if !new_ids.is_empty() {
        state.beacons.wake();
    }
    let mut answer = json!({ "next_time": tl.next_time(q.pt) });
    let live_data = q.version == 3 && session.features & FEATURE_LINEAR_AD_DATA != 0;
    if live_channel.is_some() && live_data {
        let upcoming = tl.breaks.iter().find(|b| b.start > q.pt);
        let breaks: Vec<Value> = upcoming
            .map(|b| {
                let mut v = json!({"timeOffset": b.start, "ads": b.ads.iter().map(|(s, e)| json!({"timeOffset": s, "duration": e - s})).collect::<Vec<_>>()});
                if let Some(end) = b.end {
                    v["duration"] = json!(end - b.start);
                    v["breakEnd"] = json!(end);
                }
                v
            })
            .into_iter()
            .collect();
        answer["ads"] = json!({ "breaks": breaks });
        if let Some(k) = tl.break_at(q.pt) {
            if let Some(end) = tl.breaks[k].end {
                answer["currentBreakEnd"] = json!(end);
            }
        }
    }
    Ok((StatusCode::OK, Json(answer)).into_response())
}

fn info(ad: &playhead_model::ads::Ad) -> AdInfo {
    AdInfo {
        creative: ad.creative.clone(),
        duration: ad.duration,
    }
}

/// The configured break (its tracking events and ads) behind a placed one.
fn configured<'a>(
    session: &'a PingSession,
    channel: Option<&'a Channel>,
    placed: &PlacedBreak,
) -> Option<(&'a BreakEvents, &'a [Ad])> {
    match (&session.asset, channel) {
        (Some(asset), _) => asset
            .breaks
            .get(placed.source)
            .map(|b| (&b.events, &b.ads[..])),
        (None, Some(ch)) => ch
            .breaks
            .get(placed.source)
            .map(|b| (&b.events, &b.ads[..])),
        (None, None) => None,
    }
}

/// The tracking URLs the boundaries that fire owe, in firing order.
fn owed_beacons(
    tl: &Timeline,
    adv: &ad_timeline::Advance,
    session: &PingSession,
    channel: Option<&Channel>,
    user_agent: Option<String>,
    forwarded_for: Option<String>,
) -> Vec<OwedBeacon> {
    let mut out = Vec::new();
    for c in adv.crossings.iter().filter(|c| c.fires) {
        let b = &tl.boundaries[c.boundary];
        let Some((break_events, ads)) = configured(session, channel, &tl.breaks[b.brk]) else {
            continue;
        };
        let (event, urls, ad_playhead) = match b.mark {
            Mark::BreakStart => ("breakStart", &break_events.impressions[..], None),
            Mark::BreakEnd => ("breakEnd", &break_events.completes[..], None),
            Mark::AdStart(n) => ("impression", ads[n].events.at(0), Some(0.0)),
            Mark::Quartile(n, q) => (
                ["", "firstQuartile", "midpoint", "thirdQuartile"][q as usize],
                ads[n].events.at(q),
                Some(ads[n].duration * f64::from(q) / 4.0),
            ),
            Mark::AdEnd(n) => ("complete", ads[n].events.at(4), Some(ads[n].duration)),
        };
        for (i, url) in urls.iter().enumerate() {
            out.push(OwedBeacon {
                key: format!("{}#{i}", b.id),
                event: event.to_owned(),
                url: url.clone(),
                user_agent: user_agent.clone(),
                forwarded_for: forwarded_for.clone(),
                content_playhead: Some(tl.content_position(b.pt)),
                ad_playhead,
            });
        }
    }
    out
}

/// What `AppState` holds for pings.
pub fn locks() -> Arc<PingLocks> {
    Arc::new(PingLocks::default())
}
