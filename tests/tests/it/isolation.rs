//! Each device is confined to its own topics (CONTRACT §4), on the embedded broker and on
//! a Mosquitto with the files the server keeps.

use std::time::Duration;

use fleet_protocol::ArtifactKind;
use fleet_tests::{TestApp, manifest_for, release_key, sign};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, LastWill, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;

/// A bare MQTT client; `events` carries what it receives, `Err` once the connection ends.
pub(crate) struct Raw {
    pub(crate) client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, String>>,
    poll: tokio::task::JoinHandle<()>,
}

pub(crate) async fn connect(
    app: &TestApp,
    client_id: &str,
    user: &str,
    password: &str,
    will: Option<(&str, &str)>,
) -> Result<Raw, String> {
    let addr = app.mqtt_url.trim_start_matches("mqtt://");
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut options = MqttOptions::new(client_id, host, port.parse().unwrap());
    options.set_credentials(user, password).set_clean_start(true).set_outgoing_inflight_upper_limit(16);
    if let Some((topic, payload)) = will {
        options.set_last_will(LastWill::new(topic, payload, QoS::AtLeastOnce, false, None));
    }
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (tx, mut events) = mpsc::unbounded_channel();
    let poll = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Ok(p)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        Ok(Some(Ok(Packet::ConnAck(ack)))) if ack.code == ConnectReturnCode::Success => {
            Ok(Raw { client, events, poll })
        }
        other => Err(format!("{other:?}")),
    }
}

impl Raw {
    /// Drops the connection without DISCONNECT, so the broker sends the will.
    fn vanish(self) {
        self.poll.abort();
    }

    /// The next publish within `window`, if any; `Err` if the connection closed.
    pub(crate) async fn next_publish(&mut self, window: Duration) -> Result<Option<Vec<u8>>, String> {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err("closed".into()),
                Ok(Some(Err(e))) => return Err(e),
                Ok(Some(Ok(Packet::Publish(p)))) => return Ok(Some(p.payload.to_vec())),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next publish within `window` with its topic, if any; `Err` if the connection
    /// closed.
    pub(crate) async fn next_message(&mut self, window: Duration) -> Result<Option<(String, Vec<u8>)>, String> {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err("closed".into()),
                Ok(Some(Err(e))) => return Err(e),
                Ok(Some(Ok(Packet::Publish(p)))) => {
                    return Ok(Some((String::from_utf8_lossy(&p.topic).into_owned(), p.payload.to_vec())));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    pub(crate) async fn suback_ok(&mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.events.recv()).await {
                Ok(Some(Ok(Packet::SubAck(ack)))) => {
                    return ack
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)));
                }
                Ok(Some(Ok(_))) => {}
                _ => return false,
            }
        }
    }
}

#[tokio::test]
async fn devices_are_confined_to_their_own_topics() {
    confined(TestApp::spawn().await).await;
}

#[tokio::test]
#[ignore = "needs the mosquitto binary (CI installs it)"]
async fn on_mosquitto_devices_are_confined_to_their_own_topics() {
    confined(TestApp::spawn_on_mosquitto(|_| {}).await).await;
}

/// A forged status report for dev-b, with `seq` high enough to be applied if it got through.
const FORGED: &str = r#"{"rollout_id": null, "state": "idle", "seq": 99, "connect": true}"#;

