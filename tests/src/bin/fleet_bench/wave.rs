//! One rollout wave measured: from POST /rollouts until every device succeeded, per stage,
//! with the API's latency meanwhile and the CPU and memory of the server and simulators.
//! Shared by the rollout bench and its TLS comparison.

use std::time::{Duration, Instant};

use fleet_tests::simulator::Simulator;

use crate::server::{Server, count, cpu_seconds, memory_mib, sample_value};

/// What one wave took.
pub struct Wave {
    pub dispatched: Option<Duration>,
    pub confirmed: Option<Duration>,
    pub downloaded: Option<Duration>,
    /// POST → all succeeded.
    pub done: Duration,
    /// Each `GET /rollouts/{id}`'s time, in ms, sorted.
    pub latencies: Vec<f64>,
    pub reports: f64,
    pub commands: f64,
    /// CPU seconds during the wave.
    pub server_cpu: f64,
    pub simulators_cpu: f64,
    /// The bench's Mosquitto's CPU seconds during the wave, when the server runs on one.
    pub broker_cpu: Option<f64>,
    /// Peak RSS so far (the simulators' summed), in MiB.
    pub server_peak: f64,
    pub simulators_peak: f64,
}

/// Rolls `firmware` out to the `devices` online devices of `simulators`; fails unless
/// every one of them succeeded.
pub async fn wave(server: &Server, simulators: &[Simulator], firmware: &str, devices: usize) -> anyhow::Result<Wave> {
    let before = server.metrics().await?;
    let cpu = || (cpu_seconds(server.pid()), simulators.iter().map(|s| cpu_seconds(s.pid())).sum::<f64>());
    let cpu_before = cpu();
    let broker_before = server.broker_pid().map(cpu_seconds);
    let t0 = Instant::now();
    let id = server.rollout(firmware).await?;
    let (mut dispatched, mut confirmed, mut downloaded) = (None, None, None);
    let mut latencies = vec![];
    let on_poll = |body: &fleet_protocol::api::Rollout, took: Duration| {
        latencies.push(took.as_secs_f64() * 1000.0);
        let now = Some(t0.elapsed());
        let n = |s: &str| count(body, s);
        dispatched = dispatched.or(now.filter(|_| n("pending") == 0));
        confirmed = confirmed.or(now.filter(|_| n("pending") + n("sent") == 0));
        downloaded = downloaded.or(now.filter(|_| n("pending") + n("sent") + n("downloading") == 0));
    };
    let body = server.poll_rollout(&id, Duration::from_secs(900), on_poll, |b| b.state == "completed").await?;
    let done = t0.elapsed();
    anyhow::ensure!(count(&body, "succeeded") == devices as u64, "not every device succeeded: {body:#?}");
    let after = server.metrics().await?;
    let cpu_after = cpu();
    let broker_cpu = server.broker_pid().map(cpu_seconds).zip(broker_before).map(|(after, before)| after - before);
    let delta = |s: &str| sample_value(&after, s) - sample_value(&before, s);
    latencies.sort_by(f64::total_cmp);
    Ok(Wave {
        dispatched,
        confirmed,
        downloaded,
        done,
        latencies,
        reports: delta("fleet_reports_applied_total"),
        commands: delta("fleet_commands_published_total"),
        server_cpu: cpu_after.0 - cpu_before.0,
        simulators_cpu: cpu_after.1 - cpu_before.1,
        broker_cpu,
        server_peak: memory_mib(server.pid()).0,
        simulators_peak: simulators.iter().map(|s| memory_mib(s.pid()).0).sum(),
    })
}
