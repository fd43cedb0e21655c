//! The MQTT link, the only code that touches the MQTT client (CONTRACT §4).
//!
//! Clean start; username = client id = device id, password = token; last will `offline` on
//! the device's retained `presence`. On every CONNACK the poll task subscribes to the
//! device's `commands` (without awaiting: it never awaits a publish or subscribe); on the
//! SUBACK it tells the runner the link is up, and the runner sends `online` and its connect
//! report. After an error the poll task backs off exponentially with jitter, capped,
//! before polling (and so reconnecting) again — rumqttc has no backoff of its own.

use std::time::Duration;

use bytes::Bytes;
use fleet_protocol::topic::Topics;
use fleet_protocol::{DeviceId, message::StatusReport};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Incoming commands are a few KiB; anything larger is refused by the client.
const MAX_PACKET: u32 = 256 * 1024;
const OUTGOING_INFLIGHT: u16 = 16;
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Where and who to connect as.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub device_id: DeviceId,
    pub token: String,
    pub host: String,
    pub port: u16,
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub topics: Topics,
    pub keep_alive: Duration,
}

/// A running link: publish through it, receive commands from `commands`.
#[derive(Debug)]
pub struct Link {
    client: AsyncClient,
    topics: Topics,
    device_id: DeviceId,
    /// True between a SUBACK and the next connection error.
    pub up: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

/// What the poll task forwards.
#[derive(Debug)]
pub enum LinkEvent {
    /// Connected and subscribed: send presence and the connect report.
    Up,
    Command(Bytes),
}

fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    // Between half and all of `d`.
    d / 2 + d.mul_f64(f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0)
}

fn client_options(config: &LinkConfig) -> MqttOptions {
    let id = config.device_id.as_str();
    let mut options = MqttOptions::new(id, &config.host, config.port);
    if let Some(tls) = &config.tls {
        options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls.clone())));
    }
    options
        .set_credentials(id, &config.token)
        .set_clean_start(true)
        .set_keep_alive(config.keep_alive)
        .set_max_packet_size(Some(MAX_PACKET))
        // rumqttc sizes its in-flight table by this limit (default 65,535 entries, about
        // 10 MB per connection); a device has a handful of reports in flight at most.
        .set_outgoing_inflight_upper_limit(OUTGOING_INFLIGHT)
        .set_last_will(LastWill::new(
            config.topics.presence(&config.device_id),
            "offline",
            QoS::AtLeastOnce,
            true,
            None,
        ));
    options
}

/// The poll task: subscribes to `commands` on every CONNACK, forwards what arrives, backs
/// off after an error. Ends when nobody receives its events any more.
async fn poll(
    mut eventloop: EventLoop,
    subscriber: AsyncClient,
    commands: String,
    tx: mpsc::UnboundedSender<LinkEvent>,
    up_tx: watch::Sender<bool>,
) {
    let mut backoff = BACKOFF_START;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_START;
                if let Err(e) = subscriber.try_subscribe(&commands, QoS::AtLeastOnce) {
                    tracing::warn!("subscribe: {e}");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = up_tx.send(true);
                if tx.send(LinkEvent::Up).is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == commands.as_bytes() => {
                if tx.send(LinkEvent::Command(p.payload)).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = up_tx.send(false);
                if tx.is_closed() {
                    return;
                }
                let wait = jittered(backoff);
                tracing::debug!("mqtt: {e}; reconnecting in {wait:?}");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(BACKOFF_CAP);
            }
        }
    }
}

impl Link {
    /// Starts the poll task. Events arrive on the returned receiver.
    pub fn start(config: &LinkConfig) -> (Self, mpsc::UnboundedReceiver<LinkEvent>) {
        let (client, eventloop) = AsyncClient::new(client_options(config), 16);
        let (tx, rx) = mpsc::unbounded_channel();
        let (up_tx, up) = watch::channel(false);
        let commands = config.topics.commands(&config.device_id);
        let task = tokio::spawn(poll(eventloop, client.clone(), commands, tx, up_tx));
        let link = Self { client, topics: config.topics.clone(), device_id: config.device_id.clone(), up, task };
        (link, rx)
    }

    /// Publishes a status report (QoS 1).
    pub async fn report(&self, report: &StatusReport) {
        let payload = serde_json::to_vec(report).expect("a report always serialises");
        if let Err(e) = self.client.publish(self.topics.status(&self.device_id), QoS::AtLeastOnce, false, payload).await
        {
            tracing::warn!("report not queued: {e}");
        }
    }

    /// Publishes the retained `online` presence.
    pub async fn online(&self) {
        let topic = self.topics.presence(&self.device_id);
        if let Err(e) = self.client.publish(topic, QoS::AtLeastOnce, true, "online").await {
            tracing::warn!("presence not queued: {e}");
        }
    }

    /// Disconnects cleanly (the will is not sent) and stops the poll task.
    pub async fn close(self) {
        let _ = self.client.try_disconnect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}
