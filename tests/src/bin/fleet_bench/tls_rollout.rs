//! Benchmark 1 over TLS: the same rollout twice in one run, first in cleartext (mqtt:// and
//! http://, each device logging in with its token: the baseline), then on a
//! `--tls-self-signed` server over mqtts:// and https:// (TLS ended in the embedded
//! broker's gate), each device with a certificate it enrolls first when `certificates`.
//! Each pass has a fresh server and fresh device state, so neither inherits the other's.
//!
//! Open files: the embedded broker holds one descriptor per device, over TLS as in
//! cleartext (docs/security.md); with certificates each simulated device also has an
//! HTTPS pool of its own. A process that needs more than it inherits is started under a
//! higher limit, and the bench says so ([`crate::open_files`]).
//!
//! With `--mosquitto` both passes run on a Mosquitto of their own (cleartext with password
//! isolation, then its TLS listener requiring device certificates,
//! [`crate::mosquitto_tls`]): TLS ends in Mosquitto, its own process under its own limit,
//! and the server holds only the devices' HTTPS connections, so 10,000 fit in 20,000.

use std::time::{Duration, Instant};

use fleet_tests::simulator::ProcessLimits;

use crate::open_files::limits;
use crate::rollout::{Login, firmware_bytes, start_simulators};
use crate::server::{Backends, Server, scratch_dir};
use crate::wave::{Wave, wave};

/// One pass: how long the devices took to come online (registration, enrollment and
/// connection), how long enrolling alone took, and the wave.
struct Pass {
    online: Duration,
    enrolled: Option<f64>,
    wave: Wave,
}

/// What the run measures: how many devices, the firmware's size, devices per simulator,
/// whether they log in with certificates, and on which broker.
#[derive(Debug, Clone, Copy)]
pub struct TlsRollout {
    pub devices: usize,
    pub size: usize,
    pub per_simulator: usize,
    pub certificates: bool,
    pub mosquitto: bool,
}

pub async fn tls_rollout(run: TlsRollout) -> anyhow::Result<()> {
    anyhow::ensure!(
        run.certificates || !run.mosquitto,
        "--tls --mosquitto needs --certificates: Mosquitto's TLS listener requires device certificates"
    );
    // Both passes' limits first, so a run that cannot fit is refused before it starts.
    let per = run.per_simulator.min(run.devices) as u64;
    let backends = Backends { mosquitto: run.mosquitto, ..Backends::default() };
    let plain_files = limits(run.devices as u64, per, false, &backends)?;
    let tls_files = limits(run.devices as u64, per, run.certificates, &backends)?;
    let login = Login { certificates: false, limits: ProcessLimits { open_files: plain_files.1, nice: None } };
    let plain = pass(false, run, plain_files.0, login).await?;
    let login = Login { certificates: run.certificates, limits: ProcessLimits { open_files: tls_files.1, nice: None } };
    let tls = pass(true, run, tls_files.0, login).await?;
    print_passes(run, &plain, &tls);
    Ok(())
}

async fn pass(tls: bool, run: TlsRollout, server_files: Option<u64>, login: Login) -> anyhow::Result<Pass> {
    let TlsRollout { devices, size, per_simulator, .. } = run;
    let backends = Backends { mosquitto: run.mosquitto, ..Backends::default() };
    let server = Server::start_limited(&backends, tls, server_files).await?;
    let fw = server.firmware(firmware_bytes(size)).await?;
    let dir = scratch_dir()?;
    let started = Instant::now();
    let prefix = if tls { "t" } else { "p" };
    let simulators = start_simulators(&server, &backends, dir.path(), prefix, devices, per_simulator, login).await;
    let online = started.elapsed();
    // Simulators enroll side by side: the slowest one's time is the fleet's.
    let enrolled = simulators.iter().filter_map(|s| enrollment_seconds(&s.printed)).reduce(f64::max);
    eprintln!("rollout (tls: {tls}): {devices} devices online after {online:?}; starting the rollout");
    let wave = wave(&server, &simulators, &fw, devices).await?;
    for s in simulators {
        s.stop().await;
    }
    Ok(Pass { online, enrolled, wave })
}

/// The seconds of the simulator's `certificates: N devices in X s` line, if it printed one.
fn enrollment_seconds(printed: &[String]) -> Option<f64> {
    let line = printed.iter().find_map(|l| l.strip_prefix("certificates: "))?;
    line.split(" in ").nth(1)?.split_whitespace().next()?.parse().ok()
}

fn print_passes(run: TlsRollout, plain: &Pass, tls: &Pass) {
    let TlsRollout { devices, size, certificates, .. } = run;
    let who = if certificates { "device certificates (enrolled first), no password" } else { "device tokens" };
    let broker = if run.mosquitto { "Mosquitto (TLS ended there)" } else { "embedded broker" };
    println!(
        "fleet rollout over TLS: {devices} simulated devices, {} KiB firmware, one wave, {broker} + SQLite; same run, a fresh server each",
        size / 1024
    );
    println!(
        "                                   online after  POST → all succeeded  server CPU (per device)  server peak RSS  simulators CPU  Mosquitto CPU"
    );
    let row = |label: &str, p: &Pass| {
        let w = &p.wave;
        let broker_cpu = w.broker_cpu.map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"));
        println!(
            "  {label:<31} {:>9.2} s  {:>10.2} s ({:>4.0}/s)  {:>7.1} s ({:.2} ms)  {:>10.1} MiB  {:>9.1} s  {broker_cpu:>9}",
            p.online.as_secs_f64(),
            w.done.as_secs_f64(),
            devices as f64 / w.done.as_secs_f64(),
            w.server_cpu,
            w.server_cpu * 1000.0 / devices as f64,
            w.server_peak,
            w.simulators_cpu
        );
    };
    row("baseline: mqtt:// + http://", plain);
    row("mqtts:// + https://", tls);
    println!("    (TLS devices log in with {who})");
    print_enrollment_and_ratio(devices, plain, tls);
}

fn print_enrollment_and_ratio(devices: usize, plain: &Pass, tls: &Pass) {
    if let Some(s) = tls.enrolled {
        println!(
            "  enrolling {devices} devices (key, CSR, POST /devices/{{id}}/certificate; 16 at once per simulator): {s:.2} s ({:.1} ms each)",
            s * 1000.0 / devices as f64
        );
    }
    let ratio = |f: fn(&Pass) -> f64| f(tls) / f(plain);
    println!(
        "  ratio TLS / cleartext: rollout {:.2}×, server CPU {:.2}×, server peak RSS {:.2}×",
        ratio(|p| p.wave.done.as_secs_f64()),
        ratio(|p| p.wave.server_cpu),
        ratio(|p| p.wave.server_peak)
    );
}
