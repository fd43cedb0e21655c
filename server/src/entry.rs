//! The `fleet-server` command line: parse, set up logging, then serve or back up.

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _};

use crate::app::{Application, StartupError};
use crate::backup::BackupError;
use crate::settings::{self, LogFormat, Settings};

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("serving: {0}")]
    Serve(#[from] std::io::Error),
    #[error("backup: {0}")]
    Backup(#[from] BackupError),
    /// Every user of the machine reads a process's arguments (`ps`).
    #[error(
        "--admin-token on the command line is visible to every local user: use FLEET_ADMIN_TOKEN or --admin-token-file"
    )]
    AdminTokenOnCommandLine,
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

/// The `fleet-server` binary: parse the command line, run, and on error print one line and
/// exit 1.
pub async fn main_entry() {
    if let Err(e) = main_with_args(std::env::args()).await {
        eprintln!("fleet-server: {e}");
        std::process::exit(1);
    }
}

/// Runs with these arguments (the first is the program name).
pub async fn main_with_args(args: impl IntoIterator<Item = String>) -> Result<(), RunError> {
    let matches = Settings::command().get_matches_from(args);
    if matches.value_source("admin_token") == Some(ValueSource::CommandLine) {
        return Err(RunError::AdminTokenOnCommandLine);
    }
    let settings = Settings::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(&settings.log, settings.log_format);
    if let Some(settings::ServerCommand::Backup { to }) = &settings.command {
        return Ok(crate::backup::run(&settings, to).await?);
    }
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
