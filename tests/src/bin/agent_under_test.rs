//! The real `fleet-agent` entry point, built inside the tests package so integration tests
//! can run and `kill -9` it (`CARGO_BIN_EXE_fleet-agent-under-test`).

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = fleet_agent::cli::Cli::parse();
    if let Err(e) = fleet_agent::cli::main_with(cli).await {
        eprintln!("fleet-agent: {e:#}");
        std::process::exit(1);
    }
}
