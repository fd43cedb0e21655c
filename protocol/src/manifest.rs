//! The manifest: a signed description of one artifact (CONTRACT §2).
//!
//! Parsed only from bytes whose signature verified ([`crate::verify`]); never re-serialised
//! for checking. Unknown fields are rejected so that a newer producer cannot smuggle in a
//! field an older verifier would silently ignore.

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{HardwareModel, ProductName, Sha256Digest};

/// The one schema this build understands.
pub const SCHEMA: u32 = 1;

/// What an artifact is: the device core's type, shared.
pub use fleet_agent_core::manifest::ArtifactKind;

/// A manifest, schema 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub kind: ArtifactKind,
    pub name: ProductName,
    pub version: Version,
    /// Compatible hardware models; empty means any.
    pub hardware: Vec<HardwareModel>,
    pub size: u64,
    pub sha256: Sha256Digest,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Configs only: the firmware versions this configuration works with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_firmware: Option<VersionReq>,
    /// The installed versions that may go back to this (lower) version. Without it a device
    /// refuses any downgrade; being signed, it is a release key holder's explicit
    /// permission (docs/rollouts.md, "Going back to an older version").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_downgrade_from: Option<VersionReq>,
}

/// Why bytes are not a valid manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid: {0}")]
    Malformed(String),
    #[error("manifest schema {0} is not supported (expected {SCHEMA})")]
    Schema(u32),
    #[error("requires_firmware is only allowed in config manifests")]
    RequiresFirmwareOnFirmware,
    #[error("expires_at is not after created_at")]
    ExpiresBeforeCreated,
    #[error("hardware lists {0} more than once")]
    DuplicateHardware(String),
}

