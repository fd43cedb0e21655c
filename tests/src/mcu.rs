//! A microcontroller on the host: the device core's [`Session`] over a simulated flash of
//! two 1 MiB regions (the core's `SimulatedFlash`), with the network a board support package would provide made of the
//! test's MQTT and HTTP clients. Real: the server, the broker, the core's code path, the
//! 4 KiB receive buffer. Stand-ins: the flash (memory) and the reset (a call that returns).

use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use fleet_agent_core::flash::SimulatedFlash;
use fleet_agent_core::session::{Network, Session};
use fleet_agent_core::updater::{Firmware, Identity, Updater};
use fleet_agent_core::verify::{Keys, TrustedKey};
use fleet_protocol::DeviceId;
use fleet_protocol::paths;
use fleet_protocol::topic::Topics;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

/// Each region's size.
pub const REGION: usize = 1024 * 1024;

/// The receive buffer the image streams through.
pub const CHUNK: usize = 4096;

/// The simulated flash: two regions of [`REGION`] bytes on the heap.
pub type Flash = SimulatedFlash<Vec<u8>>;

/// Region A holds `image` and runs; region B is erased.
pub fn flash_with(image: &[u8]) -> Flash {
    let mut a = vec![0xff; REGION];
    a[..image.len()].copy_from_slice(image);
    SimulatedFlash::new(a, vec![0xff; REGION])
}

/// The network: the test's MQTT connection and HTTP client, blocking on the test's runtime.
#[derive(Debug)]
pub struct HostNetwork {
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
    server: reqwest::Url,
    device_id: DeviceId,
    token: String,
    mqtt: AsyncClient,
    /// What the health check answers.
    pub healthy: bool,
}

impl Network for HostNetwork {
    fn current_command(&mut self, into: &mut [u8]) -> Option<usize> {
        let url = paths::api_url(self.server.as_str(), &paths::device_command(self.device_id.as_str()));
        let body = self.runtime.block_on(async {
            let response = self.http.get(url).bearer_auth(&self.token).send().await.ok()?;
            response.status().is_success().then_some(())?;
            response.bytes().await.ok()
        })?;
        let target = into.get_mut(..body.len())?;
        target.copy_from_slice(&body);
        Some(body.len())
    }

    fn is_server_origin(&self, url: &str) -> bool {
        reqwest::Url::parse(url).is_ok_and(|u| u.origin() == self.server.origin())
    }

    fn fetch(&mut self, url: &str, offset: u64, into: &mut [u8]) -> Option<usize> {
        let range = format!("bytes={offset}-{}", offset + into.len() as u64 - 1);
        let (body, skip) = self.runtime.block_on(async {
            let response = self.http.get(url).bearer_auth(&self.token).header("Range", range).send().await.ok()?;
            match response.status().as_u16() {
                416 => Some((Vec::new(), 0)),
                206 => Some((response.bytes().await.ok()?.to_vec(), 0)),
                // A server that ignores the range sends it all from the start.
                200 => Some((response.bytes().await.ok()?.to_vec(), usize::try_from(offset).ok()?)),
                _ => None,
            }
        })?;
        let rest = body.get(skip..).unwrap_or_default();
        let len = rest.len().min(into.len());
        into[..len].copy_from_slice(&rest[..len]);
        Some(len)
    }

    fn publish(&mut self, report: &[u8]) {
        let topic = Topics::default().status(&self.device_id);
        self.mqtt.try_publish(topic, QoS::AtLeastOnce, false, report.to_vec()).expect("the report is queued");
    }

    fn healthy(&mut self) -> bool {
        self.healthy
    }

    fn now(&self) -> i64 {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
    }
}

/// A microcontroller running until its commands stop: the keys it pins, its flash, what it
/// has installed and whether its health check passes.
#[derive(Debug)]
pub struct Microcontroller {
    pub device_id: String,
    pub hardware: String,
    pub keys: Vec<TrustedKey>,
    /// How many of the keys must sign.
    pub threshold: usize,
    pub flash: Flash,
    pub firmware: Option<Firmware>,
    pub healthy: bool,
}

impl Microcontroller {
    /// Connects to `mqtt_url` as the device, sends its connect report and carries every
    /// command through the core until `stop` fires; its flash and firmware at the end.
    pub async fn run(
        self,
        server: &str,
        mqtt_url: &str,
        token: &str,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> (Flash, Option<Firmware>) {
        let broker = fleet_protocol::topic::parse_broker_url(mqtt_url).expect("an mqtt:// URL");
        let mut options = MqttOptions::new(&self.device_id, broker.host, broker.port);
        options.set_credentials(&self.device_id, token).set_clean_start(true);
        let (mqtt, mut eventloop) = AsyncClient::new(options, 64);
        let id = DeviceId::parse(self.device_id.clone()).expect("a device id");
        mqtt.subscribe(Topics::default().commands(&id), QoS::AtLeastOnce).await.expect("subscribe queued");
        let (commands, received) = mpsc::channel::<Option<Vec<u8>>>();
        let poll = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                let message = match event {
                    Event::Incoming(Packet::SubAck(_)) => None,
                    Event::Incoming(Packet::Publish(p)) => Some(p.payload.to_vec()),
                    _ => continue,
                };
                if commands.send(message).is_err() {
                    break;
                }
            }
        });
        let network = HostNetwork {
            runtime: tokio::runtime::Handle::current(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client"),
            server: reqwest::Url::parse(server).expect("the server's URL"),
            device_id: id,
            token: token.to_owned(),
            mqtt,
            healthy: self.healthy,
        };
        let device = tokio::task::spawn_blocking(move || self.serve(network, received));
        let _ = stop.await;
        poll.abort();
        device.await.expect("the device's thread")
    }

    fn serve(self, network: HostNetwork, received: mpsc::Receiver<Option<Vec<u8>>>) -> (Flash, Option<Firmware>) {
        let identity = Identity {
            device_id: &self.device_id,
            hardware: &self.hardware,
            keys: Keys::new(&self.keys, self.threshold),
        };
        let clock_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let updater = Updater::open(self.flash, identity, self.firmware, clock_ms);
        let mut session = Session::new(updater, network);
        let mut chunk = [0u8; CHUNK];
        // The first message is the SUBACK: then the connect report (CONTRACT §4).
        while let Ok(message) = received.recv() {
            match message {
                None => session.connected(&mut chunk),
                Some(command) => session.command(&command, &mut chunk),
            }
        }
        let firmware = session.updater.firmware().cloned();
        (session.updater.into_board(), firmware)
    }
}
