//! The embedded broker's overrides, pinned: shared subscriptions deliver (each message to
//! one member), retained messages are kept, commands carry their own expiry, and a
//! 10,000-message fan-in loses nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::topic::{Channel, Topics};
use fleet_protocol::{DeviceId, HardwareModel};
use fleet_server::broker::{Access, EmbeddedBroker, Listen};
use fleet_server::store::sqlite::SqliteStore;
use fleet_server::store::{DeviceStore as _, NewDevice, Store};
use fleet_server::token::hash_token;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;

const SERVER_USER: &str = "fleet-server";
const SERVER_PASSWORD: &str = "test-server-password";

struct Setup {
    broker: EmbeddedBroker,
    _store: Arc<dyn Store>,
    tokens: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

async fn setup(devices: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
    let mut tokens = vec![];
    for i in 0..devices {
        let (id, token) = (format!("dev-{i}"), format!("token-{i}"));
        let new = NewDevice {
            id: DeviceId::parse(id.as_str()).unwrap(),
            hardware: HardwareModel::parse("sim").unwrap(),
            labels: BTreeMap::new(),
            token_hash: hash_token(&token),
            broker_password_hash: String::new(),
            created_at_ms: 0,
        };
        store.insert_device(&new).await.unwrap();
        tokens.push((id, token));
    }
    let store: Arc<dyn Store> = Arc::new(store);
    let access = Access {
        store: Arc::downgrade(&store),
        tokens: Default::default(),
        cert_logins: Default::default(),
        topics: Topics::default(),
        server_username: SERVER_USER.into(),
        server_password: SERVER_PASSWORD.into(),
    };
    let listen = Listen::cleartext("127.0.0.1:0".parse().unwrap());
    let broker = EmbeddedBroker::start(listen, access, Default::default()).await.unwrap();
    Setup { broker, _store: store, tokens, _dir: dir }
}

/// A connected client; incoming publishes arrive on the receiver as (topic, payload, expiry).
async fn client(
    setup: &Setup,
    id: &str,
    user: &str,
    password: &str,
    subscribe: Option<&str>,
) -> (AsyncClient, mpsc::UnboundedReceiver<(String, Vec<u8>, Option<u32>)>) {
    let mut options = MqttOptions::new(id, "127.0.0.1", setup.broker.addr.port());
    options.set_credentials(user, password).set_clean_start(true).set_outgoing_inflight_upper_limit(64);
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let sub = client.clone();
    let filter = subscribe.map(str::to_owned);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => match &filter {
                    Some(f) => sub.try_subscribe(f.as_str(), QoS::AtLeastOnce).unwrap(),
                    None => {
                        if let Some(r) = ready_tx.take() {
                            let _ = r.send(());
                        }
                    }
                },
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready_tx.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let expiry = p.properties.as_ref().and_then(|pr| pr.message_expiry_interval);
                    let _ = tx.send((String::from_utf8_lossy(&p.topic).into_owned(), p.payload.to_vec(), expiry));
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready).await.expect("connected").expect("ready");
    (client, rx)
}

#[tokio::test]
async fn ten_thousand_reports_fan_in_without_loss() {
    let setup = setup(100).await;
    let topics = Topics::default();
    let (_server, mut inbox) =
        client(&setup, "fleet-server-a", SERVER_USER, SERVER_PASSWORD, Some(&topics.all(Channel::Status))).await;
    let mut devices = vec![];
    for (id, token) in &setup.tokens {
        devices.push((id.clone(), client(&setup, id, id, token, None).await.0));
    }
    let mut sends = tokio::task::JoinSet::new();
    for (id, device) in devices {
        sends.spawn(async move {
            let topic = format!("fleet/devices/{id}/status");
            for seq in 0..100 {
                device.publish(topic.as_str(), QoS::AtLeastOnce, false, format!("{id}:{seq}")).await.unwrap();
            }
            device
        });
    }
    let mut clients = vec![];
    while let Some(c) = sends.join_next().await {
        clients.push(c.unwrap());
    }
    let mut seen = HashSet::new();
    while seen.len() < 10_000 {
        match tokio::time::timeout(Duration::from_secs(30), inbox.recv()).await {
            Ok(Some((_, payload, _))) => {
                seen.insert(payload);
            }
            _ => panic!("only {} of 10,000 messages arrived", seen.len()),
        }
    }
    assert_eq!(seen.len(), 10_000);
}

