//! Helpers shared by the tests that run the real `playhead` binary.

#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Event times start now: the server replaces client times more than 24 h
/// from its clock (clock-skew rule), which would hide real timings.
pub fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64
    })
}

/// The admin key every test server runs with (`/admin/v1`).
pub const ADMIN_KEY: &str = "e2e-admin-key";

/// The server process; killed when dropped, so a failing test leaves no orphan.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `playhead serve` on a free port with the given zero-config keys;
/// returns the process and its base URL once it prints `listening on`.
pub fn start(data_dir: &Path, ingest_key: &str, read_key: &str) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_playhead"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("PLAYHEAD_INGEST_KEY", ingest_key)
        .env("PLAYHEAD_READ_KEY", read_key)
        .env("PLAYHEAD_ADMIN_KEY", ADMIN_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start playhead");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("playhead exited before listening")
            .expect("read stdout");
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, url)
}
