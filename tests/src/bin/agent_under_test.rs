//! The real `fleet-agent` entry point, built inside the tests package so integration tests
//! can run and `kill -9` it (`CARGO_BIN_EXE_fleet-agent-under-test`).

fn main() {
    fleet_agent::cli::main_entry();
}
