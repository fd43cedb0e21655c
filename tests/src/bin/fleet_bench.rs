//! `fleet-bench`: what operators care about, measured beside the physical limit in the
//! same run. Build and run in release (see BENCHMARKS.md):
//!
//! ```sh
//! cargo build --release -p fleet-tests --bins
//! target/release/fleet-bench rollout --devices 10000
//! ```
//!
//! It spawns the release server and agent binaries that sit next to it.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use fleet_cli::ApiClient;
use fleet_protocol::{ArtifactKind, HardwareModel, Sha256Digest};
use fleet_tests::{ADMIN_TOKEN, manifest_for, release_key, sign};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

#[derive(Debug, Parser)]
#[command(name = "fleet-bench", about = "Fleet OTA benchmarks, each beside its baseline")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// N simulated devices, one wave: POST /rollouts to all succeeded, per stage, with the
    /// API's latency meanwhile; baseline: the same number of QoS 1 messages through the
    /// same broker by a bare publisher/subscriber pair.
    Rollout {
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        #[arg(long, default_value_t = 64 * 1024)]
        size: usize,
        /// PostgreSQL instead of SQLite.
        #[arg(long)]
        database_url: Option<String>,
        /// An external broker (e.g. Mosquitto) instead of the embedded one.
        #[arg(long)]
        mqtt_url: Option<String>,
    },
    /// One blob, many concurrent clients; baseline: nginx serving the same file.
    Download {
        #[arg(long, default_value_t = 64 << 20)]
        size: u64,
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// An image through the upload API; baseline: SHA-256 of the same bytes in-process.
    Upload {
        #[arg(long, default_value_t = 1 << 30)]
        size: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Rollout { devices, size, database_url, mqtt_url } => {
            rollout(devices, size, database_url, mqtt_url).await
        }
        Bench::Download { size, clients } => download(size, clients).await,
        Bench::Upload { size } => upload(size).await,
    }
}

/// A binary built beside this one.
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe().expect("own path").with_file_name(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Peak and current resident memory of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    };
    (field("VmHWM:").unwrap_or(0.0) / 1024.0, field("VmRSS:").unwrap_or(0.0) / 1024.0)
}

