//! Playhead's HTTP server (axum): thin handlers from a route to a decoder, the
//! ingest pipeline or the store, and back.
//!
//! - [`app`]: `AppState` and `app(state) -> Router` (every route and layer).
//! - [`ingest`]: the bounded queue and the writer thread (group commit, tracker).
//! - [`native_ingest`]: `POST /v1/events`.
//! - [`media_collection_ingest`]: `/api/v1/...` (Adobe Media Collection API).
//! - [`pixel_ingest`]: `/icon.gif` and `/realtime/icon.gif` (pixel beacons).
//! - [`ping_ingest`]: Uplynk-compatible preplay and ping; [`beacons`]: the
//!   server-side ad-beacon sender; [`admin`]: `/admin/v1` (assets, channels,
//!   beacon log).
//! - [`api`]: the read API under `/data/v1`.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
//! - [`assets`]: the dashboard (`web/`), embedded at build time and served at `/`.
//! - [`config`], [`clock`], [`error`], [`telemetry`], [`user_agent`].

pub mod admin;
pub mod api;
pub mod app;
pub mod assets;
pub mod beacons;
pub mod clock;
pub mod config;
pub mod error;
pub mod ingest;
pub mod media_collection_ingest;
pub mod native_ingest;
pub mod ops;
pub mod ping_ingest;
pub mod pixel_ingest;
pub mod player_messages_ingest;
pub mod telemetry;
pub mod user_activity_ingest;
pub mod user_agent;

pub use app::{app, App, AppState};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Property, ServerConfig};
