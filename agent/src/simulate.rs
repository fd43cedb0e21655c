//! `fleet-agent simulate`: N virtual devices in one process on the real code path — each
//! with its own MQTT connection, confirmation, download, verification, and install into
//! scratch slot files — for load tests and demos (CONTRACT §6).
//!
//! - [`tokens`]: each device's token, kept in the state dir and checked before use.
//! - [`progress`]: counting devices online, printing progress, giving up when stuck.
//! - [`budget`]: the open-files limit raised, and a count that cannot fit refused at start.
//! - [`certificates`]: with `--certificates`, each device enrolls and logs in with its own
//!   certificate instead of its token.
//!
//! All devices share one HTTP client and pool, and at most `--http-connections` of their
//! requests are under way at once ([`crate::http`]); the rest wait their turn.
//!
//! Injected failures pick devices by a documented function of the device id, so the same
//! devices fail every run and tests can compute which: see [`picked`].

pub mod budget;
pub mod certificates;
mod progress;
pub mod tokens;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet_protocol::topic::Topics;
use fleet_protocol::{DeviceId, HardwareModel, Sha256Digest};
use futures_util::{StreamExt as _, stream};
use tokio_util::sync::CancellationToken;

use crate::config::{broker, read_token, server_url, verifier, warn_if_cleartext};
use crate::device::{Device, HealthCheck, Injected};
use crate::install::ab::AbSlots;
use crate::install::config_file::ConfigTarget;
use crate::runner::Runner;
use tokens::{DeviceToken, Origin, Registrar, TokenError};

/// The flags of `fleet-agent simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// How many virtual devices to run.
    #[arg(long)]
    pub count: usize,
    /// Server base URL (e.g. http://127.0.0.1:8080).
    #[arg(long, env = "FLEET_AGENT_SERVER")]
    pub server: String,
    /// The broker, mqtt://HOST:PORT or mqtts://HOST:PORT.
    #[arg(long, env = "FLEET_AGENT_MQTT_URL")]
    pub mqtt_url: String,
    /// CA certificate(s) (PEM) for https:// and mqtts:// (default: the system's roots).
    #[arg(long, env = "FLEET_AGENT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// A trusted release key (PEM public key); repeatable.
    #[arg(long, required_unless_present = "trust_root")]
    pub trust: Vec<PathBuf>,
    /// The pinned trust document (as `run --trust-root`); every virtual device starts from it.
    #[arg(long)]
    pub trust_root: Option<PathBuf>,
    /// Signatures by this many trusted keys are required.
    #[arg(long, default_value_t = 1)]
    pub threshold: usize,
    /// File holding an operator token, to register devices the server does not know.
    #[arg(long)]
    pub operator_token_file: PathBuf,
    /// Device ids are this prefix and a number from 0.
    #[arg(long, default_value = "sim-")]
    pub prefix: String,
    /// The hardware model the devices register and report.
    #[arg(long, default_value = "sim")]
    pub hardware: String,
    /// Where each device keeps its token, journal and slot files (one directory per device).
    #[arg(long, default_value = "fleet-sim")]
    pub state_dir: PathBuf,
    /// Share of devices whose install fails (`failed`/`install_failed`).
    #[arg(long, default_value_t = 0.0)]
    pub fail_ratio: f64,
    /// Share of devices whose health check fails (`rolled_back`/`health_check_failed`).
    #[arg(long, default_value_t = 0.0)]
    pub health_fail_ratio: f64,
    /// The MQTT topic root (the server's --topic-root).
    #[arg(long, default_value = "fleet")]
    pub topic_root: String,
    /// Give up when no further device has come online for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub connect_timeout: u64,
    /// HTTP requests under way at once, shared by all devices (one pool; the rest wait
    /// their turn). Each is an open file beside the devices' MQTT connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub http_connections: u16,
    /// Each device enrolls (`fleet-agent enroll`) and then logs in with its certificate on
    /// mqtts:// and https://, as `run --client-cert --client-key` (CONTRACT §12).
    #[arg(long)]
    pub certificates: bool,
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