async fn confined(app: TestApp) {
    app.trust_release_key().await;
    let a = app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap().token;
    let b = app.client.add_device("dev-b", "sim", &Default::default()).await.unwrap().token;

    assert!(connect(&app, "dev-a", "dev-a", "wrong", None).await.is_err(), "wrong token");
    assert!(connect(&app, "dev-x", "dev-x", &a, None).await.is_err(), "unknown device");
    assert!(connect(&app, "anon", "", "", None).await.is_err(), "anonymous");

    let mut dev_b = connect(&app, "dev-b", "dev-b", &b, None).await.unwrap();
    dev_b.client.subscribe("fleet/devices/dev-b/commands", QoS::AtLeastOnce).await.unwrap();
    assert!(dev_b.suback_ok().await);

    // A under B's client id: refused, or given its own id (Mosquitto's
    // use_username_as_clientid); B keeps its session either way (it gets its command below).
    if let Ok(imposter) = connect(&app, "dev-b", "dev-a", &a, None).await {
        imposter.vanish();
    }
    // A's will on B's status topic: refused at connect, or never delivered.
    if let Ok(imposter) = connect(&app, "dev-a", "dev-a", &a, Some(("fleet/devices/dev-b/status", FORGED))).await {
        imposter.vanish();
    }

    let mut dev_a = connect(&app, "dev-a", "dev-a", &a, None).await.unwrap();
    // Subscribing to B's commands is refused, or granted and never delivers (A gets nothing).
    dev_a.client.subscribe("fleet/devices/dev-b/commands", QoS::AtLeastOnce).await.unwrap();
    let _ = dev_a.suback_ok().await;
    dev_a.client.subscribe("fleet/devices/+/commands", QoS::AtLeastOnce).await.unwrap();
    let _ = dev_a.suback_ok().await;

    // A forges a report for B: the server never sees it.
    dev_a.client.publish("fleet/devices/dev-b/status", QoS::AtLeastOnce, false, FORGED).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.client.get_device("dev-b").await.unwrap().last_seen.is_none(), "forged reports and wills dropped");

    // A command for B reaches B and not A.
    let bytes = b"firmware for b".to_vec();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bytes).await.unwrap();
    let body = serde_json::json!({"firmware": fw.id, "target": {"devices": ["dev-b"]}});
    let r = app.client.request(reqwest::Method::POST, "/rollouts").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let got = dev_b.next_publish(Duration::from_secs(10)).await.unwrap().expect("B gets its command");
    assert!(String::from_utf8_lossy(&got).contains("\"dev-b\""));
    assert_eq!(dev_a.next_publish(Duration::from_secs(1)).await, Ok(None), "A gets nothing");

    // Devices read the trust announcement; only the server writes it.
    dev_b.client.subscribe("fleet/trust", QoS::AtLeastOnce).await.unwrap();
    assert!(dev_b.suback_ok().await, "a device may read fleet/trust");
    dev_a.client.publish("fleet/trust", QoS::AtLeastOnce, true, FORGED).await.unwrap();
    assert_eq!(dev_b.next_publish(Duration::from_secs(1)).await, Ok(None), "A cannot announce trust");

    // Rotating A's token and deleting B close their sessions at once.
    app.client.rotate_token("dev-a").await.unwrap();
    assert!(dev_a.next_publish(Duration::from_secs(5)).await.is_err(), "A's session closed");
    assert!(connect(&app, "dev-a", "dev-a", &a, None).await.is_err(), "the old token is refused");
    app.client.delete_device("dev-b").await.unwrap();
    assert!(dev_b.next_publish(Duration::from_secs(5)).await.is_err(), "B's session closed");
    assert!(connect(&app, "dev-b", "dev-b", &b, None).await.is_err(), "a decommissioned device is refused");
}

