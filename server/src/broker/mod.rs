//! The embedded MQTT v5 broker: rmqtt in library mode on the server's own runtime, with
//! its defaults overridden where they hurt (each measured to matter, see the rollout
//! issue): anonymous access off, a large per-client queue and in-flight window, no default
//! message expiry (commands carry their own), address reuse, no busy check, retained
//! messages and shared subscriptions switched on ([`storage`]), per-device isolation
//! ([`hooks`]), and clean sessions with small queues for devices ([`sessions`]). Clients
//! reach it through [`gate`], which accepts them, enforces the CONNECT deadline and the cap
//! on connections not yet let in, terminates TLS for the mqtts:// listener and hands each
//! connection to rmqtt's session code.

pub mod account;
mod admission;
mod cert_logins;
pub mod gate;
mod hooks;
pub mod mosquitto;
mod sessions;
pub mod storage;
pub mod takeover;

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::DeviceId;
use rmqtt::context::ServerContext;
use rmqtt::hook::Type;
use rmqtt::types::{ClientId, Id};
use tokio_rustls::TlsAcceptor;

pub use cert_logins::CertLogins;
pub use gate::ConnectLimits;
pub use hooks::Access;

/// rmqtt's names for the listeners whose settings it knows (`ListenerId`); the hooks see
/// which one a session came through.
pub mod listeners {
    use rmqtt::types::ListenerId;

    /// rmqtt's own loopback listener, for the server's own client.
    pub const INTERNAL: ListenerId = 1;
    /// The gate's cleartext listener.
    pub const CLEARTEXT: ListenerId = 2;
    /// The gate's mqtts:// listener: only its sessions may log in with a certificate.
    pub const TLS: ListenerId = 3;
}

/// A running embedded broker.
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
    /// The mqtts:// listener's address, with TLS.
    pub tls_addr: Option<SocketAddr>,
    /// rmqtt's own loopback listener, for the server's own client.
    pub internal_addr: SocketAddr,
    scx: ServerContext,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("addr", &self.addr)
            .field("tls_addr", &self.tls_addr)
            .field("internal_addr", &self.internal_addr)
            .finish_non_exhaustive()
    }
}

/// Where the embedded broker listens.
#[derive(Debug, Clone)]
pub struct Listen {
    /// Cleartext MQTT.
    pub plain: SocketAddr,
    /// mqtts://, with this TLS configuration.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    /// Cleartext only from loopback peers (`--require-tls`).
    pub require_tls: bool,
}

impl Listen {
    /// Cleartext only, on `addr`.
    pub fn cleartext(addr: SocketAddr) -> Self {
        Self { plain: addr, tls: None, require_tls: false }
    }
}

/// Binds `addr`, failing loudly (with the address) if it is taken.
async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, (SocketAddr, std::io::Error)> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| (addr, e))?;
    Ok(listener)
}

impl EmbeddedBroker {
    /// Binds the listeners of `listen` and starts serving behind the CONNECT gate with
    /// `limits`. The broker only borrows the store of `access`: the caller keeps it alive.
    pub async fn start(
        listen: Listen,
        access: Access,
        limits: ConnectLimits,
    ) -> Result<Self, (SocketAddr, std::io::Error)> {
        let logins = access.cert_logins.clone();
        let scx = context(access).await;
        let plain = bind(listen.plain).await?;
        let addr = plain.local_addr().map_err(|e| (listen.plain, e))?;
        let tls = match &listen.tls {
            Some((tls_addr, config)) => Some((bind(*tls_addr).await?, TlsAcceptor::from(config.clone()))),
            None => None,
        };
        let tls_addr = tls.as_ref().and_then(|(l, _)| l.local_addr().ok());
        if !addr.ip().is_loopback() && !listen.require_tls {
            tracing::warn!(%addr, "the embedded broker takes cleartext MQTT beyond loopback: device tokens travel in cleartext (--require-tls refuses it)");
        }
        let internal = internal_listener(&limits).map_err(|e| (addr, e))?;
        let internal_addr = internal.local_addr().map_err(|e| (addr, std::io::Error::other(e)))?;
        let gate = |lid| {
            scx.listen_cfgs.insert(lid, internal.cfg.clone());
            gate::Broker { scx: scx.clone(), cfg: internal.cfg.clone(), lid }
        };
        let cleartext = gate(listeners::CLEARTEXT);
        let secure = gate(listeners::TLS);
        let server = rmqtt::server::MqttServer::new(scx.clone()).listener_by_id(internal, listeners::INTERNAL).build();
        let entry = gate::Entry::Plain { loopback_only: listen.require_tls };
        let task = tokio::spawn(async move {
            let tls = async {
                match tls {
                    Some((l, acceptor)) => gate::run(l, secure, limits, gate::Entry::Tls(acceptor, logins)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = server.run() => if let Err(e) = result {
                    tracing::error!("embedded broker stopped: {e}");
                },
                () = gate::run(plain, cleartext, limits, entry) => {}
                () = tls => {}
            }
        });
        tracing::info!(%addr, ?tls_addr, "embedded MQTT broker listening");
        Ok(Self { addr, tls_addr, internal_addr, scx, task })
    }

    /// Closes a device's session (its token was rotated or the device removed).
    pub async fn kick(&self, device: &DeviceId) {
        self.kick_client(device.as_str()).await;
    }

    /// Closes the session of a client id (a device, or an operator account `op:{name}`).
    pub async fn kick_client(&self, device: &str) {
        let id = Id::from(self.scx.node.id(), ClientId::from(device));
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

/// rmqtt's own listener, on a loopback port, for the server's own client; the gate hands
/// rmqtt its clients with the same settings.
fn internal_listener(limits: &ConnectLimits) -> std::io::Result<rmqtt::net::Listener> {
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
