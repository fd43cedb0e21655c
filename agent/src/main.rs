//! `fleet-agent`: see the crate docs of `fleet_agent`.

fn main() {
    fleet_agent::cli::main_entry();
}
