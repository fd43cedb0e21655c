//! `fleetctl`, the operator's CLI, and the typed API client the tests reuse.
//!
//! - [`client`]: `ApiClient`, one typed method per REST call ([`webhooks_api`]: those of
//!   `/webhooks`).
//! - [`commands`]: one module per subcommand (keygen, sign, keys, firmware/configs, devices,
//!   rollouts).
//! - [`output`]: tables and summaries for people, `--output json` for scripts.
//! - [`secret_file`]: writing token files readable by their owner only.
//! - [`sse`]: reading a Server-Sent Events stream.

#![forbid(unsafe_code)]

pub mod client;
pub mod commands;
pub mod output;
pub mod secret_file;
pub mod sse;
pub mod webhooks_api;

pub use client::{ApiClient, ClientError};
pub use commands::{Cli, run};

/// The `fleetctl` binary: parse the command line, run, and on error print one line and exit 1.
pub async fn main_entry() {
    use clap::Parser as _;
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("fleetctl: {e:#}");
        std::process::exit(1);
    }
}
