//! `fleet-bench`: what operators care about, measured beside the physical limit in the
//! same run. Build and run in release (see BENCHMARKS.md):
//!
//! ```sh
//! cargo build --release -p fleet-tests --bins
//! target/release/fleet-bench rollout --devices 10000
//! ```
//!
//! It spawns the release server and agent binaries that sit next to it.

#![forbid(unsafe_code)]

mod agent;
mod broker;
mod connect;
mod ingest;
mod mosquitto_tls;
mod open_files;
mod power_loss;
mod rollout;
mod server;
mod tls_rollout;
mod transfer;
mod wave;

use clap::{Args, Parser, Subcommand};

use crate::server::Backends;

#[derive(Debug, Parser)]
#[command(name = "fleet-bench", about = "Fleet OTA benchmarks, each beside its baseline")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

/// Where the server keeps its state and talks MQTT.
#[derive(Debug, Args)]
struct BackendArgs {
    /// PostgreSQL instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// An external broker (e.g. Mosquitto, anonymous) instead of the embedded one; the
    /// baseline then runs through it too.
    #[arg(long, conflicts_with = "mosquitto")]
    mqtt_url: Option<String>,
    /// A Mosquitto started by the bench, with per-device isolation and the settings
    /// docs/brokers.md recommends; the baseline runs through a bare Mosquitto.
    #[arg(long)]
    mosquitto: bool,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// N simulated devices, one wave: POST /rollouts to all succeeded, per stage, with the
    /// API's latency meanwhile; baseline: the same number of QoS 1 messages through the
    /// same broker by a bare publisher/subscriber pair.
    Rollout {
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        #[arg(long, default_value_t = 64 * 1024)]
        size: usize,
        /// Most devices in one simulator process (each holds an MQTT connection; HTTP is
        /// shared: 10,000 need 10,704 open files, and a simulator refuses a count its
        /// limit cannot hold).
        #[arg(long, default_value_t = 10_000)]
        per_simulator: usize,
        /// The same rollout twice, one run: cleartext first (the baseline), then over
        /// mqtts:// and https:// (`--tls-self-signed`, embedded broker + SQLite; with
        /// --mosquitto and --certificates, TLS ends in a Mosquitto of the bench's own).
        #[arg(long, conflicts_with_all = ["database_url", "mqtt_url"])]
        tls: bool,
        /// With --tls: each device enrolls a certificate and logs in with it, no password.
        #[arg(long, requires = "tls")]
        certificates: bool,
        /// Runs the simulators under `nice -n N` (0–19), so that they yield the cores to the
        /// server: its CPU and latency as with the devices on other machines.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=19), conflicts_with = "tls")]
        simulator_nice: Option<u8>,
        #[command(flatten)]
        backends: BackendArgs,
    },
    /// Status reports applied per second, from one MQTT connection per device; baseline:
    /// the same messages from as many connections to one subscriber, same broker.
    Ingest {
        #[arg(long, default_value_t = 2_000)]
        devices: usize,
        /// Reports per device: download progress, then success.
        #[arg(long, default_value_t = 25)]
        reports: usize,
        #[command(flatten)]
        backends: BackendArgs,
    },
    /// Devices connecting over mqtts:// (TLS ended in the embedded broker's gate);
    /// baseline: the same devices over cleartext mqtt://, same server, same run.
    Connect {
        #[arg(long, default_value_t = 2_000)]
        devices: usize,
        /// Connections in progress at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Updates cut by SIGKILL at moments spread over their duration: how many devices end
    /// bootable with a complete image and a truthful report (the goal: all).
    PowerLoss {
        #[arg(long, default_value_t = 1_000)]
        runs: usize,
        /// The U-Boot back end (needs fw_printenv, fw_setenv, mkenvimage) instead of slot files.
        #[arg(long, conflicts_with = "rauc")]
        uboot: bool,
        /// The RAUC back end (needs rauc, mksquashfs, dbus-daemon, openssl) instead of slot files.
        #[arg(long)]
        rauc: bool,
    },
    /// One blob, many concurrent clients; baseline: nginx serving the same file.
    Download {
        #[arg(long, default_value_t = 64 << 20)]
        size: u64,
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// An image through the upload API; baseline: SHA-256 of the same bytes in-process.
    Upload {
        #[arg(long, default_value_t = 1 << 30)]
        size: u64,
    },
    /// One agent installing an image; baseline: SHA-256 in-process. Also RSS, stripped
    /// size and memory per simulated device.
    Agent {
        #[arg(long, default_value_t = 256 << 20)]
        size: u64,
        /// Simulated devices for the memory-per-device figure.
        #[arg(long, default_value_t = 1_000)]
        simulated: usize,
        /// The agent binary to measure, e.g. the device build
        /// (`cargo build --profile device -p fleet-agent`: target/device/fleet-agent);
        /// default: the release build next to this bench.
        #[arg(long)]
        agent_binary: Option<std::path::PathBuf>,
    },
}

impl From<BackendArgs> for Backends {
    fn from(a: BackendArgs) -> Self {
        Self { database_url: a.database_url, mqtt_url: a.mqtt_url, mosquitto: a.mosquitto }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Rollout { devices, size, per_simulator, tls: true, certificates, backends, .. } => {
            let mosquitto = backends.mosquitto;
            tls_rollout::tls_rollout(tls_rollout::TlsRollout { devices, size, per_simulator, certificates, mosquitto })
                .await
        }
        Bench::Rollout { devices, size, per_simulator, simulator_nice, backends, .. } => {
            rollout::rollout(devices, size, per_simulator, simulator_nice, backends.into()).await
        }
        Bench::Ingest { devices, reports, backends } => ingest::ingest(devices, reports, backends.into()).await,
        Bench::PowerLoss { runs, uboot, rauc } => power_loss::power_loss(runs, uboot, rauc).await,
        Bench::Connect { devices, concurrency } => connect::connect(devices, concurrency).await,
        Bench::Download { size, clients } => transfer::download(size, clients).await,
        Bench::Upload { size } => transfer::upload(size).await,
        Bench::Agent { size, simulated, agent_binary } => agent::agent(size, simulated, agent_binary).await,
    }
}
