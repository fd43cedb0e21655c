//! Events and integrations (CONTRACT §10).
//!
//! - [`diff`]: which events a change makes (pure).
//! - [`announce`]: the task that, once a second, compares rollouts and devices that may
//!   have changed with what was last announced, publishes their bodies on the retained
//!   event topics and writes webhook deliveries to the outbox (with the new mark, in one
//!   transaction).
//! - [`webhooks`]: registering endpoints, signing, and the task that delivers the outbox.
//!
//! Ingestion only notes which devices it touched ([`DeviceChanges`]); nothing about events
//! happens in its transactions, so reports cost what they cost before.

pub mod announce;
pub mod diff;
pub mod webhooks;

use std::collections::HashSet;
use std::sync::Mutex;

use fleet_protocol::DeviceId;

/// Devices whose presence or state changed since the announcer last looked.
#[derive(Debug, Default)]
pub struct DeviceChanges(Mutex<HashSet<DeviceId>>);

impl DeviceChanges {
    pub fn touch(&self, devices: impl IntoIterator<Item = DeviceId>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(devices);
    }

    /// Up to `max` of them, forgotten here.
    fn take(&self, max: usize) -> Vec<DeviceId> {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let taken: Vec<_> = set.iter().take(max).cloned().collect();
        for d in &taken {
            set.remove(d);
        }
        taken
    }
}

/// The announcer and the delivery task, made at start and run beside the engine.
#[derive(Debug)]
pub struct EventTasks {
    pub announcer: announce::Announcer,
    pub deliverer: webhooks::deliver::Deliverer,
}

impl EventTasks {
    pub fn new(
        store: &std::sync::Arc<dyn crate::store::Store>,
        artifacts: &std::sync::Arc<crate::artifact_cache::ArtifactCache>,
        mqtt: &std::sync::Arc<crate::mqtt::MqttLink>,
        topics: fleet_protocol::topic::Topics,
        devices: std::sync::Arc<DeviceChanges>,
        http: reqwest::Client,
        owner: &str,
    ) -> Self {
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let announcer = announce::Announcer {
            store: store.clone(),
            artifacts: artifacts.clone(),
            mqtt: mqtt.clone(),
            topics,
            devices,
            outbox: wake.clone(),
            published: Default::default(),
            ha: None,
        };
        let deliverer = webhooks::deliver::Deliverer { store: store.clone(), http, owner: owner.to_owned(), wake };
        Self { announcer, deliverer }
    }
}
