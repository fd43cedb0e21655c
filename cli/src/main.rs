//! `fleetctl`: errors are one clear line and a non-zero exit.

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = fleet_cli::Cli::parse();
    if let Err(e) = fleet_cli::run(cli).await {
        eprintln!("fleetctl: {e:#}");
        std::process::exit(1);
    }
}