/// A release server on free ports with a data directory of its own.
struct Server {
    child: tokio::process::Child,
    client: ApiClient,
    base: String,
    mqtt_url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(database_url: Option<&str>, mqtt_url: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (http, mqtt) = (free_port(), free_port());
        let mut cmd = tokio::process::Command::new(sibling("fleet-server-under-test"));
        cmd.args(["--listen", &format!("127.0.0.1:{http}"), "--embedded-broker", &format!("127.0.0.1:{mqtt}")])
            .args(["--data-dir", dir.path().to_str().expect("utf-8"), "--log", "warn"])
            .env("FLEET_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::null())
            .kill_on_drop(true);
        if let Some(url) = database_url {
            cmd.args(["--database-url", url]);
        }
        if let Some(url) = mqtt_url {
            cmd.args(["--mqtt-url", url, "--topic-root", &format!("bench{}", std::process::id())]);
        }
        let child = cmd.spawn()?;
        let base = format!("http://127.0.0.1:{http}");
        let client = ApiClient::new(&base, ADMIN_TOKEN);
        for _ in 0..200 {
            if client.health().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.health().await?;
        let mqtt_url = mqtt_url.map_or_else(|| format!("mqtt://127.0.0.1:{mqtt}"), str::to_owned);
        Ok(Self { child, client, base, mqtt_url, _dir: dir })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    async fn metrics(&self) -> anyhow::Result<String> {
        let r = reqwest::Client::new().get(format!("{}/metrics", self.base)).bearer_auth(ADMIN_TOKEN).send().await?;
        Ok(r.text().await?)
    }

    /// Registers the release key (once) and signs a firmware manifest for hardware `sim` of
    /// `size` bytes with `digest`.
    async fn envelope(&self, size: u64, digest: Sha256Digest) -> anyhow::Result<Vec<u8>> {
        let pem = String::from_utf8(fleet_tests::sample("test-only-release.pub"))?;
        let _ = self.client.add_key("release", &pem).await;
        let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", b"");
        m.hardware = vec![HardwareModel::parse("sim")?];
        m.size = size;
        m.sha256 = digest;
        Ok(serde_json::to_vec(&sign(&m, &[&release_key()]))?)
    }

    /// Uploads a firmware of `bytes` for hardware `sim`.
    async fn firmware(&self, bytes: Vec<u8>) -> anyhow::Result<String> {
        let envelope = self.envelope(bytes.len() as u64, Sha256Digest::of(&bytes)).await?;
        let len = bytes.len() as u64;
        Ok(self.client.upload(ArtifactKind::Firmware, envelope, bytes.into(), len).await?.id)
    }
}

/// A request body streaming `path` in 1 MiB reads.
async fn file_body(path: &Path) -> anyhow::Result<reqwest::Body> {
    let file = tokio::fs::File::open(path).await?;
    Ok(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)))
}

fn sample_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap_or(0.0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn rollout(
    devices: usize,
    size: usize,
    database_url: Option<String>,
    mqtt_url: Option<String>,
) -> anyhow::Result<()> {
    let server = Server::start(database_url.as_deref(), mqtt_url.as_deref()).await?;
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let fw = server.firmware(bytes).await?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let sim = fleet_tests::simulator::Simulator::start(fleet_tests::simulator::SimulatorSetup {
        binary: sibling("fleet-agent-under-test").to_str().expect("utf-8"),
        count: devices,
        server: &server.base,
        mqtt_url: &server.mqtt_url,
        operator_token: ADMIN_TOKEN,
        state_dir: dir.path(),
        hardware: "sim",
        prefix: "b-",
        fail_ratio: 0.0,
        health_fail_ratio: 0.0,
        download_delay_ms: 0,
        topic_root: &mqtt_url.as_ref().map_or_else(|| "fleet".to_owned(), |_| format!("bench{}", std::process::id())),
    })
    .await;
    let online = started.elapsed();
    let before = server.metrics().await?;

    let t0 = Instant::now();
    let id = server.client.create_rollout(&json!({"firmware": fw, "target": {"hardware": "sim"}}), false).await?;
    let id = id["id"].as_str().expect("id").to_owned();
    let (mut dispatched, mut confirmed, mut downloaded) = (None, None, None);
    let mut latencies = vec![];
    let done = loop {
        let asked = Instant::now();
        let body: Value = server.client.get_rollout(&id).await?;
        latencies.push(asked.elapsed().as_secs_f64() * 1000.0);
        let n = |s: &str| body["counts"][s].as_u64().unwrap_or(0);
        let now = t0.elapsed();
        if dispatched.is_none() && n("pending") == 0 {
            dispatched = Some(now);
        }
        if confirmed.is_none() && n("pending") + n("sent") == 0 {
            confirmed = Some(now);
        }
        if downloaded.is_none() && n("pending") + n("sent") + n("downloading") == 0 {
            downloaded = Some(now);
        }
        if body["state"] == "completed" {
            anyhow::ensure!(n("succeeded") == devices as u64, "not every device succeeded: {body:#}");
            break now;
        }
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(600), "rollout did not complete: {body:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let after = server.metrics().await?;
    let (server_peak, _) = memory_mib(server.pid());
    sim.stop().await;
    let delta = |s: &str| sample_value(&after, s) - sample_value(&before, s);
    let reports = delta("fleet_reports_applied_total");
    let commands = delta("fleet_commands_published_total");
    latencies.sort_by(f64::total_cmp);

    let messages = (commands + reports) as usize;
    let baseline = raw_broker(messages).await?;
    let store = if database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let broker = if mqtt_url.is_some() { "external broker" } else { "embedded broker" };
    println!("fleet rollout: {devices} simulated devices, {} KiB firmware, one wave, {broker} + {store}", size / 1024);
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
        "  reports applied                     {:>9.0}    ({:.0}/s over the rollout)",
        reports,
        reports / done.as_secs_f64()
    );
    println!(
        "  GET /rollouts/{{id}} meanwhile        p50 {:.1} ms, p99 {:.1} ms ({} requests)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
    println!("  server peak RSS                     {server_peak:>9.1} MiB");
    println!(
        "  baseline: {messages} QoS 1 messages (commands + reports), one publisher → one subscriber, same broker software"
    );
    println!("                                      {:>9.2} s", baseline.as_secs_f64());
    println!("  ratio rollout / baseline            {:>9.1}×", done.as_secs_f64() / baseline.as_secs_f64());
    Ok(())
}

/// `messages` QoS 1 publishes from one client to another through the embedded broker
/// (rmqtt with the server's settings): seconds until the last arrives.
async fn raw_broker(messages: usize) -> anyhow::Result<Duration> {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn fleet_server::store::Store> =
        Arc::new(fleet_server::store::sqlite::SqliteStore::open(&dir.path().join("db")).await?);
    let broker = fleet_server::broker::EmbeddedBroker::start(
        "127.0.0.1:0".parse()?,
        &store,
        fleet_protocol::topic::Topics::default(),
        "bench".into(),
        "bench-password".into(),
    )
    .await?;
    let options = |id: &str| {
        let mut o = MqttOptions::new(id, broker.addr.ip().to_string(), broker.addr.port());
        o.set_credentials("bench", "bench-password").set_outgoing_inflight_upper_limit(1024);
        o
    };
    let (sub, mut sub_loop) = AsyncClient::new(options("bench-sub"), 1024);
    sub.subscribe("fleet/devices/+/commands", QoS::AtLeastOnce).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let receiver = tokio::spawn(async move {
        let (mut got, mut ready) = (0, Some(ready_tx));
        while got < messages {
            match sub_loop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(_))) => got += 1,
                Ok(_) => {}
                Err(e) => panic!("subscriber: {e}"),
            }
        }
    });
    ready_rx.await?;
    let (publisher, mut pub_loop) = AsyncClient::new(options("bench-pub"), 1024);
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    let started = Instant::now();
    let payload = vec![b'x'; 200];
    for i in 0..messages {
        publisher
            .publish(format!("fleet/devices/d{}/commands", i % 10_000), QoS::AtLeastOnce, false, payload.clone())
            .await?;
    }
    receiver.await?;
    Ok(started.elapsed())
}

