//! The `playhead` binary's library half: what the CLI runs besides the server.
//!
//! - `config`: configuration file, environment and flags.
//! - `load`: the load generator (`playhead load`).
//! - `viewer`: simulated viewers speaking the ingest protocols (used by `load` and `demo`).

pub mod config;
pub mod load;
pub mod viewer;
