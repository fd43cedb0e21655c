//! The embedded MQTT v5 broker: rmqtt in library mode on the server's own runtime, with
//! its defaults overridden where they hurt (each measured to matter, see the rollout
//! issue): anonymous access off, a large per-client queue and in-flight window, no default
//! message expiry (commands carry their own), address reuse, no busy check, retained
//! messages and shared subscriptions switched on ([`storage`]), per-device isolation
//! ([`hooks`]), and clean sessions with small queues for devices ([`sessions`]). Clients
//! reach it through [`gate`], which enforces the CONNECT deadline and the cap on
//! connections not yet let in.

pub mod gate;
mod hooks;
pub mod mosquitto;
mod sessions;
pub mod storage;

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::DeviceId;
use fleet_protocol::topic::Topics;
use rmqtt::context::ServerContext;
use rmqtt::hook::Type;
use rmqtt::types::{ClientId, Id};

use crate::device_tokens::DeviceTokens;
use crate::store::Store;
pub use gate::ConnectLimits;
pub use hooks::Access;

/// A running embedded broker.
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
    /// rmqtt's own loopback listener behind the gate: the server's own client connects here,
    /// so its stream of every report is not copied through the relay.
    pub internal_addr: SocketAddr,
    scx: ServerContext,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("addr", &self.addr)
            .field("internal_addr", &self.internal_addr)
            .finish_non_exhaustive()
    }
}

impl EmbeddedBroker {
    /// Binds `addr` (failing loudly if it is taken) and starts serving behind the CONNECT
    /// gate with `limits`. The broker only borrows `store`: the caller keeps it alive.
    pub async fn start(
        addr: SocketAddr,
        store: &Arc<dyn Store>,
        tokens: Arc<DeviceTokens>,
        topics: Topics,
        server_username: String,
        server_password: String,
        limits: ConnectLimits,
    ) -> std::io::Result<Self> {
        let store = Arc::downgrade(store);
        let access = Access { store, tokens, topics, server_username, server_password };
        let scx = context(access).await;
        let gate = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))?;
        let addr = gate.local_addr()?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the embedded broker listens beyond loopback without TLS: device tokens travel in cleartext");
        }
        let listener = loopback_listener(&limits)?;
        let upstream = listener.local_addr().map_err(std::io::Error::other)?;
        let server = rmqtt::server::MqttServer::new(scx.clone()).listener_by_id(listener, 1).build();
        let task = tokio::spawn(async move {
            tokio::select! {
                result = server.run() => if let Err(e) = result {
                    tracing::error!("embedded broker stopped: {e}");
                },
                () = gate::run(gate, upstream, limits) => {}
            }
        });
        tracing::info!(%addr, "embedded MQTT broker listening");
        Ok(Self { addr, internal_addr: upstream, scx, task })
    }

    /// Closes a device's session (its token was rotated or the device removed).
    pub async fn kick(&self, device: &DeviceId) {
        let id = Id::from(self.scx.node.id(), ClientId::from(device.as_str()));
        let mut entry = self.scx.extends.shared().await.entry(id);
        if entry.exist() {
            if let Err(e) = entry.kick(true, true, true).await {
                tracing::warn!(%device, "closing the MQTT session failed: {e}");
            } else {
                tracing::info!(%device, "MQTT session closed");
            }
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The broker's context: retained messages, shared subscriptions, session limits and the
/// isolation hooks.
async fn context(access: Access) -> ServerContext {
    let scx = ServerContext::new().busy_check_enable(false).build().await;
    *scx.extends.retain_mut().await = Box::<storage::MemoryRetain>::default();
    *scx.extends.shared_subscription_mut().await = Box::<storage::RoundRobin>::default();
    let server_username = access.server_username.clone();
    *scx.extends.fitter_mgr_mut().await = Box::new(sessions::SessionLimitsManager { server_username });
    let access = Arc::new(access);
    let register = scx.extends.hook_mgr().register();
    for typ in [Type::ClientAuthenticate, Type::ClientSubscribeCheckAcl, Type::MessagePublishCheckAcl] {
        register.add(typ, Box::new(hooks::Hooks(access.clone()))).await;
    }
    register.start().await;
    scx
}

/// rmqtt's own listener, on a loopback port only the gate relays to.
fn loopback_listener(limits: &ConnectLimits) -> std::io::Result<rmqtt::net::Listener> {
    rmqtt::net::Builder::new()
        .name("fleet/tcp")
        .laddr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .allow_anonymous(false)
        .reuseaddr(Some(true))
        .handshake_timeout(limits.deadline)
        .max_mqueue_len(100_000)
        .max_inflight(NonZeroU16::new(8192).expect("non-zero"))
        .message_expiry_interval(Duration::ZERO)
        .max_packet_size(1024 * 1024)
        .bind()
        .map_err(std::io::Error::other)?
        .tcp()
        .map_err(std::io::Error::other)
}
