//! `DELETE /rollouts/{id}` and `fleetctl rollouts rm`: only finished rollouts go, with their
//! entries; an artifact is kept only by rollouts still running, paused or winding down,
//! and a finished rollout whose artifact was deleted still shows the artifact's id.

use std::time::Duration;

use fleet_cli::client::TokenScope;
use fleet_protocol::paths::RolloutAction;
use fleet_protocol::{ArtifactKind, ErrorCode};
use fleet_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::rollouts::{count, firmware, fleetctl, wait_for};

async fn status_of(app: &TestApp, method: Method, path: &str) -> StatusCode {
    app.client.request(method, path).send().await.unwrap().status()
}

/// A server with firmware `gateway-os` 1.0.0 and a rollout of it to its one device `gw-1`
/// (no agent runs): the server, the firmware and the rollout's id.
async fn one_device_rollout() -> (TestApp, fleet_protocol::api::ArtifactInfo, String) {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "rpi4").await;
    app.client.add_device("gw-1", "rpi4", &Default::default()).await.unwrap();
    let rollout = app.client.create_rollout(&json!({"firmware": fw.id, "target": {"devices": ["gw-1"]}})).await;
    let id = rollout.unwrap().id;
    (app, fw, id)
}

#[tokio::test]
async fn only_finished_rollouts_are_deleted_and_their_artifact_can_go_first() {
    let (app, fw, id) = one_device_rollout().await;

    // Running (its device sent the update), then paused: neither the rollout nor its
    // artifact can be deleted.
    wait_for(&app, &id, Duration::from_secs(30), |b| count(b, "sent") == 1).await;
    for action in [None, Some(RolloutAction::Pause)] {
        if let Some(action) = action {
            app.client.control_rollout(&id, action).await.unwrap();
        }
        let refused = app.client.delete_rollout(&id).await.unwrap_err();
        assert_eq!(refused.problem().unwrap().code, ErrorCode::InvalidState, "{action:?}");
        let kept = app.client.delete_artifact(ArtifactKind::Firmware, &fw.id).await.unwrap_err();
        assert_eq!(kept.problem().unwrap().code, ErrorCode::InUse, "{action:?}");
    }
    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    let forbidden = app.client.with_token(viewer.token).delete_rollout(&id).await.unwrap_err();
    assert_eq!(forbidden.problem().unwrap().code, ErrorCode::Forbidden);
    app.client.control_rollout(&id, RolloutAction::Cancel).await.unwrap();
    // Cancelled, but its device has not stopped yet: the engine still needs the artifact.
    let winding = app.client.delete_artifact(ArtifactKind::Firmware, &fw.id).await.unwrap_err();
    assert_eq!(winding.problem().unwrap().code, ErrorCode::InUse);
    app.client.delete_device("gw-1").await.unwrap();

    // Finished: the artifact may go; the rollout still reads, naming the artifact's id.
    app.client.delete_artifact(ArtifactKind::Firmware, &fw.id).await.unwrap();
    assert_eq!(status_of(&app, Method::GET, &format!("/firmware/{}/blob", fw.id)).await, StatusCode::NOT_FOUND);
    let shown = app.client.get_rollout(&id).await.unwrap();
    assert_eq!((shown.state.as_str(), shown.artifact.is_none()), ("cancelled", true));
    assert_eq!(shown.artifact_id, fw.id);
    assert_eq!(status_of(&app, Method::GET, &format!("/rollouts/{id}/devices")).await, StatusCode::OK);
    let table = fleetctl(&app, &["rollouts", "show", &id]).await;
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    assert!(String::from_utf8_lossy(&table.stdout).contains(&format!("{} (deleted)", fw.id)));
    // The same bytes can be uploaded again: the blob store is consistent.
    firmware(&app, "gateway-os", "1.0.0", "rpi4").await;

    app.client.delete_rollout(&id).await.unwrap();
    assert_eq!(app.client.get_rollout(&id).await.unwrap_err().problem().unwrap().code, ErrorCode::NotFound);
    assert_eq!(status_of(&app, Method::GET, &format!("/rollouts/{id}/devices")).await, StatusCode::NOT_FOUND);
    assert_eq!(app.client.delete_rollout(&id).await.unwrap_err().problem().unwrap().code, ErrorCode::NotFound);
    let audit = app.client.audit(Some(100), None).await.unwrap().items;
    assert!(audit.iter().any(|e| e.action == "rollout.deleted" && e.target == id && e.actor == "admin"), "{audit:?}");
}

#[tokio::test]
async fn fleetctl_rollouts_rm_refuses_a_running_rollout_and_deletes_a_cancelled_one() {
    let (app, fw, id) = one_device_rollout().await;

    let refused = fleetctl(&app, &["rollouts", "rm", &id]).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("running"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(app.client.get_rollout(&id).await.is_ok());

    app.client.control_rollout(&id, RolloutAction::Cancel).await.unwrap();
    let out = fleetctl(&app, &["-o", "json", "rollouts", "rm", &id]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), json!({"deleted": id}));
    assert!(app.client.get_rollout(&id).await.is_err());
    // Its device is free for a new rollout.
    app.client.create_rollout(&json!({"firmware": fw.id, "target": {"devices": ["gw-1"]}})).await.unwrap();
}
