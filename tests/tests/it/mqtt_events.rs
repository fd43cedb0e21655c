//! Events on MQTT (CONTRACT §10): an operator account (`op:{name}`, a token created with
//! `"mqtt": true`) reads the retained rollout and device event topics during a real
//! rollout; device accounts cannot read them (also on a Mosquitto with the files the server
//! writes); a revoked token cannot log in; EMQX's hooks apply the same rule.
//!
//! Operator logins are tested on the embedded broker: Mosquitto's password file cannot
//! hold a username with `:` (docs/integrations.md), so `op:{name}` cannot log in there.

use std::collections::HashMap;
use std::time::Duration;

use fleet_tests::TestApp;
use rumqttc::v5::mqttbytes::QoS;
use serde_json::{Value, json};

use crate::isolation::{Raw, connect};
use crate::rollouts::{create, firmware, post, simulate_with};

/// Creates an operator token that also logs in to the broker; returns its secret.
pub(crate) async fn mqtt_token(app: &TestApp, name: &str) -> String {
    let (status, body) = post(app, "/tokens", json!({"name": name, "scope": "read-only", "mqtt": true})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["mqtt"], true);
    body["token"].as_str().unwrap().to_owned()
}

/// Whether a subscription is refused: a failed SUBACK, or (a broker that grants and then
/// filters) nothing delivered within `window` although the topic is busy.
async fn refused(client: &mut Raw, filter: &str, window: Duration) -> bool {
    client.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    if !client.suback_ok().await {
        return true;
    }
    matches!(client.next_message(window).await, Ok(None))
}

#[tokio::test]
async fn an_operator_account_reads_rollout_and_device_events() {
    let app = TestApp::spawn_embedded(|_| {}).await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let token = mqtt_token(&app, "ha").await;
    let mut op = connect(&app, "op:ha", "op:ha", &token, None).await.expect("the operator account logs in");
    op.client.subscribe("fleet/events/#", QoS::AtLeastOnce).await.unwrap();
    assert!(op.suback_ok().await, "operators may read events");
    op.client.subscribe("fleet/devices/+/presence", QoS::AtLeastOnce).await.unwrap();
    assert!(op.suback_ok().await, "and presence");

    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), 5, 0.0, "ev-", 0).await;
    let id = create(&app, json!({"firmware": fw.id, "target": {"hardware": "sim"}})).await;

    let rollout_topic = format!("fleet/events/rollouts/{id}");
    let mut states = Vec::new();
    let mut devices: HashMap<String, Value> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while states.last().map(String::as_str) != Some("completed") || !all_updated(&devices) {
        assert!(tokio::time::Instant::now() < deadline, "states {states:?}, devices {devices:?}");
        let Some((topic, payload)) = op.next_message(Duration::from_secs(5)).await.unwrap() else { continue };
        if topic == rollout_topic {
            let body: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(body["id"], id.as_str(), "the body of GET /rollouts/{{id}}");
            assert!(body["counts"].is_object() && body["waves"].is_array());
            states.push(body["state"].as_str().unwrap().to_owned());
        } else if let Some(device) = topic.strip_prefix("fleet/events/devices/") {
            let body: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(body["device_id"], device);
            devices.insert(device.to_owned(), body);
        }
    }
    assert_eq!(devices.len(), 5);
    assert!(devices.values().all(|d| d["online"] == true), "{devices:?}");

    // Retained: a late subscriber gets the last body at once.
    let mut late = connect(&app, "op:ha", "op:ha", &token, None).await.unwrap();
    late.client.subscribe(rollout_topic.as_str(), QoS::AtLeastOnce).await.unwrap();
    let (_, payload) = late.next_message(Duration::from_secs(5)).await.unwrap().expect("retained body");
    assert_eq!(serde_json::from_slice::<Value>(&payload).unwrap()["state"], "completed");
    sim.stop().await;
}

fn all_updated(devices: &HashMap<String, Value>) -> bool {
    devices.len() == 5 && devices.values().all(|d| d["firmware"]["version"] == "1.0.0")
}

#[tokio::test]
async fn device_accounts_cannot_read_events() {
    devices_refused(TestApp::spawn().await).await;
}

#[tokio::test]
#[ignore = "needs the mosquitto binary (CI installs it)"]
async fn on_mosquitto_device_accounts_cannot_read_events() {
    devices_refused(TestApp::spawn_on_mosquitto(|_| {}).await).await;
}

