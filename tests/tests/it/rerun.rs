//! Running things a second time: the simulator with an earlier run's state dir against a
//! fresh server, the simulator on a broker it cannot log in to, and a release key added twice.

use std::process::Stdio;
use std::time::Duration;

use fleet_protocol::ErrorCode;
use fleet_tests::simulator::{Simulator, SimulatorSetup};
use fleet_tests::{ADMIN_TOKEN, TestApp, sample, samples_dir};
use reqwest::{Method, StatusCode};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");
const FLEETCTL: &str = env!("CARGO_BIN_EXE_fleetctl-under-test");

fn setup<'a>(app: &'a TestApp, state_dir: &'a std::path::Path) -> SimulatorSetup<'a> {
    SimulatorSetup::new(AGENT, 4, app.client.base_url(), &app.mqtt_url, state_dir)
}

#[tokio::test]
async fn the_simulator_reregisters_devices_a_new_server_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("fleet-sim");

    let first = TestApp::spawn().await;
    let sim = Simulator::start(setup(&first, &state)).await;
    let kept = std::fs::read_to_string(state.join("sim-0/token")).unwrap();
    sim.stop().await;
    first.stop().await;

    // A fresh server: the kept tokens mean nothing to it. (Simulator::start asserts that
    // `online: 4` is printed.)
    let second = TestApp::spawn().await;
    let sim = Simulator::start(setup(&second, &state)).await;
    let said = sim.printed.join("\n");
    assert!(said.contains("refused the kept token of 4 device(s)"), "says so:\n{said}");
    assert!(said.contains("sim-0, sim-1, sim-2, sim-3"), "names them:\n{said}");
    assert!(sim.printed.iter().any(|l| l.starts_with("connecting ")), "shows progress:\n{said}");
    let renewed = std::fs::read_to_string(state.join("sim-0/token")).unwrap();
    assert_ne!(renewed, kept, "the new token is kept");
    for i in 0..4 {
        second.client.get_device(&format!("sim-{i}")).await.expect("registered with the new server");
    }
    sim.stop().await;

    // The same server again: the kept tokens are good and nothing is re-registered.
    let sim = Simulator::start(setup(&second, &state)).await;
    let said = sim.printed.join("\n");
    assert!(!said.contains("refused"), "{said}");
    assert_eq!(std::fs::read_to_string(state.join("sim-0/token")).unwrap(), renewed);
    sim.stop().await;
}

#[tokio::test]
async fn the_simulator_gives_up_with_a_clear_error_when_devices_cannot_connect() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("operator.token");
    std::fs::write(&token_file, ADMIN_TOKEN).unwrap();
    // A port nobody listens on: the devices never get online.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let started = tokio::time::Instant::now();
    let run = tokio::process::Command::new(AGENT)
        .arg("simulate")
        .args(["--count", "2", "--server", app.client.base_url()])
        .args(["--mqtt-url", &format!("mqtt://{closed}")])
        .args(["--trust", samples_dir().join("test-only-release.pub").to_str().unwrap()])
        .args(["--operator-token-file", token_file.to_str().unwrap()])
        .args(["--state-dir", dir.path().join("sim").to_str().unwrap()])
        .args(["--connect-timeout", "2"])
        .env("FLEET_AGENT_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run).await.expect("gives up in time").unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "fails: {stdout}\n{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(2), "not before the limit: {:?}", started.elapsed());
    assert!(stdout.contains("connecting 0/2"), "{stdout}");
    assert!(stderr.contains("gave up: 0 of 2 devices online") && stderr.contains("sim-0, sim-1"), "{stderr}");
    assert!(stderr.contains(&format!("mqtt://{closed}")), "names the broker: {stderr}");

    // A refused operator token is named as such, before anything connects.
    std::fs::write(&token_file, "not-the-admin-token").unwrap();
    std::fs::remove_dir_all(dir.path().join("sim")).unwrap();
    let out = tokio::process::Command::new(AGENT)
        .arg("simulate")
        .args(["--count", "2", "--server", app.client.base_url(), "--mqtt-url", &app.mqtt_url])
        .args(["--trust", samples_dir().join("test-only-release.pub").to_str().unwrap()])
        .args(["--operator-token-file", token_file.to_str().unwrap()])
        .args(["--state-dir", dir.path().join("sim").to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("refused the operator token (401"), "{stderr}");
}

#[tokio::test]
async fn adding_the_same_key_again_is_not_an_error() {
    let app = TestApp::spawn().await;
    let pem = String::from_utf8(sample("test-only-release.pub")).unwrap();
    let first = app.client.add_key("release", &pem).await.unwrap();

    let body = serde_json::json!({"name": "release", "public_key_pem": pem});
    let again = app.client.request(Method::POST, "/keys").json(&body).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK, "the same key under the same name: 200");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["keyid"], first.keyid.as_str(), "{again}");
    assert_eq!(app.client.list_keys(None).await.unwrap().items.len(), 1);

    // Conflicts stay conflicts: the key under another name, another key under its name.
    let renamed = app.client.add_key("renamed", &pem).await.unwrap_err();
    assert_eq!(renamed.problem().map(|p| p.code), Some(ErrorCode::AlreadyExists), "{renamed}");
    let other = String::from_utf8(sample("test-only-other.pub")).unwrap();
    let taken = app.client.add_key("release", &other).await.unwrap_err();
    assert_eq!(taken.problem().map(|p| p.code), Some(ErrorCode::AlreadyExists), "{taken}");
    // Once the name's key is revoked, the name is free for another key.
    app.client.revoke_key(&first.keyid).await.unwrap();
    app.client.add_key("release", &other).await.expect("the name of a revoked key is free");

    // fleetctl says the same twice without failing.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.pub"), &other).unwrap();
    for _ in 0..2 {
        let out = tokio::process::Command::new(FLEETCTL)
            .args(["keys", "add", "release", "other.pub"])
            .current_dir(dir.path())
            .env("FLEET_URL", app.client.base_url())
            .env("FLEET_TOKEN", ADMIN_TOKEN)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "fleetctl keys add: {}", String::from_utf8_lossy(&out.stderr));
    }
}
