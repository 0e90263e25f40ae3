//! Configuration: the TOML file (every key documented in
//! `playhead.example.toml`), then `PLAYHEAD_*` environment variables, then
//! command-line flags, each overriding the one before. Unknown keys in the
//! file and unknown `PLAYHEAD_*` variables are errors, so a typo never goes
//! unnoticed.
//!
//! `RawConfig` is the file as written; `Settings::resolve` validates it into
//! what the program uses.

use anyhow::{bail, Context};
use playhead_server::{Property, ServerConfig};
use playhead_store::FsyncPolicy;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Where the embedded store keeps its files. Default `./playhead-data`.
    pub data_dir: Option<PathBuf>,
    /// `always` (default): every acknowledged event is fsynced; `off`: not.
    pub fsync: Option<FsyncPolicy>,
    /// `human` (default) or `json`.
    pub log_format: Option<LogFormat>,
    /// Largest request body, bytes. Default 1 MiB.
    pub body_limit_bytes: Option<usize>,
    /// Ingest requests that may wait for the writer. Default 1024.
    pub ingest_queue_capacity: Option<usize>,
    /// Most ingest requests committed in one transaction. Default 512.
    pub max_group_commit: Option<usize>,
    /// Whole-request timeout, seconds. Default 30.
    pub request_timeout_s: Option<u64>,
    /// Key for `/admin/v1`.
    pub admin_key: Option<String>,
    /// Server-side ad beacons (ping protocol).
    #[serde(default)]
    pub beacons: RawBeacons,
    /// The properties; none means zero-config mode (one `default` property).
    #[serde(default)]
    pub properties: Vec<RawProperty>,
}

/// `[beacons]`: how server-side ad beacons are sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBeacons {
    /// One attempt's limit, ms. Default 5000.
    pub timeout_ms: Option<u64>,
    /// Attempts before a beacon is marked failed. Default 6.
    pub max_attempts: Option<u32>,
    /// Attempts in flight at once. Default 32.
    pub concurrency: Option<usize>,
    /// Wait before the first retry, ms; doubles each time. Default 1000.
    pub backoff_ms: Option<u64>,
}

impl RawBeacons {
    fn resolve(&self) -> anyhow::Result<playhead_server::beacons::BeaconConfig> {
        let d = playhead_server::beacons::BeaconConfig::default();
        let config = playhead_server::beacons::BeaconConfig {
            timeout: self.timeout_ms.map_or(d.timeout, Duration::from_millis),
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts),
            concurrency: self.concurrency.unwrap_or(d.concurrency),
            backoff: self.backoff_ms.map_or(d.backoff, Duration::from_millis),
        };
        if config.timeout.is_zero() || config.max_attempts == 0 || config.concurrency == 0 {
            bail!("beacons: timeout_ms, max_attempts and concurrency must be positive");
        }
        Ok(config)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProperty {
    pub name: String,
    pub ingest_key: String,
    pub read_keys: Vec<String>,
    /// Pixel-beacon pullzones (`p`) of this property.
    #[serde(default)]
    pub pullzones: Vec<String>,
    /// Adobe `analytics.reportSuite` values of this property.
    #[serde(default)]
    pub report_suites: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format `{other}`: expected `human` or `json`")),
        }
    }
}

/// Environment variables Playhead reads; any other `PLAYHEAD_*` is an error.
pub const ENV_VARS: [&str; 12] = [
    "PLAYHEAD_CONFIG",
    "PLAYHEAD_LISTEN",
    "PLAYHEAD_DATA_DIR",
    "PLAYHEAD_FSYNC",
    "PLAYHEAD_LOG_FORMAT",
    "PLAYHEAD_BODY_LIMIT_BYTES",
    "PLAYHEAD_INGEST_QUEUE_CAPACITY",
    "PLAYHEAD_MAX_GROUP_COMMIT",
    "PLAYHEAD_REQUEST_TIMEOUT_S",
    "PLAYHEAD_INGEST_KEY",
    "PLAYHEAD_READ_KEY",
    "PLAYHEAD_ADMIN_KEY",
];

/// The largest body limit: a single event of that size, stored with its
/// session key, still fits a block of the embedded store's event log
/// (16 MiB).
pub const MAX_BODY_LIMIT_BYTES: usize = 8 * 1024 * 1024;

/// Flags of `serve` (and `demo`) that override the file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// What the program runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub log_format: LogFormat,
    pub server: ServerConfig,
    /// Zero-config mode: the `default` property's keys come from the data
    /// dir (or the environment) and are filled in at start.
    pub zero_config: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_parsed<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    env(name)
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| anyhow::anyhow!("{name}=`{v}`: {e}"))
        })
        .transpose()
}

