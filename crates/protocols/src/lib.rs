//! Wire protocols: one module per protocol, each a pure `decode` from a raw
//! request to canonical events (`spec/protocols.md`). No IO, no clock: the
//! receive time comes in with the request.
//!
//! - [`media_collection`]: Adobe Media Analytics' Media Collection API
//!   (`/api/v1/sessions`, `/api/v1/downloaded`, `/api/v1/schemas`, §2).
//! - [`native`]: Playhead's own SDK protocol (`POST /v1/events`, §6).
//! - [`ping`]: Uplynk's Preplay + Ping query strings and ad schedules
//!   (JSON, or VMAP 1.0 with inline VAST) (§3).
//! - [`pixel`]: Panda Video's pixel beacon (`/icon.gif`, `/realtime/icon.gif`, §1).
//! - [`player_messages`]: embedded-player (BlendVision iframe) messages
//!   forwarded by the SDK's bridge (`POST /v1/player-messages`, §5).
//! - [`raw`]: the raw request every decoder reads, and `ProtocolError`.
//! - [`user_activity`]: NAGRA OpenTV's User Activity Vault
//!   (`/useractivityvault/v1/useractivity/{activityName}`, §4).

pub mod media_collection;
pub mod native;
pub mod ping;
pub mod pixel;
pub mod player_messages;
pub mod raw;
pub mod user_activity;

pub use raw::{ProtocolError, RawRequest};
