//! The announcer: once a second, every live rollout and every rollout the engine reported
//! changed, and every device ingestion touched, is compared with what was last announced.
//! A change is published (QoS 1, retained, expiry one day) on its event topic, and the
//! events it makes are recorded for webhooks with the new mark by compare-and-set, so
//! another replica or a restart does not announce it twice. A rollout is looked at once a
//! second at most, which is also the `rollout.progress` limit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::DeviceId;
use fleet_protocol::events::{DeviceEvent, WebhookEvent, pattern_matches};
use fleet_protocol::topic::Topics;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::DeviceChanges;
use super::diff::{device_events, first_seen, rollout_events};
use crate::artifact_cache::ArtifactCache;
use crate::mqtt::MqttLink;
use crate::store::events::NewDelivery;
use crate::store::{Store, StoreError, StoreResult};

const EVERY: Duration = Duration::from_secs(1);
/// Most devices looked at in one pass; the rest wait for the next.
const DEVICES_PER_PASS: usize = 2000;

/// The announcer task's state.
#[derive(Debug)]
pub struct Announcer {
    pub store: Arc<dyn Store>,
    pub artifacts: Arc<ArtifactCache>,
    pub mqtt: Arc<MqttLink>,
    pub topics: Topics,
    pub devices: Arc<DeviceChanges>,
    /// Wakes the delivery task when deliveries were written.
    pub outbox: Arc<Notify>,
    /// Last published body of each rollout and device (JSON), to skip what did not change.
    pub published: HashMap<String, String>,
    /// With `--ha-discovery`: told of every device looked at, so its Home Assistant state
    /// follows the same changes as its events.
    pub ha: Option<crate::ha::handle::HaHandle>,
}

impl Announcer {
    pub async fn run(mut self, mut changes: broadcast::Receiver<String>, stop: CancellationToken) {
        let mut changed = HashSet::new();
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.pass(std::mem::take(&mut changed)).await {
                        tracing::warn!("announcing events: {e}");
                    }
                }
                id = changes.recv() => match id {
                    Ok(id) => { changed.insert(id); }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    async fn pass(&mut self, mut rollouts: HashSet<String>) -> StoreResult<()> {
        rollouts.extend(self.store.live_rollouts().await?.into_iter().map(|r| r.id));
        let mut wrote = false;
        for id in rollouts {
            wrote |= self.rollout(&id).await?;
        }
        for device in self.devices.take(DEVICES_PER_PASS) {
            wrote |= self.device(&device).await?;
        }
        if wrote {
            self.outbox.notify_one();
        }
        Ok(())
    }

    /// Announces one rollout if its body changed; true if deliveries were written.
    async fn rollout(&mut self, id: &str) -> StoreResult<bool> {
        let record = match self.store.get_rollout(id).await {
            Err(StoreError::NotFound) => return Ok(false),
            r => r?,
        };
        let body = crate::rollout::view::rollout_body(self.store.as_ref(), &self.artifacts, &record).await?;
        let data = serde_json::to_value(&body).unwrap_or_default();
        let key = format!("rollout:{id}");
        if !self.changed(&key, &data) {
            return Ok(false);
        }
        self.mqtt.publish_event(self.topics.rollout_events(id), data.to_string()).await;
        let state_of =
            |mark: &str| serde_json::from_str::<serde_json::Value>(mark).ok()?["state"].as_str().map(str::to_owned);
        let wrote = self.record(&key, &data, |mark| rollout_events(mark.and_then(state_of).as_deref(), &body.state));
        let wrote = wrote.await;
        if matches!(body.state.as_str(), "completed" | "cancelled") {
            // A finished rollout no longer changes: forget it (a late look finds its mark).
            self.published.remove(&key);
        }
        wrote
    }

    /// Announces one device if its event body changed; true if deliveries were written.
    async fn device(&mut self, id: &DeviceId) -> StoreResult<bool> {
        if let Some(ha) = &self.ha {
            ha.device_changed(id);
        }
        let device = match self.store.get_device(id).await {
            Err(StoreError::NotFound) => return Ok(false),
            d => d?,
        };
        let rollout = self.store.device_rollout(id).await?;
        let event = DeviceEvent {
            device_id: id.to_string(),
            firmware: device.firmware,
            config: device.config,
            online: device.online,
            rollout: rollout.map(|(r, state)| serde_json::json!({"id": r, "state": state.as_str()})),
        };
        let data = serde_json::to_value(&event).unwrap_or_default();
        let key = format!("device:{id}");
        if !self.changed(&key, &data) {
            return Ok(false);
        }
        self.mqtt.publish_event(self.topics.device_events(id), data.to_string()).await;
        let before = |mark: Option<&str>| mark.and_then(|m| serde_json::from_str(m).ok()).unwrap_or(first_seen(&event));
        self.record(&key, &data, |mark| device_events(&before(mark), &event)).await
    }

    /// Whether `data` differs from what was last published under `key` (remembering it).
    fn changed(&mut self, key: &str, data: &serde_json::Value) -> bool {
        let text = data.to_string();
        if self.published.get(key) == Some(&text) {
            return false;
        }
        self.published.insert(key.to_owned(), text);
        true
    }

    /// Moves the mark under `key` to `data` and writes the deliveries of the events
    /// `events(old mark)` names; on a lost compare-and-set, reads the mark again and retries
    /// once (another replica announced meanwhile).
    async fn record(
        &self,
        key: &str,
        data: &serde_json::Value,
        events: impl Fn(Option<&str>) -> Vec<&'static str>,
    ) -> StoreResult<bool> {
        let new = data.to_string();
        for _ in 0..2 {
            let old = self.store.event_mark(key).await?;
            if old.as_deref() == Some(new.as_str()) {
                return Ok(false);
            }
            let deliveries = self.deliveries(&events(old.as_deref()), data).await?;
            if self.store.record_events(key, old.as_deref(), &new, &deliveries).await? {
                return Ok(!deliveries.is_empty());
            }
        }
        Ok(false)
    }

    /// One delivery per event and enabled webhook that asked for it.
    async fn deliveries(&self, events: &[&str], data: &serde_json::Value) -> StoreResult<Vec<NewDelivery>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let webhooks = self.store.enabled_webhooks().await?;
        let timestamp = crate::timestamp::rfc3339(crate::clock::now_ms());
        let mut out = Vec::new();
        for event in events {
            let body = WebhookEvent { kind: (*event).to_owned(), timestamp: timestamp.clone(), data: data.clone() };
            let body = serde_json::to_string(&body).unwrap_or_default();
            for w in webhooks.iter().filter(|w| w.events.iter().any(|p| pattern_matches(p, event))) {
                let id = super::webhooks::delivery_id().map_err(|e| StoreError::Corrupt(e.to_string()))?;
                out.push(NewDelivery {
                    id,
                    webhook_id: w.id.clone(),
                    event_type: (*event).to_owned(),
                    body: body.clone(),
                });
            }
        }
        Ok(out)
    }
}
