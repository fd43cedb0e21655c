//! JSON bodies the API answers with, built from store records.

use std::collections::BTreeMap;

use fleet_protocol::message::Installed;
use fleet_protocol::{Envelope, KeyId};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::{ArtifactRecord, DeviceRecord, KeyRecord, Page};

/// Milliseconds since the epoch as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `{"items": […], "next_cursor": …}`.
#[derive(Debug, Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    pub fn from_page<R>(page: Page<R>, f: impl FnMut(R) -> T) -> Self {
        let page = page.map(f);
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct KeyView {
    pub keyid: KeyId,
    pub name: String,
    pub public_key_pem: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<KeyRecord> for KeyView {
    fn from(k: KeyRecord) -> Self {
        Self {
            keyid: k.keyid,
            name: k.name,
            public_key_pem: k.public_key_pem,
            created_at: rfc3339(k.created_at_ms),
            revoked_at: k.revoked_at_ms.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ArtifactView {
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub version: String,
    pub hardware: Vec<String>,
    pub size: u64,
    pub sha256: String,
    pub manifest_created_at: String,
    pub expires_at: Option<String>,
    pub requires_firmware: Option<String>,
    pub signers: Vec<KeyId>,
    pub blob_url: String,
    pub envelope: Option<Envelope>,
    pub created_at: String,
}

impl From<ArtifactRecord> for ArtifactView {
    fn from(a: ArtifactRecord) -> Self {
        let m = a.manifest;
        let fmt = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        Self {
            blob_url: format!(
                "/api/v1/{}/{}/blob",
                super::artifacts::route_segment(a.kind),
                a.id
            ),
            id: a.id,
            kind: a.kind.as_str(),
            name: m.name.to_string(),
            version: m.version.to_string(),
            hardware: m.hardware.iter().map(ToString::to_string).collect(),
            size: m.size,
            sha256: m.sha256.to_hex(),
            manifest_created_at: fmt(m.created_at),
            expires_at: m.expires_at.map(fmt),
            requires_firmware: m.requires_firmware.map(|r| r.to_string()),
            signers: a.signers,
            envelope: serde_json::from_str(&a.envelope_json).ok(),
            created_at: rfc3339(a.created_at_ms),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DeviceView {
    pub id: String,
    pub hardware: String,
    pub labels: BTreeMap<String, String>,
    pub firmware: Option<Installed>,
    pub config: Option<Installed>,
    pub online: bool,
    pub last_seen: Option<String>,
    /// The rollout the device is in (rollouts arrive in a later release).
    pub rollout: Option<serde_json::Value>,
    pub created_at: String,
}

impl From<DeviceRecord> for DeviceView {
    fn from(d: DeviceRecord) -> Self {
        Self {
            id: d.id.to_string(),
            hardware: d.hardware.to_string(),
            labels: d.labels,
            firmware: d.firmware,
            config: d.config,
            online: d.online,
            last_seen: d.last_seen_ms.map(rfc3339),
            rollout: None,
            created_at: rfc3339(d.created_at_ms),
        }
    }
}

/// A device just registered or whose token was rotated: the only time the token is shown.
#[derive(Debug, Serialize)]
pub struct DeviceWithToken {
    #[serde(flatten)]
    pub device: DeviceView,
    pub token: String,
}