/// Refuse `PLAYHEAD_*` variables Playhead does not read.
pub fn check_env() -> anyhow::Result<()> {
    for (k, _) in std::env::vars() {
        if k.starts_with("PLAYHEAD_") && !ENV_VARS.contains(&k.as_str()) {
            bail!(
                "unknown environment variable {k}; known: {}",
                ENV_VARS.join(", ")
            );
        }
    }
    Ok(())
}

impl RawConfig {
    pub fn load(path: &Path) -> anyhow::Result<RawConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }
}

impl Settings {
    /// File, then environment, then flags.
    pub fn resolve(flags: &Overrides) -> anyhow::Result<Settings> {
        check_env()?;
        let path = flags
            .config
            .clone()
            .or_else(|| env("PLAYHEAD_CONFIG").map(PathBuf::from));
        let raw = match &path {
            Some(p) => RawConfig::load(p)?,
            None => RawConfig::default(),
        };
        let listen_s = flags
            .listen
            .clone()
            .or_else(|| env("PLAYHEAD_LISTEN"))
            .or(raw.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_s
            .parse()
            .with_context(|| format!("listen address `{listen_s}` (expected IP:PORT)"))?;
        let data_dir = flags
            .data_dir
            .clone()
            .or_else(|| env("PLAYHEAD_DATA_DIR").map(PathBuf::from))
            .or(raw.data_dir)
            .unwrap_or_else(|| PathBuf::from("./playhead-data"));
        let fsync = match env("PLAYHEAD_FSYNC") {
            Some(v) => match v.as_str() {
                "always" => FsyncPolicy::Always,
                "off" => FsyncPolicy::Off,
                other => bail!("PLAYHEAD_FSYNC=`{other}`: expected `always` or `off`"),
            },
            None => raw.fsync.unwrap_or_default(),
        };
        let log_format = env_parsed::<LogFormat>("PLAYHEAD_LOG_FORMAT")?
            .or(raw.log_format)
            .unwrap_or_default();
        let body_limit_bytes = env_parsed("PLAYHEAD_BODY_LIMIT_BYTES")?
            .or(raw.body_limit_bytes)
            .unwrap_or(1024 * 1024);
        let ingest_queue_capacity = env_parsed("PLAYHEAD_INGEST_QUEUE_CAPACITY")?
            .or(raw.ingest_queue_capacity)
            .unwrap_or(1024);
        let max_group_commit = env_parsed("PLAYHEAD_MAX_GROUP_COMMIT")?
            .or(raw.max_group_commit)
            .unwrap_or(512);
        let request_timeout_s: u64 = env_parsed("PLAYHEAD_REQUEST_TIMEOUT_S")?
            .or(raw.request_timeout_s)
            .unwrap_or(30);
        if body_limit_bytes < 1024 {
            bail!("body_limit_bytes: {body_limit_bytes} is below the 1024-byte minimum");
        }
        if body_limit_bytes > MAX_BODY_LIMIT_BYTES {
            bail!(
                "body_limit_bytes: {body_limit_bytes} is above the {MAX_BODY_LIMIT_BYTES}-byte maximum \
                 (an event is stored whole in a block of the event log, 16 MiB at most)"
            );
        }
        if ingest_queue_capacity == 0 || max_group_commit == 0 || request_timeout_s == 0 {
            bail!("ingest_queue_capacity, max_group_commit and request_timeout_s must be positive");
        }
        let mut names = std::collections::HashSet::new();
        let mut ingest_keys = std::collections::HashSet::new();
        let mut pullzones = std::collections::HashSet::new();
        let mut report_suites = std::collections::HashSet::new();
        for p in &raw.properties {
            if let Some(z) = p
                .pullzones
                .iter()
                .find(|z| z.is_empty() || !pullzones.insert(z.as_str()))
            {
                bail!(
                    "properties.{}: pullzone `{z}` is empty or claimed by two properties",
                    p.name
                );
            }
            if let Some(r) = p
                .report_suites
                .iter()
                .find(|r| r.is_empty() || !report_suites.insert(r.as_str()))
            {
                bail!(
                    "properties.{}: report suite `{r}` is empty or claimed by two properties",
                    p.name
                );
            }
            if p.name.is_empty() || !names.insert(p.name.clone()) {
                bail!("properties: name `{}` is empty or used twice", p.name);
            }
            if p.ingest_key.len() < 8 || !ingest_keys.insert(p.ingest_key.clone()) {
                bail!(
                    "properties.{}: ingest_key must be unique and at least 8 characters",
                    p.name
                );
            }
            if p.read_keys.is_empty() || p.read_keys.iter().any(|k| k.len() < 16) {
                bail!(
                    "properties.{}: needs read_keys of at least 16 characters each",
                    p.name
                );
            }
        }
        let zero_config = raw.properties.is_empty();
        let properties = raw
            .properties
            .into_iter()
            .map(|p| Property {
                name: p.name,
                ingest_key: p.ingest_key,
                read_keys: p.read_keys,
                pullzones: p.pullzones,
                report_suites: p.report_suites,
                catch_all: false,
            })
            .collect();
        Ok(Settings {
            listen,
            data_dir,
            fsync,
            log_format,
            server: ServerConfig {
                properties,
                admin_key: env("PLAYHEAD_ADMIN_KEY").or(raw.admin_key),
                body_limit_bytes,
                ingest_queue_capacity,
                max_group_commit,
                request_timeout: Duration::from_secs(request_timeout_s),
                beacons: raw.beacons.resolve()?,
            },
            zero_config,
        })
    }
}

/// The zero-config property's keys, kept in the data dir.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZeroConfigKeys {
    pub ingest_key: String,
    pub read_key: String,
    pub admin_key: String,
}

