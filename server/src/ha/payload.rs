//! What Home Assistant reads (pure): a device's discovery config and its update state
//! (CONTRACT §10), in the shape of Home Assistant's MQTT `update` platform
//! (<https://www.home-assistant.io/integrations/update.mqtt/>).
//!
//! Home Assistant drops a whole state message when one key has the wrong type (a `null`
//! where it wants a string), so a version nobody knows is left out rather than `null`.

use fleet_protocol::state::DeviceState;
use fleet_protocol::topic::Topics;
use serde::Serialize;
use serde_json::{Value, json};

use super::newest::Offer;
use crate::store::DeviceRecord;

/// The payload Home Assistant's Install button publishes on the command topic.
pub const PAYLOAD_INSTALL: &str = "install";

/// Home Assistant truncates a release summary at 255 characters; so does this.
const SUMMARY_MAX: usize = 255;

/// The JSON on `{root}/ha/{device}/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<String>,
    pub in_progress: bool,
    /// 0-100 while in progress, else `null` (Home Assistant's schema allows both).
    pub update_percentage: Option<u8>,
    pub title: String,
    pub release_summary: String,
}

/// The discovery config of a device's firmware `update` entity. Availability is the
/// device's own retained presence topic, whose payloads are exactly `online`/`offline`.
pub fn config(topics: &Topics, device: &DeviceRecord) -> Value {
    let id = &device.id;
    let object_id = fleet_protocol::topic::ha_object_id(id);
    let mut block = json!({
        "identifiers": [format!("fleet_{id}")],
        "name": id.as_str(),
        "model": device.hardware.as_str(),
        "manufacturer": "Fleet OTA",
    });
    if let Some(fw) = &device.firmware {
        block["sw_version"] = json!(fw.version.to_string());
    }
    json!({
        "name": "Firmware",
        "unique_id": object_id,
        "device_class": "firmware",
        "state_topic": topics.ha_state(id),
        "command_topic": topics.ha_install(id.as_str()),
        "payload_install": PAYLOAD_INSTALL,
        "availability_topic": topics.presence(id),
        "payload_available": fleet_protocol::presence::ONLINE,
        "payload_not_available": fleet_protocol::presence::OFFLINE,
        "qos": 1,
        "device": block,
        "origin": {"name": "Fleet OTA", "sw_version": env!("CARGO_PKG_VERSION")},
    })
}

/// A device's update state. `offer`: the newest firmware for it (none uploaded: it is up
/// to date with what it runs); `step`: its state in a firmware rollout, if any.
pub fn state(device: &DeviceRecord, offer: Option<&Offer>, step: Option<DeviceState>) -> UpdateState {
    let installed = device.firmware.as_ref();
    let installed_version = installed.map(|i| i.version.to_string());
    let latest_version = offer.map(|o| o.version.to_string()).or_else(|| installed_version.clone());
    let title = installed.map(|i| i.name.as_str()).or(offer.map(|o| o.name.as_str())).unwrap_or("Firmware");
    let release_summary = offer.map(|o| summary(o, device)).unwrap_or_default();
    let update_percentage = step.and_then(percentage);
    UpdateState {
        installed_version,
        latest_version,
        in_progress: update_percentage.is_some(),
        update_percentage,
        title: title.to_owned(),
        release_summary,
    }
}

/// How far along a device in a rollout is, by the stage it reported (devices report no
/// finer progress the server keeps): `None` unless a command is out and not yet finished.
pub fn percentage(step: DeviceState) -> Option<u8> {
    match step {
        DeviceState::Sent => Some(0),
        DeviceState::Downloading => Some(20),
        DeviceState::Verifying => Some(40),
        DeviceState::Installing => Some(60),
        DeviceState::Rebooting => Some(80),
        _ => None,
    }
}

/// One line on the offered firmware, at most [`SUMMARY_MAX`] characters.
fn summary(offer: &Offer, device: &DeviceRecord) -> String {
    let uploaded = crate::timestamp::rfc3339(offer.created_at_ms);
    let text = format!("{} {} for {}, uploaded {uploaded}", offer.name, offer.version, device.hardware);
    text.chars().take(SUMMARY_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_protocol::message::Installed;
    use fleet_protocol::{DeviceId, HardwareModel, ProductName, Sha256Digest};

    fn device(firmware: Option<&str>) -> DeviceRecord {
        DeviceRecord {
            id: DeviceId::parse("gw.1").unwrap(),
            hardware: HardwareModel::parse("rpi4").unwrap(),
            labels: Default::default(),
            created_at_ms: 0,
            online: true,
            last_seen_ms: None,
            firmware: firmware.map(|v| Installed {
                name: ProductName::parse("os").unwrap(),
                version: v.parse().unwrap(),
                sha256: Sha256Digest::of(b"x"),
            }),
            config: None,
            trust_version: None,
        }
    }

    fn offer(version: &str) -> Offer {
        Offer {
            artifact_id: "a".into(),
            name: ProductName::parse("os").unwrap(),
            version: version.parse().unwrap(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn config_names_the_device_and_its_topics() {
        let c = config(&Topics::default().with_ha_prefix(Some("homeassistant".into())), &device(Some("1.0.0")));
        assert_eq!(c["unique_id"], "fleet_gw_1_firmware");
        assert_eq!(c["state_topic"], "fleet/ha/gw.1/state");
        assert_eq!(c["command_topic"], "fleet/ha/gw.1/install");
        assert_eq!(c["availability_topic"], "fleet/devices/gw.1/presence");
        assert_eq!(c["device"]["model"], "rpi4");
        assert_eq!(c["device"]["sw_version"], "1.0.0");
        let unknown = config(&Topics::default(), &device(None));
        assert!(unknown["device"].get("sw_version").is_none(), "never null");
    }

    #[test]
    fn state_follows_versions_and_progress() {
        let s = state(&device(Some("1.0.0")), Some(&offer("1.1.0")), Some(DeviceState::Installing));
        assert_eq!((s.installed_version.as_deref(), s.latest_version.as_deref()), (Some("1.0.0"), Some("1.1.0")));
        assert_eq!((s.in_progress, s.update_percentage), (true, Some(60)));
        assert!(s.release_summary.starts_with("os 1.1.0 for rpi4, uploaded 1970-01-01T00:00:00Z"));
        let idle = state(&device(Some("1.0.0")), None, Some(DeviceState::Succeeded));
        assert_eq!(idle.latest_version.as_deref(), Some("1.0.0"), "nothing newer uploaded: up to date");
        assert_eq!((idle.in_progress, idle.update_percentage), (false, None));
        let json = serde_json::to_value(state(&device(None), None, None)).unwrap();
        assert!(json.get("installed_version").is_none() && json.get("latest_version").is_none(), "{json}");
        assert_eq!(json["title"], "Firmware");
    }
}
