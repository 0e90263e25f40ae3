//! The `playhead` binary's library half: what the CLI runs besides the server.
//!
//! - `config`: configuration file, environment and flags.
//! - `load`: the load generator (`playhead load`).
//! - `ping_viewer`: simulated ping-protocol players (interactive: the
//!   server says when to ping).
//! - `player_messages_viewer`: simulated iframe players behind the SDK's
//!   bridge (`POST /v1/player-messages`).
//! - `viewer`: simulated viewers speaking the ingest protocols (used by `load` and `demo`).
//! - `user_activity_viewer`: simulated NAGRA OpenTV apps speaking the User Activity Vault.

pub mod config;
pub mod load;
pub mod ping_viewer;
pub mod player_messages_viewer;
#[cfg(test)]
mod real_server;
pub mod user_activity_viewer;
pub mod viewer;