pub const KEYS_FILE: &str = "keys.json";

fn random_key(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

impl ZeroConfigKeys {
    /// The keys: `PLAYHEAD_*_KEY` when set, else those kept in `data_dir`,
    /// else new ones (written to `data_dir`). `true` when any key is new.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<(ZeroConfigKeys, bool)> {
        let path = data_dir.join(KEYS_FILE);
        let kept: Option<ZeroConfigKeys> = match std::fs::read_to_string(&path) {
            Ok(text) => Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let pick = |var: &str, old: Option<&String>, prefix: &str| {
            env(var)
                .or_else(|| old.cloned())
                .unwrap_or_else(|| random_key(prefix))
        };
        let keys = ZeroConfigKeys {
            ingest_key: pick(
                "PLAYHEAD_INGEST_KEY",
                kept.as_ref().map(|k| &k.ingest_key),
                "ph_ingest",
            ),
            read_key: pick(
                "PLAYHEAD_READ_KEY",
                kept.as_ref().map(|k| &k.read_key),
                "ph_read",
            ),
            admin_key: pick(
                "PLAYHEAD_ADMIN_KEY",
                kept.as_ref().map(|k| &k.admin_key),
                "ph_admin",
            ),
        };
        let changed = kept.as_ref() != Some(&keys);
        if changed {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_string_pretty(&keys)?)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok((keys, kept.is_none()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playhead.example.toml");
        let raw = RawConfig::load(&path).unwrap();
        assert_eq!(raw.properties.len(), 1);
        assert_eq!(raw.fsync, Some(FsyncPolicy::Always));
        let beacons = raw.beacons.resolve().unwrap();
        assert_eq!(beacons.timeout, Duration::from_secs(5));
        assert_eq!((beacons.max_attempts, beacons.concurrency), (6, 32));
    }

    #[test]
    fn beacon_settings_are_checked() {
        let raw: RawConfig =
            toml::from_str("[beacons]\ntimeout_ms = 250\nmax_attempts = 2\n").unwrap();
        let b = raw.beacons.resolve().unwrap();
        assert_eq!((b.timeout, b.max_attempts), (Duration::from_millis(250), 2));
        let raw: RawConfig = toml::from_str("[beacons]\nconcurrency = 0\n").unwrap();
        assert!(raw.beacons.resolve().is_err());
        assert!(toml::from_str::<RawConfig>("[beacons]\nretries = 3\n").is_err());
    }

    #[test]
    fn the_body_limit_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |limit: usize| {
            let path = dir.path().join("playhead.toml");
            let text = format!("data_dir = {:?}\nbody_limit_bytes = {limit}\n", dir.path());
            std::fs::write(&path, text).unwrap();
            let flags = Overrides {
                config: Some(path),
                ..Overrides::default()
            };
            Settings::resolve(&flags).map(|s| s.server.body_limit_bytes)
        };
        assert_eq!(resolve(MAX_BODY_LIMIT_BYTES).unwrap(), MAX_BODY_LIMIT_BYTES);
        let err = resolve(MAX_BODY_LIMIT_BYTES + 1).unwrap_err().to_string();
        assert!(err.contains("above the 8388608-byte maximum"), "{err}");
        let err = resolve(1023).unwrap_err().to_string();
        assert!(err.contains("below the 1024-byte minimum"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err =
            toml::from_str::<RawConfig>("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
        let err = toml::from_str::<RawConfig>(
            "[[properties]]\nname = \"a\"\ningest_key = \"k\"\nread_keys = []\ncolour = 1\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn zero_config_keys_are_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, new_a) = ZeroConfigKeys::load_or_create(dir.path()).unwrap();
        let (b, new_b) = ZeroConfigKeys::load_or_create(dir.path()).unwrap();
        assert!(new_a && !new_b);
        assert_eq!(a, b);
        assert!(a.read_key.starts_with("ph_read_"));
    }
}
