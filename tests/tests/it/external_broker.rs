//! The same rollout through an external broker (Mosquitto): `--mqtt-url`.

use std::time::Duration;

use fleet_protocol::ArtifactKind;
use fleet_tests::simulator::{Simulator, SimulatorSetup};
use fleet_tests::{TestApp, manifest_for, release_key, sign, wait_rollout};
use serde_json::json;

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

#[tokio::test]
#[ignore = "needs an MQTT broker at FLEET_TEST_MQTT_URL (CI starts Mosquitto)"]
async fn a_rollout_through_an_external_broker() {
    let url = std::env::var("FLEET_TEST_MQTT_URL").expect("FLEET_TEST_MQTT_URL, e.g. mqtt://127.0.0.1:1883");
    // A topic root of our own: other runs may share the broker.
    let root = format!("fleet-test-{}", std::process::id());
    let app = TestApp::spawn_with(|s| {
        s.mqtt_url = Some(url.clone());
        s.topic_root = root.clone();
    })
    .await;
    app.trust_release_key().await;
    let bytes: Vec<u8> = (0..32 * 1024u32).map(|i| (i % 199) as u8).collect();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bytes).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimulatorSetup {
        prefix: "ext-",
        topic_root: &root,
        ..SimulatorSetup::new(AGENT, 10, app.client.base_url(), &url, dir.path())
    })
    .await;
    let body = json!({"firmware": fw.id, "target": {"hardware": "sim"}});
    let created = app.client.create_rollout(&body).await.unwrap();
    let id = created.id.as_str();
    let done = wait_rollout(&app.client, id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(done["counts"]["succeeded"], 10, "{done:#}");
    sim.stop().await;
}
