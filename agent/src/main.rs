//! `fleet-agent`: see the crate docs of `fleet_agent`.

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = fleet_agent::cli::Cli::parse();
    if let Err(e) = fleet_agent::cli::main_with(cli).await {
        eprintln!("fleet-agent: {e:#}");
        std::process::exit(1);
    }
}
