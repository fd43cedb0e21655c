//! What every request handler shares.

use std::ops::Deref;
use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::broker::EmbeddedBroker;
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
    pub max_artifact_size: u64,
    pub upload_threshold: usize,
    /// Base URL devices download from, without a trailing slash.
    pub public_url: String,
    /// The rollout engine (absent only in builds without MQTT).
    pub engine: Option<EngineHandle>,
    /// The embedded broker, to close sessions of rotated or removed devices.
    pub broker: Option<Arc<EmbeddedBroker>>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// Lets the engine look at rollouts now rather than at its next tick.
    pub fn wake_engine(&self) {
        if let Some(e) = &self.engine {
            e.wake.notify_one();
        }
    }

    /// Closes a device's MQTT session (embedded broker only).
    pub async fn kick(&self, device: &fleet_protocol::DeviceId) {
        if let Some(b) = &self.broker {
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
