//! `max_retries_total`: retries across the whole rollout; once used up, failures are final.

use std::time::Duration;

use serde_json::{Value, json};

use crate::rollouts::{count, firmware, fleetctl, get, post, simulate_with, wait_for};
use fleet_tests::TestApp;

#[tokio::test]
async fn the_retry_budget_is_shared_by_the_devices_and_then_failures_are_final() {
    budget_is_shared(TestApp::spawn().await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn on_postgres_the_retry_budget_is_shared_by_the_devices() {
    let url = fleet_tests::fresh_postgres().await;
    budget_is_shared(TestApp::spawn_with(|s| s.database_url = Some(url.clone())).await).await;
}

async fn budget_is_shared(app: TestApp) {
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    // Every install fails. Three attempts each would be nine; the budget allows two retries.
    let sim = simulate_with(&app, dir.path(), 3, 1.0, "b-", 0).await;
    let out = fleetctl(
        &app,
        &["-o", "json", "rollouts", "create", "--firmware", &fw.id, "--hardware", "sim", "--max-attempts", "3"]
            .into_iter()
            .chain(["--max-retries-total", "2", "--max-failure-ratio", "1"])
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["options"]["max_retries_total"], 2, "{created:#}");
    let id = created["id"].as_str().unwrap();

    let done = wait_for(&app, id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!((count(&done, "failed"), done["retries_used"].as_u64()), (3, Some(2)), "{done:#}");
    let entries = get(&app, &format!("/rollouts/{id}/devices")).await;
    let attempts: u64 = entries["items"].as_array().unwrap().iter().map(|e| e["attempts"].as_u64().unwrap()).sum();
    assert_eq!(attempts, 3 + 2, "one attempt each, and the two retries of the budget");
    sim.stop().await;
}

#[tokio::test]
async fn a_budget_out_of_range_is_a_bad_request_and_none_is_unlimited() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("u-0", "sim", &Default::default()).await.unwrap();
    for bad in [json!(1_000_001), json!(-1), json!("two")] {
        let body = json!({"firmware": fw.id, "target": {"devices": ["u-0"]}, "max_retries_total": bad});
        let (status, problem) = post(&app, "/rollouts", body).await;
        assert_eq!((status, problem["code"].as_str()), (400, Some("bad_request")), "{bad}: {problem}");
    }
    let (status, created) = post(&app, "/rollouts", json!({"firmware": fw.id, "target": {"devices": ["u-0"]}})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((&created["options"]["max_retries_total"], &created["retries_used"]), (&Value::Null, &json!(0)));
}