/// Writes `size` pseudo-random bytes to `path` without holding them in memory.
async fn write_file(path: &Path, size: u64) -> anyhow::Result<Sha256Digest> {
    use sha2::Digest as _;
    let mut file = tokio::fs::File::create(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        for b in &mut chunk[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        hasher.update(&chunk[..n]);
        file.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    file.sync_all().await?;
    Ok(Sha256Digest::from_bytes(hasher.finalize().into()))
}

/// SHA-256 of a file in 1 MiB reads: the in-process baseline, in MB/s.
fn hash_rate(path: &Path) -> anyhow::Result<f64> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let started = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let _ = hasher.finalize();
    Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
}

async fn upload(size: u64) -> anyhow::Result<()> {
    let server = Server::start(None, None).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("image.bin");
    let envelope = server.envelope(size, write_file(&path, size).await?).await?;
    let (before, _) = memory_mib(server.pid());
    let body = file_body(&path).await?;
    let started = Instant::now();
    server.client.upload(ArtifactKind::Firmware, envelope, body, size).await?;
    let took = started.elapsed();
    let (peak, _) = memory_mib(server.pid());
    let upload_rate = size as f64 / took.as_secs_f64() / 1e6;
    let hash = hash_rate(&path)?;
    println!("upload: {} MiB through fleetctl's client to the server (multipart, streamed)", size >> 20);
    println!("  upload                   {upload_rate:>8.0} MB/s  ({:.2} s)", took.as_secs_f64());
    println!("  baseline: sha2 in-process {hash:>7.0} MB/s");
    println!("  ratio                    {:>8.2}×", upload_rate / hash);
    println!("  server peak RSS          {peak:>8.1} MiB (was {before:.1} MiB before the upload)");
    Ok(())
}

async fn download(size: u64, clients: usize) -> anyhow::Result<()> {
    let server = Server::start(None, None).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("blob.bin");
    let envelope = server.envelope(size, write_file(&path, size).await?).await?;
    let fw = server.client.upload(ArtifactKind::Firmware, envelope, file_body(&path).await?, size).await?;
    let url = format!("{}/api/v1/firmware/{}/blob", server.base, fw.id);
    let ours = fetch_all(&url, Some(ADMIN_TOKEN), clients, size).await?;
    println!("download: one {} MiB blob, {clients} concurrent clients", size >> 20);
    println!("  fleet-server             {:>6.2} GB/s", ours);
    match nginx(&path).await {
        Some((nginx_url, mut child, _conf)) => {
            let theirs = fetch_all(&nginx_url, None, clients, size).await;
            // SIGTERM: the master stops its workers (SIGKILL would orphan them).
            let _ = tokio::process::Command::new("kill").arg(child.id().unwrap_or(0).to_string()).status().await;
            let _ = child.wait().await;
            let theirs = theirs?;
            println!("  baseline: nginx          {theirs:>6.2} GB/s");
            println!("  ratio                    {:>6.2}×", ours / theirs);
        }
        None => println!("  baseline: nginx is not installed here; skipped"),
    }
    Ok(())
}

/// Every client downloads the whole blob; aggregate GB/s.
async fn fetch_all(url: &str, token: Option<&str>, clients: usize, size: u64) -> anyhow::Result<f64> {
    use futures_util::StreamExt as _;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let mut request = http.get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        tasks.spawn(async move {
            let mut stream = request.send().await?.error_for_status()?.bytes_stream();
            let mut got = 0u64;
            while let Some(chunk) = stream.next().await {
                got += chunk?.len() as u64;
            }
            Ok::<_, reqwest::Error>(got)
        });
    }
    while let Some(done) = tasks.join_next().await {
        anyhow::ensure!(done?? == size, "short download");
    }
    Ok((size * clients as u64) as f64 / started.elapsed().as_secs_f64() / 1e9)
}

/// nginx serving `file`'s directory on a free port, if nginx is installed.
async fn nginx(file: &Path) -> Option<(String, tokio::process::Child, tempfile::TempDir)> {
    let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists())?;
    let conf_dir = tempfile::tempdir().ok()?;
    let port = free_port();
    let conf = format!(
        "daemon off; worker_processes 2; pid {dir}/nginx.pid; error_log {dir}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; sendfile on; tcp_nopush on; client_body_temp_path {dir}; proxy_temp_path {dir};\n\
           fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
           server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
        dir = conf_dir.path().display(),
        root = file.parent()?.display(),
    );
    std::fs::write(conf_dir.path().join("nginx.conf"), conf).ok()?;
    let child = tokio::process::Command::new(binary)
        .args(["-c", conf_dir.path().join("nginx.conf").to_str()?, "-p", conf_dir.path().to_str()?])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let name = file.file_name()?.to_str()?;
            return Some((format!("http://127.0.0.1:{port}/{name}"), child, conf_dir));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
