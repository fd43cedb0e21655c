//! Open-files limits (issue 22): the simulator raises its soft limit to the hard one, refuses
//! at start a count the limit cannot hold, and at the limit its own shortages are never
//! reported as device failures; the server says at start when its limit cannot hold the
//! registered fleet.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fleet_agent::simulate::budget::Needs;
use fleet_protocol::ArtifactKind;
use fleet_tests::simulator::{Simulator, SimulatorSetup};
use fleet_tests::{ADMIN_TOKEN, TestApp, manifest_for, release_key, samples_dir, sign};
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");
const SERVER: &str = env!("CARGO_BIN_EXE_fleet-server-under-test");

/// `ulimit -n {limit}` (soft and hard), then `binary` with `args`.
fn limited(limit: u64, binary: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("sh");
    command.args(["-c", &format!(r#"ulimit -n {limit} && exec "$0" "$@""#), binary]).kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_simulator_refuses_at_start_a_count_its_open_files_limit_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let operator = dir.path().join("operator.token");
    std::fs::write(&operator, ADMIN_TOKEN).unwrap();
    // Nothing listens there: the refusal comes before any connection.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let output = limited(1024, AGENT)
        .arg("simulate")
        .args(["--count", "2000", "--server", &format!("http://{nobody}"), "--mqtt-url", &format!("mqtt://{nobody}")])
        .args(["--trust", samples_dir().join("test-only-release.pub").to_str().unwrap()])
        .args(["--operator-token-file", operator.to_str().unwrap()])
        .args(["--state-dir", dir.path().join("sim").to_str().unwrap()])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output).await.expect("refused at once").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let needed = Needs::of(2000, 64).total();
    for said in [format!("2000 simulated devices need {needed} open files"), "hard limit is 1024".to_owned()] {
        assert!(stderr.contains(&said), "says {said:?}: {stderr}");
    }
    assert!(!dir.path().join("sim").exists(), "no device was set up");
}

async fn firmware(app: &TestApp) -> String {
    let bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 239) as u8).collect();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bytes).await.unwrap().id
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn a_simulator_at_its_open_files_limit_completes_a_rollout_with_no_failed_device() {
    const COUNT: usize = 150;
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app).await;
    let dir = tempfile::tempdir().unwrap();
    // Exactly what the simulator says it needs: it must start, and hold.
    let limit = Needs::of(COUNT, 64).total();
    let setup = SimulatorSetup::new(AGENT, COUNT, app.client.base_url(), &app.mqtt_url, dir.path());
    let sim = Simulator::start_limited(setup, Some(limit)).await;

    let body = json!({"firmware": fw, "target": {"hardware": "sim"}});
    let created: Value =
        app.client.request(reqwest::Method::POST, "/rollouts").json(&body).send().await.unwrap().json().await.unwrap();
    let id = created["id"].as_str().expect("created").to_owned();
    let (mut most, started) = (0, Instant::now());
    let done = loop {
        most = most.max(open_files(sim.pid()));
        let body: Value = app
            .client
            .request(reqwest::Method::GET, &format!("/rollouts/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["state"] == "completed" || body["state"] == "paused" {
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "still {body:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("{COUNT} devices, open-files limit {limit}: at most {most} files open during the rollout");
    assert_eq!(done["state"], "completed", "{done:#}");
    assert_eq!(done["counts"]["succeeded"], COUNT as u64, "{done:#}");
    assert_eq!(done["counts"]["failed"].as_u64().unwrap_or(0), 0, "{done:#}");
    assert!(most as u64 <= limit && most >= COUNT, "{most} files open, limit {limit}");
    let log = std::fs::read_to_string(dir.path().join("simulate.log")).unwrap_or_default();
    assert!(!log.contains("Too many open files"), "{log}");
    sim.stop().await;
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The server binary on `dir`, its log (both streams) in `log`, under `ulimit -n` when given.
fn server(dir: &std::path::Path, log: &std::path::Path, limit: Option<u64>) -> (tokio::process::Child, String) {
    let (http, mqtt) = (free_addr(), free_addr());
    let mut command = match limit {
        Some(n) => limited(n, SERVER),
        None => tokio::process::Command::new(SERVER),
    };
    let out = std::fs::File::create(log).unwrap();
    let child = command
        .args(["--listen", &http.to_string(), "--embedded-broker", &mqtt.to_string()])
        .args(["--data-dir", dir.to_str().unwrap()])
        .env("FLEET_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("FLEET_LOG", "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (child, format!("http://{http}"))
}

async fn ready(url: &str) -> fleet_cli::ApiClient {
    let client = fleet_cli::ApiClient::new(url.to_owned(), ADMIN_TOKEN);
    for _ in 0..600 {
        if client.health().await.is_ok() {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server at {url} did not start");
}

#[tokio::test]
async fn a_server_whose_open_files_limit_cannot_hold_its_fleet_says_so_at_start() {
    const DEVICES: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first_log = dir.path().join("first.log");
    let (mut first, url) = server(&data, &first_log, None);
    let client = ready(&url).await;
    for i in 0..DEVICES {
        client.add_device(&format!("dev-{i}"), "rpi4", &Default::default()).await.unwrap();
    }
    first.kill().await.unwrap();
    let _ = first.wait().await;
    let first_log = std::fs::read_to_string(&first_log).unwrap();
    assert!(!first_log.contains("too low for the"), "no fleet at the first start: {first_log}");

    // 20 devices need 1 each on the embedded broker beside 1,024: 1,044; allow 1,040.
    let log = dir.path().join("second.log");
    let (_second, url) = server(&data, &log, Some(1040));
    ready(&url).await;
    let log = std::fs::read_to_string(&log).unwrap();
    let warning = log.lines().find(|l| l.contains("too low for the")).unwrap_or_else(|| panic!("no warning:\n{log}"));
    for said in ["WARN", "open-files limit 1040", "20 registered devices", "need 1044", "LimitNOFILE=65536"] {
        assert!(warning.contains(said), "says {said:?}: {warning}");
    }
}
