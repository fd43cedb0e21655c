//! Rollouts end to end: the real server with its embedded broker, simulated devices on the
//! real agent code path, and the operator API.

use std::time::Duration;

use fleet_agent::simulate::picked;
use fleet_cli::client::Artifact;
use fleet_protocol::ArtifactKind;
use fleet_protocol::message::StatusReport;
use fleet_tests::broker::publish_acked;
use fleet_tests::simulator::{Simulator, SimulatorSetup};
use fleet_tests::{ADMIN_TOKEN, TestApp, manifest_for, release_key, sign};
use reqwest::Method;
use rumqttc::v5::{AsyncClient, MqttOptions};
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

pub(crate) async fn firmware(app: &TestApp, name: &str, version: &str, hardware: &str) -> Artifact {
    let bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 241) as u8 ^ version.len() as u8).collect();
    let mut m = manifest_for(ArtifactKind::Firmware, name, version, &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse(hardware).unwrap()];
    app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bytes).await.unwrap()
}

pub(crate) async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app.client.request(Method::POST, path).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn get(app: &TestApp, path: &str) -> Value {
    app.client.request(Method::GET, path).send().await.unwrap().json().await.unwrap()
}

pub(crate) async fn create(app: &TestApp, body: Value) -> String {
    let (status, created) = post(app, "/rollouts", body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Polls the rollout until `pred` holds.
pub(crate) async fn wait_for(app: &TestApp, id: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    fleet_tests::wait_rollout(&app.client, id, timeout, pred).await
}

pub(crate) fn count(body: &Value, state: &str) -> i64 {
    body["counts"][state].as_i64().unwrap_or(0)
}

/// Connects as `device` and publishes `payload` on its `channel` topic (`status`,
/// `presence`); returns once the broker acknowledged it (QoS 1).
pub(crate) async fn publish_as(mqtt_url: &str, device: &str, token: &str, channel: &str, payload: Vec<u8>) {
    let (host, port) = mqtt_url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let mut options = MqttOptions::new(device, host, port.parse().unwrap());
    options.set_credentials(device, token).set_clean_start(true);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let topic = format!("fleet/devices/{device}/{channel}");
    publish_acked(&client, &mut eventloop, topic, channel == "presence", payload).await;
}

/// [`publish_as`] a status report.
pub(crate) async fn send_report(mqtt_url: &str, device: &str, token: &str, report: &StatusReport) {
    publish_as(mqtt_url, device, token, "status", serde_json::to_vec(report).unwrap()).await;
}

async fn simulate(app: &TestApp, dir: &std::path::Path, count: usize, fail_ratio: f64) -> Simulator {
    simulate_with(app, dir, count, fail_ratio, "sim-", 0).await
}

pub(crate) async fn simulate_with(
    app: &TestApp,
    dir: &std::path::Path,
    count: usize,
    fail_ratio: f64,
    prefix: &str,
    download_delay_ms: u64,
) -> Simulator {
    Simulator::start(SimulatorSetup {
        prefix,
        fail_ratio,
        download_delay_ms,
        ..SimulatorSetup::new(AGENT, count, app.client.base_url(), &app.mqtt_url, dir)
    })
    .await
}

#[tokio::test]
async fn twenty_agents_complete_and_the_inventory_shows_the_version() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&app, dir.path(), 20, 0.0).await;

    let id = create(&app, json!({"firmware": fw.id, "target": {"hardware": "sim"}})).await;
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(count(&done, "succeeded"), 20, "{done:#}");
    assert_eq!(done["waves"][0]["state"], "completed");
    for i in 0..20 {
        let d = app.client.get_device(&format!("sim-{i}")).await.unwrap();
        assert_eq!(d.firmware.unwrap().version, semver::Version::new(1, 0, 0));
        assert!(d.online);
    }
    let devices = get(&app, &format!("/rollouts/{id}/devices?state=succeeded&limit=5")).await;
    assert_eq!(devices["items"].as_array().unwrap().len(), 5);
    assert_eq!(devices["items"][0]["attempts"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn the_failure_gate_pauses_the_first_wave_and_resume_continues() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&app, dir.path(), 50, 0.4).await;
    let mut ids: Vec<String> = (0..50).map(|i| format!("sim-{i}")).collect();
    ids.sort();
    let first_wave = &ids[..10];
    let failing = first_wave.iter().filter(|id| picked("", id, 0.4)).count();
    assert!(failing * 5 > first_wave.len(), "the picked devices trip a 0.2 gate ({failing} of 10)");

    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "waves": [20, 100],
               "max_failure_ratio": 0.2, "min_finished": 5}),
    )
    .await;
    let paused = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "paused").await;
    assert_eq!(paused["reason"], "failure_threshold");
    assert_eq!(paused["waves"][1]["counts"]["pending"], 40, "the second wave was never dispatched: {paused:#}");

    let (status, _) = post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    assert_eq!(status, 200);
    // The gate is re-armed: it judges only new results, and the second wave goes out.
    let resumed =
        wait_for(&app, &id, Duration::from_secs(60), |b| b["waves"][1]["counts"]["pending"].as_i64().unwrap_or(0) < 40)
            .await;
    assert!(resumed["waves"][1]["size"] == 40);
    sim.stop().await;
}

