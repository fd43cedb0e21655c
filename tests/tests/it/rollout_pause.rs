//! `pause` stops dispatch: on a rollout with many pending devices that dispatches all the
//! time, no command is published once the pause has answered, and resume starts again.
//! Publishes are counted by the server's own counter, `fleet_commands_published_total`
//! (every command, re-sends and cancels included).

use std::time::Duration;

use fleet_protocol::api::TokenScope;
use serde_json::json;

use crate::rollouts::{count, create, firmware, get, post, simulate_with, wait_for};
use fleet_tests::TestApp;

/// The value of one series in a Prometheus text exposition.
fn sample(text: &str, series: &str) -> u64 {
    let value = text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')));
    value.map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

#[tokio::test]
async fn no_command_is_published_while_paused() {
    pause_stops_dispatch(TestApp::spawn().await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn on_postgres_no_command_is_published_while_paused() {
    let url = fleet_tests::fresh_postgres().await;
    pause_stops_dispatch(TestApp::spawn_with(|s| s.database_url = Some(url.clone())).await).await;
}

async fn pause_stops_dispatch(app: TestApp) {
    app.trust_release_key().await;
    let viewer = app.client.create_operator_token("prometheus", TokenScope::ReadOnly).await.unwrap();
    let url = format!("{}/metrics", app.client.base_url());
    let published = || {
        let request = reqwest::Client::new().get(&url).bearer_auth(&viewer.token);
        async move {
            let text = request.send().await.unwrap().text().await.unwrap();
            (sample(&text, "fleet_commands_published_total"), sample(&text, "fleet_commands_dispatched_total"))
        }
    };
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    // Downloads take a while and at most three devices are in flight: the engine claims
    // a device whenever one finishes, so dispatch is under way when the pause lands.
    let sim = simulate_with(&app, dir.path(), 60, 0.0, "p-", 20).await;
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "max_in_flight": 3,
               "waves": [10, 20, 40, 100]}),
    )
    .await;
    wait_for(&app, &id, Duration::from_secs(60), |b| count(b, "succeeded") >= 6).await;

    let (status, paused) = post(&app, &format!("/rollouts/{id}/pause"), json!({})).await;
    assert_eq!(status, 200, "{paused}");
    // A claim committed before the pause may still be on its way to the broker; give
    // the step under way time to end (a step is a few ms; the engine ticks every 250 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (published_at_pause, dispatched_at_pause) = published().await;
    let at_pause = get(&app, &format!("/rollouts/{id}")).await;
    let pending = count(&at_pause, "pending");
    assert!(pending >= 30, "many devices are still pending: {at_pause:#}");
    assert_eq!(dispatched_at_pause, 60 - pending as u64, "every device not pending was claimed once");
    assert!(published_at_pause >= dispatched_at_pause, "each claim was published");

    // Twelve engine ticks later: the devices in flight have finished, nothing new went out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = get(&app, &format!("/rollouts/{id}")).await;
    assert_eq!((later["state"].as_str(), later["reason"].as_str()), (Some("paused"), Some("operator")), "{later:#}");
    assert_eq!(count(&later, "pending"), pending, "no device was claimed while paused");
    assert_eq!(published().await, (published_at_pause, dispatched_at_pause), "no command was published while paused");

    // Resume: dispatch starts again, so the counter above was not stuck.
    let (status, _) = post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    assert_eq!(status, 200);
    let done = wait_for(&app, &id, Duration::from_secs(120), |b| b["state"] == "completed").await;
    assert_eq!(count(&done, "succeeded"), 60, "{done:#}");
    let (published_at_end, dispatched_at_end) = published().await;
    assert_eq!(dispatched_at_end, 60);
    assert!(published_at_end >= published_at_pause + pending as u64);
    sim.stop().await;
}
