//! The newest firmware for each product and hardware model: what a device's Home Assistant
//! entity offers as `latest_version`, and what its Install button rolls out.
//!
//! "Newest" is the highest version (semver order) among uploaded, unexpired firmware whose
//! manifest names the product and lists the hardware (or lists none: any hardware); of two
//! uploads of one version, the later one. An expired artifact cannot be rolled out, so it is never offered.

use std::collections::HashMap;

use fleet_protocol::{ArtifactKind, HardwareModel, ProductName};

use crate::store::{ArtifactRecord, DeviceRecord, PageRequest, Store, StoreResult};

/// The firmware offered to devices of one product and hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub artifact_id: String,
    pub name: ProductName,
    pub version: semver::Version,
    pub created_at_ms: i64,
}

impl Offer {
    /// Higher version first, then the later upload.
    fn beats(&self, other: &Self) -> bool {
        (&self.version, self.created_at_ms) > (&other.version, other.created_at_ms)
    }
}

/// The newest firmware of every (product, hardware) pair; hardware `None`: firmware whose
/// manifest lists no hardware, for any.
#[derive(Debug, Default)]
pub struct NewestFirmware(HashMap<(ProductName, Option<HardwareModel>), Offer>);

impl NewestFirmware {
    /// Reads every firmware artifact, page by page; `now_ms` decides what has expired.
    pub async fn load(store: &dyn Store, now_ms: i64) -> StoreResult<Self> {
        let mut newest = Self::default();
        let mut page = PageRequest { limit: 1000, cursor: None };
        loop {
            let p = store.list_artifacts(ArtifactKind::Firmware, None, &page).await?;
            p.items.iter().for_each(|a| newest.consider(a, now_ms));
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return Ok(newest),
            }
        }
    }

    /// Takes `artifact` into account (an expired one is left out).
    pub fn consider(&mut self, artifact: &ArtifactRecord, now_ms: i64) {
        let m = &artifact.manifest;
        let expired = m.expires_at.is_some_and(|e| e.unix_timestamp_nanos() / 1_000_000 <= i128::from(now_ms));
        if expired {
            return;
        }
        let offer = Offer {
            artifact_id: artifact.id.clone(),
            name: m.name.clone(),
            version: m.version.clone(),
            created_at_ms: artifact.created_at_ms,
        };
        let any = m.hardware.is_empty().then_some(None);
        for hw in m.hardware.iter().cloned().map(Some).chain(any) {
            let slot = self.0.entry((m.name.clone(), hw)).or_insert_with(|| offer.clone());
            if offer.beats(slot) {
                *slot = offer.clone();
            }
        }
    }

    /// What a device is offered: the newest firmware of the product it runs, for its
    /// hardware. A device that has not reported a firmware yet has no product, so no offer.
    pub fn for_device(&self, device: &DeviceRecord) -> Option<&Offer> {
        let product = &device.firmware.as_ref()?.name;
        let exact = self.0.get(&(product.clone(), Some(device.hardware.clone())));
        let any = self.0.get(&(product.clone(), None));
        match (exact, any) {
            (Some(e), Some(a)) => Some(if a.beats(e) { a } else { e }),
            (e, a) => e.or(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_protocol::message::Installed;
    use fleet_protocol::{DeviceId, Manifest, Sha256Digest};

    fn artifact(id: &str, name: &str, version: &str, hardware: &[&str], expires_at: Option<i64>) -> ArtifactRecord {
        let created = time::OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let manifest = Manifest {
            schema: fleet_protocol::manifest::SCHEMA,
            kind: ArtifactKind::Firmware,
            name: ProductName::parse(name).unwrap(),
            version: version.parse().unwrap(),
            hardware: hardware.iter().map(|h| HardwareModel::parse(*h).unwrap()).collect(),
            size: 1,
            sha256: Sha256Digest::of(id.as_bytes()),
            created_at: created,
            expires_at: expires_at.map(|s| time::OffsetDateTime::from_unix_timestamp(s).unwrap()),
            requires_firmware: None,
            allow_downgrade_from: None,
        };
        let envelope_json = String::new();
        ArtifactRecord {
            id: id.into(),
            kind: ArtifactKind::Firmware,
            manifest,
            envelope_json,
            signers: vec![],
            created_at_ms: 1,
        }
    }

    fn device(hardware: &str, firmware: Option<(&str, &str)>) -> DeviceRecord {
        DeviceRecord {
            id: DeviceId::parse("d").unwrap(),
            hardware: HardwareModel::parse(hardware).unwrap(),
            labels: Default::default(),
            created_at_ms: 0,
            online: true,
            last_seen_ms: None,
            firmware: firmware.map(|(n, v)| Installed {
                name: ProductName::parse(n).unwrap(),
                version: v.parse().unwrap(),
                sha256: Sha256Digest::of(b"x"),
            }),
            config: None,
            trust_version: None,
        }
    }

    #[test]
    fn the_highest_unexpired_version_of_the_devices_product_and_hardware() {
        let mut n = NewestFirmware::default();
        let now = 2_000_000;
        n.consider(&artifact("a", "os", "1.2.0", &["rpi4", "sim"], None), now);
        n.consider(&artifact("b", "os", "1.10.0", &["sim"], None), now);
        n.consider(&artifact("c", "os", "9.0.0", &["sim"], Some(1_500)), now);
        n.consider(&artifact("d", "other", "5.0.0", &["sim"], None), now);
        n.consider(&artifact("e", "os", "1.1.0", &["rpi4"], None), now);
        n.consider(&artifact("f", "os", "1.5.0", &[], None), now);
        let offer = |d: &DeviceRecord| n.for_device(d).map(|o| o.artifact_id.clone());
        assert_eq!(offer(&device("sim", Some(("os", "1.0.0")))).as_deref(), Some("b"), "semver, not text order");
        assert_eq!(offer(&device("rpi4", Some(("os", "1.0.0")))).as_deref(), Some("f"), "for any hardware");
        assert_eq!(offer(&device("sim", Some(("other", "1.0.0")))).as_deref(), Some("d"));
        assert_eq!(offer(&device("x86", Some(("os", "1.0.0")))).as_deref(), Some("f"));
        assert_eq!(offer(&device("x86", Some(("other", "1.0.0")))), None, "no firmware for that hardware");
        assert_eq!(offer(&device("sim", None)), None, "no product known yet");
    }
}