#[tokio::test]
async fn manual_gate_pauses_after_each_wave_and_waves_go_in_order() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&app, dir.path(), 10, 0.0).await;
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "waves": [20, 100], "wave_gate": "manual"}),
    )
    .await;
    let gated = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "paused").await;
    assert_eq!(gated["reason"], "wave_gate");
    assert_eq!(gated["waves"][0]["counts"]["succeeded"], 2);
    assert_eq!(gated["waves"][1]["counts"]["pending"], 8);
    post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(count(&done, "succeeded"), 10);

    // No device of the second wave was sent anything before the first wave was final.
    let entries = get(&app, &format!("/rollouts/{id}/devices")).await;
    let items = entries["items"].as_array().unwrap();
    // As instants: RFC 3339 text does not sort (a whole second is written without `.000`).
    let at = |e: &Value, field: &str| {
        let text = e[field].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let last_first = items.iter().filter(|e| e["wave"] == 0).map(|e| at(e, "updated_at")).max().unwrap();
    let first_second = items.iter().filter(|e| e["wave"] == 1).map(|e| at(e, "sent_at")).min().unwrap();
    assert!(first_second >= last_first, "{first_second} < {last_first}");
    sim.stop().await;
}

#[tokio::test]
async fn limits_hold_and_busy_devices_are_refused() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&app, dir.path(), 12, 0.0).await;

    let (status, plan) = post(
        &app,
        "/rollouts?dry_run=true",
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "waves": [25, 100]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(plan["targets"].as_array().unwrap().len(), 12);
    assert_eq!(plan["waves"], json!([{"percent": 25.0, "size": 3}, {"percent": 100.0, "size": 9}]));
    assert!(get(&app, "/rollouts").await["items"].as_array().unwrap().is_empty(), "a dry run creates nothing");

    let id = create(&app, json!({"firmware": fw.id, "target": {"hardware": "sim"}, "max_per_minute": 5})).await;
    let (status, busy) = post(&app, "/rollouts", json!({"firmware": fw.id, "target": {"devices": ["sim-3"]}})).await;
    assert_eq!((status, busy["code"].as_str()), (409, Some("device_busy")));
    assert_eq!(busy["rollouts"], json!([id]));
    let del = app.client.delete_artifact(ArtifactKind::Firmware, &fw.id).await.unwrap_err();
    assert_eq!(del.problem().unwrap().code, fleet_protocol::ErrorCode::InUse);

    // At most five devices in the first minute.
    let five = wait_for(&app, &id, Duration::from_secs(30), |b| count(b, "succeeded") == 5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = get(&app, &format!("/rollouts/{id}")).await;
    assert_eq!(count(&later, "pending"), 7, "{later:#} after {five:#}");
    post(&app, &format!("/rollouts/{id}/cancel"), json!({})).await;
    let cancelled = wait_for(&app, &id, Duration::from_secs(30), |b| b["state"] == "cancelled").await;
    wait_for(&app, &id, Duration::from_secs(30), |b| count(b, "cancelled") == 7).await;
    assert_eq!(count(&cancelled, "succeeded"), 5);
    let (status, again) = post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("invalid_state")));

    // In flight: never more than two devices between sent and final.
    let id = create(&app, json!({"firmware": fw.id, "target": {"hardware": "sim"}, "max_in_flight": 2})).await;
    let mut max_seen = 0;
    loop {
        let b = get(&app, &format!("/rollouts/{id}")).await;
        let flying: i64 =
            ["sent", "downloading", "verifying", "installing", "rebooting"].iter().map(|s| count(&b, s)).sum();
        max_seen = max_seen.max(flying);
        if b["state"] == "completed" {
            assert_eq!(count(&b, "succeeded") + count(&b, "cancelled"), 12);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(max_seen <= 2, "{max_seen} in flight");
    sim.stop().await;
}

#[tokio::test]
async fn offline_devices_get_their_command_on_connect_and_absent_ones_time_out_unreachable() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("late-0", "sim", &Default::default()).await.unwrap();
    app.client.add_device("never-0", "sim", &Default::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&app, &dir.path().join("a"), 3, 0.0).await;
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "device_timeout_s": 6,
               "max_failure_ratio": 0.0, "min_finished": 1}),
    )
    .await;
    // late-0 connects after its command went out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = simulate_with(&app, &dir.path().join("b"), 1, 0.0, "late-", 0).await;
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(count(&done, "succeeded"), 4, "{done:#}");
    assert_eq!(count(&done, "timed_out"), 1);
    let never = get(&app, &format!("/rollouts/{id}/devices?state=timed_out")).await;
    assert_eq!(never["items"][0]["device_id"], "never-0");
    assert_eq!(never["items"][0]["reason"], "unreachable");
    sim.stop().await;
    late.stop().await;
}

