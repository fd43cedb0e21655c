//! A real MQTT v5 broker (rmqtt, in library mode) on a random loopback port, and a client
//! that watches what devices report.

use std::net::SocketAddr;
use std::time::Duration;

use fleet_protocol::DeviceId;
use fleet_protocol::message::{Command, StatusReport};
use fleet_protocol::topic::{Channel, Topics};
use rmqtt::types::{Retain, TopicFilter, TopicName};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;

/// An embedded broker for tests. Anonymous access is allowed: access rules are the
/// server's job (and its own tests').
#[derive(Debug)]
pub struct TestBroker {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// rmqtt's in-memory retained-message store, switched on (its default reports itself
/// disabled, which makes the broker refuse retained wills).
struct MemoryRetain(rmqtt::retain::DefaultRetainStorage);

#[async_trait::async_trait]
impl rmqtt::retain::RetainStorage for MemoryRetain {
    fn enable(&self) -> bool {
        true
    }

    async fn set(&self, topic: &TopicName, retain: Retain, expiry: Option<Duration>) -> rmqtt::Result<()> {
        self.0.set_with_timeout(topic, retain, expiry).await
    }

    async fn get(&self, filter: &TopicFilter) -> rmqtt::Result<Vec<(TopicName, Retain)>> {
        self.0.get_message(filter).await
    }

    async fn count(&self) -> isize {
        0
    }

    async fn max(&self) -> isize {
        0
    }
}

impl TestBroker {
    pub async fn start() -> Self {
        let scx = rmqtt::context::ServerContext::new().busy_check_enable(false).build().await;
        *scx.extends.retain_mut().await = Box::new(MemoryRetain(rmqtt::retain::DefaultRetainStorage::new()));
        let listener = rmqtt::net::Builder::new()
            .name("test/tcp")
            .laddr(([127, 0, 0, 1], 0).into())
            .allow_anonymous(true)
            .max_mqueue_len(100_000)
            .max_inflight(std::num::NonZeroU16::new(256).expect("non-zero"))
            .bind()
            .expect("broker binds")
            .tcp()
            .expect("tcp");
        let addr = listener.local_addr().expect("address");
        let server = rmqtt::server::MqttServer::new(scx).listener(listener).build();
        let task = tokio::spawn(async move {
            let _ = server.run().await;
        });
        Self { addr, task }
    }

    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A report and the device that sent it.
pub type Received = (DeviceId, StatusReport);

/// Subscribes to every device's status and publishes commands, like the server will.
#[derive(Debug)]
pub struct Watcher {
    client: AsyncClient,
    reports: mpsc::UnboundedReceiver<Received>,
    pub seen: Vec<Received>,
    topics: Topics,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    pub async fn connect(broker: &TestBroker) -> Self {
        let mut options = MqttOptions::new("test-watcher", broker.addr.ip().to_string(), broker.addr.port());
        options.set_clean_start(true).set_max_packet_size(Some(1 << 20));
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let topics = Topics::default();
        let filter = topics.all(Channel::Status);
        let (tx, reports) = mpsc::unbounded_channel();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        let sub = client.clone();
        let parse_topics = topics.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready_tx.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        if let (Some((id, _)), Ok(report)) =
                            (parse_topics.parse(&topic), serde_json::from_slice::<StatusReport>(&p.payload))
                        {
                            let _ = tx.send((id, report));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready).await.expect("watcher subscribed").expect("ready");
        Self { client, reports, seen: Vec::new(), topics, task }
    }

    /// Publishes a command (or any bytes) on a device's command topic.
    pub async fn send_raw(&self, device: &DeviceId, payload: Vec<u8>) {
        self.client.publish(self.topics.commands(device), QoS::AtLeastOnce, false, payload).await.expect("publish");
    }

    /// Announces a trust document, retained, on `fleet/trust`, as the server does.
    pub async fn announce_trust(&self, envelope: &fleet_protocol::Envelope) {
        let payload = serde_json::to_vec(envelope).expect("json");
        self.client.publish(self.topics.trust(), QoS::AtLeastOnce, true, payload).await.expect("publish");
    }

    pub async fn send(&self, device: &DeviceId, command: &Command) {
        self.send_raw(device, serde_json::to_vec(command).expect("json")).await;
    }

    /// Waits until a report of `device` satisfies `pred`; returns it. Every report seen is
    /// kept in `seen`.
    pub async fn wait_for(
        &mut self,
        device: &DeviceId,
        timeout: Duration,
        pred: impl Fn(&StatusReport) -> bool,
    ) -> StatusReport {
        match self.try_wait_for(device, timeout, pred).await {
            Some(r) => r,
            None => panic!("no matching report from {device} within {timeout:?}; seen: {:#?}", self.reports_of(device)),
        }
    }

    /// Like [`Self::wait_for`], `None` on timeout.
    pub async fn try_wait_for(
        &mut self,
        device: &DeviceId,
        timeout: Duration,
        pred: impl Fn(&StatusReport) -> bool,
    ) -> Option<StatusReport> {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some((_, r)) = self.seen.iter().find(|(d, r)| d == device && pred(r)) {
            return Some(r.clone());
        }
        loop {
            let Ok(Some((id, report))) = tokio::time::timeout_at(deadline, self.reports.recv()).await else {
                return None;
            };
            self.seen.push((id.clone(), report.clone()));
            if &id == device && pred(&report) {
                return Some(report);
            }
        }
    }

    /// Waits for a final state report of `device`.
    pub async fn wait_final(&mut self, device: &DeviceId, timeout: Duration) -> StatusReport {
        self.wait_for(device, timeout, |r| !r.connect && r.state.is_final()).await
    }

    /// Collects whatever arrives within `window`.
    pub async fn drain(&mut self, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(r)) = tokio::time::timeout_at(deadline, self.reports.recv()).await {
            self.seen.push(r);
        }
    }

    pub fn reports_of(&self, device: &DeviceId) -> Vec<StatusReport> {
        self.seen.iter().filter(|(d, _)| d == device).map(|(_, r)| r.clone()).collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Publishes `payload` on `topic` (QoS 1) and polls `eventloop` until the broker has
/// acknowledged it, at most 10 s.
pub async fn publish_acked(
    client: &AsyncClient,
    eventloop: &mut rumqttc::v5::EventLoop,
    topic: String,
    retain: bool,
    payload: Vec<u8>,
) {
    client.publish(topic, QoS::AtLeastOnce, retain, payload).await.expect("queued");
    let acked = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return,
                Ok(_) => {}
                Err(e) => panic!("MQTT: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), acked).await.expect("the broker acknowledges within 10 s");
}
