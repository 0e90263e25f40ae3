//! `playhead`: the command line (`spec/api.md` "Command line").
//!
//! `serve` runs the server, `demo` runs it with simulated viewers, `load`
//! generates load against a running server.

use anyhow::Context;
use clap::{Parser, Subcommand};
use playhead::config::{LogFormat, Overrides, Settings, ZeroConfigKeys};
use playhead::load::{self, LoadOptions};
use playhead::viewer::media_collection::DEFAULT_REPORT_SUITE;
use playhead_model::Protocol;
use playhead_server::{app, AppState, Property, SystemClock};
use playhead_store::SqliteStore;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::info;

/// mimalloc rather than glibc's malloc: the server allocates per request
/// (decoded bodies, events, summaries), and glibc's `malloc`/`free`/`realloc`
/// were about a fifth of its instructions (`bench/RESULTS.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "playhead",
    version,
    about = "Self-hosted video playback analytics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// TOML config file (see playhead.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<String>,
        /// Data directory [default: ./playhead-data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run the server with simulated viewers, so the API shows live data.
    Demo {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<String>,
        /// Data directory [default: ./playhead-demo-data].
        #[arg(long, default_value = "./playhead-demo-data")]
        data_dir: PathBuf,
        /// Simulated viewers watching at any time (half native, a quarter
        /// pixel, a quarter Adobe Media Collection).
        #[arg(long, default_value_t = 40)]
        viewers: usize,
        /// How much faster than real time the viewers send.
        #[arg(long, default_value_t = 4.0)]
        speed: f64,
    },
    /// Generate load against a running server.
    Load {
        /// Base URL of the server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        target: String,
        /// pixel, media_collection, ping, user_activity, player_messages or native.
        #[arg(long, default_value = "native")]
        protocol: Protocol,
        /// Concurrent simulated viewers.
        #[arg(long, default_value_t = 100)]
        viewers: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// The property's ingest key; required for native, player_messages
        /// and user_activity (it is the UAV token), unused by pixel (its pullzone picks the
        /// property) and media_collection (its report suite does).
        #[arg(long, env = "PLAYHEAD_INGEST_KEY")]
        ingest_key: Option<String>,
        /// `analytics.reportSuite` the media_collection players send (it
        /// picks the property; a zero-config server takes any).
        #[arg(long, default_value = DEFAULT_REPORT_SUITE)]
        report_suite: String,
        /// Speed-up of the viewers' real cadence (1 = real time). Native and
        /// Adobe events keep real-rate times; pixel beacons carry no client
        /// time, so pixel sessions come out this many times shorter on the
        /// server.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Random seed of the simulated population.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The admin key; ping runs configure their assets with it.
        #[arg(long, env = "PLAYHEAD_ADMIN_KEY")]
        admin_key: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let settings = Settings::resolve(&Overrides {
                config,
                listen,
                data_dir,
            })?;
            init_logs(settings.log_format);
            runtime.block_on(serve(settings, None))
        }
        Command::Demo {
            listen,
            data_dir,
            viewers,
            speed,
        } => {
            let settings = Settings::resolve(&Overrides {
                config: None,
                listen,
                data_dir: Some(data_dir),
            })?;
            init_logs(settings.log_format);
            runtime.block_on(serve(settings, Some((viewers, speed))))
        }
        Command::Load {
            target,
            protocol,
            viewers,
            duration,
            ingest_key,
            report_suite,
            speed,
            seed,
            admin_key,
        } => {
            init_logs(LogFormat::Human);
            let report = runtime.block_on(load::run(LoadOptions {
                target,
                protocol,
                viewers,
                duration: Duration::from_secs(duration),
                // `load::run` says when the protocol needs it.
                ingest_key: ingest_key.unwrap_or_default(),
                report_suite,
                speed,
                seed,
                admin_key: admin_key.unwrap_or_default(),
            }))?;
            println!("{report}");
            Ok(())
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Run the server until Ctrl-C or SIGTERM; with `demo`, also simulated viewers.
async fn serve(mut settings: Settings, demo: Option<(usize, f64)>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
    let mut first_start_keys = None;
    if settings.zero_config {
        let (keys, created) = ZeroConfigKeys::load_or_create(&settings.data_dir)?;
        settings.server.properties = vec![Property {
            name: "default".into(),
            ingest_key: keys.ingest_key.clone(),
            read_keys: vec![keys.read_key.clone()],
            pullzones: Vec::new(),
            report_suites: Vec::new(),
            catch_all: true,
        }];
        settings.server.admin_key = Some(keys.admin_key.clone());
        if created || demo.is_some() {
            first_start_keys = Some(keys);
        }
    }
    let ingest_key = settings.server.properties[0].ingest_key.clone();
    // The demo's ping players need assets, configured through the admin API.
    let admin_key = settings.server.admin_key.clone().unwrap_or_default();
    // The demo's Adobe players send a suite the first property claims (any
    // suite reaches a catch-all property).
    let report_suite = settings.server.properties[0]
        .report_suites
        .first()
        .cloned()
        .unwrap_or_else(|| DEFAULT_REPORT_SUITE.to_owned());
    let store = SqliteStore::open(&settings.data_dir, settings.fsync)
        .with_context(|| format!("opening the store in {}", settings.data_dir.display()))?;
    let state = AppState::start(
        settings.server.clone(),
        Arc::new(store),
        Arc::new(SystemClock),
    )
    .context("starting the ingest pipeline")?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    info!(%addr, data_dir = %settings.data_dir.display(), fsync = ?settings.fsync, "playhead started");
    {
        let mut out = std::io::stdout().lock();
        if let Some(keys) = &first_start_keys {
            writeln!(out, "read key: {}", keys.read_key)?;
            writeln!(out, "ingest key: {}", keys.ingest_key)?;
            writeln!(out, "admin key: {}", keys.admin_key)?;
            writeln!(
                out,
                "try: curl -H 'Authorization: Bearer {}' http://{addr}/data/v1/metrics",
                keys.read_key
            )?;
            writeln!(
                out,
                "dashboard: http://{addr}/ (log in with the read key above)"
            )?;
        }
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let demo_task = demo.map(|(viewers, speed)| {
        tokio::spawn(load::run_demo_traffic(
            format!("http://{addr}"),
            ingest_key,
            report_suite,
            admin_key,
            viewers,
            speed,
            stop_rx.clone(),
        ))
    });
    // Peer addresses reach handlers (ping: the viewer's IP for ad beacons).
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        })
        .await
        .context("serving")?;
    if let Some(t) = demo_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    info!("playhead stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
