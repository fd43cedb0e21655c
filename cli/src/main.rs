//! `fleetctl`: errors are one clear line and a non-zero exit.

#[tokio::main]
async fn main() {
    fleet_cli::main_entry().await;
}
