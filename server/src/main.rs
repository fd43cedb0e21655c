//! `fleet-server`: see the crate docs of `fleet_server`.

#[tokio::main]
async fn main() {
    if let Err(e) = fleet_server::main_with_args(std::env::args()).await {
        eprintln!("fleet-server: {e:#}");
        std::process::exit(1);
    }
}
