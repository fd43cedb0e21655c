//! Benchmark 1 (fleet rollout) and 6 (API latency meanwhile).

use std::path::Path;
use std::time::{Duration, Instant};

use fleet_tests::ADMIN_TOKEN;
use fleet_tests::simulator::{Simulator, SimulatorSetup};

use crate::broker::Baseline;
use crate::server::{Backends, Server, count, cpu_seconds, memory_mib, percentile, sample_value, scratch_dir, sibling};

/// `devices` simulated devices spread over simulator processes of at most `per_simulator`
/// devices each (10,000 devices need 10,704 open files in one process).
pub async fn rollout(devices: usize, size: usize, per_simulator: usize, backends: Backends) -> anyhow::Result<()> {
    let server = Server::start(&backends).await?;
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let fw = server.firmware(bytes).await?;
    let dir = scratch_dir()?;
    let started = Instant::now();
    let simulators = start_simulators(&server, &backends, dir.path(), "b", devices, per_simulator).await;
    let online = started.elapsed();
    eprintln!("rollout: {devices} devices online after {online:?}; starting the rollout");
    let before = server.metrics().await?;
    let cpu = |server: &Server, simulators: &[Simulator]| {
        (cpu_seconds(server.pid()), simulators.iter().map(|s| cpu_seconds(s.pid())).sum::<f64>())
    };
    let cpu_before = cpu(&server, &simulators);

    let t0 = Instant::now();
    let id = server.rollout(&fw).await?;
    let (mut dispatched, mut confirmed, mut downloaded) = (None, None, None);
    let mut latencies = vec![];
    let body = server
        .poll_rollout(
            &id,
            Duration::from_secs(900),
            |body, took| {
                latencies.push(took.as_secs_f64() * 1000.0);
                let now = t0.elapsed();
                let n = |s: &str| count(body, s);
                if dispatched.is_none() && n("pending") == 0 {
                    dispatched = Some(now);
                }
                if confirmed.is_none() && n("pending") + n("sent") == 0 {
                    confirmed = Some(now);
                }
                if downloaded.is_none() && n("pending") + n("sent") + n("downloading") == 0 {
                    downloaded = Some(now);
                }
            },
            |body| body.state == "completed",
        )
        .await?;
    let done = t0.elapsed();
    anyhow::ensure!(count(&body, "succeeded") == devices as u64, "not every device succeeded: {body:#?}");
    let after = server.metrics().await?;
    let cpu_after = cpu(&server, &simulators);
    let (server_peak, _) = memory_mib(server.pid());
    let simulator_peak: f64 = simulators.iter().map(|s| memory_mib(s.pid()).0).sum();
    for s in simulators {
        s.stop().await;
    }
    let delta = |s: &str| sample_value(&after, s) - sample_value(&before, s);
    let reports = delta("fleet_reports_applied_total");
    let commands = delta("fleet_commands_published_total");
    latencies.sort_by(f64::total_cmp);
    let messages = (commands + reports) as usize;
    drop(server);
    let baseline = Baseline::start(&backends).await?.pass(1, messages).await?;

    let processes = devices.div_ceil(per_simulator);
    println!(
        "fleet rollout: {devices} simulated devices in {processes} simulator process(es), {} KiB firmware, one wave, {}",
        size / 1024,
        backends.describe()
    );
    println!("  devices online after                {:>9.2} s", online.as_secs_f64());
    println!("  POST /rollouts → all dispatched     {:>9.2} s", dispatched.unwrap_or(done).as_secs_f64());
    println!("                 → all confirmed      {:>9.2} s", confirmed.unwrap_or(done).as_secs_f64());
    println!("                 → all downloaded     {:>9.2} s", downloaded.unwrap_or(done).as_secs_f64());
    println!(
        "                 → all succeeded      {:>9.2} s  ({:.0} devices/s)",
        done.as_secs_f64(),
        devices as f64 / done.as_secs_f64()
    );
    println!(
        "  reports applied                     {reports:>9.0}    ({:.0}/s over the rollout)",
        reports / done.as_secs_f64()
    );
    println!(
        "  GET /rollouts/{{id}} meanwhile        p50 {:.1} ms, p99 {:.1} ms ({} requests)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
    println!(
        "  CPU during the rollout              server {:.1} s, simulators {:.1} s (2 cores: {:.1} s available)",
        cpu_after.0 - cpu_before.0,
        cpu_after.1 - cpu_before.1,
        2.0 * done.as_secs_f64()
    );
    println!("  server peak RSS                     {server_peak:>9.1} MiB");
    println!("  simulators' peak RSS (sum)          {simulator_peak:>9.1} MiB");
    println!(
        "  baseline: {messages} QoS 1 messages (commands + reports), one publisher → one subscriber, same broker software"
    );
    println!("                                      {:>9.2} s", baseline.as_secs_f64());
    println!("  ratio rollout / baseline            {:>9.1}×", done.as_secs_f64() / baseline.as_secs_f64());
    Ok(())
}

/// Starts the simulator processes side by side (devices `{prefix}{k}-{i}`, state under
/// `dir`) and waits until every device is online.
pub async fn start_simulators(
    server: &Server,
    backends: &Backends,
    dir: &Path,
    prefix: &str,
    devices: usize,
    per_simulator: usize,
) -> Vec<Simulator> {
    let binary = sibling("fleet-agent-under-test");
    let root = backends.topic_root();
    let setups: Vec<_> = (0..devices.div_ceil(per_simulator.max(1)))
        .map(|k| {
            (k, dir.join(format!("sim{k}")), format!("{prefix}{k}-"), per_simulator.min(devices - k * per_simulator))
        })
        .collect();
    let starts = setups.iter().map(|(_, state_dir, prefix, count)| {
        Simulator::start(SimulatorSetup {
            binary: binary.to_str().expect("utf-8"),
            count: *count,
            server: &server.base,
            mqtt_url: &server.mqtt_url,
            operator_token: ADMIN_TOKEN,
            state_dir,
            hardware: "sim",
            prefix,
            fail_ratio: 0.0,
            health_fail_ratio: 0.0,
            download_delay_ms: 0,
            topic_root: &root,
            ca_file: None,
        })
    });
    futures_util::future::join_all(starts).await
}
