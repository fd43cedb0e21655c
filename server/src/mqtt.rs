//! The server's MQTT client, the only code that touches it. The poll task only polls and
//! forwards what arrives; publishing happens elsewhere (the engine and the ingester), and
//! incoming QoS 1 messages are acknowledged only after their effect is committed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fleet_protocol::DeviceId;
use fleet_protocol::message::Command;
use fleet_protocol::topic::{Channel, Topics};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use tokio::task::JoinHandle;

/// Message expiry of event topics: one day.
const EVENT_EXPIRY_S: u32 = 24 * 3600;

/// Where the server's client connects, and as whom.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
    /// `mqtts://`: the TLS settings to connect with.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub topics: Topics,
    /// Shared-subscription group for status reports (replicas share ingestion).
    pub shared_group: Option<String>,
}

/// A message from a device.
#[derive(Debug)]
pub struct Inbound {
    pub device: DeviceId,
    pub channel: Channel,
    pub payload: Bytes,
    /// Kept to acknowledge it once handled.
    pub publish: Publish,
    /// When it arrived (ingest lag).
    pub received: std::time::Instant,
}

/// A Home Assistant install command (`{root}/ha/{device}/install`, with `--ha-discovery`).
#[derive(Debug)]
pub struct HaCommand {
    pub device: DeviceId,
    pub payload: Bytes,
    /// Kept to acknowledge it once handled (and to see whether it was a retained one).
    pub publish: Publish,
}

/// What the poll task forwards: device messages, and Home Assistant's commands.
type Receivers = (mpsc::UnboundedReceiver<Inbound>, mpsc::UnboundedReceiver<HaCommand>);

/// The running client.
#[derive(Debug)]
pub struct MqttLink {
    client: AsyncClient,
    topics: Topics,
    metrics: Arc<Metrics>,
    task: JoinHandle<()>,
}

impl MqttLink {
    pub fn start(config: MqttConfig, metrics: Arc<Metrics>) -> (Self, Receivers) {
        let (client, eventloop) = AsyncClient::new(client_options(&config), 4096);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ha_tx, ha_rx) = mpsc::unbounded_channel();
        let topics = config.topics.clone();
        let status = match &config.shared_group {
            Some(group) => topics.shared(group, Channel::Status),
            None => topics.all(Channel::Status),
        };
        // Retained presence is not delivered to shared subscriptions: never share it.
        let presence = topics.all(Channel::Presence);
        let mut filters = vec![status, presence];
        if topics.ha_prefix().is_some() {
            // One replica handles each install command: share it like status reports.
            let install = topics.ha_install("+");
            filters.push(match &config.shared_group {
                Some(group) => format!("$share/{group}/{install}"),
                None => install,
            });
        }
        let poll = PollLoop {
            eventloop,
            subscriber: client.clone(),
            forward: tx,
            forward_ha: ha_tx,
            topics,
            filters,
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(poll.run());
        (Self { client, topics: config.topics, task, metrics }, (rx, ha_rx))
    }

