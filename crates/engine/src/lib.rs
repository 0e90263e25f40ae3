//! Playhead's session engine: every metric rule of `spec/metrics.md`, as pure
//! code. Time comes in as data; nothing here reads a clock or does IO.
//!
//! - [`rules`]: per-protocol accounting mode and close rules.
//! - [`playback`]: the fold of one session's events into its metrics.
//! - [`tracker`]: the open sessions, ordering and dedup-safe replay, close rules.
//! - [`rollup`]: mergeable aggregates over sessions (sketches for percentiles
//!   and distinct viewers) and the aggregate metrics computed from them.

pub mod ad_timeline;
pub mod playback;
pub mod rollup;
pub mod rules;
pub mod tracker;

pub use playback::Playback;
pub use rollup::{Aggregate, AggregateMetrics, Parts};
pub use rules::{Accounting, Rules};
pub use tracker::{CloseReason, Tracker};
