//! Building the API bodies of `fleet_protocol::api` from store records.

use fleet_protocol::api::{ArtifactInfo, AuditEntry, DeviceInfo, KeyInfo, List, TokenInfo};
use fleet_protocol::paths;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::{ArtifactRecord, AuditRecord, DeviceRecord, KeyRecord, OperatorTokenRecord, Page};
use crate::timestamp::rfc3339;

/// A page as `{"items": […], "next_cursor": …}`.
pub fn list<R, T>(page: Page<R>, f: impl FnMut(R) -> T) -> List<T> {
    let page = page.map(f);
    List { items: page.items, next_cursor: page.next_cursor }
}

pub fn key(k: KeyRecord) -> KeyInfo {
    KeyInfo {
        keyid: k.keyid.as_hex(),
        name: k.name,
        public_key_pem: k.public_key_pem,
        created_at: rfc3339(k.created_at_ms),
        revoked_at: k.revoked_at_ms.map(rfc3339),
    }
}

pub fn token(t: OperatorTokenRecord) -> TokenInfo {
    TokenInfo { name: t.name, scope: t.scope, mqtt: t.mqtt, created_at: rfc3339(t.created_at_ms) }
}

pub fn audit(e: AuditRecord) -> AuditEntry {
    AuditEntry {
        id: e.id.to_string(),
        at: rfc3339(e.at_ms),
        actor: e.actor,
        action: e.action,
        target: e.target,
        details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
    }
}

pub fn artifact(a: ArtifactRecord) -> ArtifactInfo {
    let m = a.manifest;
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    ArtifactInfo {
        blob_url: paths::api_path(&paths::artifact_blob(a.kind, &a.id)),
        id: a.id,
        kind: a.kind.as_str().to_owned(),
        name: m.name.to_string(),
        version: m.version.to_string(),
        hardware: m.hardware.iter().map(ToString::to_string).collect(),
        size: m.size,
        sha256: m.sha256.to_hex(),
        manifest_created_at: fmt(m.created_at),
        expires_at: m.expires_at.map(fmt),
        requires_firmware: m.requires_firmware.map(|r| r.to_string()),
        allow_downgrade_from: m.allow_downgrade_from.map(|r| r.to_string()),
        signers: a.signers.iter().map(|k| k.as_hex()).collect(),
        envelope: serde_json::from_str(&a.envelope_json).ok(),
        created_at: rfc3339(a.created_at_ms),
    }
}

pub fn device(d: DeviceRecord) -> DeviceInfo {
    DeviceInfo {
        id: d.id.to_string(),
        hardware: d.hardware.to_string(),
        labels: d.labels,
        firmware: d.firmware,
        config: d.config,
        online: d.online,
        last_seen: d.last_seen_ms.map(rfc3339),
        // Rollouts arrive in a later release.
        rollout: None,
        created_at: rfc3339(d.created_at_ms),
        trust_version: d.trust_version,
    }
}
