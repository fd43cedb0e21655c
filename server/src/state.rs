//! What every request handler shares.

use std::ops::Deref;
use std::sync::Arc;

use crate::audit::Actor;
use crate::blobs::BlobStore;
use crate::broker::EmbeddedBroker;
use crate::broker::mosquitto::MosquittoHandle;
use crate::rollout::engine::EngineHandle;
use crate::store::Store;

/// Shared application state, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub blobs: BlobStore,
    /// Artifact records for the device routes (command, blob) and the engine.
    pub artifacts: Arc<crate::artifact_cache::ArtifactCache>,
    /// Device tokens verified a moment ago (HTTP and the embedded broker's logins).
    pub device_tokens: Arc<crate::device_tokens::DeviceTokens>,
    /// Artifacts whose command this replica handed to a device a moment ago (the blob route).
    pub sent_artifacts: crate::sent_artifacts::SentArtifacts,
    /// Signs device certificates (CONTRACT §12), when TLS has a device CA.
    pub device_ca: Option<Arc<crate::device_ca::DeviceCa>>,
    pub max_artifact_size: u64,
    pub upload_threshold: usize,
    /// Base URL devices download from, without a trailing slash.
    pub public_url: String,
    /// The rollout engine (absent only in builds without MQTT).
    pub engine: Option<EngineHandle>,
    /// The embedded broker, to close sessions of rotated or removed devices.
    pub broker: Option<Arc<EmbeddedBroker>>,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The server's MQTT client (readiness).
    pub mqtt: std::sync::Arc<crate::mqtt::MqttLink>,
    /// Device topics.
    pub topics: fleet_protocol::topic::Topics,
    /// The server's own account on the external broker (`--mqtt-username`, password).
    pub broker_account: Option<crate::broker::mosquitto::ServerAccount>,
    /// Mosquitto's files, rewritten when credentials change (`--mosquitto-dir`).
    pub mosquitto: Option<MosquittoHandle>,
    /// Wakes [`crate::trust_announce`] when a trust document was stored.
    pub trust_stored: Arc<tokio::sync::Notify>,
    /// Home Assistant discovery (`--ha-discovery`), told of registrations, removals and
    /// firmware uploads.
    pub ha: Option<crate::ha::handle::HaHandle>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// Records an operator action in the audit trail (see [`crate::audit`]).
    pub async fn audit(&self, actor: impl Into<Actor>, action: &str, target: &str, details: serde_json::Value) {
        crate::audit::record(self.store.as_ref(), &actor.into(), action, target, details).await;
    }

    /// Has the latest trust document announced now rather than at the next look.
    pub fn announce_trust(&self) {
        self.trust_stored.notify_one();
    }

    /// Has Home Assistant's entity of `device` brought up to date (registered, removed).
    pub fn ha_device_changed(&self, device: &fleet_protocol::DeviceId) {
        if let Some(ha) = &self.ha {
            ha.device_changed(device);
        }
    }

    /// Has every Home Assistant entity look again at the newest firmware.
    pub fn ha_firmware_changed(&self) {
        if let Some(ha) = &self.ha {
            ha.firmware_changed();
        }
    }

    /// Lets the engine look at rollouts now rather than at its next tick.
    pub fn wake_engine(&self) {
        if let Some(e) = &self.engine {
            e.wake.notify_one();
        }
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
