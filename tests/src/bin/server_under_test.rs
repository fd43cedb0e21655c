//! The real `fleet-server` entry point, built inside the tests package so integration tests
//! can spawn it as its own process (`CARGO_BIN_EXE_fleet-server-under-test`).

#[tokio::main]
async fn main() {
    fleet_server::main_entry().await;
}