#[tokio::test]
async fn garbage_on_the_status_topic_changes_nothing() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let a = app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap().token;
    let bytes = b"fw".to_vec();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bytes).await.unwrap();
    let body = serde_json::json!({"firmware": fw.id, "target": {"devices": ["dev-a"]}, "device_timeout_s": 600});
    let rollout: serde_json::Value =
        app.client.request(reqwest::Method::POST, "/rollouts").json(&body).send().await.unwrap().json().await.unwrap();
    let rid = rollout["id"].as_str().unwrap().to_owned();
    let dev = connect(&app, "dev-a", "dev-a", &a, None).await.unwrap();
    let send = |payload: String| {
        let client = dev.client.clone();
        async move { client.publish("fleet/devices/dev-a/status", QoS::AtLeastOnce, false, payload).await.unwrap() }
    };
    let entry = || async {
        let v: serde_json::Value = app
            .client
            .request(reqwest::Method::GET, &format!("/rollouts/{rid}/devices"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"][0]["state"].as_str().unwrap().to_owned()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(entry().await, "sent");

    send("{not json".into()).await;
    send("x".repeat(100_000)).await;
    send(r#"{"rollout_id": null, "state": "flying", "seq": 1}"#.into()).await;
    send(format!(r#"{{"rollout_id": "{rid}", "state": "pending", "seq": 2}}"#)).await;
    send(r#"{"rollout_id": "no-such-rollout", "state": "succeeded", "seq": 3}"#.into()).await;
    send(format!(r#"{{"rollout_id": "{rid}", "state": "downloading", "seq": 10}}"#)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(entry().await, "downloading");
    // Stale seq, and an illegal step back: ignored.
    send(format!(r#"{{"rollout_id": "{rid}", "state": "succeeded", "seq": 5}}"#)).await;
    send(format!(r#"{{"rollout_id": "{rid}", "state": "sent", "seq": 11}}"#)).await;
    send(format!(r#"{{"rollout_id": "{rid}", "state": "failed", "reason": "busy", "seq": 12}}"#)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(entry().await, "downloading");
    assert!(app.client.health().await.is_ok());
    // A well-formed report still goes through.
    send(format!(r#"{{"rollout_id": "{rid}", "state": "failed", "reason": "digest_mismatch", "seq": 13}}"#)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(entry().await, "failed");
}

/// EMQX's HTTP authentication and authorization hooks get the same answers as every other
/// broker: devices by token under their own id, only their own topics; the server's own
/// account everything; and only an admin token may ask.
#[tokio::test]
async fn emqx_hooks_apply_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("server.password");
    std::fs::write(&password, "server-secret-0123456789\n").unwrap();
    // The server's own account is only known with an external broker; none has to answer.
    let app = TestApp::spawn_with(|s| {
        s.mqtt_url = Some("mqtt://127.0.0.1:9".into());
        s.mqtt_username = Some("fleet-server".into());
        s.mqtt_password_file = Some(password.clone());
    })
    .await;
    let a = app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap().token;
    app.client.add_device("dev-b", "sim", &Default::default()).await.unwrap();
    let ask = |path: &'static str, body: serde_json::Value| {
        let request = app.client.request(reqwest::Method::POST, path).json(&body);
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200, "{path} {body}");
            let v: serde_json::Value = r.json().await.unwrap();
            (v["result"].as_str().unwrap().to_owned(), v["is_superuser"].as_bool())
        }
    };
    let authn = |client: &str, user: &str, password: &str| {
        ask(
            "/broker/emqx/authenticate",
            serde_json::json!({"clientid": client, "username": user, "password": password}),
        )
    };
    assert_eq!(authn("dev-a", "dev-a", &a).await, ("allow".into(), Some(false)));
    assert_eq!(authn("dev-a", "dev-a", "wrong").await.0, "deny");
    assert_eq!(authn("dev-b", "dev-a", &a).await.0, "deny", "another device's client id");
    assert_eq!(authn("dev-b", "dev-b", &a).await.0, "deny", "another device's token");
    assert_eq!(authn("dev-x", "dev-x", &a).await.0, "deny", "unknown device");
    assert_eq!(authn("srv", "fleet-server", "server-secret-0123456789").await, ("allow".into(), Some(true)));
    assert_eq!(authn("srv", "fleet-server", "guess").await.0, "deny");

    let authz = |user: &str, action: &str, topic: &str| {
        ask(
            "/broker/emqx/authorize",
            serde_json::json!({"clientid": user, "username": user, "action": action, "topic": topic}),
        )
    };
    assert_eq!(authz("dev-a", "subscribe", "fleet/devices/dev-a/commands").await.0, "allow");
    assert_eq!(authz("dev-a", "subscribe", "fleet/devices/dev-b/commands").await.0, "deny");
    assert_eq!(authz("dev-a", "subscribe", "fleet/devices/+/commands").await.0, "deny");
    assert_eq!(authz("dev-a", "publish", "fleet/devices/dev-a/status").await.0, "allow");
    assert_eq!(authz("dev-a", "publish", "fleet/devices/dev-a/presence").await.0, "allow");
    assert_eq!(authz("dev-a", "publish", "fleet/devices/dev-b/status").await.0, "deny");
    assert_eq!(authz("dev-a", "publish", "fleet/devices/dev-a/commands").await.0, "deny");
    assert_eq!(authz("dev-a", "subscribe", "fleet/trust").await.0, "allow");
    assert_eq!(authz("dev-a", "publish", "fleet/trust").await.0, "deny");
    assert_eq!(authz("fleet-server", "subscribe", "$share/g/fleet/devices/+/status").await.0, "allow");

    // Only admins may ask (EMQX sends an admin token in its request headers).
    let as_device = app.client.with_token(a.clone());
    let r = as_device
        .request(reqwest::Method::POST, "/broker/emqx/authenticate")
        .json(&serde_json::json!({"clientid": "dev-a", "username": "dev-a", "password": a}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The Mosquitto files, for `fleetctl broker sync`: the server's account only when asked.
    let passwords = app.client.get_text("/broker/mosquitto/passwords?include_server_account=true").await.unwrap();
    let users: Vec<&str> =
        passwords.lines().filter(|l| !l.starts_with('#')).map(|l| &l[..l.find(':').unwrap()]).collect();
    assert_eq!(users, ["fleet-server", "dev-a", "dev-b"]);
    assert!(passwords.lines().skip(1).all(|l| l.contains(":$7$101$")), "{passwords}");
    assert!(!passwords.contains(&a), "no token in the clear");
    let acl = app.client.get_text("/broker/mosquitto/acl").await.unwrap();
    assert!(acl.contains("pattern read fleet/devices/%u/commands"), "{acl}");
    assert!(acl.contains("pattern read fleet/trust"), "{acl}");
}
