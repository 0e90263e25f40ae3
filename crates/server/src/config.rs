//! The server's typed configuration (the binary parses and validates the
//! TOML file, environment and flags into this).

use std::time::Duration;

/// One property: a site, app or customer library, with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    /// Public key players send (`property` in the native protocol).
    pub ingest_key: String,
    /// Secret keys that read this property's data.
    pub read_keys: Vec<String>,
    /// Pixel-beacon pullzones (`p`, e.g. `vz-a06a6f7b-986`) that belong here.
    pub pullzones: Vec<String>,
    /// Adobe `analytics.reportSuite` values that belong here.
    pub report_suites: Vec<String>,
    /// Takes every protocol name no property claims (zero-config `default`).
    pub catch_all: bool,
}

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub properties: Vec<Property>,
    /// The admin key (`/admin/v1`), when configured.
    pub admin_key: Option<String>,
    /// Largest request body accepted (bytes); larger → `413`.
    pub body_limit_bytes: usize,
    /// Ingest requests waiting for the writer; when full → `503`.
    pub ingest_queue_capacity: usize,
    /// Most ingest requests committed together in one transaction.
    pub max_group_commit: usize,
    /// Whole-request timeout (slow clients).
    pub request_timeout: Duration,
    /// Server-side ad beacons (ping protocol).
    pub beacons: crate::beacons::BeaconConfig,
}

impl ServerConfig {
    /// One property with the given keys and default limits.
    pub fn single(name: &str, ingest_key: &str, read_key: &str) -> ServerConfig {
        ServerConfig {
            properties: vec![Property {
                name: name.into(),
                ingest_key: ingest_key.into(),
                read_keys: vec![read_key.into()],
                pullzones: Vec::new(),
                report_suites: Vec::new(),
                catch_all: true,
            }],
            admin_key: None,
            body_limit_bytes: 1024 * 1024,
            ingest_queue_capacity: 1024,
            max_group_commit: 512,
            request_timeout: Duration::from_secs(30),
            beacons: crate::beacons::BeaconConfig::default(),
        }
    }

    pub fn property_by_ingest_key(&self, key: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.ingest_key == key)
    }

    /// The property a pixel pullzone belongs to: the one that lists it,
    /// else the catch-all property when there is one.
    pub fn property_by_pullzone(&self, pullzone: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|p| p.pullzones.iter().any(|z| z == pullzone))
            .or_else(|| self.properties.iter().find(|p| p.catch_all))
    }

    /// The property an Adobe report suite belongs to: the one that lists
    /// it, else the catch-all property when there is one.
    pub fn property_by_report_suite(&self, suite: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|p| p.report_suites.iter().any(|r| r == suite))
            .or_else(|| self.properties.iter().find(|p| p.catch_all))
    }

    pub fn property_by_name(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    pub fn property_by_read_key(&self, key: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|p| p.read_keys.iter().any(|k| constant_time_eq(k, key)))
    }
}

/// Compare secrets without an early exit on the first differing byte.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    constant_time_eq(a, b)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
