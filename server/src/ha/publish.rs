//! Publishing each device's discovery config and update state, retained, only when they
//! changed since this replica last published them. Another replica publishes the same
//! bodies; retained messages make that harmless.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fleet_protocol::state::DeviceState;
use fleet_protocol::topic::Topics;
use fleet_protocol::{ArtifactKind, DeviceId};

use super::newest::NewestFirmware;
use super::payload;
use crate::mqtt::MqttLink;
use crate::store::{DeviceFilter, DeviceRecord, PageRequest, Store, StoreError, StoreResult};

/// What one replica has published, and what it needs to publish more.
#[derive(Debug)]
pub struct Publisher {
    pub store: Arc<dyn Store>,
    pub mqtt: Arc<MqttLink>,
    pub topics: Topics,
    /// The newest firmware, as of the last sweep.
    newest: NewestFirmware,
    /// Per device: the config and state last published.
    published: HashMap<DeviceId, (String, String)>,
}

impl Publisher {
    pub fn new(store: Arc<dyn Store>, mqtt: Arc<MqttLink>, topics: Topics) -> Self {
        Self { store, mqtt, topics, newest: NewestFirmware::default(), published: HashMap::new() }
    }

    /// One device that may have changed: its entity brought up to date, or cleared if the
    /// device is gone.
    pub async fn device(&mut self, id: &DeviceId) -> StoreResult<()> {
        match self.store.get_device(id).await {
            Ok(device) => self.show(&device).await,
            Err(StoreError::NotFound) => {
                self.clear(id).await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Every device, with the newest firmware read again (an upload or deletion, here or
    /// on another replica); entities of devices no longer registered are cleared.
    pub async fn sweep(&mut self) -> StoreResult<()> {
        self.newest = NewestFirmware::load(self.store.as_ref(), self.store.now_ms().await?).await?;
        let mut seen = HashSet::new();
        let mut page = PageRequest { limit: 500, cursor: None };
        loop {
            let p = self.store.list_devices(&DeviceFilter::default(), &page).await?;
            for device in &p.items {
                self.show(device).await?;
                seen.insert(device.id.clone());
            }
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let gone: Vec<_> = self.published.keys().filter(|id| !seen.contains(*id)).cloned().collect();
        for id in gone {
            self.clear(&id).await;
        }
        Ok(())
    }

    /// Publishes what changed of the device's config and state.
    async fn show(&mut self, device: &DeviceRecord) -> StoreResult<()> {
        let Some(config_topic) = self.topics.ha_config(&device.id) else {
            return Ok(());
        };
        let step = self.rollout_step(&device.id).await?;
        let config = payload::config(&self.topics, device).to_string();
        let state = payload::state(device, self.newest.for_device(device), step);
        let state = serde_json::to_string(&state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let before = self.published.get(&device.id);
        let (config_changed, state_changed) =
            (before.is_none_or(|b| b.0 != config), before.is_none_or(|b| b.1 != state));
        if state_changed {
            self.mqtt.publish_retained(self.topics.ha_state(&device.id), state.clone().into_bytes()).await;
        }
        if config_changed {
            self.mqtt.publish_retained(config_topic, config.clone().into_bytes()).await;
        }
        self.published.insert(device.id.clone(), (config, state));
        Ok(())
    }

    /// Empty retained payloads: Home Assistant removes the entity, and the state goes too.
    async fn clear(&mut self, id: &DeviceId) {
        let Some(config_topic) = self.topics.ha_config(id) else {
            return;
        };
        self.mqtt.publish_retained(config_topic, Vec::new()).await;
        self.mqtt.publish_retained(self.topics.ha_state(id), Vec::new()).await;
        self.published.remove(id);
    }

    /// The device's state in a live firmware rollout, while a command is out.
    async fn rollout_step(&self, id: &DeviceId) -> StoreResult<Option<DeviceState>> {
        let Some((rollout, step)) = self.store.device_rollout(id).await? else {
            return Ok(None);
        };
        if !step.is_in_flight() {
            return Ok(None);
        }
        match self.store.get_rollout(&rollout).await {
            Ok(r) if r.kind == ArtifactKind::Firmware => Ok(Some(step)),
            Ok(_) | Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
