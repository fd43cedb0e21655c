//! The real `fleetctl` entry point, built inside the tests package so integration tests
//! can run it as a command (`CARGO_BIN_EXE_fleetctl-under-test`).

#[tokio::main]
async fn main() {
    fleet_cli::main_entry().await;
}