async fn devices_refused(app: TestApp) {
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let a = app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap().token;
    app.client.add_device("dev-b", "sim", &Default::default()).await.unwrap();
    let mut dev = connect(&app, "dev-a", "dev-a", &a, None).await.unwrap();
    // Events flow meanwhile: a rollout to both (dev-b's command, the rollout's events).
    create(&app, json!({"firmware": fw.id, "target": {"devices": ["dev-a", "dev-b"]}})).await;
    // Its own command comes first; then nothing else reaches it.
    dev.client.subscribe("fleet/devices/dev-a/commands", QoS::AtLeastOnce).await.unwrap();
    assert!(dev.suback_ok().await);
    let (topic, _) = dev.next_message(Duration::from_secs(10)).await.unwrap().expect("its command");
    assert_eq!(topic, "fleet/devices/dev-a/commands");
    assert!(refused(&mut dev, "fleet/events/#", Duration::from_secs(3)).await, "a device may not read events");
    assert!(refused(&mut dev, "fleet/events/devices/dev-a", Duration::from_secs(2)).await, "not even its own");
    assert!(refused(&mut dev, "fleet/devices/dev-b/commands", Duration::from_secs(2)).await, "nor another's");
    assert!(refused(&mut dev, "fleet/devices/+/presence", Duration::from_secs(2)).await, "nor presence");
}

#[tokio::test]
async fn operator_accounts_reach_only_their_topics() {
    let app = TestApp::spawn_embedded(|_| {}).await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap();
    let token = mqtt_token(&app, "ops").await;
    let mut op = connect(&app, "op:ops", "op:ops", &token, None).await.unwrap();
    create(&app, json!({"firmware": fw.id, "target": {"devices": ["dev-a"]}})).await;
    assert!(refused(&mut op, "fleet/devices/+/commands", Duration::from_secs(2)).await, "operators read no commands");
    assert!(refused(&mut op, "#", Duration::from_secs(2)).await, "nor everything");

    // Only the operator token of that name, created for MQTT, logs in as op:{name}.
    let (_, plain) = post(&app, "/tokens", json!({"name": "plain", "scope": "admin"})).await;
    let plain = plain["token"].as_str().unwrap();
    assert!(connect(&app, "op:plain", "op:plain", plain, None).await.is_err(), "a token without mqtt");
    assert!(connect(&app, "op:ha", "op:ha", &token, None).await.is_err(), "another name");
    assert!(connect(&app, "dev-a", "op:ops", &token, None).await.is_err(), "another client id");
    let will = Some(("fleet/ha/dev-a/install", "install"));
    assert!(connect(&app, "op:ops", "op:ops", &token, will).await.is_err(), "no last will");
}

/// EMQX's HTTP hooks answer for operator accounts by the same rule.
#[tokio::test]
async fn emqx_hooks_know_operator_accounts() {
    let app = TestApp::spawn().await;
    let token = mqtt_token(&app, "ha").await;
    let login = |user: &str, password: &str| json!({"clientid": user, "username": user, "password": password});
    let (_, ok) = post(&app, "/broker/emqx/authenticate", login("op:ha", &token)).await;
    assert_eq!((ok["result"].as_str(), ok["is_superuser"].as_bool()), (Some("allow"), Some(false)));
    let (_, wrong) = post(&app, "/broker/emqx/authenticate", login("op:other", &token)).await;
    assert_eq!(wrong["result"], "deny");
    let authorize =
        |topic: &str, action: &str| json!({"clientid": "op:ha", "username": "op:ha", "topic": topic, "action": action});
    for (topic, action, verdict) in [
        ("fleet/events/#", "subscribe", "allow"),
        ("fleet/devices/+/presence", "subscribe", "allow"),
        ("fleet/ha/dev-1/install", "publish", "allow"),
        ("fleet/devices/+/commands", "subscribe", "deny"),
        ("fleet/devices/dev-1/status", "publish", "deny"),
        ("fleet/events/rollouts/x", "publish", "deny"),
    ] {
        let (_, got) = post(&app, "/broker/emqx/authorize", authorize(topic, action)).await;
        assert_eq!(got["result"], verdict, "{action} {topic}");
    }
    let r = app.client.request(reqwest::Method::DELETE, "/tokens/ha").send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (_, revoked) = post(&app, "/broker/emqx/authenticate", login("op:ha", &token)).await;
    assert_eq!(revoked["result"], "deny", "a revoked token");
    let (_, after) = post(&app, "/broker/emqx/authorize", authorize("fleet/events/#", "subscribe")).await;
    assert_eq!(after["result"], "deny", "its session may subscribe no more");
}

#[tokio::test]
async fn a_revoked_operator_token_cannot_connect() {
    let app = TestApp::spawn_embedded(|_| {}).await;
    let token = mqtt_token(&app, "ha").await;
    let mut op = connect(&app, "op:ha", "op:ha", &token, None).await.expect("logs in");
    let r = app.client.request(reqwest::Method::DELETE, "/tokens/ha").send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(op.next_message(Duration::from_secs(10)).await.is_err(), "its session is closed");
    assert!(connect(&app, "op:ha", "op:ha", &token, None).await.is_err(), "and it cannot log in again");
}
