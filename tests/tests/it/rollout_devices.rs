//! One device of a rollout: cancel, retry and skip over REST and fleetctl (CONTRACT §7).
//! The rules per state are unit-tested in `server/src/rollout/device_control.rs`; here the
//! real server answers, the engine acts on what they wrote, and an agent obeys a cancel.

use std::time::Duration;

use fleet_protocol::api::TokenScope;
use serde_json::{Value, json};

use crate::rollouts::{count, create, firmware, fleetctl, get, post, simulate_with, wait_for};
use fleet_tests::TestApp;

fn action(id: &str, device: &str, what: &str) -> String {
    format!("/rollouts/{id}/devices/{device}/{what}")
}

async fn entry(app: &TestApp, id: &str, device: &str) -> Value {
    let all = get(app, &format!("/rollouts/{id}/devices")).await;
    all["items"].as_array().unwrap().iter().find(|e| e["device_id"] == device).cloned().unwrap()
}

#[tokio::test]
async fn skip_cancel_and_retry_follow_the_device_state() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    for i in 0..4 {
        app.client.add_device(&format!("d-{i}"), "sim", &Default::default()).await.unwrap();
    }
    // No agent answers: one device at a time is sent its command and times out after 2 s.
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "max_in_flight": 1, "device_timeout_s": 2,
               "max_failure_ratio": 1.0}),
    )
    .await;
    wait_for(&app, &id, Duration::from_secs(10), |b| count(b, "sent") == 1).await;
    assert_eq!(entry(&app, &id, "d-0").await["state"], "sent");

    // Skip: a pending device is cancelled with reason `skipped`; once is enough.
    let (status, skipped) = post(&app, &action(&id, "d-3", "skip"), json!({})).await;
    assert_eq!(status, 200, "{skipped}");
    assert_eq!((skipped["state"].as_str(), skipped["reason"].as_str()), (Some("cancelled"), Some("skipped")));
    let (status, again) = post(&app, &action(&id, "d-3", "skip"), json!({})).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("invalid_state")), "{again}");
    // Retry needs a failed or timed-out device.
    let (status, refused) = post(&app, &action(&id, "d-2", "retry"), json!({})).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("invalid_state")), "{refused}");
    // Cancel (here with fleetctl, printing the entry): a pending device at once, no reason.
    let out = fleetctl(&app, &["-o", "json", "rollouts", "device", "cancel", &id, "d-2"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cancelled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((cancelled["state"].as_str(), cancelled["reason"].as_str()), (Some("cancelled"), None), "{cancelled}");

    // d-0 and d-1 time out with their one attempt used; the rollout completes.
    let done = wait_for(&app, &id, Duration::from_secs(30), |b| b["state"] == "completed").await;
    assert_eq!((count(&done, "timed_out"), count(&done, "cancelled")), (2, 2), "{done:#}");
    // A completed rollout's devices are not steered any more.
    let (status, over) = post(&app, &action(&id, "d-0", "retry"), json!({})).await;
    assert_eq!((status, over["code"].as_str()), (409, Some("invalid_state")), "{over}");

    // Errors: unknown rollout, a device not in it, an invalid id, a read-only token.
    let (status, body) = post(&app, &action("nope", "d-0", "cancel"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = post(&app, &action(&id, "d-9", "cancel"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = post(&app, &action(&id, "bad%20id", "cancel"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_id")), "{body}");
    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    let url = format!("{}/api/v1{}", app.client.base_url(), action(&id, "d-0", "cancel"));
    let forbidden = reqwest::Client::new().post(url).bearer_auth(&viewer.token).send().await.unwrap();
    assert_eq!(forbidden.status(), 403);

    // The audit trail names the device.
    let audit = app.client.audit(None, None).await.unwrap();
    let skip = audit.items.iter().find(|a| a.action == "rollout.device_skipped").expect("audited");
    assert_eq!((skip.target.as_str(), &skip.details["device_id"]), (id.as_str(), &json!("d-3")));
}

#[tokio::test]
async fn retry_gives_a_device_without_attempts_left_one_more() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("late-0", "sim", &Default::default()).await.unwrap();
    app.client.add_device("other-0", "sim", &Default::default()).await.unwrap();
    // late-0 times out (no agent yet) with its one attempt; other-0 keeps the rollout running.
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"devices": ["late-0", "other-0"]}, "device_timeout_s": 2,
               "max_attempts": 1, "max_failure_ratio": 1.0, "waves": [50, 100], "wave_gate": "manual"}),
    )
    .await;
    let gated = wait_for(&app, &id, Duration::from_secs(30), |b| b["state"] == "paused").await;
    assert_eq!((gated["reason"].as_str(), &gated["waves"][0]["counts"]["timed_out"]), (Some("wave_gate"), &json!(1)));
    let timed_out = get(&app, &format!("/rollouts/{id}/devices?state=timed_out")).await;
    let device = timed_out["items"][0]["device_id"].as_str().unwrap().to_owned();
    assert_eq!(timed_out["items"][0]["attempts"], 1);

    // Its agent comes up; the operator retries it although no attempt is left.
    let dir = tempfile::tempdir().unwrap();
    let prefix = device.trim_end_matches('0');
    let sim = simulate_with(&app, dir.path(), 1, 0.0, prefix, 0).await;
    let (status, retried) = post(&app, &action(&id, &device, "retry"), json!({})).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!((retried["state"].as_str(), retried["attempts"].as_u64()), (Some("pending"), Some(1)));
    // Paused at the wave gate: nothing is sent until resumed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(entry(&app, &id, &device).await["state"], "pending", "paused: not dispatched");
    post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    wait_for(&app, &id, Duration::from_secs(30), |b| b["waves"][0]["counts"]["succeeded"] == 1).await;
    let e = entry(&app, &id, &device).await;
    assert_eq!((e["state"].as_str(), e["attempts"].as_u64()), (Some("succeeded"), Some(2)), "{e}");
    sim.stop().await;
}

#[tokio::test]
async fn cancel_in_flight_reaches_the_device_and_fleetctl_steers_devices() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    // Slow downloads: the devices are mid-download when cancelled.
    let sim = simulate_with(&app, dir.path(), 3, 0.0, "c-", 500).await;
    let id = create(&app, json!({"firmware": fw.id, "target": {"hardware": "sim"}, "max_in_flight": 1})).await;
    wait_for(&app, &id, Duration::from_secs(30), |b| count(b, "downloading") == 1).await;
    let downloading = get(&app, &format!("/rollouts/{id}/devices?state=downloading")).await;
    let device = downloading["items"][0]["device_id"].as_str().unwrap().to_owned();

    let out = fleetctl(&app, &["rollouts", "device", "cancel", &id, &device]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("device {device} in rollout {id}: cancelled\n"));
    // The agent got `cancel`: it stopped and installed nothing; the others went on.
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!((count(&done, "succeeded"), count(&done, "cancelled")), (2, 1), "{done:#}");
    assert!(app.client.get_device(&device).await.unwrap().firmware.is_none(), "the cancelled device installed nothing");
    assert_eq!(entry(&app, &id, &device).await["state"], "cancelled");

    // A completed rollout's device is refused, in the server's words.
    let out = fleetctl(&app, &["rollouts", "device", "skip", &id, &device]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot skip device {device} of rollout {id}: the rollout is completed")),
        "{stderr}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_device_cancelled_while_offline_is_told_when_it_comes_back_mid_download() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), 1, 0.0, "away-", 500).await;
    let id = create(&app, json!({"firmware": fw.id, "target": {"devices": ["away-0"]}})).await;
    wait_for(&app, &id, Duration::from_secs(30), |b| count(b, "downloading") == 1).await;
    // It goes away mid-download; the operator cancels it meanwhile: that `cancel` reaches no one.
    sim.stop().await;
    let (status, body) = post(&app, &action(&id, "away-0", "cancel"), json!({})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("cancelled")), "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Back, it resumes its download and says so: it is told to cancel, and installs nothing.
    let sim = simulate_with(&app, dir.path(), 1, 0.0, "away-", 500).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let device = app.client.get_device("away-0").await.unwrap();
    assert!(device.online, "it came back");
    assert!(device.firmware.is_none(), "the cancelled device installed nothing: {device:?}");
    assert_eq!(entry(&app, &id, "away-0").await["state"], "cancelled");
    sim.stop().await;
}
