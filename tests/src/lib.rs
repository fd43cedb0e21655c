//! The test harness: spawn the real server on a random port with a fresh data directory,
//! talk to it with the same typed client `fleetctl` uses, and sign artifacts with the
//! TEST-ONLY keys from `firmware-samples/`.

#![forbid(unsafe_code)]

pub mod agent;
pub mod balancer;
pub mod broker;
pub mod certs;
pub mod device_server;
pub mod mcu;
pub mod mosquitto;
pub mod power_loss;
pub mod rauc;
pub mod simulator;
pub mod trust;
pub mod uboot;

use std::path::{Path, PathBuf};

use fleet_cli::ApiClient;
use fleet_cli::client::Artifact;
use fleet_protocol::manifest::SCHEMA;
use fleet_protocol::sign::{SigningKey, sign_payload, signing_key_from_pem};
use fleet_protocol::{ArtifactKind, Envelope, HardwareModel, Manifest, ProductName, Sha256Digest};
use fleet_server::{Application, Settings};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token every test server uses.
pub const ADMIN_TOKEN: &str = "test-only-admin-token-Zx81qVbN3mKp7RtY5wLc2JdH9sFg";

/// `firmware-samples/` in this repository.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-samples")
}

/// Reads a file from `firmware-samples/`.
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(samples_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The TEST-ONLY release key.
pub fn release_key() -> SigningKey {
    signing_key_from_pem(&String::from_utf8(sample("test-only-release.key")).expect("utf-8")).expect("key")
}

/// The TEST-ONLY key nobody trusts.
pub fn other_key() -> SigningKey {
    signing_key_from_pem(&String::from_utf8(sample("test-only-other.key")).expect("utf-8")).expect("key")
}

/// A manifest for `bytes`, ready to tweak and sign.
pub fn manifest_for(kind: ArtifactKind, name: &str, version: &str, bytes: &[u8]) -> Manifest {
    Manifest {
        schema: SCHEMA,
        kind,
        name: ProductName::parse(name).expect("name"),
        version: semver::Version::parse(version).expect("version"),
        hardware: vec![HardwareModel::parse("rpi4").expect("hw")],
        size: bytes.len() as u64,
        sha256: Sha256Digest::of(bytes),
        created_at: time::OffsetDateTime::now_utc().replace_nanosecond(0).expect("time"),
        expires_at: None,
        requires_firmware: None,
        allow_downgrade_from: None,
    }
}

/// Signs a manifest with `keys`.
pub fn sign(manifest: &Manifest, keys: &[&SigningKey]) -> Envelope {
    sign_payload(&manifest.to_bytes(), keys)
}

/// A running server on a random port with its own data directory.
#[derive(Debug)]
pub struct TestApp {
    pub client: ApiClient,
    /// `mqtt://` URL of the server's embedded broker.
    pub mqtt_url: String,
    /// The embedded broker's `mqtts://` URL, when the server runs with TLS.
    pub mqtts_url: Option<String>,
    pub data_dir: PathBuf,
    /// The test's own Mosquitto, when the server uses one instead of its embedded broker.
    pub mosquitto: Option<mosquitto::Mosquitto>,
    _dir: Option<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// A fresh server with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A fresh server; `tweak` adjusts its settings.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut app = Self::spawn_in(dir.path(), tweak).await;
        app._dir = Some(dir);
        app
    }

    /// A fresh server on the embedded broker even when the suite runs on Mosquitto
    /// (`FLEET_TEST_E2E_BROKER`): for what only the embedded broker does.
    pub async fn spawn_embedded(tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut app = Self::spawn_full(dir.path(), None, tweak).await;
        app._dir = Some(dir);
        app
    }

    /// A fresh server on its own Mosquitto with per-device isolation (needs the
    /// `mosquitto` binary).
    pub async fn spawn_on_mosquitto(tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = mosquitto::Mosquitto::start(&dir.path().join("mosquitto"), None);
        let mut app = Self::spawn_full(dir.path(), Some(broker), tweak).await;
        app._dir = Some(dir);
        app
    }

    /// A server on an existing data directory (e.g. to restart on the same data).
    pub async fn spawn_in(data_dir: &Path, tweak: impl FnOnce(&mut Settings)) -> Self {
        let broker = e2e_mosquitto().then(|| mosquitto::Mosquitto::start(&data_dir.join("mosquitto"), None));
        Self::spawn_full(data_dir, broker, tweak).await
    }

    /// A server on `data_dir` using `broker` (a Mosquitto of the test's own) if given.
    pub async fn spawn_full(
        data_dir: &Path,
        broker: Option<mosquitto::Mosquitto>,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = Settings::for_data_dir(data_dir);
        settings.admin_token = Some(fleet_server::settings::Secret::new(ADMIN_TOKEN));
        settings.log = "error".into();
        settings.database_url = e2e_database(data_dir).await;
        if let Some(broker) = &broker {
            broker.configure(&mut settings, broker.url());
        }
        tweak(&mut settings);
        // The server's own broker (embedded, or the test's Mosquitto) answers: start the test
        // once the server is connected to it. Other brokers may be absent on purpose.
        // (Over HTTPS the test's own client, trusting its CA, does the waiting.)
        let wait_until_ready = settings.tls_cert.is_none()
            && !settings.tls_self_signed
            && match (&settings.mqtt_url, &broker) {
                (None, _) => true,
                (Some(url), Some(broker)) => broker.serves(url),
                (Some(_), None) => false,
            };
        fleet_server::init_tracing("error", fleet_server::LogFormat::Text);
        let app = Application::build(settings).await.expect("server builds");
        let base = format!("http://{}", app.local_addr());
        let mqtt_url = match &broker {
            Some(broker) => broker.url(),
            None => app.broker_addr().map(|a| format!("mqtt://{a}")).unwrap_or_default(),
        };
        let mqtts_url = app.broker_tls_addr().map(|a| format!("mqtts://{a}"));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let app = Self {
            client: ApiClient::new(base, ADMIN_TOKEN),
            mqtt_url,
            mqtts_url,
            data_dir: data_dir.to_owned(),
            mosquitto: broker,
            _dir: None,
            stop: Some(stop),
            task: Some(task),
        };
        if wait_until_ready {
            app.wait_ready().await;
        }
        app
    }

    /// Waits (up to 20 s) until `/readyz` says the database and the broker answer.
    pub async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.client.base_url());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let http = reqwest::Client::new();
        while tokio::time::Instant::now() < deadline {
            if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the server did not become ready: {url}");
    }

    /// Stops gracefully and waits; returns the data directory's owner so it outlives us.
    pub async fn stop(mut self) -> Option<TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
        self._dir.take()
    }

    /// Registers the TEST-ONLY release key.
    pub async fn trust_release_key(&self) {
        self.client
            .add_key("release", &String::from_utf8(sample("test-only-release.pub")).expect("pem"))
            .await
            .expect("key");
    }

    /// Uploads `bytes` with `envelope`.
    pub async fn upload(
        &self,
        kind: ArtifactKind,
        envelope: &Envelope,
        bytes: Vec<u8>,
    ) -> Result<Artifact, fleet_cli::ClientError> {
        let len = bytes.len() as u64;
        self.client.upload(kind, serde_json::to_vec(envelope).expect("json"), bytes.into(), len).await
    }

    /// Files under `blobs/sha256` and `blobs/tmp`: what an upload left on disk.
    pub fn blob_files(&self) -> (usize, usize) {
        let count = |dir: PathBuf| walk(&dir);
        (count(self.data_dir.join("blobs/sha256")), count(self.data_dir.join("blobs/tmp")))
    }
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `GET /rollouts/{id}` as the JSON on the wire, so tests check the body itself.
async fn rollout_json(client: &ApiClient, id: &str) -> Result<serde_json::Value, fleet_cli::ClientError> {
    let response = client.request(reqwest::Method::GET, &fleet_protocol::paths::rollout(id)).send().await?;
    Ok(ApiClient::check(response).await?.json().await?)
}

