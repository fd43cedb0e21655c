//! `fleet-agent simulate`: N virtual devices in one process on the real code path — each
//! with its own MQTT connection, confirmation, download, verification, and install into
//! scratch slot files — for load tests and demos (CONTRACT §6).
//!
//! Injected failures pick devices by a documented function of the device id, so the same
//! devices fail every run and tests can compute which: see [`picked`].

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet_protocol::paths;
use fleet_protocol::topic::Topics;
use fleet_protocol::{DeviceId, HardwareModel, Sha256Digest};
use futures_util::{StreamExt as _, stream};
use tokio_util::sync::CancellationToken;

use crate::config::{broker, read_token, server_url, verifier, warn_if_cleartext};
use crate::device::{Device, HealthCheck, Injected};
use crate::install::ab::AbSlots;
use crate::install::config_file::ConfigTarget;
use crate::runner::Runner;

/// The flags of `fleet-agent simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    #[arg(long)]
    pub count: usize,
    #[arg(long, env = "FLEET_AGENT_SERVER")]
    pub server: String,
    #[arg(long, env = "FLEET_AGENT_MQTT_URL")]
    pub mqtt_url: String,
    /// CA certificate(s) (PEM) for https:// and mqtts:// (default: the system's roots).
    #[arg(long, env = "FLEET_AGENT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    #[arg(long, required = true)]
    pub trust: Vec<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub threshold: usize,
    /// The operator token, to register devices that don't exist yet.
    #[arg(long)]
    pub operator_token_file: PathBuf,
    #[arg(long, default_value = "sim-")]
    pub prefix: String,
    #[arg(long, default_value = "sim")]
    pub hardware: String,
    #[arg(long, default_value = "fleet-sim")]
    pub state_dir: PathBuf,
    /// Share of devices whose install fails (`failed`/`install_failed`).
    #[arg(long, default_value_t = 0.0)]
    pub fail_ratio: f64,
    /// Share of devices whose health check fails (`rolled_back`/`health_check_failed`).
    #[arg(long, default_value_t = 0.0)]
    pub health_fail_ratio: f64,
    #[arg(long, default_value = "fleet")]
    pub topic_root: String,
    /// TEST ONLY: pause after each downloaded chunk.
    #[arg(long, env = "FLEET_AGENT_TEST_DOWNLOAD_DELAY_MS", hide = true, default_value_t = 0)]
    pub test_download_delay_ms: u64,
}

/// Whether a failure with probability `ratio` is injected into `device_id`: the first
/// 8 bytes of SHA-256(`salt` + device id), read big-endian, are below `ratio` · 2^64.
/// Install failures use the salt `""`, health-check failures `"health/"`.
pub fn picked(salt: &str, device_id: &str, ratio: f64) -> bool {
    let digest = Sha256Digest::of(format!("{salt}{device_id}").as_bytes());
    let head = u64::from_be_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes"));
    u128::from(head) < (ratio.clamp(0.0, 1.0) * 18_446_744_073_709_551_616.0) as u128
}

/// Registers `id` unless its token is already kept in `dir`; returns the token.
async fn ensure_registered(
    http: &reqwest::Client,
    server: &reqwest::Url,
    operator: &str,
    id: &str,
    hardware: &str,
    dir: &Path,
) -> anyhow::Result<String> {
    let token_file = dir.join("token");
    if let Ok(token) = read_token(&token_file) {
        return Ok(token);
    }
    let base = server.as_str();
    let body = serde_json::json!({"id": id, "hardware": hardware, "labels": {"simulated": "true"}});
    let mut response = http.post(paths::api_url(base, paths::DEVICES)).bearer_auth(operator).json(&body).send().await?;
    if response.status() == reqwest::StatusCode::CONFLICT {
        // Registered by an earlier run whose state dir is gone: issue a new token.
        response = http.post(paths::api_url(base, &paths::device_token(id))).bearer_auth(operator).send().await?;
    }
    if !response.status().is_success() {
        bail!("registering {id}: {} {}", response.status(), response.text().await.unwrap_or_default());
    }
    let value: serde_json::Value = response.json().await?;
    let token = value["token"].as_str().context("no token in the answer")?.to_owned();
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&token_file)?;
    std::io::Write::write_all(&mut f, token.as_bytes())?;
    Ok(token)
}

/// Runs the simulation until `shutdown`.
pub async fn simulate(args: SimulateArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let server = server_url(&args.server)?;
    let verifier = verifier(&args.trust, args.threshold)?;
    let operator = read_token(&args.operator_token_file)?;
    let hardware = HardwareModel::parse(args.hardware.as_str()).context("--hardware")?;
    let http = crate::update::download::http_client(args.ca_file.as_deref())?;
    let broker = broker(&args.mqtt_url, args.ca_file.as_deref())?;
    warn_if_cleartext(&server, &broker.url);

    let ids: Vec<String> = (0..args.count).map(|i| format!("{}{i}", args.prefix)).collect();
    let tokens: Vec<(String, anyhow::Result<String>)> = stream::iter(ids)
        .map(|id| {
            let (http, server, operator, dir) = (&http, &server, &operator, args.state_dir.join(&id));
            let hardware = args.hardware.as_str();
            async move {
                let token = ensure_registered(http, server, operator, &id, hardware, &dir).await;
                (id, token)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let (online_tx, mut online_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    for (id, token) in tokens {
        let token = token?;
        let dir = args.state_dir.join(&id);
        let injected = Injected {
            install_fails: picked("", &id, args.fail_ratio),
            health_fails: picked("health/", &id, args.health_fail_ratio),
        };
        let device = Device {
            id: DeviceId::parse(id.as_str()).context("--prefix makes invalid device ids")?,
            token,
            hardware: hardware.clone(),
            server: server.clone(),
            verifier: verifier.clone(),
            topics: Topics::new(args.topic_root.clone()),
            mqtt_host: String::new(),
            mqtt_port: 0,
            mqtt_tls: None,
            durable: false,
            health: HealthCheck::Reconnect { timeout: Duration::from_secs(120) },
            config: ConfigTarget {
                path: dir.join("config/current"),
                reload: None,
                timeout: Duration::from_secs(60),
                mode: None,
            },
            state_dir: dir.clone(),
            injected,
            clock_offset_s: 0,
            download_delay: Duration::from_millis(args.test_download_delay_ms),
        }
        .with_broker(&broker);
        let slots = AbSlots::new(dir.join("slots"), false)?;
        let runner = Runner::new(device, slots, http.clone())?.with_online_signal(online_tx.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = runner.run(stop).await {
                tracing::error!("{id}: {e:#}");
            }
        });
    }
    drop(online_tx);

    let mut online = 0;
    while online < args.count {
        tokio::select! {
            () = shutdown.cancelled() => break,
            up = online_rx.recv() => match up {
                Some(()) => online += 1,
                None => break,
            },
        }
    }
    if online == args.count {
        println!("online: {online}");
    }
    shutdown.cancelled().await;
    while tasks.join_next().await.is_some() {}
    Ok(())
}
