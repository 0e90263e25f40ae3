//! The dashboard (`web/`): its built files are embedded in the binary by
//! `build.rs` and served at `/`.
//!
//! - `/assets/<name>-<hash>.<ext>`: Vite's content-hashed files, cached for a year.
//! - the pages of the single-page app (`/`, `/quality`, `/sessions/<id>`…,
//!   [`PAGES`]) answer `index.html`, never cached, so a new binary shows at
//!   once and any page's URL can be shared or reloaded.
//! - anything else keeps the JSON `404` of the API: API paths (`/data/`,
//!   `/admin/`, `/api/`, `/v1/`, the ingest and operations routes) never
//!   reach the dashboard, and neither does a stray path like `/nope`.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/dashboard_files.rs"));
}

/// First path segments of the dashboard's pages: the routes of
/// `web/src/main.ts` (keep the two lists together).
pub const PAGES: [&str; 9] = [
    "",
    "index.html",
    "login",
    "quality",
    "errors",
    "ads",
    "realtime",
    "videos",
    "sessions",
];

/// Paths that belong to the API and the ingest protocols, never to the dashboard.
const API_PREFIXES: [&str; 10] = [
    "/data/",
    "/admin/",
    "/api/",
    "/v1/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/icon.gif",
    "/realtime/icon.gif",
];

/// The page's only sources are its own files; what the API returns is data.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// The embedded file at `name` (a path under `web/dist`, no leading `/`).
pub fn file(name: &str) -> Option<&'static [u8]> {
    embedded::FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Whether `path` belongs to the API rather than to the dashboard.
pub fn is_api_path(path: &str) -> bool {
    API_PREFIXES
        .iter()
        .any(|p| path.starts_with(p) || Some(path) == p.strip_suffix('/'))
}

/// The dashboard's answer to a request no route took, or `None` when it is
/// not the dashboard's (another method, an API path, a missing hashed file,
/// a path that is no page).
pub fn page(method: &Method, path: &str) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if is_api_path(path) {
        return None;
    }
    let name = path.trim_start_matches('/');
    if let Some(bytes) = file(name).filter(|_| name != "index.html") {
        let cache = if name.starts_with("assets/") {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        return Some(respond(bytes, content_type(name), cache));
    }
    let first = name.split('/').next().unwrap_or_default();
    if !PAGES.contains(&first) {
        return None;
    }
    let index = file("index.html")?;
    let mut resp = respond(index, "text/html; charset=utf-8", NO_CACHE);
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    Some(resp)
}

fn respond(bytes: &'static [u8], content_type: &'static str, cache: &'static str) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The content type of a built file, by extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_not_the_dashboards() {
        for p in [
            "/data/v1/nope",
            "/data",
            "/admin/v1/x",
            "/api/v1/sessions/x/y",
            "/v1/nope",
            "/metrics",
            "/metrics/x",
            "/healthz",
            "/realtime/icon.gif",
        ] {
            assert!(is_api_path(p), "{p}");
            assert!(page(&Method::GET, p).is_none(), "{p}");
        }
        for p in ["/", "/realtime", "/sessions/a.b", "/videos/x", "/login"] {
            assert!(!is_api_path(p), "{p}");
            assert!(page(&Method::GET, p).is_some(), "{p}");
        }
        for p in ["/nope", "/favicon.ico", "/assets/none.js", "/sessionsx"] {
            assert!(page(&Method::GET, p).is_none(), "{p}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type("assets/index-1.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/index-1.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }

    #[test]
    fn only_get_and_head_reach_the_dashboard() {
        assert!(page(&Method::POST, "/").is_none());
        assert!(page(&Method::DELETE, "/sessions").is_none());
        assert!(page(&Method::HEAD, "/sessions").is_some());
    }
}
