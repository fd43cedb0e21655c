//! What the server keeps besides devices and rollouts: artifacts, release keys, operator
//! tokens and the audit trail.

use fleet_protocol::api::{ArtifactInfo, AuditEntry, KeyInfo, TokenInfo};

use super::detail;
use crate::output::Table;

/// `rpi4, cm4`, or `any` for an empty list.
fn hardware(a: &ArtifactInfo) -> String {
    if a.hardware.is_empty() { "any".to_owned() } else { a.hardware.join(", ") }
}

/// `firmware list` / `configs list`.
pub fn artifacts_table(items: &[ArtifactInfo]) -> Table {
    let mut t = Table::new(["ID", "NAME", "VERSION", "SIZE", "HARDWARE", "UPLOADED"]);
    for a in items {
        t.row([a.id.clone(), a.name.clone(), a.version.clone(), a.size.to_string(), hardware(a), a.created_at.clone()]);
    }
    t
}

/// `firmware show` / `configs show` (the envelope only with `--output json`).
pub fn artifact(a: &ArtifactInfo) -> String {
    detail(&[
        ("id", a.id.clone()),
        ("kind", a.kind.clone()),
        ("name", a.name.clone()),
        ("version", a.version.clone()),
        ("hardware", hardware(a)),
        ("size", format!("{} bytes", a.size)),
        ("sha256", a.sha256.clone()),
        ("signed", a.manifest_created_at.clone()),
        ("expires", a.expires_at.clone().unwrap_or_else(|| "never".into())),
        ("requires firmware", a.requires_firmware.clone().unwrap_or_default()),
        ("downgrade from", a.allow_downgrade_from.clone().unwrap_or_default()),
        ("signers", a.signers.join(", ")),
        ("uploaded", a.created_at.clone()),
    ])
}

/// `keys list`.
pub fn keys_table(items: &[KeyInfo]) -> Table {
    let mut t = Table::new(["KEYID", "STATE", "NAME", "ADDED"]);
    for k in items {
        let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
        t.row([k.keyid.clone(), state.to_owned(), k.name.clone(), k.created_at.clone()]);
    }
    t
}

/// `tokens list`.
pub fn tokens_table(items: &[TokenInfo]) -> Table {
    let mut t = Table::new(["NAME", "SCOPE", "MQTT", "CREATED"]);
    for tok in items {
        let mqtt = if tok.mqtt { "yes" } else { "no" };
        t.row([tok.name.clone(), tok.scope.as_str().to_owned(), mqtt.to_owned(), tok.created_at.clone()]);
    }
    t
}

/// `audit`.
pub fn audit_table(items: &[AuditEntry]) -> Table {
    let mut t = Table::new(["AT", "ACTOR", "ACTION", "TARGET", "DETAILS"]);
    for e in items {
        let details = if e.details.is_null() { String::new() } else { e.details.to_string() };
        t.row([e.at.clone(), e.actor.clone(), e.action.clone(), e.target.clone(), details]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact_info(hardware: &[&str]) -> ArtifactInfo {
        serde_json::from_value(serde_json::json!({
            "id": "a1", "kind": "firmware", "name": "gateway-os", "version": "1.1.0",
            "hardware": hardware, "size": 1024, "sha256": "ab".repeat(32),
            "manifest_created_at": "2026-12-01T00:00:00Z", "expires_at": null,
            "requires_firmware": null, "signers": ["k1"], "blob_url": "/b",
            "created_at": "2026-12-02T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn artifacts_list_names_any_hardware() {
        let text = artifacts_table(&[artifact_info(&[]), artifact_info(&["rpi4", "cm4"])]).render();
        assert_eq!(text.lines().next().unwrap(), "ID  NAME        VERSION  SIZE  HARDWARE   UPLOADED");
        assert!(text.contains("  any  ") && text.contains("  rpi4, cm4  "), "{text}");
    }

    #[test]
    fn an_artifact_summary_is_key_value_lines() {
        let text = artifact(&artifact_info(&["rpi4"]));
        assert!(text.contains("expires            never\n"), "{text}");
        assert!(text.contains("requires firmware  -\n"), "{text}");
        assert!(text.contains("downgrade from     -\n"), "{text}");
        assert!(text.contains("size               1024 bytes\n"), "{text}");
    }

    #[test]
    fn keys_show_their_state() {
        let key = |revoked: Option<&str>| KeyInfo {
            keyid: "ab".into(),
            name: "release".into(),
            public_key_pem: String::new(),
            created_at: "2026-12-01T00:00:00Z".into(),
            revoked_at: revoked.map(Into::into),
        };
        let text = keys_table(&[key(None), key(Some("2026-12-02T00:00:00Z"))]).render();
        assert_eq!(
            text,
            "KEYID  STATE    NAME     ADDED\n\
             ab     active   release  2026-12-01T00:00:00Z\n\
             ab     revoked  release  2026-12-01T00:00:00Z\n"
        );
    }
}
