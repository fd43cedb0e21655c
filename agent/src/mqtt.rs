//! The MQTT link, the only code that touches the MQTT client (CONTRACT §4).
//!
//! Clean start; username = client id = device id, password = token; last will `offline` on
//! the device's retained `presence`. On every CONNACK the poll task subscribes to the
//! device's `commands` and, with a trust root, to `{root}/trust` (without awaiting: it never awaits a publish or subscribe); on the
//! SUBACK it tells the runner the link is up, and the runner sends `online` and its connect
//! report. After an error the poll task backs off exponentially with jitter, capped,
//! before polling (and so reconnecting) again — rumqttc has no backoff of its own.
//!
//! A clean DISCONNECT suppresses the will, so [`Link::close`] first publishes the retained
//! `offline` itself and waits (briefly) until the broker has acknowledged it and every
//! publish before it; the poll task counts what it wrote and what was acknowledged.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fleet_protocol::presence::{OFFLINE, ONLINE};
use fleet_protocol::topic::Topics;
use fleet_protocol::{DeviceId, message::StatusReport};
use rumqttc::Outgoing;
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
/// How long a clean stop waits for the broker to acknowledge `offline`, then for the
/// DISCONNECT to be written.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

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
    /// Also subscribe to the trust announcement (a device with a trust root).
    pub trust: bool,
}

/// A running link: publish through it, receive commands from `commands`.
#[derive(Debug)]
pub struct Link {
    client: AsyncClient,
    topics: Topics,
    device_id: DeviceId,
    /// True between a SUBACK and the next connection error.
    pub up: watch::Receiver<bool>,
    /// Publishes handed to the client (all QoS 1).
    queued: AtomicU64,
    /// What the poll task has written and seen acknowledged.
    flight: watch::Receiver<Flight>,
    task: JoinHandle<()>,
}

/// The poll task's count of publishes on the wire.
#[derive(Debug, Default)]
struct Flight {
    /// Publishes written, since the link started.
    written: u64,
    /// Packet ids written and not yet acknowledged (on this connection).
    unacked: HashSet<u16>,
    /// The DISCONNECT has been written.
    disconnected: bool,
}

impl Flight {
    /// Everything up to the `queued`-th publish is written and acknowledged.
    fn settled(&self, queued: u64) -> bool {
        self.written >= queued && self.unacked.is_empty()
    }

    /// Follows what the event loop did.
    fn track(&mut self, event: &Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                self.written += 1;
                self.unacked.insert(*pkid);
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                self.unacked.remove(&ack.pkid);
            }
            Event::Outgoing(Outgoing::Disconnect) => self.disconnected = true,
            _ => {}
        }
    }
}

/// What the poll task forwards.
#[derive(Debug)]
pub enum LinkEvent {
    /// Connected and subscribed: send presence and the connect report.
    Up,
    Command(Bytes),
    /// The trust announcement (the latest trust document, retained).
    Trust(Bytes),
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
        .set_last_will(LastWill::new(config.topics.presence(&config.device_id), OFFLINE, QoS::AtLeastOnce, true, None));
    options
}

/// What the poll task works with besides the event loop.
struct PollTask {
    subscriber: AsyncClient,
    commands: String,
    /// `{root}/trust`, when subscribed to.
    trust: Option<String>,
    tx: mpsc::UnboundedSender<LinkEvent>,
    up_tx: watch::Sender<bool>,
    flight_tx: watch::Sender<Flight>,
}

/// The poll task: subscribes to `commands` on every CONNACK, forwards what arrives, counts
/// publishes and their acknowledgements, backs off after an error. Ends when nobody receives
/// its events any more.
async fn poll(mut eventloop: EventLoop, task: PollTask) {
    let PollTask { subscriber, commands, trust, tx, up_tx, flight_tx } = task;
    let mut backoff = BACKOFF_START;
    loop {
        let event = eventloop.poll().await;
        if let Ok(event) = &event {
            flight_tx.send_modify(|f| f.track(event));
        }
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_START;
                let filters = std::iter::once(&commands).chain(&trust);
                let filters = filters.map(|f| rumqttc::v5::mqttbytes::v5::Filter::new(f, QoS::AtLeastOnce));
                if let Err(e) = subscriber.try_subscribe_many(filters) {
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
            Ok(Event::Incoming(Packet::Publish(p))) if trust.as_ref().is_some_and(|t| p.topic == t.as_bytes()) => {
                if tx.send(LinkEvent::Trust(p.payload)).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = up_tx.send(false);
                // A clean start drops what the old connection had in flight.
                flight_tx.send_modify(|f| f.unacked.clear());
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
        let (flight_tx, flight) = watch::channel(Flight::default());
        let commands = config.topics.commands(&config.device_id);
        let trust = config.trust.then(|| config.topics.trust());
        let task = PollTask { subscriber: client.clone(), commands, trust, tx, up_tx, flight_tx };
        let task = tokio::spawn(poll(eventloop, task));
        let link = Self {
            client,
            topics: config.topics.clone(),
            device_id: config.device_id.clone(),
            up,
            queued: AtomicU64::new(0),
            flight,
            task,
        };
        (link, rx)
    }

    /// Publishes a status report (QoS 1).
    pub async fn report(&self, report: &StatusReport) {
        let payload = serde_json::to_vec(report).expect("a report always serialises");
        if let Err(e) = self.publish(self.topics.status(&self.device_id), false, payload).await {
            tracing::warn!("report not queued: {e}");
        }
    }

    /// Publishes the retained `online` presence (on every connect, and every
    /// [`fleet_protocol::presence::REFRESH`] while connected).
    pub async fn online(&self) {
        if let Err(e) = self.publish(self.topics.presence(&self.device_id), true, ONLINE).await {
            tracing::warn!("presence not queued: {e}");
        }
    }

    /// Publishes at QoS 1 and counts it.
    async fn publish(
        &self,
        topic: String,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<(), rumqttc::v5::ClientError> {
        self.client.publish(topic, QoS::AtLeastOnce, retain, payload.into()).await?;
        self.queued.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// A clean stop: when connected, publishes the retained `offline` (a clean DISCONNECT
    /// suppresses the will) and waits, at most [`CLOSE_WITHIN`], until the broker has
    /// acknowledged it; then disconnects and stops the poll task.
    pub async fn close(mut self) {
        if *self.up.borrow() {
            match self.publish(self.topics.presence(&self.device_id), true, OFFLINE).await {
                Ok(()) => {
                    let queued = self.queued.load(Ordering::SeqCst);
                    let acked = self.flight.wait_for(|f| f.settled(queued));
                    if tokio::time::timeout(CLOSE_WITHIN, acked).await.is_err() {
                        tracing::warn!("`offline` not acknowledged within {CLOSE_WITHIN:?}; disconnecting anyway");
                    }
                }
                Err(e) => tracing::warn!("presence not queued: {e}"),
            }
        }
        if self.client.try_disconnect().is_ok() {
            let written = self.flight.wait_for(|f| f.disconnected);
            let _ = tokio::time::timeout(CLOSE_WITHIN, written).await;
        }
        self.task.abort();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}