#[tokio::test]
async fn retries_back_off_and_stop_at_max_attempts() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    // Find a prefix whose only device fails every install.
    let prefix = (0..100).map(|i| format!("r{i}-")).find(|p| picked("", &format!("{p}0"), 0.5)).unwrap();
    let sim = simulate_with(&app, dir.path(), 1, 0.5, &prefix, 0).await;
    let started = std::time::Instant::now();
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "max_attempts": 3, "max_failure_ratio": 1.0}),
    )
    .await;
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(count(&done, "failed"), 1, "{done:#}");
    let entry = &get(&app, &format!("/rollouts/{id}/devices")).await["items"][0];
    assert_eq!(entry["attempts"], 3);
    assert_eq!(entry["reason"], "install_failed");
    assert!(started.elapsed() >= Duration::from_secs(3), "backoff of 1 s then 2 s between attempts");
    sim.stop().await;
}

#[tokio::test]
async fn cancel_reaches_a_device_mid_download() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), 2, 0.0, "sim-", 500).await;
    let id = create(&app, json!({"firmware": fw.id, "target": {"hardware": "sim"}})).await;
    wait_for(&app, &id, Duration::from_secs(30), |b| count(b, "downloading") == 2).await;
    let (status, _) = post(&app, &format!("/rollouts/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200);
    let done = wait_for(&app, &id, Duration::from_secs(30), |b| count(b, "cancelled") == 2).await;
    assert_eq!(done["state"], "cancelled");
    assert!(app.client.get_device("sim-0").await.unwrap().firmware.is_none(), "nothing installed");
    sim.stop().await;
}

#[tokio::test]
async fn a_config_rollout_applies_where_the_firmware_fits() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&app, dir.path(), 4, 0.0).await;
    // Two devices get firmware 1.0.0 first; the config needs >=1.0.
    let first = create(&app, json!({"firmware": fw.id, "target": {"devices": ["sim-0", "sim-1"]}})).await;
    wait_for(&app, &first, Duration::from_secs(60), |b| b["state"] == "completed").await;

    let doc = b"log_level = \"debug\"\n".to_vec();
    let mut m = manifest_for(ArtifactKind::Config, "gw-config", "1.0.0", &doc);
    m.hardware.clear();
    m.requires_firmware = Some(semver::VersionReq::parse(">=1.0, <2").unwrap());
    let cfg = app.upload(ArtifactKind::Config, &sign(&m, &[&release_key()]), doc).await.unwrap();
    let id = create(&app, json!({"config": cfg.id, "target": {"hardware": "sim"}, "max_failure_ratio": 1.0})).await;
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(count(&done, "succeeded"), 2, "{done:#}");
    assert_eq!(count(&done, "rejected"), 2);
    let rejected = get(&app, &format!("/rollouts/{id}/devices?state=rejected")).await;
    assert!(rejected["items"].as_array().unwrap().iter().all(|e| e["reason"] == "incompatible_firmware"));
    let d = app.client.get_device("sim-0").await.unwrap();
    assert_eq!(d.config.unwrap().version, semver::Version::new(1, 0, 0));
    sim.stop().await;
}

