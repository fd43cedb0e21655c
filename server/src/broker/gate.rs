//! The embedded broker's front door. rmqtt 0.24 reads a client's first bytes (to tell MQTT
//! 3 from 5) with no deadline, so a connection that never sends CONNECT is held for good,
//! and nothing caps such connections. The gate accepts on the broker's address and relays
//! each connection to rmqtt on a loopback port. Until the broker's first answer (CONNACK, or
//! its refusal), a connection is *pending*: it must get there within the CONNECT deadline,
//! and at most `max_pending` may wait at once; past that, a new one is closed at once.
//!
//! The price: a relayed device holds three descriptors instead of one (its socket, ours to
//! rmqtt, rmqtt's) and two small buffers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

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

/// Accepts on `listener` and relays to the broker at `upstream`, until aborted.
pub async fn run(listener: TcpListener, upstream: SocketAddr, limits: ConnectLimits) {
    let pending = Arc::new(Semaphore::new(limits.max_pending));
    let mut starved = false;
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                if std::mem::take(&mut starved) {
                    tracing::info!("accepting MQTT connections again");
                }
                let Ok(permit) = pending.clone().try_acquire_owned() else {
                    tracing::debug!(%peer, "{} MQTT connections wait for CONNECT already: closed", limits.max_pending);
                    continue;
                };
                tokio::spawn(relay(client, upstream, limits.deadline, permit));
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

/// Relays one client: pending (holding `permit`) until the broker's first bytes arrive
/// within `deadline`, else closed; then both ways until either side closes.
async fn relay(client: TcpStream, upstream: SocketAddr, deadline: Duration, permit: OwnedSemaphorePermit) {
    let started = tokio::time::Instant::now();
    let Ok(Ok(broker)) = tokio::time::timeout(deadline, TcpStream::connect(upstream)).await else {
        tracing::warn!("the embedded broker does not answer on {upstream}");
        return;
    };
    for stream in [&client, &broker] {
        let _ = stream.set_nodelay(true);
    }
    let (client_read, mut client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = broker.into_split();
    let inbound = tokio::spawn(async move {
        let _ = tokio::io::copy_buf(&mut BufReader::with_capacity(RELAY_BUFFER, client_read), &mut broker_write).await;
        let _ = broker_write.shutdown().await;
    });
    let _inbound = AbortOnDrop(inbound.abort_handle());
    let mut first = [0u8; 256];
    let n = match tokio::time::timeout_at(started + deadline, broker_read.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        Ok(_) => return,
        Err(_) => {
            tracing::debug!("an MQTT client sent no CONNECT within {deadline:?}: closed");
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
