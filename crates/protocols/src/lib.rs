//! Wire protocols: one module per protocol, each a pure `decode` from a raw
//! request to canonical events (`spec/protocols.md`). No IO, no clock: the
//! receive time comes in with the request.
//!
//! - [`media_collection`]: Adobe Media Analytics' Media Collection API
//!   (`/api/v1/sessions`, `/api/v1/downloaded`, `/api/v1/schemas`, §2).
//! - [`native`]: Playhead's own SDK protocol (`POST /v1/events`, §6).
//! - [`pixel`]: Panda Video's pixel beacon (`/icon.gif`, `/realtime/icon.gif`, §1).
//! - [`raw`]: the raw request every decoder reads, and `ProtocolError`.

pub mod media_collection;
pub mod native;
pub mod pixel;
pub mod raw;

pub use raw::{ProtocolError, RawRequest};
