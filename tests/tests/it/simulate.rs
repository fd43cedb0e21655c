//! `fleet-agent simulate`: 200 virtual devices on the real code path, failures injected by
//! the documented function of the device id.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use fleet_agent::simulate::picked;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId};
use fleet_tests::agent::update;
use fleet_tests::broker::{TestBroker, Watcher};
use fleet_tests::device_server::DeviceServer;
use fleet_tests::{manifest_for, release_key, samples_dir, sign};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const COUNT: usize = 200;
const FAIL_RATIO: f64 = 0.25;

#[tokio::test]
async fn two_hundred_simulated_devices_update_and_fail_exactly_as_picked() {
    let broker = TestBroker::start().await;
    let mut watcher = Watcher::connect(&broker).await;
    let server = DeviceServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let operator = dir.path().join("operator.token");
    std::fs::write(&operator, &server.operator_token).unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet-agent-under-test"))
        .arg("simulate")
        .args(["--count", &COUNT.to_string()])
        .args(["--server", &server.url, "--mqtt-url", &broker.url()])
        .args(["--trust", samples_dir().join("test-only-release.pub").to_str().unwrap()])
        .args(["--operator-token-file", operator.to_str().unwrap()])
        .args(["--hardware", "rpi4", "--prefix", "sim-"])
        .args(["--state-dir", dir.path().join("sim").to_str().unwrap()])
        .args(["--fail-ratio", &FAIL_RATIO.to_string()])
        .env("FLEET_AGENT_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let online = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(&format!("online: {COUNT}")) {
                return true;
            }
        }
        false
    })
    .await
    .expect("all devices online in time");
    assert!(online);

    let bytes: Vec<u8> = (0..64 * 1024).map(|i| (i % 249) as u8).collect();
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    let url = server.put_blob("fw", bytes, None);
    let envelope = sign(&m, &[&release_key()]);
    let ids: Vec<DeviceId> = (0..COUNT).map(|i| DeviceId::parse(format!("sim-{i}")).unwrap()).collect();
    for id in &ids {
        let command = update(id, "r1", ArtifactKind::Firmware, &url, &envelope);
        server.set_command(id.as_str(), Some(command.clone()));
        watcher.send(id, &command).await;
    }

    let mut outcomes = BTreeMap::new();
    for id in &ids {
        let r = watcher.wait_final(id, Duration::from_secs(120)).await;
        outcomes.insert(id.to_string(), (r.state, r.reason));
    }
    let expected_failures: Vec<_> =
        ids.iter().filter(|id| picked("", id.as_str(), FAIL_RATIO)).map(|id| id.to_string()).collect();
    assert!(!expected_failures.is_empty() && expected_failures.len() < COUNT / 2, "the ratio picks some devices");
    for (id, outcome) in &outcomes {
        let expected = if expected_failures.contains(id) {
            (DeviceState::Failed, Some(Reason::InstallFailed))
        } else {
            (DeviceState::Succeeded, None)
        };
        assert_eq!(outcome, &expected, "{id}");
    }
    // Every device confirmed its command with the server and downloaded the blob once.
    let seen = server.seen();
    assert_eq!(seen.iter().filter(|s| s.path.ends_with("/command")).count(), COUNT);
    assert_eq!(seen.iter().filter(|s| s.path == "/blobs/fw").count(), COUNT);
    child.start_kill().unwrap();
}
