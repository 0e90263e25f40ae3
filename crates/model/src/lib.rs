//! Playhead's canonical model: what every protocol decodes into and what every
//! store and API speaks. No IO, no clock.
//!
//! - [`event`]: canonical playback events (`Event`, `EventKind`) and a decoded
//!   request (`Batch`).
//! - [`session`]: session identity and metadata (`SessionKey`, `SessionMeta`),
//!   and the per-session summary (`SessionMetrics`) with the field names of
//!   `spec/metrics.md`.
//! - [`names`]: protocol names and dimension names used in filters and breakdowns.
//! - [`hash`]: the stable hash used for dedup keys and distinct-viewer sketches.

pub mod ads;
pub mod event;
pub mod hash;
pub mod names;
pub mod session;

pub use event::{Batch, ErrorSeverity, Event, EventKind, Qoe};
pub use names::{Dimension, Protocol};
pub use session::{
    AdQuartiles, ErrorRecord, PlayerState, SessionKey, SessionKind, SessionMap, SessionMeta,
    SessionMetrics, SessionSummary,
};

/// Milliseconds since the Unix epoch, UTC. Every time in the model is one.
pub type Millis = i64;
