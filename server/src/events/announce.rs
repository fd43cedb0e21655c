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
use crate::store::events::{MarkChange, NewDelivery, WebhookRecord};
use crate::store::{Store, StoreError, StoreResult};

const EVERY: Duration = Duration::from_secs(1);
/// Most devices looked at in one pass; the rest wait for the next.
const DEVICES_PER_PASS: usize = 2000;

/// The events a new body makes against the mark it replaces (`None`: none yet).
type EventsAgainst = Box<dyn Fn(Option<&str>) -> Vec<&'static str> + Send + Sync>;

/// A body just published under `key`, to be recorded with its events.
struct Announced {
    key: String,
    data: serde_json::Value,
    /// `data` as published, the new mark.
    body: String,
    events: EventsAgainst,
    /// Whether to remember `body` as published once recorded.
    keep: bool,
}

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
    /// Last body of each rollout and device published and recorded (JSON), to skip what did
    /// not change.
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
        let devices = self.devices.take(DEVICES_PER_PASS);
        match self.announce(rollouts, &devices).await {
            Ok(wrote) => {
                if wrote {
                    self.outbox.notify_one();
                }
                Ok(())
            }
            Err(e) => {
                // Looked at again at the next pass.
                self.devices.touch(devices);
                Err(e)
            }
        }
    }

    /// Publishes what changed among `rollouts` and `devices` and records it all in one
    /// transaction; only then is it remembered as published, so what failed is published
    /// and recorded again at the next look. True if deliveries were written.
    async fn announce(&mut self, rollouts: HashSet<String>, devices: &[DeviceId]) -> StoreResult<bool> {
        let mut announced = Vec::new();
        for id in rollouts {
            announced.extend(self.rollout(&id).await?);
        }
        announced.extend(self.announce_devices(devices).await?);
        let published: Vec<(String, Option<String>)> =
            announced.iter().map(|a| (a.key.clone(), a.keep.then(|| a.body.clone()))).collect();
        let wrote = self.record(announced).await?;
        for (key, body) in published {
            match body {
                Some(body) => self.published.insert(key, body),
                None => self.published.remove(&key),
            };
        }
        Ok(wrote)
    }

    /// Publishes one rollout if its body changed.
    async fn rollout(&self, id: &str) -> StoreResult<Option<Announced>> {
        let record = match self.store.get_rollout(id).await {
            Err(StoreError::NotFound) => return Ok(None),
            r => r?,
        };
        let body = crate::rollout::view::rollout_body(self.store.as_ref(), &self.artifacts, &record).await?;
        let data = serde_json::to_value(&body).unwrap_or_default();
        let key = format!("rollout:{id}");
        let Some(published) = self.changed(&key, &data) else {
            return Ok(None);
        };
        self.mqtt.publish_event(self.topics.rollout_events(id), published.clone()).await;
        let state_of =
            |mark: &str| serde_json::from_str::<serde_json::Value>(mark).ok()?["state"].as_str().map(str::to_owned);
        // A finished rollout no longer changes: not kept (a late look finds its mark).
        let keep = !matches!(body.state.as_str(), "completed" | "cancelled");
        let state = body.state;
        let events = move |mark: Option<&str>| rollout_events(mark.and_then(state_of).as_deref(), &state);
        Ok(Some(Announced { key, data, body: published, events: Box::new(events), keep }))
    }

    /// Publishes those of `ids` whose event body changed, read together (a few statements
    /// for the lot).
    async fn announce_devices(&self, ids: &[DeviceId]) -> StoreResult<Vec<Announced>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(ha) = &self.ha {
            ids.iter().for_each(|id| ha.device_changed(id));
        }
        let mut rollouts = self.store.device_rollouts(ids).await?;
        let mut announced = Vec::new();
        for device in self.store.get_devices(ids).await? {
            let rollout = rollouts.remove(&device.id);
            let event = DeviceEvent {
                device_id: device.id.to_string(),
                firmware: device.firmware,
                config: device.config,
                online: device.online,
                rollout: rollout.map(|(r, state)| serde_json::json!({"id": r, "state": state.as_str()})),
            };
            let data = serde_json::to_value(&event).unwrap_or_default();
            let key = format!("device:{}", device.id);
            let Some(body) = self.changed(&key, &data) else {
                continue;
            };
            self.mqtt.publish_event(self.topics.device_events(&device.id), body.clone()).await;
            let events = move |mark: Option<&str>| {
                let before = mark.and_then(|m| serde_json::from_str(m).ok()).unwrap_or_else(|| first_seen(&event));
                device_events(&before, &event)
            };
            announced.push(Announced { key, data, body, events: Box::new(events), keep: true });
        }
        Ok(announced)
    }

    /// `data` as text, if it differs from what was last published under `key`.
    fn changed(&self, key: &str, data: &serde_json::Value) -> Option<String> {
        let text = data.to_string();
        (self.published.get(key) != Some(&text)).then_some(text)
    }

    /// Moves each mark to its new body and writes the deliveries of the events it makes
    /// against the old mark, all in one transaction; a mark another replica moved meanwhile
    /// is read again and tried once more. True if deliveries were written.
    async fn record(&self, mut announced: Vec<Announced>) -> StoreResult<bool> {
        let mut webhooks = None;
        let mut wrote = false;
        for _ in 0..2 {
            if announced.is_empty() {
                break;
            }
            let keys: Vec<String> = announced.iter().map(|a| a.key.clone()).collect();
            let marks = self.store.event_marks(&keys).await?;
            let mut changes = Vec::with_capacity(announced.len());
            announced.retain(|a| marks.get(&a.key) != Some(&a.body));
            for a in &announced {
                let old = marks.get(&a.key).cloned();
                let deliveries = self.deliveries(&(a.events)(old.as_deref()), &a.data, &mut webhooks).await?;
                changes.push(MarkChange { key: a.key.clone(), old, new: a.body.clone(), deliveries });
            }
            let written = self.store.record_events(&changes).await?;
            wrote |= changes.iter().zip(&written).any(|(c, w)| *w && !c.deliveries.is_empty());
            announced = announced.into_iter().zip(written).filter_map(|(a, w)| (!w).then_some(a)).collect();
        }
        Ok(wrote)
    }

    /// One delivery per event and enabled webhook that asked for it; the webhooks are read
    /// once into `webhooks`, the first time an event needs them.
    async fn deliveries(
        &self,
        events: &[&str],
        data: &serde_json::Value,
        webhooks: &mut Option<Vec<WebhookRecord>>,
    ) -> StoreResult<Vec<NewDelivery>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let webhooks = match webhooks {
            Some(w) => w,
            None => webhooks.insert(self.store.enabled_webhooks().await?),
        };
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