const FLEETCTL: &str = env!("CARGO_BIN_EXE_fleetctl-under-test");

pub(crate) async fn fleetctl(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(FLEETCTL)
        .args(args)
        .env("FLEET_URL", app.client.base_url())
        .env("FLEET_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn fleetctl_creates_and_watches_rollouts() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&app, dir.path(), 6, 0.0).await;

    let dry = fleetctl(
        &app,
        &[
            "rollouts",
            "create",
            "--firmware",
            &fw.id,
            "--hardware",
            "sim",
            "--waves",
            "50,100",
            "--dry-run",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(dry.status.success());
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(plan["targets"].as_array().unwrap().len(), 6);

    let out = fleetctl(
        &app,
        &["rollouts", "create", "--firmware", &fw.id, "--hardware", "sim", "--waves", "50,100", "--watch"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("completed: succeeded 6"), "{stdout}");
    let id = stdout.lines().next().unwrap().trim_start_matches("created rollout ").to_owned();
    let listed = fleetctl(&app, &["rollouts", "list"]).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&id));

    // A manual gate: watch exits non-zero when the rollout pauses.
    let fw2 = firmware(&app, "gateway-os", "1.1.0", "sim").await;
    let gated = fleetctl(
        &app,
        &[
            "rollouts",
            "create",
            "--firmware",
            &fw2.id,
            "--hardware",
            "sim",
            "--waves",
            "50,100",
            "--wave-gate",
            "manual",
            "--watch",
        ],
    )
    .await;
    assert!(!gated.status.success());
    assert!(
        String::from_utf8_lossy(&gated.stderr).contains("paused (wave_gate)"),
        "{}",
        String::from_utf8_lossy(&gated.stderr)
    );
    sim.stop().await;
}

#[tokio::test]
async fn revoking_the_signing_key_pauses_running_rollouts_and_refuses_new_ones() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("offline-0", "sim", &Default::default()).await.unwrap();
    app.client.add_device("offline-1", "sim", &Default::default()).await.unwrap();
    let id = create(&app, json!({"firmware": fw.id, "target": {"devices": ["offline-0"]}})).await;
    let keyid = app.client.list_keys(None).await.unwrap().items[0].keyid.clone();
    app.client.revoke_key(&keyid).await.unwrap();
    let paused = get(&app, &format!("/rollouts/{id}")).await;
    assert_eq!((paused["state"].as_str(), paused["reason"].as_str()), (Some("paused"), Some("key_revoked")));
    let (status, refused) =
        post(&app, "/rollouts", json!({"firmware": fw.id, "target": {"devices": ["offline-1"]}})).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("key_revoked")));
    let (status, resumed) = post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    assert_eq!((status, resumed["code"].as_str()), (409, Some("key_revoked")));
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn on_postgres_a_rollout_completes_and_the_gate_pauses() {
    let url = fleet_tests::fresh_postgres().await;
    let app = TestApp::spawn_with(|s| s.database_url = Some(url.clone())).await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate(&app, dir.path(), 50, 0.4).await;
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "waves": [20, 100],
               "max_failure_ratio": 0.2, "min_finished": 5}),
    )
    .await;
    let paused = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "paused").await;
    assert_eq!(paused["reason"], "failure_threshold");
    assert_eq!(paused["waves"][1]["counts"]["pending"], 40);
    post(&app, &format!("/rollouts/{id}/cancel"), json!({})).await;
    wait_for(&app, &id, Duration::from_secs(60), |b| count(b, "pending") == 0 && b["state"] == "cancelled").await;

    let healthy: Vec<String> = (0..50).map(|i| format!("sim-{i}")).filter(|d| !picked("", d, 0.4)).collect();
    let id = create(&app, json!({"firmware": fw.id, "target": {"devices": healthy}})).await;
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(count(&done, "succeeded") as usize, healthy.len(), "{done:#}");
    sim.stop().await;
}
