//! Home Assistant MQTT discovery (CONTRACT §10, `--ha-discovery`) on a real server with its
//! embedded broker, read by an operator account (`op:{name}`) as Home Assistant would:
//! every config and state message is checked against Home Assistant's schema
//! ([`crate::ha_schema`]) on the way.

use std::time::Duration;

use fleet_tests::TestApp;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Filter;
use serde_json::{Value, json};

use crate::ha_schema::{check_config, check_state};
use crate::isolation::{Raw, connect};
use crate::mqtt_events::mqtt_token;
use crate::rollouts::{create, firmware, get, post, simulate_with, wait_for};

const CONFIG: &str = "homeassistant/update/fleet_ha-0_firmware/config";
const STATE: &str = "fleet/ha/ha-0/state";
const INSTALL: &str = "fleet/ha/ha-0/install";

/// A server with discovery on (and installs from Home Assistant if `allow_install`).
async fn spawn(allow_install: bool) -> TestApp {
    TestApp::spawn_embedded(|s| {
        s.ha_discovery = true;
        s.ha_allow_install = allow_install;
    })
    .await
}

/// An operator account reading what Home Assistant reads.
async fn home_assistant(app: &TestApp) -> Raw {
    let token = mqtt_token(app, "ha").await;
    let mut op = connect(app, "op:ha", "op:ha", &token, None).await.expect("the operator account logs in");
    // One SUBSCRIBE: retained messages come after its SUBACK (waiting for a second SUBACK
    // would skip them).
    let filters = ["homeassistant/#", "fleet/ha/#", "fleet/devices/+/presence"];
    op.client.subscribe_many(filters.map(|f| Filter::new(f, QoS::AtLeastOnce))).await.unwrap();
    assert!(op.suback_ok().await, "an operator account may read {filters:?}");
    op
}

/// Reads messages until one on `topic` satisfies `pred`; returns its payload. Every
/// Home Assistant message on the way must pass the schema.
async fn until(op: &mut Raw, topic: &str, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some((t, payload)) = op.next_message(left).await.unwrap() else {
            panic!("no message on {topic} as wanted within {timeout:?}; last {last:?}");
        };
        if !payload.is_empty() && t.starts_with("homeassistant/") {
            check_config(&serde_json::from_slice(&payload).unwrap()).unwrap_or_else(|e| panic!("{t}: {e}"));
        }
        if !payload.is_empty() && t.starts_with("fleet/ha/") && t.ends_with("/state") {
            check_state(&serde_json::from_slice(&payload).unwrap()).unwrap_or_else(|e| panic!("{t}: {e}"));
        }
        if t == topic {
            if pred(&payload) {
                return payload;
            }
            last = Some(String::from_utf8_lossy(&payload).into_owned());
        }
    }
}

fn json_of(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).unwrap_or(Value::Null)
}

/// The state has these versions and is not in progress.
fn settled(installed: &'static str, latest: &'static str) -> impl Fn(&[u8]) -> bool {
    move |p| {
        let s = json_of(p);
        s["installed_version"] == installed && s["latest_version"] == latest && s["in_progress"] == false
    }
}

