//! Benchmark 5: status ingest capacity. Registered devices, each with its own MQTT
//! connection and credentials, report a rollout's download progress and then success as
//! fast as the broker takes them; the figure is reports applied (committed to the
//! database) per second. Baseline: the same number of QoS 1 messages from the same
//! number of connections to one subscriber through the same broker software.

use std::time::{Duration, Instant};

use fleet_protocol::message::StatusReport;
use fleet_protocol::state::DeviceState;
use fleet_protocol::topic::Topics;
use fleet_protocol::{DeviceId, RolloutId};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};

use crate::broker::Baseline;
use crate::server::{Backends, Server, count, memory_mib, sample_value};

pub async fn ingest(devices: usize, reports: usize, backends: Backends) -> anyhow::Result<()> {
    anyhow::ensure!(reports >= 2, "--reports must be at least 2 (progress, then success)");
    let server = Server::start(&backends).await?;
    let fw = server.firmware(vec![7u8; 4096]).await?;
    let credentials = server.register("i-", devices).await?;
    eprintln!("ingest: {devices} devices registered");
    let rollout = server.rollout(&fw).await?;
    server.poll_rollout(&rollout, Duration::from_secs(300), |_, _| {}, |b| count(b, "pending") == 0).await?;

    let topics = Topics::new(backends.topic_root());
    let mut clients = Vec::with_capacity(devices);
    for (id, token) in &credentials {
        let topic = topics.status(&DeviceId::parse(id.as_str())?);
        clients.push((connect(&server.mqtt_url, id, token).await?, topic));
    }
    eprintln!("ingest: every device connected with its own credentials");
    let rollout_id = RolloutId::parse(rollout.as_str())?;
    let before = server.metrics().await?;
    let started = Instant::now();
    let mut sending = tokio::task::JoinSet::new();
    for (client, topic) in &clients {
        let (client, topic, rollout_id) = (client.clone(), topic.clone(), rollout_id.clone());
        sending.spawn(async move {
            for seq in 1..=reports as u64 {
                let last = seq == reports as u64;
                let report = StatusReport {
                    rollout_id: Some(rollout_id.clone()),
                    state: if last { DeviceState::Succeeded } else { DeviceState::Downloading },
                    progress: (!last).then_some((seq * 100 / reports as u64) as u8),
                    reason: None,
                    seq,
                    connect: false,
                    hardware: None,
                    firmware: None,
                    config: None,
                    trust_version: None,
                };
                let payload = serde_json::to_vec(&report).expect("serialises");
                client.publish(topic.clone(), QoS::AtLeastOnce, false, payload).await?;
            }
            Ok::<_, rumqttc::v5::ClientError>(())
        });
    }
    while let Some(sent) = sending.join_next().await {
        sent??;
    }
    eprintln!("ingest: every report published");
    let total = (devices * reports) as f64;
    let applied = loop {
        let now = server.metrics().await?;
        let applied =
            sample_value(&now, "fleet_reports_applied_total") - sample_value(&before, "fleet_reports_applied_total");
        let ignored = ignored_total(&now) - ignored_total(&before);
        if applied + ignored >= total {
            anyhow::ensure!(ignored == 0.0, "{ignored} reports were ignored");
            break applied;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "only {applied} of {total} reports applied");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = started.elapsed();
    let body = server.client.get_rollout(&rollout).await?;
    anyhow::ensure!(count(&body, "succeeded") == devices as u64, "not every device succeeded: {body:#?}");
    let (server_peak, _) = memory_mib(server.pid());
    for (client, _) in clients {
        let _ = client.disconnect().await;
    }
    drop(server);
    let baseline = Baseline::start(&backends).await?.pass(devices, devices * reports).await?.time;
    let (ours, theirs) = (applied / took.as_secs_f64(), total / baseline.as_secs_f64());
    println!("status ingest: {devices} devices × {reports} reports (progress, then success), {}", backends.describe());
    println!("  reports applied          {applied:>9.0} in {:.2} s", took.as_secs_f64());
    println!("  sustained                {ours:>9.0} reports/s");
    println!("  server peak RSS          {server_peak:>9.1} MiB");
    println!(
        "  baseline: the same {total:.0} QoS 1 messages, {devices} connections → one subscriber, same broker software"
    );
    println!("                           {theirs:>9.0} messages/s ({:.2} s)", baseline.as_secs_f64());
    println!("  ratio                    {:>9.2}×", ours / theirs);
    Ok(())
}

fn ignored_total(scrape: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with("fleet_reports_ignored_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A device's own MQTT session (client id = username = device id, password = token).
async fn connect(url: &str, id: &str, token: &str) -> anyhow::Result<AsyncClient> {
    let url = fleet_protocol::topic::parse_broker_url(url)?;
    let mut options = MqttOptions::new(id, url.host, url.port);
    // rumqttc keeps a slot per possible in-flight publish (65,535 by default, ~10 MiB).
    options.set_credentials(id, token).set_keep_alive(Duration::from_secs(60)).set_outgoing_inflight_upper_limit(64);
    crate::broker::connected(options).await
}
