//! What every request handler shares.

use std::ops::Deref;
use std::sync::Arc;

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
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// Records an operator action in the audit trail. The action has happened: a failure
    /// to record it is logged loudly, not turned into an error for the caller.
    pub async fn audit(&self, admin: &crate::auth::Admin, action: &str, target: &str, details: serde_json::Value) {
        let entry = crate::store::AuditRecord {
            id: 0,
            at_ms: crate::now_ms(),
            actor: admin.name.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            details: details.to_string(),
        };
        tracing::info!(actor = %admin.name, action, target, "audit");
        if let Err(e) = self.store.record_audit(&entry).await {
            tracing::error!(actor = %admin.name, action, target, "audit trail not written: {e}");
        }
    }

    /// Lets the engine look at rollouts now rather than at its next tick.
    pub fn wake_engine(&self) {
        if let Some(e) = &self.engine {
            e.wake.notify_one();
        }
    }

    /// Brings everything in step after a device was registered (`None`), or its token
    /// rotated or the device removed (`Some`): remembered device tokens are forgotten,
    /// Mosquitto's files are rewritten and reloaded (which closes sessions whose credentials
    /// are gone); the embedded broker closes the device's session.
    pub async fn device_credentials_changed(&self, device: Option<&fleet_protocol::DeviceId>) {
        self.device_tokens.forget_all();
        if let Some(m) = &self.mosquitto {
            m.sync_now().await;
        }
        if let (Some(b), Some(device)) = (&self.broker, device) {
            b.kick(device).await;
        }
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
