//! The embedded broker's front door. rmqtt 0.24's own accept loop reads a client's first
//! bytes (to tell MQTT 3 from 5) with no deadline, so a connection that never sends CONNECT
//! would be held for good, and nothing would cap such connections. The gate accepts on the
//! broker's addresses itself and hands each connection to rmqtt's session code in the same
//! task, wrapped in an [`Admission`]: until the broker's first answer (CONNACK, or its
//! refusal) it is *pending*, must get there within the CONNECT deadline, and at most
//! `max_pending` may wait at once; past that, a new one is closed at once. A device costs
//! one descriptor, its own socket.
//!
//! The gate is also where TLS ends for mqtts:// (tokio-rustls with the HTTPS certificate,
//! ring like every other TLS in the server): the handshake is part of the CONNECT deadline.
//! rmqtt's own TLS listener would bring a second rustls setup of its own; see
//! docs/decisions.md. With `--require-tls` the cleartext listener lets in loopback peers
//! only.
//!
//! Handing rmqtt a connection needs `rmqtt::v3::process` and `v5::process`, which rmqtt
//! 0.24 keeps to itself: the workspace builds rmqtt from `vendor/rmqtt`, the published
//! crate with those two functions made public (vendor/README.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use rmqtt::codec::version::{ProtocolVersion, VersionCodec};
use rmqtt::codec::{MqttCodec, MqttPacket};
use rmqtt::context::ServerContext;
use rmqtt::types::{ListenerConfig, ListenerId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;

use super::admission::Admission;
use super::cert_logins::CertLogins;
use crate::device_ca::ClientCertificate;

/// Read and write buffer of a client's connection to start with (rmqtt's own accept loop
/// gives 8 KiB each). A device's packets are a few hundred bytes; a larger one grows its
/// buffer. Measured at 10,000 devices: peak RSS 508–516 → 385 MiB (BENCHMARKS.md §7).
const BUFFER: usize = 1024;

/// How long a client may take to be let in, and how many may be waiting at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectLimits {
    /// From accepting the connection to the broker's CONNACK.
    pub deadline: Duration,
    /// Connections accepted and not yet answered by the broker.
    pub max_pending: usize,
}

impl Default for ConnectLimits {
    fn default() -> Self {
        Self { deadline: Duration::from_secs(10), max_pending: 1024 }
    }
}

/// How clients come in through one listener.
#[derive(Clone)]
pub enum Entry {
    /// Cleartext; with `loopback_only`, other peers are closed at once.
    Plain { loopback_only: bool },
    /// TLS, ended here; verified client certificates are recorded in [`CertLogins`].
    Tls(TlsAcceptor, Arc<CertLogins>),
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain { loopback_only } => f.debug_struct("Plain").field("loopback_only", loopback_only).finish(),
            Self::Tls(..) => f.write_str("Tls"),
        }
    }
}

/// Where the gate hands connections: rmqtt's context, and the listener settings it knows
/// under `lid`.
#[derive(Clone)]
pub struct Broker {
    pub scx: ServerContext,
    pub cfg: ListenerConfig,
    pub lid: ListenerId,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("lid", &self.lid).finish_non_exhaustive()
    }
}

/// Accepts on `listener` and hands each client to `broker`, until aborted.
pub async fn run(listener: TcpListener, broker: Broker, limits: ConnectLimits, entry: Entry) {
    let pending = Arc::new(Semaphore::new(limits.max_pending));
    let mut starved = false;
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                if std::mem::take(&mut starved) {
                    tracing::info!("accepting MQTT connections again");
                }
                if matches!(entry, Entry::Plain { loopback_only: true }) && !peer.ip().is_loopback() {
                    tracing::info!(%peer, "cleartext MQTT from beyond loopback refused (--require-tls)");
                    continue;
                }
                let Ok(permit) = pending.clone().try_acquire_owned() else {
                    tracing::debug!(%peer, "{} MQTT connections wait for CONNECT already: closed", limits.max_pending);
                    continue;
                };
                let deadline = Instant::now() + limits.deadline;
                tokio::spawn(admit(client, peer, entry.clone(), broker.clone(), deadline, permit));
            }
            Err(e) => starved = crate::limits::accept_failed("MQTT", &e, starved).await,
        }
    }
}

/// One accepted client: its TLS handshake first when `entry` says so (by `deadline`,
/// holding `permit`), then its session in rmqtt. A client certificate is recorded for the
/// broker's authentication while the session lasts.
async fn admit(
    client: TcpStream,
    peer: SocketAddr,
    entry: Entry,
    broker: Broker,
    deadline: Instant,
    permit: OwnedSemaphorePermit,
) {
    let _ = client.set_nodelay(true);
    match entry {
        Entry::Plain { .. } => serve(Admission::new(client, deadline, permit), peer, broker).await,
        Entry::Tls(acceptor, logins) => {
            let Some(client) =
                crate::tls::handshake(&acceptor, client, deadline.saturating_duration_since(Instant::now())).await
            else {
                return;
            };
            let recorded = ClientCertificate::of(client.get_ref().1).map(|cert| logins.record(peer, cert));
            if let Some(None) = recorded {
                tracing::info!(%peer, "a second mqtts:// connection with a certificate from the same address: closed");
                return;
            }
            serve(Admission::new(client, deadline, permit), peer, broker).await;
        }
    }
}

/// Reads which MQTT version the client speaks (its CONNECT's first bytes), then runs its
/// session in rmqtt until either side closes: what rmqtt's own accept loop does.
async fn serve<S>(client: Admission<S>, peer: SocketAddr, broker: Broker)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Broker { scx, cfg, lid } = broker;
    let mut io = Framed::with_capacity(client, MqttCodec::Version(VersionCodec), BUFFER);
    let Some(Ok((MqttPacket::Version(version), _))) = io.next().await else {
        return;
    };
    let result = match version {
        ProtocolVersion::MQTT3 => {
            *io.codec_mut() = MqttCodec::V3(rmqtt::codec::v3::Codec::new(cfg.max_packet_size));
            rmqtt::v3::process(scx, rmqtt::net::v3::MqttStream { io, remote_addr: peer, cfg }, lid).await
        }
        ProtocolVersion::MQTT5 => {
            let codec = rmqtt::codec::v5::Codec::new(cfg.max_packet_size, cfg.max_packet_size);
            *io.codec_mut() = MqttCodec::V5(codec);
            rmqtt::v5::process(scx, rmqtt::net::v5::MqttStream { io, remote_addr: peer, cfg }, lid).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "MQTT session ended: {e}");
    }
}
