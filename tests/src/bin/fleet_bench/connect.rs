//! Benchmark: devices connecting to the embedded broker with their own credentials, over
//! mqtts:// (TLS ended in the broker's gate with `--tls-self-signed`'s certificate) beside
//! cleartext mqtt:// to the same server in the same run (the baseline). The figures:
//! connections let in per second, and the server's CPU time per connection, whose
//! difference is the cost of a TLS handshake on the server.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use rumqttc::v5::{AsyncClient, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};

use crate::server::{Backends, Server, cpu_seconds};

/// One pass: every device connects (at most `concurrency` handshakes at once).
struct Pass {
    took: Duration,
    cpu_s: f64,
}

pub async fn connect(devices: usize, concurrency: usize) -> anyhow::Result<()> {
    let server = Server::start_with(&Backends::default(), true).await?;
    let (mqtts, ca) = server.mqtts.clone().expect("a TLS server");
    let credentials = server.register("c-", devices).await?;
    eprintln!("connect: {devices} devices registered");
    let plain = pass(&server, &server.mqtt_url, None, &credentials, concurrency).await?;
    let tls = pass(&server, &mqtts, Some(&ca), &credentials, concurrency).await?;
    let rate = |p: &Pass| devices as f64 / p.took.as_secs_f64();
    let cpu_ms = |p: &Pass| p.cpu_s * 1000.0 / devices as f64;
    println!("MQTT connects: {devices} devices, own credentials, {concurrency} at once, embedded broker");
    println!(
        "  mqtts:// (TLS 1.3, ECDSA P-256)  {:>8.0} connects/s ({:.2} s), server CPU {:.3} ms each",
        rate(&tls),
        tls.took.as_secs_f64(),
        cpu_ms(&tls)
    );
    println!(
        "  baseline mqtt:// (cleartext)     {:>8.0} connects/s ({:.2} s), server CPU {:.3} ms each",
        rate(&plain),
        plain.took.as_secs_f64(),
        cpu_ms(&plain)
    );
    println!(
        "  ratio                            {:>8.2}×; TLS handshake ≈ {:.3} ms of server CPU per device",
        rate(&tls) / rate(&plain),
        cpu_ms(&tls) - cpu_ms(&plain)
    );
    Ok(())
}

async fn pass(
    server: &Server,
    url: &str,
    ca: Option<&Path>,
    credentials: &[(String, String)],
    concurrency: usize,
) -> anyhow::Result<Pass> {
    let url = fleet_protocol::topic::parse_broker_url(url)?;
    let tls = match ca {
        Some(ca) => Some(Arc::new(fleet_protocol::tls::client_config(Some(ca))?)),
        None => None,
    };
    let cpu_before = cpu_seconds(server.pid());
    let started = Instant::now();
    let clients: Vec<anyhow::Result<AsyncClient>> = futures_util::stream::iter(credentials)
        .map(|(id, token)| {
            let mut options = MqttOptions::new(id, &url.host, url.port);
            // rumqttc keeps a slot per possible in-flight publish (65,535 by default, ~10 MiB).
            options
                .set_credentials(id, token)
                .set_keep_alive(Duration::from_secs(60))
                .set_outgoing_inflight_upper_limit(64);
            if let Some(tls) = &tls {
                options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
            }
            crate::broker::connected(options)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let took = started.elapsed();
    let cpu_s = cpu_seconds(server.pid()) - cpu_before;
    for client in clients {
        let _ = client?.disconnect().await;
    }
    // Let the broker close the sessions before the next pass takes the same client ids.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Pass { took, cpu_s })
}
