//! The `playhead` binary's library half: what the CLI runs besides the server.
//!
//! - `load`: the load generator (`playhead load`).
//! - `viewer`: simulated viewers speaking the ingest protocols (used by `load` and `demo`).

pub mod load;
pub mod viewer;
