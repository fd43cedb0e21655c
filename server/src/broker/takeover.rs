//! Closing a session Mosquitto keeps open with a revoked device certificate. Mosquitto 2.0
//! has no way to disconnect a client from outside (short of the dynamic-security plugin),
//! and its reload checks connected clients' passwords again but not their certificates
//! against the new CRL. What it does do is session takeover: a new connection with the
//! same client id closes the old one. On a certificate listener (`use_identity_as_username`,
//! `use_username_as_clientid`) the client id is the certificate's CN, so the server
//! connects there with a stand-in certificate for the device ([`DeviceCa::stand_in`]: two
//! minutes, in memory, unknown to the store), waits for the CONNACK and disconnects.
//!
//! Only after the reload that put the device's serials in the CRL: the device's reconnect
//! is then refused at the handshake.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::DeviceId;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};

use crate::device_ca::{DeviceCa, SignError};

/// How long one takeover may take, from the TCP connect to the CONNACK.
const DEADLINE: Duration = Duration::from_secs(5);

/// Why a device's session could not be taken over.
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    #[error("--mosquitto-cert-url: {0}")]
    Url(String),
    #[error("--mqtt-ca-file: {0}")]
    Trust(#[from] fleet_protocol::tls::TlsError),
    #[error("making the stand-in certificate: {0}")]
    Certificate(#[from] SignError),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("refused: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("connecting: {0}")]
    Connect(String),
    #[error("no CONNACK within {DEADLINE:?}")]
    Timeout,
}

/// Where and how to take device sessions over: Mosquitto's certificate listener.
pub struct Takeover {
    host: String,
    port: u16,
    roots: Arc<rustls::RootCertStore>,
    device_ca: Arc<DeviceCa>,
}

impl std::fmt::Debug for Takeover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Takeover").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

impl Takeover {
    /// For the listener at `url` (`mqtts://`), whose certificate chains to `ca_file` (or
    /// the system's roots).
    pub fn new(url: &str, ca_file: Option<&Path>, device_ca: Arc<DeviceCa>) -> Result<Self, TakeoverError> {
        let url = fleet_protocol::topic::parse_broker_url(url).map_err(|e| TakeoverError::Url(e.to_string()))?;
        if !url.tls {
            return Err(TakeoverError::Url("the certificate listener is mqtts://".into()));
        }
        let roots = Arc::new(fleet_protocol::tls::roots(ca_file)?);
        Ok(Self { host: url.host, port: url.port, roots, device_ca })
    }

    /// Takes over the session of each of `devices` at once; failures are logged.
    pub async fn close_sessions(&self, devices: &[DeviceId]) {
        let runs = devices.iter().map(|device| async move {
            match self.take_over(device).await {
                Ok(()) => tracing::info!(%device, "Mosquitto session of a revoked certificate taken over"),
                Err(e) => tracing::warn!(%device, "taking over the Mosquitto session of a revoked certificate: {e}"),
            }
        });
        futures_util::future::join_all(runs).await;
    }

    /// Connects as `device` (clean start), waits for the CONNACK and disconnects.
    async fn take_over(&self, device: &DeviceId) -> Result<(), TakeoverError> {
        let stand_in = self.device_ca.stand_in(device)?;
        let tls = rustls::ClientConfig::builder_with_provider(fleet_protocol::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(vec![stand_in.cert], stand_in.key)?;
        let mut options = MqttOptions::new(device.as_str(), &self.host, self.port);
        options.set_credentials(device.as_str(), "").set_clean_start(true);
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls))));
        let (client, mut eventloop) = AsyncClient::new(options, 2);
        tokio::time::timeout(DEADLINE, connack(&mut eventloop)).await.map_err(|_| TakeoverError::Timeout)??;
        // A DISCONNECT, so Mosquitto ends the stand-in's session without a fuss.
        if client.disconnect().await.is_ok() {
            let sent = async {
                while let Ok(event) = eventloop.poll().await {
                    if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), sent).await;
        }
        Ok(())
    }
}

/// Polls until the CONNACK: `Ok` if let in.
async fn connack(eventloop: &mut EventLoop) -> Result<(), TakeoverError> {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => return Ok(()),
            Ok(Event::Incoming(Packet::ConnAck(ack))) => return Err(TakeoverError::Refused(ack.code)),
            Ok(_) => {}
            Err(e) => return Err(TakeoverError::Connect(e.to_string())),
        }
    }
}
