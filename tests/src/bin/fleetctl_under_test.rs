//! The real `fleetctl` entry point, built inside the tests package so integration tests
//! can run it as a command (`CARGO_BIN_EXE_fleetctl-under-test`).

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = fleet_cli::Cli::parse();
    if let Err(e) = fleet_cli::run(cli).await {
        eprintln!("fleetctl: {e:#}");
        std::process::exit(1);
    }
}
