//! `kill -9` of the server mid-rollout: restarted on the same data dir (and ports), it
//! finishes the rollout with exact counts and no device installs twice.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet_protocol::ArtifactKind;
use fleet_tests::simulator::{Simulator, SimulatorSetup};
use fleet_tests::{ADMIN_TOKEN, manifest_for, release_key, sample, sign, wait_rollout};
use serde_json::{Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_fleet-server-under-test");
const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(http: u16, mqtt: u16, dir: &std::path::Path) -> (Server, fleet_cli::ApiClient) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).unwrap();
    let child = Command::new(SERVER)
        .args(["--listen", &format!("127.0.0.1:{http}"), "--embedded-broker", &format!("127.0.0.1:{mqtt}")])
        .args(["--data-dir", dir.join("data").to_str().unwrap()])
        .env("FLEET_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let client = fleet_cli::ApiClient::new(format!("http://127.0.0.1:{http}"), ADMIN_TOKEN);
    for _ in 0..100 {
        if client.health().await.is_ok() {
            return (server, client);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    panic!("server did not start: {}", std::fs::read_to_string(dir.join("server.log")).unwrap_or_default());
}

#[tokio::test]
async fn kill_9_mid_rollout_then_restart_completes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (http, mqtt) = (free_port(), free_port());
    let (mut server, client) = start(http, mqtt, dir.path()).await;
    client.add_key("release", &String::from_utf8(sample("test-only-release.pub")).unwrap()).await.unwrap();
    let bytes: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    let len = bytes.len() as u64;
    let fw = client
        .upload(ArtifactKind::Firmware, serde_json::to_vec(&sign(&m, &[&release_key()])).unwrap(), bytes.into(), len)
        .await
        .unwrap();
    let sim = Simulator::start(SimulatorSetup {
        download_delay_ms: 30,
        ..SimulatorSetup::new(
            AGENT,
            30,
            client.base_url(),
            &format!("mqtt://127.0.0.1:{mqtt}"),
            &dir.path().join("sim"),
        )
    })
    .await;
    let body = json!({"firmware": fw.id, "target": {"hardware": "sim"}, "max_in_flight": 6});
    let id = client.create_rollout(&body).await.unwrap().id;
    let enough = |b: &Value| b["counts"]["succeeded"].as_i64().unwrap_or(0) >= 6;
    wait_rollout(&client, &id, Duration::from_secs(60), enough).await;
    let _ = server.0.kill();
    let _ = server.0.wait();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_server, client) = start(http, mqtt, dir.path()).await;
    let done = wait_rollout(&client, &id, Duration::from_secs(120), |b| b["state"] == "completed").await;
    assert_eq!(done["counts"]["succeeded"], 30, "{done:#}");
    let entries: Value = client
        .request(reqwest::Method::GET, &format!("/rollouts/{id}/devices"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = entries["items"].as_array().unwrap();
    assert_eq!(items.len(), 30);
    assert!(items.iter().all(|e| e["attempts"] == 1), "every device was sent its command once");
    // Each device's journal holds exactly one final state for the rollout.
    for i in 0..30 {
        let journal: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(format!("sim/sim-{i}/journal.json"))).unwrap())
                .unwrap();
        let finals: Vec<_> = journal["finals"].as_array().unwrap().iter().filter(|f| f["rollout_id"] == id).collect();
        assert_eq!(finals.len(), 1);
        assert_eq!(finals[0]["state"], "succeeded");
    }
    sim.stop().await;
}
