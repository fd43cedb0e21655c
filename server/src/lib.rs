//! Fleet OTA server: signed artifacts, the device registry and rollouts.
//!
//! - [`app`]: `Application::build` does every fallible start-up step; `run_until_stopped` serves.
//! - [`settings`]: flags and `FLEET_*` environment variables.
//! - [`http`]: the REST API, one module per resource; `http::error` maps errors once.
//! - [`auth`]: bearer tokens — the operator's admin token and per-device tokens;
//!   [`device_tokens`]: device tokens verified a moment ago.
//! - [`store`]: the `Store` trait and its SQLite implementation.
//! - [`blobs`]: the content-addressed blob store; [`artifact_cache`]: artifact records for device routes
//!   ([`remembered`]: the rule such values are kept in memory by).
//! - [`broker`]: the embedded MQTT broker with per-device isolation.
//! - [`mqtt`]: the server's MQTT client (the only code touching it).
//! - [`rollout`]: planning, the engine task and report ingestion.
//! - [`state`]: what handlers share.

#![forbid(unsafe_code)]

pub mod app;
pub mod artifact_cache;
pub mod auth;
pub mod backup;
pub mod blobs;
pub mod broker;
pub mod device_tokens;
pub mod gc;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod remembered;
pub mod rollout;
pub mod settings;
pub mod state;
pub mod store;
pub mod timestamp;
pub mod tls;

pub use app::{Application, StartupError};
pub use settings::Settings;

/// Milliseconds since the Unix epoch, the server's one clock.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// A new resource id: 48 bits of milliseconds then 80 random bits, as 32 hex characters,
/// so ids sort by creation time and keyset pagination lists oldest first.
pub fn new_id() -> anyhow::Result<String> {
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!("{:012x}{}", now_ms() & 0xffff_ffff_ffff, hex::encode(random)))
}

/// Installs the tracing subscriber used by the binary.
pub fn init_tracing(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())).try_init(),
        // One JSON object per line, with the request's span (method, route, request id).
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}

pub use settings::LogFormat;

/// The `fleet-server` binary: parse the command line, run, and on error print one line and
/// exit 1.
pub async fn main_entry() {
    if let Err(e) = main_with_args(std::env::args()).await {
        eprintln!("fleet-server: {e:#}");
        std::process::exit(1);
    }
}

/// Runs with these arguments (the first is the program name).
pub async fn main_with_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    use clap::Parser as _;
    let settings = Settings::parse_from(args);
    init_tracing(&settings.log, settings.log_format);
    if let Some(settings::ServerCommand::Backup { to }) = &settings.command {
        return backup::run(&settings, to).await;
    }
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
