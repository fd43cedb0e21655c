//! `fleet-server`: see the crate docs of `fleet_server`.

#[tokio::main]
async fn main() {
    fleet_server::main_entry().await;
}
