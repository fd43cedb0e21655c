//! Dynamic rollouts (CONTRACT §7): devices registered or relabelled later that match the
//! hardware/labels target join the last wave and are updated; others, and finished
//! rollouts, take no one.

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_tests::TestApp;
use serde_json::{Value, json};

use crate::rollouts::{count, create, firmware, get, post, simulate_with, wait_for};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The device's entry in the rollout, if it is in it.
async fn entry(app: &TestApp, rollout: &str, device: &str) -> Option<Value> {
    let items = get(app, &format!("/rollouts/{rollout}/devices")).await["items"].as_array().unwrap().clone();
    items.into_iter().find(|e| e["device_id"] == device)
}

#[tokio::test]
async fn devices_registered_later_join_a_dynamic_rollout_and_finished_ones_take_no_one() {
    registered_devices_join(TestApp::spawn().await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn on_postgres_devices_registered_later_join_a_dynamic_rollout() {
    let url = fleet_tests::fresh_postgres().await;
    registered_devices_join(TestApp::spawn_with(|s| s.database_url = Some(url.clone())).await).await;
}

async fn registered_devices_join(app: TestApp) {
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sim = simulate_with(&app, first.path(), 1, 0.0, "d-", 0).await;
    let target = json!({"hardware": "sim"});

    // A completed dynamic rollout takes no one.
    let done = create(&app, json!({"firmware": fw.id, "target": target, "dynamic": true})).await;
    wait_for(&app, &done, Duration::from_secs(60), |b| b["state"] == "completed").await;
    app.client.add_device("late-0", "sim", &BTreeMap::new()).await.unwrap();
    assert_eq!(get(&app, &format!("/rollouts/{done}")).await["total"], 1);

    // d-0 is already on it; late-0 never answers, so the rollout stays running.
    let id = create(&app, json!({"firmware": fw.id, "target": target, "waves": [50, 100], "dynamic": true})).await;
    app.client.add_device("other-0", "rpi4", &BTreeMap::new()).await.unwrap();
    let newcomers = simulate_with(&app, second.path(), 2, 0.0, "n-", 0).await;
    let body = wait_for(&app, &id, Duration::from_secs(60), |b| count(b, "succeeded") == 3).await;
    assert_eq!((body["state"].as_str(), body["total"].as_u64()), (Some("running"), Some(4)), "{body:#}");
    for device in ["n-0", "n-1"] {
        let e = entry(&app, &id, device).await.unwrap();
        assert_eq!(
            (e["state"].as_str(), e["wave"].as_u64(), e["attempts"].as_u64()),
            (Some("succeeded"), Some(1), Some(1))
        );
    }
    assert_eq!(entry(&app, &id, "other-0").await, None, "another hardware does not join");
    assert_eq!(body["options"]["dynamic"], true);

    // Cancelled: finished, it takes no one.
    let (status, _) = post(&app, &format!("/rollouts/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200);
    app.client.add_device("late-1", "sim", &BTreeMap::new()).await.unwrap();
    assert_eq!(entry(&app, &id, "late-1").await, None);
    assert_eq!(app.client.get_device("late-1").await.unwrap().rollout, None);
    newcomers.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn devices_relabelled_into_the_target_join_and_get_the_command() {
    relabelled_devices_join(TestApp::spawn().await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn on_postgres_devices_relabelled_into_the_target_join() {
    let url = fleet_tests::fresh_postgres().await;
    relabelled_devices_join(TestApp::spawn_with(|s| s.database_url = Some(url.clone())).await).await;
}

async fn relabelled_devices_join(app: TestApp) {
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "rpi4").await;
    let beta = labels(&[("ring", "beta")]);
    app.client.add_device("r-0", "rpi4", &beta).await.unwrap();
    app.client.add_device("r-1", "rpi4", &labels(&[("ring", "alpha")])).await.unwrap();
    app.client.add_device("r-2", "rpi5", &labels(&[("ring", "alpha")])).await.unwrap();
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "rpi4", "labels": {"ring": "beta"}}, "dynamic": true}),
    )
    .await;
    assert_eq!(get(&app, &format!("/rollouts/{id}")).await["total"], 1);

    app.client.set_device_labels("r-1", &beta).await.unwrap();
    app.client.set_device_labels("r-2", &beta).await.unwrap();
    let body = wait_for(&app, &id, Duration::from_secs(20), |b| count(b, "sent") == 2).await;
    assert_eq!(body["total"], 2, "{body:#}");
    assert_eq!(entry(&app, &id, "r-2").await, None, "another hardware does not join");
    // The device's command is the rollout's update (what the agent confirms).
    let command = get(&app, "/devices/r-1/command").await;
    assert_eq!(
        (command["type"].as_str(), command["rollout_id"].as_str()),
        (Some("update"), Some(id.as_str())),
        "{command}"
    );
    assert_eq!(app.client.get_device("r-1").await.unwrap().rollout.unwrap()["id"], id.as_str());

    // Relabelled again, it is still in once; relabelled out, it stays.
    app.client.set_device_labels("r-1", &beta).await.unwrap();
    app.client.set_device_labels("r-1", &labels(&[("ring", "gamma")])).await.unwrap();
    assert_eq!(get(&app, &format!("/rollouts/{id}")).await["total"], 2);
}