#[tokio::test]
async fn shared_subscriptions_deliver_each_message_to_one_member() {
    let setup = setup(1).await;
    let topics = Topics::default();
    let filter = topics.shared("replicas", Channel::Status);
    let (_a, mut inbox_a) = client(&setup, "fleet-server-a", SERVER_USER, SERVER_PASSWORD, Some(&filter)).await;
    let (_b, mut inbox_b) = client(&setup, "fleet-server-b", SERVER_USER, SERVER_PASSWORD, Some(&filter)).await;
    let (id, token) = setup.tokens[0].clone();
    let (device, _) = client(&setup, &id, &id, &token, None).await;
    for seq in 0..200 {
        device.publish(format!("fleet/devices/{id}/status"), QoS::AtLeastOnce, false, format!("{seq}")).await.unwrap();
    }
    let (mut a, mut b) = (HashSet::new(), HashSet::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while a.len() + b.len() < 200 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            Some((_, p, _)) = inbox_a.recv() => { a.insert(p); }
            Some((_, p, _)) = inbox_b.recv() => { b.insert(p); }
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    assert_eq!(a.len() + b.len(), 200, "every message delivered once to the group");
    assert!(a.is_disjoint(&b), "no message to both members");
    assert!(!a.is_empty() && !b.is_empty(), "both members share the load: {} / {}", a.len(), b.len());
}

#[tokio::test]
async fn retained_presence_is_kept_and_messages_keep_their_own_expiry() {
    let setup = setup(1).await;
    let (id, token) = setup.tokens[0].clone();
    let (device, mut inbox) = client(&setup, &id, &id, &token, Some(&format!("fleet/devices/{id}/commands"))).await;
    device.publish(format!("fleet/devices/{id}/presence"), QoS::AtLeastOnce, true, "online").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A late subscriber still gets the retained presence.
    let (_late, mut late) =
        client(&setup, "fleet-server-late", SERVER_USER, SERVER_PASSWORD, Some("fleet/devices/+/presence")).await;
    let (topic, payload, _) = tokio::time::timeout(Duration::from_secs(5), late.recv()).await.unwrap().unwrap();
    assert_eq!((topic.as_str(), payload.as_slice()), (format!("fleet/devices/{id}/presence").as_str(), &b"online"[..]));

    // A command published with a 42 s expiry arrives with it; one without expiry gets none
    // imposed by the broker.
    let (server, _) = client(&setup, "fleet-server-x", SERVER_USER, SERVER_PASSWORD, None).await;
    let props =
        rumqttc::v5::mqttbytes::v5::PublishProperties { message_expiry_interval: Some(42), ..Default::default() };
    server
        .publish_with_properties(format!("fleet/devices/{id}/commands"), QoS::AtLeastOnce, false, "cmd", props)
        .await
        .unwrap();
    server.publish(format!("fleet/devices/{id}/commands"), QoS::AtLeastOnce, false, "plain").await.unwrap();
    let (_, p1, e1) = tokio::time::timeout(Duration::from_secs(5), inbox.recv()).await.unwrap().unwrap();
    let (_, p2, e2) = tokio::time::timeout(Duration::from_secs(5), inbox.recv()).await.unwrap().unwrap();
    assert_eq!((p1.as_slice(), e1.map(|s| (40..=42).contains(&s))), (&b"cmd"[..], Some(true)));
    assert_eq!((p2.as_slice(), e2), (&b"plain"[..], None));
    drop(device);
}
