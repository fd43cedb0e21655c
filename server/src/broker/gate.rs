//! The embedded broker's front door. rmqtt 0.24 reads a client's first bytes (to tell MQTT
//! 3 from 5) with no deadline, so a connection that never sends CONNECT is held for good,
//! and nothing caps such connections. The gate accepts on the broker's address and relays
//! each connection to rmqtt on a loopback port. Until the broker's first answer (CONNACK, or
//! its refusal), a connection is *pending*: it must get there within the CONNECT deadline,
//! and at most `max_pending` may wait at once; past that, a new one is closed at once.
//!
//! The price: a relayed device holds three descriptors instead of one (its socket, ours to
//! rmqtt, rmqtt's) and two small buffers.
//!
//! The gate is also where TLS ends for mqtts:// (tokio-rustls with the HTTPS certificate,
//! ring like every other TLS in the server): the handshake is part of the CONNECT deadline,
//! and rmqtt sees cleartext on loopback. rmqtt's own TLS listener would bring a second
//! rustls setup of its own; see docs/decisions.md. With `--require-tls` the cleartext
//! listener lets in loopback peers only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::cert_logins::CertLogins;
use crate::device_ca::ClientCertificate;

/// Relay buffer per direction: MQTT packets of devices are small; larger ones pass in pieces.
const RELAY_BUFFER: usize = 4096;

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

/// Accepts on `listener` and relays to the broker at `upstream`, until aborted.
pub async fn run(listener: TcpListener, upstream: SocketAddr, limits: ConnectLimits, entry: Entry) {
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
                tokio::spawn(admit(client, entry.clone(), upstream, limits.deadline, permit));
            }
            Err(e) => starved = crate::limits::accept_failed("MQTT", &e, starved).await,
        }
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One accepted client: its TLS handshake first when `entry` says so (within `deadline`,
/// still holding `permit`), then [`relay`].
async fn admit(
    client: TcpStream,
    entry: Entry,
    upstream: SocketAddr,
    deadline: Duration,
    permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    let _ = client.set_nodelay(true);
    match entry {
        Entry::Plain { .. } => relay(client, upstream, started + deadline, permit, None).await,
        Entry::Tls(acceptor, logins) => {
            if let Some(client) = crate::tls::handshake(&acceptor, client, deadline).await {
                let cert = ClientCertificate::of(client.get_ref().1).map(|c| (logins, c));
                relay(client, upstream, started + deadline, permit, cert).await;
            }
        }
    }
}

/// Relays one client: pending (holding `permit`) until the broker's first bytes arrive
/// by `deadline`, else closed; then both ways until either side closes. A client
/// certificate is recorded for the broker's authentication while the relay lasts.
async fn relay<C>(
    client: C,
    upstream: SocketAddr,
    deadline: Instant,
    permit: OwnedSemaphorePermit,
    cert: Option<(Arc<CertLogins>, ClientCertificate)>,
) where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let Ok(Ok(broker)) = tokio::time::timeout_at(deadline, TcpStream::connect(upstream)).await else {
        tracing::warn!("the embedded broker does not answer on {upstream}");
        return;
    };
    let _ = broker.set_nodelay(true);
    let _recorded = match (cert, broker.local_addr()) {
        (Some((logins, cert)), Ok(relay)) => Some(logins.record(relay, cert)),
        (Some(_), Err(e)) => {
            tracing::warn!("the relay's own address: {e}");
            return;
        }
        (None, _) => None,
    };
    let (client_read, mut client_write) = tokio::io::split(client);
    let (mut broker_read, mut broker_write) = broker.into_split();
    let inbound = tokio::spawn(async move {
        let _ = tokio::io::copy_buf(&mut BufReader::with_capacity(RELAY_BUFFER, client_read), &mut broker_write).await;
        let _ = broker_write.shutdown().await;
    });
    let _inbound = AbortOnDrop(inbound.abort_handle());
    let mut first = [0u8; 256];
    let n = match tokio::time::timeout_at(deadline, broker_read.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        Ok(_) => return,
        Err(_) => {
            tracing::debug!("an MQTT client was not let in by its CONNECT deadline: closed");
            return;
        }
    };
    drop(permit);
    if client_write.write_all(&first[..n]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_buf(&mut BufReader::with_capacity(RELAY_BUFFER, broker_read), &mut client_write).await;
    let _ = client_write.shutdown().await;
}
