//! `--rollout-retention`: the clean-up pass (at start, then hourly) deletes rollouts that
//! finished longer ago than the retention, with their entries; running ones stay.

use std::time::Duration;

use fleet_protocol::ErrorCode;
use fleet_protocol::paths::RolloutAction;
use fleet_tests::TestApp;
use serde_json::json;

use crate::rollouts::firmware;

#[tokio::test]
async fn finished_rollouts_expire_after_the_retention_and_running_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), |_| {}).await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "rpi4").await;
    for id in ["gw-1", "gw-2"] {
        app.client.add_device(id, "rpi4", &Default::default()).await.unwrap();
    }
    let create = |device: &str| json!({"firmware": fw.id, "target": {"devices": [device]}});
    let finished = app.client.create_rollout(&create("gw-1")).await.unwrap().id;
    let running = app.client.create_rollout(&create("gw-2")).await.unwrap().id;
    app.client.control_rollout(&finished, RolloutAction::Cancel).await.unwrap();
    // Its device stops being told to stop: the rollout is finished, not winding down.
    app.client.delete_device("gw-1").await.unwrap();
    drop(app);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let app = TestApp::spawn_in(dir.path(), |s| s.rollout_retention = Duration::from_secs(1)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match app.client.get_rollout(&finished).await {
            Err(e) if e.problem().map(|p| p.code) == Some(ErrorCode::NotFound) => break,
            _ if tokio::time::Instant::now() > deadline => panic!("rollout {finished} did not expire"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(app.client.get_rollout(&running).await.unwrap().state, "running");
    // The pass writes the audit entry just after the deletion a poll may already see.
    let audit = loop {
        let audit = app.client.audit(Some(100), None).await.unwrap().items;
        if audit.iter().any(|e| e.action == "rollout.expired") || tokio::time::Instant::now() > deadline {
            break audit;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expired: Vec<_> = audit.iter().filter(|e| e.action == "rollout.expired").collect();
    assert_eq!(expired.len(), 1, "{audit:?}");
    assert_eq!((expired[0].target.as_str(), expired[0].actor.as_str()), (finished.as_str(), "server"));
}