/// Runs the simulation until `shutdown`; fails when a device cannot be used or the devices
/// do not all come online (see [`progress`]).
pub async fn simulate(args: SimulateArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let needs = budget::Needs::of(args.count, args.http_connections.into());
    budget::reserve(if args.certificates { needs.with_own_pools() } else { needs })?;
    let server = server_url(&args.server)?;
    let verifier = match &args.trust_root {
        Some(_) if args.trust.is_empty() => fleet_protocol::Verifier::new([], 1),
        _ => verifier(&args.trust, args.threshold)?,
    };
    let operator = read_token(&args.operator_token_file)?;
    let hardware = HardwareModel::parse(args.hardware.as_str()).context("--hardware")?;
    let client = crate::update::download::http_client(args.ca_file.as_deref())?;
    let http = crate::http::Http::gated(client, args.http_connections.into());
    let broker = broker(&args.mqtt_url, args.ca_file.as_deref())?;
    warn_if_cleartext(&server, &broker.url);

    let ids: Vec<String> = (0..args.count).map(|i| format!("{}{i}", args.prefix)).collect();
    for id in &ids {
        DeviceId::parse(id.as_str()).with_context(|| format!("--prefix makes the invalid device id {id:?}"))?;
    }
    let registrar = Registrar { http: &http, server: &server, operator: &operator, hardware: &args.hardware };
    let tokens = device_tokens(&registrar, ids, &args.state_dir).await?;
    let setup = certificates::Setup {
        certificates: args.certificates,
        http: &http,
        server: &server,
        mqtt_url: &args.mqtt_url,
        ca_file: args.ca_file.as_deref(),
        broker: &broker,
        state_dir: &args.state_dir,
    };
    let logins = certificates::logins(setup, tokens).await?;

    let expected = logins.iter().map(|(id, _)| id.clone()).collect();
    let stop = shutdown.child_token();
    let (online_tx, online_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    let shared = Shared { args: &args, hardware: &hardware, server: &server, verifier: &verifier };
    for (id, login) in logins {
        let dir = args.state_dir.join(&id);
        let device = shared.device(&id, &login, &dir)?.with_broker(&login.broker);
        let slots = AbSlots::new(dir.join("slots"), false)?;
        let runner = Runner::new(device, slots, login.http)?.with_online_signal(online_tx.clone());
        let stop = stop.clone();
        tasks.spawn(async move {
            if let Err(e) = runner.run(stop).await {
                tracing::error!("{id}: {e:#}");
            }
        });
    }
    drop(online_tx);

    let limit = Duration::from_secs(args.connect_timeout);
    let waited = progress::wait_online(expected, online_rx, limit, &shutdown).await;
    if waited.is_err() {
        stop.cancel();
    }
    stop.cancelled().await;
    while tasks.join_next().await.is_some() {}
    let mqtt_url = &args.mqtt_url;
    waited.map_err(|stuck| anyhow::anyhow!("{stuck}; is --mqtt-url {mqtt_url} the broker of --server {server}?"))
}

/// What every virtual device is made from.
struct Shared<'a> {
    args: &'a SimulateArgs,
    hardware: &'a HardwareModel,
    server: &'a reqwest::Url,
    verifier: &'a fleet_protocol::Verifier,
}

impl Shared<'_> {
    /// Device `id` with its login and its state in `dir`, its failures picked by the ratios.
    fn device(&self, id: &str, login: &certificates::Login, dir: &std::path::Path) -> anyhow::Result<Device> {
        let args = self.args;
        Ok(Device {
            id: DeviceId::parse(id).context("--prefix makes invalid device ids")?,
            token: login.token.clone(),
            hardware: self.hardware.clone(),
            server: self.server.clone(),
            verifier: self.verifier.clone(),
            trust_root: args.trust_root.clone(),
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
            state_dir: dir.to_owned(),
            client_cert: login.client_cert.clone(),
            injected: Injected {
                install_fails: picked("", id, args.fail_ratio),
                health_fails: picked("health/", id, args.health_fail_ratio),
            },
            clock_offset_s: 0,
            download_delay: Duration::from_millis(args.test_download_delay_ms),
        })
    }
}

/// Every device's token, checked or made (16 requests at a time); says which kept tokens
/// were refused, and fails naming the devices that cannot be used.
async fn device_tokens(
    registrar: &Registrar<'_>,
    ids: Vec<String>,
    state_dir: &std::path::Path,
) -> anyhow::Result<Vec<(String, DeviceToken)>> {
    let results: Vec<(String, Result<DeviceToken, TokenError>)> = stream::iter(ids)
        .map(|id| async move {
            let token = registrar.token(&id, &state_dir.join(&id)).await;
            (id, token)
        })
        .buffered(16)
        .collect()
        .await;
    let (mut tokens, mut replaced, mut unusable) = (Vec::new(), Vec::new(), Vec::new());
    for (id, result) in results {
        match result {
            Ok(token) => {
                if token.origin == Origin::Replaced {
                    replaced.push(id.clone());
                }
                tokens.push((id, token));
            }
            Err(e @ TokenError::OperatorRefused(_)) => bail!("{e}"),
            Err(e) => unusable.push(e.to_string()),
        }
    }
    if !replaced.is_empty() {
        println!(
            "the server refused the kept token of {} device(s) (a state dir from another server?); registered them anew: {}",
            replaced.len(),
            progress::some_of(&replaced)
        );
    }
    if !unusable.is_empty() {
        for reason in unusable.iter().take(10) {
            eprintln!("fleet-agent simulate: cannot use {reason}");
        }
        bail!("cannot use {} of the {} devices (see above)", unusable.len(), unusable.len() + tokens.len());
    }
    Ok(tokens)
}
