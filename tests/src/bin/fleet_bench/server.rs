//! The release server under measurement, and what every benchmark reads off processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fleet_cli::ApiClient;
use fleet_protocol::api::Rollout;
use fleet_protocol::{ArtifactKind, HardwareModel, Sha256Digest};
use fleet_tests::mosquitto::Mosquitto;
use fleet_tests::{ADMIN_TOKEN, manifest_for, release_key, sign};

use crate::mosquitto_tls::MosquittoTls;

/// A binary built beside this one.
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe().expect("own path").with_file_name(name)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Where simulated devices keep their files: tmpfs (`/dev/shm`) when the machine has it,
/// so the load generator's churn of small files measures neither the disk nor ext4's inode
/// allocator (on this machine it cost 5× the rollout's time); the server's own data
/// directory stays on disk.
pub fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }
}

/// Peak and current resident memory of a process, in MiB.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    };
    (field("VmHWM:").unwrap_or(0.0) / 1024.0, field("VmRSS:").unwrap_or(0.0) / 1024.0)
}

/// CPU time a process has used so far (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// The CPU seconds in one `/proc/…/stat` line, of a process or of a thread.
pub fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the command name (which may hold spaces): state is the 3rd field;
    // utime and stime are the 14th and 15th, in clock ticks of 1/100 s on Linux.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The value of one OpenMetrics series (`name` or `name{labels}`) in a scrape.
pub fn sample_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap_or(0.0))
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Where the server under measurement keeps its state and talks MQTT.
#[derive(Debug, Default, Clone)]
pub struct Backends {
    /// PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
    /// An external broker (e.g. Mosquitto) instead of the embedded one.
    pub mqtt_url: Option<String>,
    /// A Mosquitto of the bench's own, with per-device isolation (the server writes its
    /// password and ACL files) and the queue settings docs/brokers.md recommends.
    pub mosquitto: bool,
}

impl Backends {
    /// The topic root on an external broker, so runs never see each other's messages.
    pub fn topic_root(&self) -> String {
        match self.mqtt_url {
            Some(_) => format!("bench{}", std::process::id()),
            None => "fleet".into(),
        }
    }

    pub fn describe(&self) -> String {
        let broker = match (&self.mqtt_url, self.mosquitto) {
            (_, true) => "Mosquitto with isolation",
            (Some(_), false) => "external broker",
            (None, false) => "embedded broker",
        };
        let store = if self.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
        format!("{broker} + {store}")
    }
}

/// A release server on free ports with a data directory of its own.
pub struct Server {
    child: tokio::process::Child,
    pub client: ApiClient,
    pub base: String,
    pub mqtt_url: String,
    /// With TLS (`--tls-self-signed`): the broker's mqtts:// URL (the embedded broker's or
    /// Mosquitto's) and the CA file devices trust (on Mosquitto, the server's CA and the
    /// broker's in one file).
    pub mqtts: Option<(String, PathBuf)>,
    http: reqwest::Client,
    _mosquitto: Option<Mosquitto>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(backends: &Backends) -> anyhow::Result<Self> {
        Self::start_with(backends, false).await
    }

    /// With `tls`: `--tls-self-signed`, HTTPS and mqtts:// (on the embedded broker, or on
    /// Mosquitto with device certificates).
    pub async fn start_with(backends: &Backends, tls: bool) -> anyhow::Result<Self> {
        Self::start_limited(backends, tls, None).await
    }

