//! For tests: the real server (`playhead_server::app` on a SQLite store in
//! a temporary directory, fsync off) on a loopback port, and reads of its
//! query API with the property's read key.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use playhead_server::{app, AppState, ServerConfig, SystemClock};
use playhead_store::{FsyncPolicy, SqliteStore};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

/// A running server; stopped when dropped.
pub struct RealServer {
    pub addr: SocketAddr,
    read_key: String,
    client: Client<HttpConnector, Full<Bytes>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl RealServer {
    /// Start the server with `config`; `read_key` is the read key of the
    /// property the tests query.
    pub async fn start(config: ServerConfig, read_key: &str) -> RealServer {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), FsyncPolicy::Off).unwrap();
        let state = AppState::start(config, Arc::new(store), Arc::new(SystemClock)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server =
            tokio::spawn(
                async move { axum::serve(listener, app(state).into_make_service()).await },
            );
        RealServer {
            addr,
            read_key: read_key.to_owned(),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            server,
            _dir: dir,
        }
    }

    /// `GET` a query API path (with its query string) with the read key;
    /// it must answer `200` with JSON.
    pub async fn get_json(&self, path_and_query: &str) -> Value {
        let request = hyper::Request::get(format!("http://{}{path_and_query}", self.addr))
            .header("Authorization", format!("Bearer {}", self.read_key))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        assert_eq!(response.status(), 200, "GET {path_and_query}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