    /// Publishes a command (QoS 1) that expires after `expiry_s` seconds.
    pub async fn publish_command(&self, command: &Command, expiry_s: Option<u32>) {
        let topic = self.topics.commands(command.device_id());
        let payload = serde_json::to_vec(command).expect("a command always serialises");
        let properties = PublishProperties { message_expiry_interval: expiry_s, ..Default::default() };
        match self.client.publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties).await {
            Ok(()) => {
                self.metrics.commands_published.inc();
            }
            Err(e) => tracing::error!("publishing a command: {e}"),
        }
    }

    /// Publishes the latest trust document, retained, on `{root}/trust` (QoS 1).
    pub async fn publish_trust(&self, envelope_json: Vec<u8>) {
        if let Err(e) = self.client.publish(self.topics.trust(), QoS::AtLeastOnce, true, envelope_json).await {
            tracing::error!("publishing the trust document: {e}");
        }
    }

    /// Publishes an event body (CONTRACT §10): QoS 1, retained, expiring after a day.
    pub async fn publish_event(&self, topic: String, payload: String) {
        let properties = PublishProperties { message_expiry_interval: Some(EVENT_EXPIRY_S), ..Default::default() };
        if let Err(e) = self.client.publish_with_properties(topic, QoS::AtLeastOnce, true, payload, properties).await {
            tracing::error!("publishing an event: {e}");
        }
    }

    /// Publishes `payload` retained (QoS 1) with no expiry: Home Assistant's discovery
    /// configs and states, which must outlive any quiet day. An empty payload clears it.
    pub async fn publish_retained(&self, topic: String, payload: Vec<u8>) {
        if let Err(e) = self.client.publish(topic, QoS::AtLeastOnce, true, payload).await {
            tracing::error!("publishing a retained message: {e}");
        }
    }

    /// Whether the client is connected to the broker now.
    pub fn is_connected(&self) -> bool {
        self.metrics.mqtt_connected.get() == 1
    }

    /// Acknowledges a handled message.
    pub async fn ack(&self, publish: &Publish) {
        if let Err(e) = self.client.ack(publish).await {
            tracing::warn!("ack: {e}");
        }
    }
}

impl Drop for MqttLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn client_options(config: &MqttConfig) -> MqttOptions {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options
        .set_clean_start(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_manual_acks(true)
        .set_max_packet_size(Some(1024 * 1024))
        .set_outgoing_inflight_upper_limit(1024);
    if let Some((user, password)) = &config.credentials {
        options.set_credentials(user, password);
    }
    if let Some(tls) = &config.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
    }
    options
}

/// The task that polls the connection: it subscribes on every (re)connection, forwards
/// device messages and reconnects with a backoff.
struct PollLoop {
    eventloop: EventLoop,
    subscriber: AsyncClient,
    forward: mpsc::UnboundedSender<Inbound>,
    forward_ha: mpsc::UnboundedSender<HaCommand>,
    topics: Topics,
    /// Status and presence (and Home Assistant's install commands with discovery on).
    filters: Vec<String>,
    metrics: Arc<Metrics>,
}

impl PollLoop {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(200);
        let mut connected_before = false;
        loop {
            match self.eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(200);
                    self.on_connected(std::mem::replace(&mut connected_before, true));
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if !self.on_publish(publish) {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.metrics.mqtt_connected.set(0);
                    tracing::warn!("MQTT connection: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    fn on_connected(&self, reconnected: bool) {
        tracing::info!("connected to the MQTT broker");
        self.metrics.mqtt_connected.set(1);
        if reconnected {
            self.metrics.mqtt_reconnects.inc();
        }
        for filter in &self.filters {
            if let Err(e) = self.subscriber.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                tracing::error!("subscribe {filter}: {e}");
            }
        }
    }

    /// Forwards a device's message or a Home Assistant command; false once nobody receives
    /// device messages any more.
    fn on_publish(&self, publish: Publish) -> bool {
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        if let Some((device, channel)) = self.topics.parse(&topic).filter(|(_, ch)| *ch != Channel::Commands) {
            let payload = publish.payload.clone();
            let received = std::time::Instant::now();
            return self.forward.send(Inbound { device, channel, payload, publish, received }).is_ok();
        }
        match self.topics.parse_ha_install(&topic).filter(|_| self.topics.ha_prefix().is_some()) {
            Some(device) => {
                let payload = publish.payload.clone();
                if let Err(e) = self.forward_ha.send(HaCommand { device, payload, publish }) {
                    // Nobody handles them (the task has stopped): acknowledge and drop.
                    let _ = self.subscriber.try_ack(&e.0.publish);
                }
            }
            None => {
                tracing::debug!(%topic, "ignoring a message on an unexpected topic");
                let _ = self.subscriber.try_ack(&publish);
            }
        }
        true
    }
}