    /// [`Server::start_with`] under `prlimit --nofile=N:N` (the open-files limit, soft and
    /// hard, as a service's `LimitNOFILE=N`) when `open_files` is given.
    pub async fn start_limited(backends: &Backends, tls: bool, open_files: Option<u64>) -> anyhow::Result<Self> {
        anyhow::ensure!(!tls || backends.mqtt_url.is_none(), "TLS is measured on the embedded broker or Mosquitto");
        let dir = tempfile::tempdir()?;
        let (http, mqtt, mqtts) = (free_port(), free_port(), free_port());
        let binary = sibling("fleet-server-under-test");
        let mut cmd = match open_files {
            // prlimit sets the limits and then runs the server in its own process (same pid).
            Some(n) => {
                let mut prlimit = tokio::process::Command::new("prlimit");
                prlimit.arg(format!("--nofile={n}:{n}")).arg("--").arg(binary);
                prlimit
            }
            None => tokio::process::Command::new(binary),
        };
        // FLEET_BENCH_SERVER_LOG (e.g. `warn,sqlx::query=debug`) to look inside while
        // profiling; the log then goes to fleet-bench-server.log in the working directory.
        let custom_log = std::env::var("FLEET_BENCH_SERVER_LOG").ok();
        let log = custom_log.clone().unwrap_or_else(|| "warn".into());
        let stdout = match custom_log {
            Some(_) => Stdio::from(std::fs::File::create("fleet-bench-server.log")?),
            None => Stdio::null(),
        };
        cmd.args(["--listen", &format!("127.0.0.1:{http}"), "--embedded-broker", &format!("127.0.0.1:{mqtt}")])
            .args(["--data-dir", dir.path().to_str().expect("utf-8"), "--log", &log])
            .env("FLEET_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(stdout)
            .kill_on_drop(true);
        if let Some(url) = &backends.database_url {
            cmd.args(["--database-url", url]);
        }
        if tls {
            cmd.arg("--tls-self-signed");
        }
        if tls && !backends.mosquitto {
            cmd.args(["--embedded-broker-tls", &format!("127.0.0.1:{mqtts}")]);
        }
        if let Some(url) = &backends.mqtt_url {
            cmd.args(["--mqtt-url", url, "--topic-root", &backends.topic_root()]);
        }
        let (mosquitto, mosquitto_tls) = start_mosquitto(backends, tls, dir.path(), &mut cmd)?;
        let child = cmd.spawn()?;
        let ca = dir.path().join("tls/ca.crt");
        fleet_protocol::tls::install_default_provider();
        let (base, http_client) = if tls {
            for _ in 0..400 {
                if ca.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let root = reqwest::Certificate::from_pem(&std::fs::read(&ca)?)?;
            (format!("https://127.0.0.1:{http}"), reqwest::Client::builder().add_root_certificate(root).build()?)
        } else {
            (format!("http://127.0.0.1:{http}"), reqwest::Client::new())
        };
        let client = ApiClient::trusting(&base, ADMIN_TOKEN, tls.then_some(ca.as_path()))?;
        // Ready = database answers and the MQTT client is connected.
        for _ in 0..400 {
            let ready = http_client.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.health().await?;
        let mqtt_url = match (&mosquitto, &backends.mqtt_url) {
            (Some(m), _) => m.url(),
            (None, Some(url)) => url.clone(),
            (None, None) => format!("mqtt://127.0.0.1:{mqtt}"),
        };
        let mqtts = match (&mosquitto, mosquitto_tls) {
            (Some(m), Some(certs)) => Some((m.tls_url(), certs.device_bundle(&ca, dir.path())?)),
            _ => tls.then(|| (format!("mqtts://127.0.0.1:{mqtts}"), ca)),
        };
        let http = http_client;
        Ok(Self { child, client, base, mqtt_url, mqtts, http, _mosquitto: mosquitto, _dir: dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// The process id of the bench's Mosquitto, when the server runs on one.
    pub fn broker_pid(&self) -> Option<u32> {
        self._mosquitto.as_ref().map(Mosquitto::pid)
    }

    pub async fn metrics(&self) -> anyhow::Result<String> {
        let r = self.http.get(format!("{}/metrics", self.base)).bearer_auth(ADMIN_TOKEN).send().await?;
        Ok(r.text().await?)
    }

    /// Registers `count` devices of hardware `sim` named `{prefix}{i}` (16 at a time);
    /// returns each one's id and token.
    pub async fn register(&self, prefix: &str, count: usize) -> anyhow::Result<Vec<(String, String)>> {
        use futures_util::StreamExt as _;
        let registered: Vec<_> = futures_util::stream::iter(0..count)
            .map(|i| {
                let client = self.client.clone();
                async move { client.add_device(&format!("{prefix}{i}"), "sim", &Default::default()).await }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut credentials = Vec::with_capacity(count);
        for device in registered {
            let device = device?;
            credentials.push((device.device.id.to_string(), device.token));
        }
        Ok(credentials)
    }

    /// Registers the release key (once) and signs a firmware manifest for hardware `sim` of
    /// `size` bytes with `digest`.
    pub async fn envelope(&self, size: u64, digest: Sha256Digest) -> anyhow::Result<Vec<u8>> {
        let pem = String::from_utf8(fleet_tests::sample("test-only-release.pub"))?;
        let _ = self.client.add_key("release", &pem).await;
        let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", b"");
        m.hardware = vec![HardwareModel::parse("sim")?];
        m.size = size;
        m.sha256 = digest;
        Ok(serde_json::to_vec(&sign(&m, &[&release_key()]))?)
    }

    /// Uploads a firmware of `bytes` for hardware `sim`.
    pub async fn firmware(&self, bytes: Vec<u8>) -> anyhow::Result<String> {
        let envelope = self.envelope(bytes.len() as u64, Sha256Digest::of(&bytes)).await?;
        let len = bytes.len() as u64;
        Ok(self.client.upload(ArtifactKind::Firmware, envelope, bytes.into(), len).await?.id)
    }

    /// Uploads the firmware in `path` (streamed) for hardware `sim`.
    pub async fn firmware_file(&self, path: &Path, size: u64, digest: Sha256Digest) -> anyhow::Result<String> {
        let envelope = self.envelope(size, digest).await?;
        Ok(self.client.upload(ArtifactKind::Firmware, envelope, file_body(path).await?, size).await?.id)
    }

    /// Creates a one-wave rollout of `firmware` to every `sim` device; returns its id.
    pub async fn rollout(&self, firmware: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"firmware": firmware, "target": {"hardware": "sim"}});
        Ok(self.client.create_rollout(&body).await?.id)
    }

    /// Polls the rollout every 20 ms until `done` says so; `on_poll` sees each body and
    /// how long the request took.
    pub async fn poll_rollout(
        &self,
        id: &str,
        patience: Duration,
        mut on_poll: impl FnMut(&Rollout, Duration),
        done: impl Fn(&Rollout) -> bool,
    ) -> anyhow::Result<Rollout> {
        let started = std::time::Instant::now();
        loop {
            let asked = std::time::Instant::now();
            let body = self.client.get_rollout(id).await?;
            on_poll(&body, asked.elapsed());
            if done(&body) {
                return Ok(body);
            }
            anyhow::ensure!(started.elapsed() < patience, "rollout {id} did not get there: {body:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// With `backends.mosquitto`: a Mosquitto of the server's own (in `dir/mqtt`) with per-device
/// isolation, the server's `cmd` pointed at it; with `tls` too, a TLS listener for device
/// certificates ([`MosquittoTls`]) and the certificates beside it.
fn start_mosquitto(
    backends: &Backends,
    tls: bool,
    dir: &Path,
    cmd: &mut tokio::process::Command,
) -> anyhow::Result<(Option<Mosquitto>, Option<MosquittoTls>)> {
    if !backends.mosquitto {
        return Ok((None, None));
    }
    let (m, certs) = match tls {
        true => {
            let (m, certs) = MosquittoTls::start(dir);
            (m, Some(certs))
        }
        false => (Mosquitto::start(&dir.join("mqtt"), None), None),
    };
    let password = dir.join("server.password");
    std::fs::write(&password, "bench-server-password-0123456789\n")?;
    cmd.args(["--mqtt-url", &m.url(), "--mqtt-username", fleet_tests::mosquitto::SERVER_USER])
        .args(["--mqtt-password-file", password.to_str().expect("utf-8")])
        .args(["--mosquitto-dir", m.dir.to_str().expect("utf-8"), "--mosquitto-reload-command", &m.reload_command()]);
    if let Some(certs) = &certs {
        cmd.args(certs.server_args(&m));
    }
    Ok((Some(m), certs))
}

/// How many entries of a rollout are in `state`.
pub fn count(body: &Rollout, state: &str) -> u64 {
    body.counts.get(state).copied().unwrap_or(0)
}

/// A request body streaming `path` in 1 MiB reads.
pub async fn file_body(path: &Path) -> anyhow::Result<reqwest::Body> {
    let file = tokio::fs::File::open(path).await?;
    Ok(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)))
}