/// Polls `GET /rollouts/{id}` until `pred` holds; fails with the last body on timeout.
pub async fn wait_rollout(
    client: &ApiClient,
    id: &str,
    timeout: std::time::Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let body = match rollout_json(client, id).await {
            Ok(body) => body,
            // A connection cut by a replica that died (tests that kill one): ask again.
            Err(e @ fleet_cli::ClientError::Transport { .. }) if tokio::time::Instant::now() < deadline => {
                eprintln!("polling rollout {id}: {e}; again");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => panic!("rollout {id}: {e}"),
        };
        if pred(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out; rollout is {body:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Set to `postgres` (with `FLEET_TEST_DATABASE_URL`), every [`TestApp`] runs on a fresh
/// PostgreSQL database instead of SQLite: the end-to-end suite again, unchanged.
pub const E2E_DATABASE_VAR: &str = "FLEET_TEST_E2E_DATABASE";

/// Set to `mosquitto`, every [`TestApp`] runs on a Mosquitto of its own with per-device
/// isolation instead of the embedded broker: the end-to-end suite again, unchanged.
pub const E2E_BROKER_VAR: &str = "FLEET_TEST_E2E_BROKER";

fn e2e_mosquitto() -> bool {
    match std::env::var(E2E_BROKER_VAR).as_deref() {
        Ok("mosquitto") => true,
        Ok("embedded") | Ok("") | Err(_) => false,
        Ok(other) => panic!("{E2E_BROKER_VAR}={other}: expected mosquitto or embedded"),
    }
}

/// The database a test server on `data_dir` uses: `None` for the default (SQLite in the data
/// directory), else a PostgreSQL database created for this data directory and remembered in
/// it, so a restart on the same directory finds the same data.
async fn e2e_database(data_dir: &Path) -> Option<String> {
    match std::env::var(E2E_DATABASE_VAR).as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Ok("") | Err(_) => return None,
        Ok(other) => panic!("{E2E_DATABASE_VAR}={other}: expected postgres or sqlite"),
    }
    let marker = data_dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return Some(url);
    }
    let url = fresh_postgres().await;
    std::fs::write(&marker, &url).expect("remember the test database");
    Some(url)
}

/// A fresh database on the PostgreSQL server that `FLEET_TEST_DATABASE_URL` names; returns
/// its URL.
pub async fn fresh_postgres() -> String {
    let base = std::env::var("FLEET_TEST_DATABASE_URL")
        .expect("FLEET_TEST_DATABASE_URL, e.g. postgres://postgres@127.0.0.1/test");
    let mut name = [0u8; 8];
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let counter = u128::from(NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let seed = nanos ^ (u128::from(std::process::id()) << 64) ^ (counter << 96);
    for (i, b) in name.iter_mut().enumerate() {
        *b = (seed >> (i * 8)) as u8 ^ (seed >> (64 + i * 8)) as u8;
    }
    let db = format!("fleet_test_{}", name.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let admin = sqlx::PgPool::connect(&base).await.expect("PostgreSQL answers");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&admin).await.expect("create database");
    admin.close().await;
    let cut = base.rfind('/').expect("a database in the URL");
    format!("{}/{db}", &base[..cut])
}

static NEXT_DB: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
