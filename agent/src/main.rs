//! `fleet-agent`: see the crate docs of `fleet_agent`.

#[tokio::main]
async fn main() {
    fleet_agent::cli::main_entry().await;
}