/// Rollouts on the server, newest first.
async fn rollouts(app: &TestApp) -> Vec<Value> {
    get(app, "/rollouts").await["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn ha_discovery_follows_a_device_through_an_install_from_home_assistant() {
    let app = spawn(true).await;
    app.trust_release_key().await;
    let v1 = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let mut ha = home_assistant(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), 1, 0.0, "ha-", 2000).await;

    // The entity: retained config of the documented shape, availability from presence.
    let config = json_of(&until(&mut ha, CONFIG, Duration::from_secs(20), |p| !p.is_empty()).await);
    assert_eq!(config["unique_id"], "fleet_ha-0_firmware");
    assert_eq!(config["device_class"], "firmware");
    assert_eq!((config["state_topic"].as_str(), config["command_topic"].as_str()), (Some(STATE), Some(INSTALL)));
    assert_eq!(config["payload_install"], "install");
    assert_eq!(config["device"]["model"], "sim");
    assert_eq!(config["device"]["name"], "ha-0");
    assert!(config["device"]["identifiers"].as_array().is_some_and(|i| !i.is_empty()));
    let presence = config["availability_topic"].as_str().unwrap().to_owned();
    assert_eq!(presence, "fleet/devices/ha-0/presence");
    let available = config["payload_available"].as_str().unwrap().as_bytes().to_vec();
    assert_eq!(retained(&app, "ha-p", &presence).await, Some(available), "an online device is available");

    // Installed and latest version follow a rollout and an upload.
    let first = create(&app, json!({"firmware": v1.id, "target": {"devices": ["ha-0"]}})).await;
    wait_for(&app, &first, Duration::from_secs(60), |b| b["state"] == "completed").await;
    until(&mut ha, STATE, Duration::from_secs(20), settled("1.0.0", "1.0.0")).await;
    let sw = json_of(&retained(&app, "ha-late", CONFIG).await.expect("the config is retained"));
    assert_eq!(sw["device"]["sw_version"], "1.0.0", "the device block names what it runs");
    let v2 = firmware(&app, "gateway-os", "1.1.0", "sim").await;
    let offered = json_of(&until(&mut ha, STATE, Duration::from_secs(20), settled("1.0.0", "1.1.0")).await);
    assert!(offered["release_summary"].as_str().unwrap().contains("1.1.0"), "{offered}");

    // A device account may not publish Home Assistant commands: nothing arrives, nothing starts.
    let token = app.client.add_device("dev-x", "sim", &Default::default()).await.unwrap().token;
    let dev = connect(&app, "dev-x", "dev-x", &token, None).await.unwrap();
    for topic in [INSTALL, "fleet/ha/dev-x/install"] {
        let _ = dev.client.publish(topic, QoS::AtLeastOnce, false, "install").await;
    }
    assert!(no_message_on(&mut ha, "fleet/ha/dev-x/install", INSTALL, Duration::from_secs(3)).await);
    assert_eq!(rollouts(&app).await.len(), 1, "a device cannot start a rollout");

    // Install from Home Assistant: one one-device rollout of the offered version, progress shown.
    ha.client.publish(INSTALL, QoS::AtLeastOnce, false, "install").await.unwrap();
    let busy = json_of(&until(&mut ha, STATE, Duration::from_secs(30), |p| json_of(p)["in_progress"] == true).await);
    assert!(busy["update_percentage"].as_u64().is_some_and(|p| p <= 100), "{busy}");
    until(&mut ha, STATE, Duration::from_secs(60), settled("1.1.0", "1.1.0")).await;
    let all = rollouts(&app).await;
    assert_eq!(all.len(), 2, "exactly one rollout started: {all:?}");
    let started = all.iter().find(|r| r["id"] != first.as_str()).unwrap();
    assert_eq!((started["artifact_id"].as_str(), started["total"].as_u64()), (Some(v2.id.as_str()), Some(1)));
    let started =
        wait_for(&app, started["id"].as_str().unwrap(), Duration::from_secs(30), |b| b["state"] == "completed").await;
    assert_eq!(started["counts"]["succeeded"], 1);
    let audit = app.client.audit(Some(50), None).await.unwrap().items;
    assert!(audit.iter().any(|e| e.actor == "home-assistant" && e.action == "rollout.created"), "{audit:?}");

    // Availability follows presence; deleting the device clears its entity.
    sim.stop().await;
    let unavailable = config["payload_not_available"].as_str().unwrap().to_owned();
    until(&mut ha, &presence, Duration::from_secs(20), |p| p == unavailable.as_bytes()).await;
    let r = app.client.request(reqwest::Method::DELETE, "/devices/ha-0").send().await.unwrap();
    assert_eq!(r.status(), 204);
    until(&mut ha, CONFIG, Duration::from_secs(20), <[u8]>::is_empty).await;
    assert_eq!(retained(&app, "ha-gone", CONFIG).await, None, "nothing retained");
}

/// What a new session (another operator account, `name`) gets retained on `topic`.
async fn retained(app: &TestApp, name: &str, topic: &str) -> Option<Vec<u8>> {
    let token = mqtt_token(app, name).await;
    let user = format!("op:{name}");
    let mut op = connect(app, &user, &user, &token, None).await.unwrap();
    op.client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    assert!(op.suback_ok().await);
    op.next_message(Duration::from_secs(2)).await.unwrap().map(|(_, p)| p).filter(|p| !p.is_empty())
}

/// True if no message (non-empty, for retained configs) arrives on `a` or `b` within `window`.
async fn no_message_on(op: &mut Raw, a: &str, b: &str, window: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + window;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match op.next_message(left).await.unwrap() {
            None => return true,
            Some((t, p)) if (t == a || t == b) && !p.is_empty() => return false,
            Some(_) => {}
        }
    }
}

#[tokio::test]
async fn ha_install_without_allow_install_starts_nothing() {
    let app = spawn(false).await;
    app.trust_release_key().await;
    firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("ha-0", "sim", &Default::default()).await.unwrap();
    let mut ha = home_assistant(&app).await;
    let config = json_of(&until(&mut ha, CONFIG, Duration::from_secs(20), |p| !p.is_empty()).await);
    assert!(config["device"].get("sw_version").is_none(), "nothing reported yet: left out, never null");
    let state = json_of(&until(&mut ha, STATE, Duration::from_secs(20), |p| !p.is_empty()).await);
    assert!(state.get("installed_version").is_none(), "{state}");
    ha.client.publish(INSTALL, QoS::AtLeastOnce, false, "install").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(rollouts(&app).await.is_empty(), "ignored without --ha-allow-install");

    // EMQX's hooks know the prefix too.
    let (_, token) = post(&app, "/tokens", json!({"name": "emqx", "scope": "read-only", "mqtt": true})).await;
    let login = json!({"clientid": "op:emqx", "username": "op:emqx", "password": token["token"]});
    let (_, ok) = post(&app, "/broker/emqx/authenticate", login).await;
    assert_eq!(ok["result"], "allow");
    for (topic, action, verdict) in [("homeassistant/#", "subscribe", "allow"), (CONFIG, "publish", "deny")] {
        let req = json!({"clientid": "op:emqx", "username": "op:emqx", "topic": topic, "action": action});
        let (_, got) = post(&app, "/broker/emqx/authorize", req).await;
        assert_eq!(got["result"], verdict, "{action} {topic}");
    }
}

#[tokio::test]
async fn ha_prefix_is_out_of_reach_without_discovery() {
    let app = TestApp::spawn_embedded(|_| {}).await;
    let token = mqtt_token(&app, "ha").await;
    let mut op = connect(&app, "op:ha", "op:ha", &token, None).await.unwrap();
    op.client.subscribe("homeassistant/#", QoS::AtLeastOnce).await.unwrap();
    assert!(!op.suback_ok().await, "the prefix is readable only with --ha-discovery");
}
