//! `GET /rollouts/{id}/events`: the stream of a finished rollout sends its final body and
//! ends, so `curl -N` and `fleetctl` return.

use std::time::Duration;

use fleet_cli::sse::SseReader;
use fleet_protocol::ArtifactKind;
use fleet_protocol::paths::RolloutAction;
use fleet_tests::{TestApp, manifest_for, release_key, sign};
use serde_json::{Value, json};

/// Every event of the stream until it ends (at most 15 s).
async fn all_events(app: &TestApp, id: &str) -> Vec<Value> {
    let response = app.client.rollout_events(id).await.unwrap();
    let mut events = SseReader::new(Box::pin(response.bytes_stream()));
    let mut bodies = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.next_event().await.unwrap() {
            bodies.push(serde_json::from_str(&event.data).unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the stream did not end; it sent {bodies:?}"));
    bodies
}

#[tokio::test]
async fn the_stream_of_a_finished_rollout_sends_the_final_body_and_ends() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    app.client.add_device("gw-1", "rpi4", &Default::default()).await.unwrap();
    let bytes = vec![3u8; 4096];
    let envelope = sign(&manifest_for(ArtifactKind::Firmware, "edge-os", "1.1.0", &bytes), &[&release_key()]);
    let fw = app.upload(ArtifactKind::Firmware, &envelope, bytes).await.unwrap();
    let created =
        app.client.create_rollout(&json!({"firmware": fw.id, "target": {"devices": ["gw-1"]}})).await.unwrap();

    // A running rollout's stream ends once it is cancelled, with the cancelled body last.
    let watching = {
        let app_client = app.client.clone();
        let id = created.id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            app_client.control_rollout(&id, RolloutAction::Cancel).await.unwrap();
        })
    };
    let bodies = all_events(&app, &created.id).await;
    watching.await.unwrap();
    assert_eq!(bodies.first().unwrap()["state"], "running", "{bodies:?}");
    assert_eq!(bodies.last().unwrap()["state"], "cancelled", "{bodies:?}");

    // Opened after the end: one event, the final body, and the stream ends.
    let bodies = all_events(&app, &created.id).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let now: Value = app
        .client
        .request(reqwest::Method::GET, &format!("/rollouts/{}", created.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bodies[0], now);
}
