//! `fleet-agent`: not built yet in this release.

fn main() {
    eprintln!("fleet-agent is not built yet in this release");
    std::process::exit(2);
}
