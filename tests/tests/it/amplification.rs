//! A device cannot make the server or the embedded broker multiply its commands: a burst
//! of `connect: true` reports gets one re-send per interval, and a device that asks for a
//! long persistent session and goes away has nothing queued for it.

use std::time::Duration;

use fleet_protocol::ArtifactKind;
use fleet_tests::{TestApp, manifest_for, release_key, sign};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;

const DEVICE: &str = "dev-a";
const COMMANDS: &str = "fleet/devices/dev-a/commands";
const BURST: u64 = 200;

/// A device's MQTT connection; `packets` carries what it receives.
struct Device {
    client: AsyncClient,
    packets: mpsc::UnboundedReceiver<Packet>,
    poll: tokio::task::JoinHandle<()>,
}

/// Connects as [`DEVICE`]; `persistent` asks for a two-hour session kept across connections.
async fn connect(app: &TestApp, token: &str, persistent: bool) -> (Device, bool) {
    let (host, port) = app.mqtt_url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let mut options = MqttOptions::new(DEVICE, host, port.parse().unwrap());
    options.set_credentials(DEVICE, token).set_clean_start(!persistent).set_outgoing_inflight_upper_limit(32);
    if persistent {
        options.set_session_expiry_interval(Some(7200));
    }
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let (tx, mut packets) = mpsc::unbounded_channel();
    let poll = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(p) = event {
                let _ = tx.send(p);
            }
        }
    });
    let ack = tokio::time::timeout(Duration::from_secs(5), packets.recv()).await;
    let Ok(Some(Packet::ConnAck(ack))) = ack else { panic!("no CONNACK: {ack:?}") };
    (Device { client, packets, poll }, ack.session_present)
}

impl Device {
    async fn subscribe(&mut self) {
        self.client.subscribe(COMMANDS, QoS::AtLeastOnce).await.unwrap();
        while !matches!(self.packets.recv().await, Some(Packet::SubAck(_))) {}
    }

    /// How many publishes arrive within `window`.
    async fn count_publishes(&mut self, window: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + window;
        let mut n = 0;
        while let Ok(Some(p)) = tokio::time::timeout_at(deadline, self.packets.recv()).await {
            n += usize::from(matches!(p, Packet::Publish(_)));
        }
        n
    }
}

/// A trusting server with [`DEVICE`] registered; returns its token. `embedded`: on the
/// embedded broker even when the suite runs on Mosquitto.
async fn app_with_device(embedded: bool) -> (TestApp, String) {
    let app = if embedded { TestApp::spawn_embedded(|_| {}).await } else { TestApp::spawn().await };
    app.trust_release_key().await;
    let token = app.client.add_device(DEVICE, "sim", &Default::default()).await.unwrap().token;
    (app, token)
}

async fn start_rollout(app: &TestApp) {
    let bytes = b"firmware".to_vec();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bytes).await.unwrap();
    let body = serde_json::json!({"firmware": fw.id, "target": {"devices": [DEVICE]}, "device_timeout_s": 600});
    let r = app.client.request(reqwest::Method::POST, "/rollouts").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn a_burst_of_connect_reports_gets_one_resend() {
    let (app, token) = app_with_device(false).await;
    let (mut device, _) = connect(&app, &token, false).await;
    device.subscribe().await;
    start_rollout(&app).await;
    assert_eq!(device.count_publishes(Duration::from_secs(3)).await, 1, "the command is dispatched once");

    for seq in 1..=BURST {
        let report = serde_json::json!({"rollout_id": null, "state": "idle", "seq": seq, "connect": true});
        let topic = format!("fleet/devices/{DEVICE}/status");
        device.client.publish(topic, QoS::AtMostOnce, false, report.to_string()).await.unwrap();
    }
    let resent = device.count_publishes(Duration::from_secs(3)).await;
    assert!((1..=2).contains(&resent), "{BURST} connect reports brought {resent} commands");
}

#[tokio::test]
async fn a_device_gets_no_persistent_session_to_fill() {
    // The embedded broker's session limits; Mosquitto's are its configuration (brokers.md).
    let (app, token) = app_with_device(true).await;
    let (mut device, _) = connect(&app, &token, true).await;
    device.subscribe().await;
    device.poll.abort();

    // Published while the device is away: a kept session would hold it (and thousands more).
    start_rollout(&app).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (mut device, session_present) = connect(&app, &token, true).await;
    assert!(!session_present, "the broker kept the device's session");
    assert_eq!(device.count_publishes(Duration::from_secs(2)).await, 0, "nothing was queued");
}
