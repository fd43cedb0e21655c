//! Two server replicas on one PostgreSQL and one external broker, sharing status ingestion
//! through a shared subscription: they start together on an empty database, complete a
//! 500-device rollout with exact counts and its in-flight limit kept across both, and the
//! replica driving the rollout dies halfway.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::Duration;

use fleet_protocol::ArtifactKind;
use fleet_tests::balancer::Balancer;
use fleet_tests::simulator::{Simulator, SimulatorSetup};
use fleet_tests::{ADMIN_TOKEN, manifest_for, release_key, sample, sign, wait_rollout};
use serde_json::{Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_fleet-server-under-test");
const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");
const DEVICES: usize = 500;
const MAX_IN_FLIGHT: u64 = 100;

/// Devices in flight according to a rollout body's counts.
fn in_flight(v: &Value) -> u64 {
    ["sent", "downloading", "verifying", "installing", "rebooting"]
        .iter()
        .map(|s| v["counts"][s].as_u64().unwrap_or(0))
        .sum()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn replica(name: &str, http: u16, db: &str, mqtt: &str, root: &str, dir: &std::path::Path, public: &str) -> Replica {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(SERVER)
        .args(["--listen", &format!("127.0.0.1:{http}"), "--database-url", db, "--mqtt-url", mqtt])
        .args(["--topic-root", root, "--shared-subscription-group", "replicas", "--public-url", public])
        .args([
            "--replica-name",
            name,
            "--data-dir",
            dir.join(name).to_str().unwrap(),
            "--blob-dir",
            dir.join("blobs").to_str().unwrap(),
        ])
        .env("FLEET_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Replica(child)
}

/// Waits until `replica` answers on `client`; fails at once, with the logs, if it exits.
async fn healthy(client: &fleet_cli::ApiClient, replica: &mut Replica, dir: &std::path::Path) {
    let logs = || -> String {
        ["a", "b"]
            .iter()
            .map(|n| {
                format!("--- {n}.log\n{}", std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default())
            })
            .collect()
    };
    // Generous: on a loaded CI machine, other tests create databases meanwhile.
    for _ in 0..600 {
        if client.health().await.is_ok() {
            return;
        }
        if let Some(status) = replica.0.try_wait().unwrap() {
            panic!("replica exited ({status}) before it answered:\n{}", logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("replica did not start in 60 s:\n{}", logs());
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL and a broker at FLEET_TEST_MQTT_URL (CI starts both)"]
async fn two_replicas_complete_a_rollout_exactly_even_when_one_dies() {
    let db = fleet_tests::fresh_postgres().await;
    let mqtt = std::env::var("FLEET_TEST_MQTT_URL").expect("FLEET_TEST_MQTT_URL");
    let root = format!("fleet-replicas-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    // Devices and operators use the load balancer's URL; either replica may die.
    let balancer = Balancer::start(vec![([127, 0, 0, 1], port_a).into(), ([127, 0, 0, 1], port_b).into()]).await;
    let public = format!("http://{}", balancer.addr);
    // Both start at the same instant on an empty database.
    let mut a = replica("a", port_a, &db, &mqtt, &root, dir.path(), &public);
    let mut b = replica("b", port_b, &db, &mqtt, &root, dir.path(), &public);
    let a_client = fleet_cli::ApiClient::new(format!("http://127.0.0.1:{port_a}"), ADMIN_TOKEN);
    let lb_client = fleet_cli::ApiClient::new(&public, ADMIN_TOKEN);
    let b_client = fleet_cli::ApiClient::new(format!("http://127.0.0.1:{port_b}"), ADMIN_TOKEN);
    healthy(&a_client, &mut a, dir.path()).await;
    healthy(&b_client, &mut b, dir.path()).await;

    a_client.add_key("release", &String::from_utf8(sample("test-only-release.pub")).unwrap()).await.unwrap();
    let bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 253) as u8).collect();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    let len = bytes.len() as u64;
    let envelope = serde_json::to_vec(&sign(&m, &[&release_key()])).unwrap();
    let fw = a_client.upload(ArtifactKind::Firmware, envelope, bytes.into(), len).await.unwrap();
    assert_eq!(
        b_client.get_artifact(ArtifactKind::Firmware, &fw.id).await.unwrap().sha256,
        fw.sha256,
        "any replica answers"
    );
    // B serves a blob (and keeps its record in memory); A deletes the artifact: B's blob
    // route finds the blob gone and answers 404, not a stale record.
    let other: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
    let mut m2 = manifest_for(ArtifactKind::Firmware, "gateway-os", "0.9.0", &other);
    m2.hardware = m.hardware.clone();
    let envelope = serde_json::to_vec(&sign(&m2, &[&release_key()])).unwrap();
    let doomed = a_client.upload(ArtifactKind::Firmware, envelope, other.clone().into(), 4096).await.unwrap();
    let served = b_client.blob(ArtifactKind::Firmware, &doomed.id, None).await.unwrap().bytes().await.unwrap();
    assert_eq!(served.as_ref(), other.as_slice());
    a_client.delete_artifact(ArtifactKind::Firmware, &doomed.id).await.unwrap();
    let gone = b_client.blob(ArtifactKind::Firmware, &doomed.id, None).await.unwrap_err();
    assert_eq!(gone.problem().map(|p| p.status), Some(404), "{gone}");

    let sim = Simulator::start(SimulatorSetup {
        prefix: "rep-",
        download_delay_ms: 10,
        topic_root: &root,
        ..SimulatorSetup::new(AGENT, DEVICES, &public, &mqtt, &dir.path().join("sim"))
    })
    .await;
    let body = json!({"firmware": fw.id, "target": {"hardware": "sim"}, "max_in_flight": MAX_IN_FLIGHT});
    let id = b_client.create_rollout(&body).await.unwrap().id;

    // Halfway, the replica driving the rollout (the lease holder) dies; the other takes over.
    let half = |v: &Value| {
        assert!(in_flight(v) <= MAX_IN_FLIGHT, "in flight beyond the limit: {v:#}");
        v["counts"]["succeeded"].as_u64().unwrap_or(0) >= (DEVICES / 2) as u64
    };
    wait_rollout(&lb_client, &id, Duration::from_secs(120), half).await;
    let pg = sqlx::PgPool::connect(&db).await.unwrap();
    let lease_owner = async || -> String {
        sqlx::query_scalar("SELECT lease_owner FROM rollouts WHERE id = $1").bind(&id).fetch_one(&pg).await.unwrap()
    };
    let dead = lease_owner().await;
    let victim = match dead.as_str() {
        "a" => &mut a,
        "b" => &mut b,
        other => panic!("lease held by {other:?}"),
    };
    let _ = victim.0.kill();
    let _ = victim.0.wait();
    let done = wait_rollout(&lb_client, &id, Duration::from_secs(180), |v| {
        assert!(in_flight(v) <= MAX_IN_FLIGHT, "in flight beyond the limit: {v:#}");
        v["state"] == "completed"
    })
    .await;
    assert_eq!(done["counts"]["succeeded"].as_u64(), Some(DEVICES as u64), "{done:#}");
    assert_ne!(lease_owner().await, dead, "the survivor took the lease over");

    // The admin token both replicas were given is stored only as its hash.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM operator_tokens").fetch_all(&pg).await.unwrap();
    assert_eq!(stored, vec![fleet_server::token::hash_token(ADMIN_TOKEN)]);
    let a_client = lb_client;

    // Every entry was claimed once, and every agent installed once.
    let mut cursor = None;
    let mut entries = 0;
    loop {
        let page = a_client.rollout_devices(&id, None, cursor.as_deref()).await.unwrap();
        for e in &page.items {
            assert_eq!(e.attempts, 1, "{e:?}");
            entries += 1;
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(entries, DEVICES);
    for i in 0..DEVICES {
        let path = dir.path().join(format!("sim/rep-{i}/journal.json"));
        let journal: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let finals = journal["finals"].as_array().unwrap().iter().filter(|f| f["rollout_id"] == id.as_str()).count();
        assert_eq!(finals, 1, "rep-{i}");
    }
    sim.stop().await;
}