impl Manifest {
    /// Parses and checks manifest bytes. Call only on verified payload bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        manifest.read_as_devices_do(bytes)?;
        Ok(manifest)
    }

    /// The rules serde cannot express, and the device core's limits, for a manifest made
    /// here (before it is signed).
    pub fn check(&self) -> Result<(), ManifestError> {
        self.read_as_devices_do(&self.to_bytes())
    }

    /// The device core's reading ([`fleet_agent_core::manifest`]) of `bytes`, this
    /// manifest's: the bytes every device reads, so one accepted here is one every device
    /// can judge.
    fn read_as_devices_do(&self, bytes: &[u8]) -> Result<(), ManifestError> {
        use fleet_agent_core::manifest::ManifestError as Core;
        // serde_json reads the core's fields: a server carries no second JSON reader.
        match fleet_agent_core::manifest::Manifest::read_with(bytes, |b| serde_json::from_slice(b).ok()) {
            Ok(_) => Ok(()),
            Err(Core::Schema(n)) => Err(ManifestError::Schema(n)),
            Err(Core::RequiresFirmwareOnFirmware) => Err(ManifestError::RequiresFirmwareOnFirmware),
            Err(Core::ExpiresBeforeCreated) => Err(ManifestError::ExpiresBeforeCreated),
            Err(Core::DuplicateHardware(i)) => Err(ManifestError::DuplicateHardware(self.hardware[i].to_string())),
            Err(e) => Err(ManifestError::Malformed(e.to_string())),
        }
    }

    /// Canonical bytes for signing a freshly made manifest.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"schema": 1, "kind": "firmware", "name": "gateway-os", "version": "1.4.2",
        "hardware": ["rpi4"], "size": 1048576,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "created_at": "2026-11-28T10:00:00Z"}"#;

    fn with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    fn without(field: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v.as_object_mut().unwrap().remove(field);
        v.to_string()
    }

    /// The device core's reading of manifest bytes: where the admission rules live.
    fn as_devices_read(bytes: &[u8]) -> fleet_agent_core::manifest::Manifest<'_> {
        fleet_agent_core::manifest::Manifest::read_with(bytes, |b| serde_json::from_slice(b).ok()).unwrap()
    }

    fn version(s: &str) -> fleet_agent_core::version::Version<'_> {
        fleet_agent_core::version::Version::parse(s).unwrap()
    }

    #[test]
    fn parses_contract_example() {
        let m = Manifest::from_slice(GOOD.as_bytes()).unwrap();
        assert_eq!(m.version, Version::new(1, 4, 2));
        assert_eq!(m.kind, ArtifactKind::Firmware);
        let m = as_devices_read(GOOD.as_bytes());
        assert!(m.fits_hardware("rpi4"));
        assert!(!m.fits_hardware("rpi3"));
    }

    #[test]
    fn rejects_unknown_field() {
        let e = Manifest::from_slice(with("extra", "1").as_bytes()).unwrap_err();
        assert!(matches!(e, ManifestError::Malformed(ref m) if m.contains("unknown field")), "{e}");
    }

    #[test]
    fn rejects_each_missing_field() {
        for f in ["schema", "kind", "name", "version", "hardware", "size", "sha256", "created_at"] {
            assert!(Manifest::from_slice(without(f).as_bytes()).is_err(), "{f}");
        }
    }

    #[test]
    fn rejects_bad_values() {
        for (field, value) in [
            ("version", "\"1.4\""),
            ("version", "\"v1.4.2\""),
            ("sha256", "\"abc\""),
            ("kind", "\"kernel\""),
            ("name", "\"../etc\""),
            ("size", "-1"),
            ("created_at", "\"yesterday\""),
            ("hardware", "[\"rpi4\", \"rpi4\"]"),
            ("schema", "2"),
            ("requires_firmware", "\">=1.0\""),
            ("expires_at", "\"2020-01-01T00:00:00Z\""),
        ] {
            assert!(Manifest::from_slice(with(field, value).as_bytes()).is_err(), "{field}={value}");
        }
    }

    #[test]
    fn a_downgrade_is_allowed_only_from_matching_versions() {
        let bytes = with("allow_downgrade_from", "\">=1.2.0, <2.0.0\"");
        Manifest::from_slice(bytes.as_bytes()).unwrap();
        let m = as_devices_read(bytes.as_bytes());
        assert!(m.allows_downgrade_from(&version("1.2.0")));
        assert!(m.allows_downgrade_from(&version("1.9.3")));
        assert!(!m.allows_downgrade_from(&version("2.0.0")));
        assert!(!m.allows_downgrade_from(&version("1.1.9")));
        let plain = as_devices_read(GOOD.as_bytes());
        assert!(!plain.allows_downgrade_from(&version("1.5.0")), "no field, no downgrade");
    }

    #[test]
    fn the_downgrade_permission_is_a_semver_requirement() {
        for bad in ["\"yes\"", "true", "\">= one\"", "\"1.2.3.4\""] {
            let e = Manifest::from_slice(with("allow_downgrade_from", bad).as_bytes()).unwrap_err();
            assert!(matches!(e, ManifestError::Malformed(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn a_manifest_without_the_permission_serialises_as_before() {
        let m = Manifest::from_slice(GOOD.as_bytes()).unwrap();
        let bytes = String::from_utf8(m.to_bytes()).unwrap();
        assert!(!bytes.contains("allow_downgrade_from"), "{bytes}");
        let mut allowed = m.clone();
        allowed.allow_downgrade_from = Some(VersionReq::parse(">=1.5.0, <1.6.0").unwrap());
        let again = Manifest::from_slice(&allowed.to_bytes()).unwrap();
        assert_eq!(again, allowed);
    }

    /// The field is inside the signed payload: adding it to a signed manifest breaks the
    /// signature, so nobody but a release key holder can turn a downgrade on.
    #[test]
    fn adding_the_permission_after_signing_breaks_the_signature() {
        use crate::sign::{SigningKey, sign_payload};
        let key = SigningKey::from_bytes(&[7; 32]);
        let verifier = crate::Verifier::new([crate::PublicKey::from_verifying_key(key.verifying_key())], 1);
        let mut envelope = sign_payload(GOOD.as_bytes(), &[&key]);
        assert!(verifier.verify(&envelope).is_ok());
        let widened = with("allow_downgrade_from", "\">=0.0.0\"");
        envelope.payload = crate::envelope::encode_base64(widened.as_bytes());
        let e = verifier.verify(&envelope).unwrap_err();
        assert!(matches!(e, crate::VerifyError::SignatureInvalid { .. }), "{e}");
    }

    /// The device core reads every manifest the server accepts: more hardware models than
    /// it holds, or more bytes, are refused here already.
    #[test]
    fn a_manifest_a_device_could_not_read_is_refused() {
        let models =
            |n: usize| serde_json::to_string(&(0..n).map(|i| format!("board-{i}")).collect::<Vec<_>>()).unwrap();
        assert!(Manifest::from_slice(with("hardware", &models(16)).as_bytes()).is_ok());
        let e = Manifest::from_slice(with("hardware", &models(17)).as_bytes()).unwrap_err();
        assert!(matches!(e, ManifestError::Malformed(_)), "{e}");
        let long = format!("[\"{}\"]", "a".repeat(60));
        let many = (0..40).map(|i| format!("\"m{i}-{}\"", "x".repeat(50))).collect::<Vec<_>>().join(",");
        assert!(Manifest::from_slice(with("hardware", &long).as_bytes()).is_ok());
        let e = Manifest::from_slice(with("hardware", &format!("[{many}]")).as_bytes()).unwrap_err();
        assert!(matches!(e, ManifestError::Malformed(ref m) if m.contains("larger")), "{e}");
    }

    #[test]
    fn config_may_require_firmware() {
        let mut v: serde_json::Value = serde_json::from_str(&with("kind", "\"config\"")).unwrap();
        v["requires_firmware"] = ">=1.4, <2".into();
        let m = Manifest::from_slice(v.to_string().as_bytes()).unwrap();
        assert!(m.requires_firmware.unwrap().matches(&Version::new(1, 5, 0)));
    }
}
