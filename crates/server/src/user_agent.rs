//! `browser`, `os` and `device_type` dimensions from a User-Agent, with
//! woothee (the parser Vector's `parse_user_agent` uses in fast mode).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Distinct User-Agents remembered; the cache starts over when full. An
/// audience has far fewer distinct agents than requests, and parsing one
/// cost a tenth of a pixel beacon's instructions (`bench/RESULTS.md`).
const CACHE_CAPACITY: usize = 4096;

type Dimensions = Arc<BTreeMap<String, String>>;

fn cache() -> &'static Mutex<HashMap<String, Dimensions>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Dimensions>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// [`dimensions`] through a bounded cache.
pub fn cached_dimensions(user_agent: &str) -> Dimensions {
    if let Some(d) = cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(user_agent)
    {
        return d.clone();
    }
    // Parse outside the lock; two threads may parse the same agent once each.
    let parsed = Arc::new(dimensions(user_agent));
    let mut cache = cache().lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(user_agent.to_owned(), parsed.clone());
    parsed
}

/// Add the request's User-Agent dimensions to `dims`, keeping any the
/// protocol itself already set.
pub fn add_dimensions(headers: &axum::http::HeaderMap, dims: &mut BTreeMap<String, String>) {
    let Some(ua) = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    for (k, v) in cached_dimensions(ua).iter() {
        if !dims.contains_key(k) {
            dims.insert(k.clone(), v.clone());
        }
    }
}

/// Dimensions parsed from a User-Agent; unknown parts are left out.
pub fn dimensions(user_agent: &str) -> BTreeMap<String, String> {
    let mut dims = BTreeMap::new();
    let Some(r) = woothee::parser::Parser::new().parse(user_agent) else {
        return dims;
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    if known(r.name) {
        dims.insert("browser".into(), r.name.to_owned());
    }
    if known(r.os) {
        dims.insert("os".into(), r.os.to_owned());
    }
    let device = match r.category {
        "pc" => "desktop",
        "smartphone" => "mobile",
        "mobilephone" => "mobile",
        "appliance" => "tv",
        "crawler" => "bot",
        _ => "",
    };
    // woothee files tablets under smartphone; the OS tells them apart.
    let device = if r.os == "iPad" { "tablet" } else { device };
    if !device.is_empty() {
        dims.insert("device_type".into(), device.to_owned());
    }
    dims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_agents() {
        let chrome = dimensions("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
        assert_eq!(chrome["browser"], "Chrome");
        assert_eq!(chrome["os"], "Windows 10");
        assert_eq!(chrome["device_type"], "desktop");
        let iphone = dimensions("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1");
        assert_eq!(iphone["browser"], "Safari");
        assert_eq!(iphone["device_type"], "mobile");
        assert!(dimensions("").is_empty());
    }

    #[test]
    fn the_cache_answers_like_the_parser_and_stays_bounded() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
        assert_eq!(*cached_dimensions(ua), dimensions(ua));
        assert_eq!(*cached_dimensions(ua), dimensions(ua));
        for i in 0..CACHE_CAPACITY + 10 {
            cached_dimensions(&format!("agent-{i}"));
        }
        assert!(cache().lock().unwrap().len() <= CACHE_CAPACITY);
        assert_eq!(cached_dimensions(ua)["browser"], "Firefox");
    }
}
