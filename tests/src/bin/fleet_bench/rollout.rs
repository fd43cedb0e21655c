//! Benchmark 1 (fleet rollout) and 6 (API latency meanwhile).

use std::path::Path;
use std::time::{Duration, Instant};

use fleet_tests::ADMIN_TOKEN;
use fleet_tests::simulator::{ProcessLimits, Simulator, SimulatorSetup};

use crate::broker::{Baseline, Pass};
use crate::open_files::limits;
use crate::server::{Backends, Server, percentile, scratch_dir, sibling};
use crate::wave::{Wave, wave};

/// `devices` simulated devices spread over simulator processes of at most `per_simulator`
/// devices each (10,000 devices need 10,704 open files in one process).
pub async fn rollout(
    devices: usize,
    size: usize,
    per_simulator: usize,
    simulator_nice: Option<u8>,
    backends: Backends,
) -> anyhow::Result<()> {
    // The limits first, so a run that cannot fit is refused before it starts.
    let per = per_simulator.min(devices) as u64;
    let (server_files, simulator_files) = limits(devices as u64, per, false, &backends)?;
    let server = Server::start_limited(&backends, false, server_files).await?;
    let fw = server.firmware(firmware_bytes(size)).await?;
    let dir = scratch_dir()?;
    let started = Instant::now();
    let simulators = start_simulators(
        &server,
        &backends,
        dir.path(),
        "b",
        devices,
        per_simulator,
        Login { certificates: false, limits: ProcessLimits { open_files: simulator_files, nice: simulator_nice } },
    )
    .await;
    let online = started.elapsed();
    eprintln!("rollout: {devices} devices online after {online:?}; starting the rollout");
    let w = wave(&server, &simulators, &fw, devices).await?;
    for s in simulators {
        s.stop().await;
    }
    let messages = (w.commands + w.reports) as usize;
    drop(server);
    let baseline = Baseline::start(&backends).await?.pass(1, messages).await?;

    let processes = devices.div_ceil(per_simulator);
    println!(
        "fleet rollout: {devices} simulated devices in {processes} simulator process(es), {} KiB firmware, one wave, {}",
        size / 1024,
        backends.describe()
    );
    print_stages(devices, online, &w);
    print_cost(devices, &backends, &w, messages, &baseline);
    Ok(())
}

/// The wave's stages, throughput and the API's latency meanwhile.
fn print_stages(devices: usize, online: Duration, w: &Wave) {
    let done = w.done;
    println!("  devices online after                {:>9.2} s", online.as_secs_f64());
    println!("  POST /rollouts → all dispatched     {:>9.2} s", w.dispatched.unwrap_or(done).as_secs_f64());
    println!("                 → all confirmed      {:>9.2} s", w.confirmed.unwrap_or(done).as_secs_f64());
    println!("                 → all downloaded     {:>9.2} s", w.downloaded.unwrap_or(done).as_secs_f64());
    println!(
        "                 → all succeeded      {:>9.2} s  ({:.0} devices/s)",
        done.as_secs_f64(),
        devices as f64 / done.as_secs_f64()
    );
    println!(
        "  reports applied                     {:>9.0}    ({:.0}/s over the rollout)",
        w.reports,
        w.reports / done.as_secs_f64()
    );
    println!(
        "  GET /rollouts/{{id}} meanwhile        p50 {:.1} ms, p99 {:.1} ms ({} requests)",
        percentile(&w.latencies, 0.5),
        percentile(&w.latencies, 0.99),
        w.latencies.len()
    );
}

/// CPU and memory: the server's per device beside the baseline broker's for the same
/// `messages`.
fn print_cost(devices: usize, backends: &Backends, w: &Wave, messages: usize, baseline: &Pass) {
    println!(
        "  CPU during the rollout              server {:.1} s, simulators {:.1} s (2 cores: {:.1} s available)",
        w.server_cpu,
        w.simulators_cpu,
        2.0 * w.done.as_secs_f64()
    );
    println!("  server peak RSS                     {:>9.1} MiB", w.server_peak);
    println!("  simulators' peak RSS (sum)          {:>9.1} MiB", w.simulators_peak);
    let per_device = |cpu: f64| 1000.0 * cpu / devices as f64;
    let broker_note = if backends.mosquitto || backends.mqtt_url.is_some() { "" } else { " (its broker included)" };
    println!("  server CPU per device               {:>9.2} ms{broker_note}", per_device(w.server_cpu));
    if let Some(cpu) = w.broker_cpu {
        println!("  the server's Mosquitto, per device  {:>9.2} ms", per_device(cpu));
    }
    println!(
        "  baseline: {messages} QoS 1 messages (commands + reports), one publisher → one subscriber, same broker software"
    );
    println!("                                      {:>9.2} s", baseline.time.as_secs_f64());
    if let Some(cpu) = baseline.broker_cpu {
        println!("  baseline broker CPU per device      {:>9.2} ms ({cpu:.2} s)", per_device(cpu));
    }
}

/// A firmware of `size` bytes.
pub fn firmware_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// How simulated devices log in: by token (the default) or with certificates they enroll
/// (`--certificates`, on a TLS server), and the open-files limit of their processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Login {
    pub certificates: bool,
    /// Each simulator process's open-files limit and niceness.
    pub limits: ProcessLimits,
}

/// Starts the simulator processes side by side (devices `{prefix}{k}-{i}`, state under
/// `dir`) and waits until every device is online. On a TLS server they use https:// and
/// mqtts://, trusting its CA.
pub async fn start_simulators(
    server: &Server,
    backends: &Backends,
    dir: &Path,
    prefix: &str,
    devices: usize,
    per_simulator: usize,
    login: Login,
) -> Vec<Simulator> {
    let binary = sibling("fleet-agent-under-test");
    let root = backends.topic_root();
    let (mqtt_url, ca_file) = match &server.mqtts {
        Some((url, ca)) => (url.as_str(), Some(ca.as_path())),
        None => (server.mqtt_url.as_str(), None),
    };
    let setups: Vec<_> = (0..devices.div_ceil(per_simulator.max(1)))
        .map(|k| {
            (k, dir.join(format!("sim{k}")), format!("{prefix}{k}-"), per_simulator.min(devices - k * per_simulator))
        })
        .collect();
    let starts = setups.iter().map(|(_, state_dir, prefix, count)| {
        let setup = SimulatorSetup {
            binary: binary.to_str().expect("utf-8"),
            count: *count,
            server: &server.base,
            mqtt_url,
            operator_token: ADMIN_TOKEN,
            state_dir,
            hardware: "sim",
            prefix,
            fail_ratio: 0.0,
            health_fail_ratio: 0.0,
            download_delay_ms: 0,
            topic_root: &root,
            ca_file,
            certificates: login.certificates,
        };
        Simulator::start_as(setup, login.limits)
    });
    futures_util::future::join_all(starts).await
}
