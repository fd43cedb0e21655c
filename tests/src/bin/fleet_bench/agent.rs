//! Benchmark 4: the agent. One real `fleet-agent run` process takes a rollout of a large
//! image (download, size and SHA-256 checked while streaming, signature, install into the
//! inactive A/B slot, health check, commit); baseline: SHA-256 of the same bytes in-process.
//! Also its idle and peak RSS, the stripped binary's size, and the memory each device adds
//! to `fleet-agent simulate`.

use std::time::{Duration, Instant};

use fleet_protocol::DeviceId;
use fleet_tests::agent::{AgentProcess, AgentSetup};
use fleet_tests::samples_dir;

use crate::rollout::start_simulators;
use crate::server::{Backends, Server, count, memory_mib, scratch_dir, sibling};
use crate::transfer::{hash_rate, write_file};

pub async fn agent(size: u64, simulated: usize, binary: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let server = Server::start(&Backends::default()).await?;
    let dir = tempfile::tempdir()?;
    let image = dir.path().join("image.bin");
    let fw = server.firmware_file(&image, size, write_file(&image, size).await?).await?;
    let device = server.client.add_device("agent-bench", "sim", &Default::default()).await?;
    let binary = match binary {
        Some(path) => std::fs::canonicalize(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => sibling("fleet-agent-under-test"),
    };
    let setup = AgentSetup {
        id: DeviceId::parse("agent-bench")?,
        token: device.token,
        hardware: "sim".into(),
        server: server.base.clone(),
        mqtt_url: server.mqtt_url.clone(),
        trust: samples_dir().join("test-only-release.pub"),
        state_dir: dir.path().join("agent"),
        extra: vec![],
        env: vec![],
    };
    let process = AgentProcess::spawn(binary.to_str().expect("utf-8"), &setup);
    let online = Instant::now();
    while !server.client.get_device("agent-bench").await?.online {
        anyhow::ensure!(online.elapsed() < Duration::from_secs(30), "the agent never came online:\n{}", process.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, idle) = memory_mib(process.pid());

    let started = Instant::now();
    let rollout = server.rollout(&fw).await?;
    let body = server
        .poll_rollout(&rollout, Duration::from_secs(600), |_, _| {}, |b| b.state == "completed")
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}", process.log()))?;
    let took = started.elapsed();
    anyhow::ensure!(count(&body, "succeeded") == 1, "the update did not succeed: {body:#?}\n{}", process.log());
    let (peak, _) = memory_mib(process.pid());
    let stages = report_times(&process.log());
    drop(process);
    let hash = hash_rate(&image)? / 1e3;
    let rate = size as f64 / took.as_secs_f64() / 1e9;
    let per_device = simulated_device_kib(&server, scratch_dir()?.path(), simulated).await?;

    println!(
        "agent: one `fleet-agent run` ({}), a {} MiB firmware by rollout, embedded broker + SQLite",
        binary.display(),
        size >> 20
    );
    println!(
        "  command → succeeded        {rate:>7.2} GB/s  ({:.2} s: download, verify, install, commit)",
        took.as_secs_f64()
    );
    let span = |from: &str, to: &str| Some(stages.get(to)? - stages.get(from)?);
    // Firmware streams into the slot while it downloads: the install stage is what is left.
    for (label, from, to, moves_the_image) in [
        ("download into the slot, SHA-256, fsync", "downloading", "verifying", true),
        ("install (what is left)                ", "installing", "rebooting", false),
        ("reboot, health, commit                ", "rebooting", "succeeded", false),
    ] {
        match span(from, to) {
            Some(s) if moves_the_image => println!("    {label} {s:>6.2} s  ({:.2} GB/s)", size as f64 / s / 1e9),
            Some(s) => println!("    {label} {s:>6.2} s"),
            None => println!("    {label} (not in the agent's log)"),
        }
    }
    println!("  baseline: sha2 in-process  {hash:>7.2} GB/s");
    println!("  ratio                      {:>7.2}×", rate / hash);
    println!("  RSS idle / peak            {idle:>7.1} / {peak:.1} MiB");
    match stripped_size(&binary).await {
        Some(bytes) => println!("  stripped binary            {:>7.1} MB", bytes as f64 / 1e6),
        None => println!("  stripped binary: `strip` is not installed here; skipped"),
    }
    println!(
        "  simulate: memory per device {per_device:>6.1} KiB (RSS with {simulated} devices minus with 1, per device)"
    );
    Ok(())
}

/// When the agent first reported each state, in seconds, from its log lines
/// `<RFC 3339 time>  INFO fleet_agent::runner: report state=<state> …`.
fn report_times(log: &str) -> std::collections::HashMap<String, f64> {
    let mut first = std::collections::HashMap::new();
    for line in log.lines() {
        let (Some(at), Some(rest)) = (line.split_whitespace().next(), line.split_once(" report state=")) else {
            continue;
        };
        let state = rest.1.split_whitespace().next().unwrap_or_default();
        if let Ok(t) = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339) {
            first.entry(state.to_owned()).or_insert((t - time::OffsetDateTime::UNIX_EPOCH).as_seconds_f64());
        }
    }
    first
}

/// The size of a stripped copy of `binary`, if binutils' `strip` is present.
async fn stripped_size(binary: &std::path::Path) -> Option<u64> {
    let dir = tempfile::tempdir().ok()?;
    let out = dir.path().join("fleet-agent");
    let status = tokio::process::Command::new("strip").arg("-o").arg(&out).arg(binary).status().await.ok()?;
    status.success().then(|| std::fs::metadata(&out).ok().map(|m| m.len()))?
}

/// What one more simulated device costs: the simulator's RSS with `count` online devices
/// minus its RSS with one, divided by `count - 1`.
async fn simulated_device_kib(server: &Server, dir: &std::path::Path, count: usize) -> anyhow::Result<f64> {
    let mut rss = vec![];
    for n in [1, count.max(2)] {
        let sims = start_simulators(
            server,
            &Backends::default(),
            &dir.join(format!("sim-{n}")),
            &format!("m{n}-"),
            n,
            n,
            Default::default(),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(memory_mib(sims[0].pid()).1);
        for sim in sims {
            sim.stop().await;
        }
    }
    Ok((rss[1] - rss[0]) * 1024.0 / (count.max(2) - 1) as f64)
}
