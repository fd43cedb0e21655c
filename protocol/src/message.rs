//! MQTT messages (CONTRACT §4): commands to devices and status reports from them.

use serde::{Deserialize, Serialize};

use crate::state::{DeviceState, Reason};
use crate::{ArtifactKind, DeviceId, Envelope, HardwareModel, ProductName, RolloutId, Sha256Digest};

/// The largest status report accepted (they are a few hundred bytes).
pub const MAX_REPORT_BYTES: usize = 8 * 1024;

/// Server → device, on `…/commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    Update { device_id: DeviceId, rollout_id: RolloutId, kind: ArtifactKind, url: String, envelope: Envelope },
    Cancel { device_id: DeviceId, rollout_id: RolloutId },
}

impl Command {
    pub fn device_id(&self) -> &DeviceId {
        match self {
            Self::Update { device_id, .. } | Self::Cancel { device_id, .. } => device_id,
        }
    }

    pub fn rollout_id(&self) -> &RolloutId {
        match self {
            Self::Update { rollout_id, .. } | Self::Cancel { rollout_id, .. } => rollout_id,
        }
    }
}

/// What a device has installed of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Installed {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: ProductName,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1.2.0"))]
    pub version: semver::Version,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub sha256: Sha256Digest,
}

/// Device → server, on `…/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub rollout_id: Option<RolloutId>,
    pub state: DeviceState,
    #[serde(default)]
    pub progress: Option<u8>,
    #[serde(default)]
    pub reason: Option<Reason>,
    pub seq: u64,
    #[serde(default)]
    pub connect: bool,
    #[serde(default)]
    pub hardware: Option<HardwareModel>,
    #[serde(default)]
    pub firmware: Option<Installed>,
    #[serde(default)]
    pub config: Option<Installed>,
    /// The version of the trust document the device applies (CONTRACT §11); `None` for a
    /// device pinned to plain keys.
    #[serde(default)]
    pub trust_version: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_report_parses() {
        let json = r#"{"rollout_id": "r1", "state": "downloading", "progress": 42, "reason": null,
            "seq": 17, "connect": false, "hardware": "rpi4",
            "firmware": {"name": "gateway-os", "version": "1.4.1",
              "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
            "config": null}"#;
        let r: StatusReport = serde_json::from_str(json).unwrap();
        assert_eq!(r.state, DeviceState::Downloading);
        assert_eq!(r.seq, 17);
        assert_eq!(r.firmware.unwrap().version, semver::Version::new(1, 4, 1));
    }

    #[test]
    fn cancel_command_shape() {
        let c = Command::Cancel {
            device_id: DeviceId::parse("dev-1").unwrap(),
            rollout_id: RolloutId::parse("r1").unwrap(),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v, serde_json::json!({"type": "cancel", "device_id": "dev-1", "rollout_id": "r1"}));
    }
}
