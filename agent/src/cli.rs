//! The `fleet-agent` command line: `run` one device, or `simulate` many.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{InstallerKind, RunArgs};
use crate::install::ab::AbSlots;
use crate::install::command::CommandInstaller;
use crate::install::rauc::RaucInstaller;
use crate::install::swupdate::SwupdateInstaller;
use crate::install::uboot::UbootInstaller;
use crate::runner::Runner;
use crate::simulate::{SimulateArgs, simulate};

#[derive(Debug, Parser)]
#[command(name = "fleet-agent", version, about = "Fleet OTA device agent")]
pub struct Cli {
    /// Log filter, e.g. `info` or `fleet_agent=debug`.
    #[arg(long, env = "FLEET_AGENT_LOG", default_value = "info", global = true)]
    pub log: String,
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the agent for this device.
    Run(Box<RunArgs>),
    /// Make a key and get a device certificate for it (then `run --client-cert --client-key`).
    Enroll(Box<crate::enroll::EnrollArgs>),
    /// Run N simulated devices on the same code path.
    Simulate(Box<SimulateArgs>),
}

/// Cancelled on SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, () = term => {} }
        t.cancel();
    });
    token
}

/// The `fleet-agent` binary: parse the command line, run, and on error print one line and
/// exit 1.
///
/// `run` gets a single-threaded runtime: one device needs one thread (slot and download
/// writes go to tokio's blocking pool), and a thread less is memory less on a small device;
/// hashing then no longer overlaps socket reads, which costs nothing below ~2 Gbit/s
/// (BENCHMARKS.md). `simulate` runs thousands of devices on every core.
pub fn main_entry() {
    let cli = Cli::parse();
    let runtime = match cli.command {
        CliCommand::Run(_) | CliCommand::Enroll(_) => {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        }
        CliCommand::Simulate(_) => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    };
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(main_with(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    if let Err(e) = outcome {
        eprintln!("fleet-agent: {e:#}");
        std::process::exit(1);
    }
}

/// Runs a parsed command line.
pub async fn main_with(cli: Cli) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    let shutdown = shutdown_on_signal();
    match cli.command {
        CliCommand::Run(args) => {
            let args = args.with_file()?;
            let device = args.device()?;
            let client = match &device.client_cert {
                Some(cert) => crate::update::download::http_client_presenting(args.ca_file.as_deref(), cert)?,
                None => crate::update::download::http_client(args.ca_file.as_deref())?,
            };
            let http = crate::http::Http::new(client);
            match args.installer.unwrap_or_default() {
                InstallerKind::AbSlots => {
                    let slots = AbSlots::new(device.state_dir.join("slots"), true)?;
                    Runner::new(device, slots, http)?.run(shutdown).await
                }
                InstallerKind::Command => {
                    let installer = CommandInstaller::new(args.commands()?);
                    Runner::new(device, installer, http)?.run(shutdown).await
                }
                InstallerKind::Rauc => {
                    let installer = RaucInstaller::new(args.rauc());
                    Runner::new(device, installer, http)?.run(shutdown).await
                }
                InstallerKind::Swupdate => {
                    let installer = SwupdateInstaller::new(args.swupdate(&device.state_dir)?);
                    Runner::new(device, installer, http)?.run(shutdown).await
                }
                InstallerKind::Uboot => {
                    let installer = UbootInstaller::new(args.uboot(&device.state_dir)?);
                    Runner::new(device, installer, http)?.run(shutdown).await
                }
            }
        }
        CliCommand::Enroll(args) => crate::enroll::enroll(*args).await,
        CliCommand::Simulate(args) => simulate(*args, shutdown).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    #[test]
    fn every_flag_of_run_and_simulate_has_a_description() {
        let mut cli = Cli::command();
        cli.build();
        for name in ["run", "simulate", "enroll"] {
            let command = cli.find_subcommand(name).expect(name);
            let missing: Vec<String> = command
                .get_arguments()
                .filter(|a| !a.is_hide_set() && a.get_help().is_none())
                .map(|a| a.get_id().to_string())
                .collect();
            assert!(missing.is_empty(), "`fleet-agent {name}` flags without a description: {missing:?}");
            assert!(command.get_arguments().count() >= 5, "{name} has its flags");
        }
    }
}
