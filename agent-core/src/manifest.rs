//! The manifest (CONTRACT §2), read in place from verified payload bytes. Unknown fields
//! are refused, so a newer producer cannot smuggle in a field this verifier would ignore.

use heapless::Vec;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::id;
pub use crate::kind::ArtifactKind;
use crate::version::{Version, VersionReq};
use crate::{MAX_HARDWARE, MAX_PAYLOAD_BYTES};

/// The one schema this build understands.
pub const SCHEMA: u32 = 1;

/// The manifest's fields as written; any serde JSON reader that borrows strings reads them
/// ([`Manifest::read_with`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields<'a> {
    schema: u32,
    kind: ArtifactKind,
    name: &'a str,
    version: &'a str,
    hardware: Vec<&'a str, MAX_HARDWARE>,
    size: u64,
    sha256: &'a str,
    created_at: &'a str,
    #[serde(default)]
    expires_at: Option<&'a str>,
    #[serde(default)]
    requires_firmware: Option<&'a str>,
    #[serde(default)]
    allow_downgrade_from: Option<&'a str>,
}

/// A checked manifest, schema 1; times in seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest<'a> {
    pub kind: ArtifactKind,
    pub name: &'a str,
    pub version: Version<'a>,
    /// Compatible hardware models; empty means any.
    pub hardware: Vec<&'a str, MAX_HARDWARE>,
    pub size: u64,
    pub sha256: [u8; 32],
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Configs only: the firmware versions this configuration works with.
    pub requires_firmware: Option<VersionReq<'a>>,
    /// The installed versions that may go back to this (lower) version.
    pub allow_downgrade_from: Option<VersionReq<'a>>,
}

/// Why bytes are not a valid manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is larger than {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
    #[error("manifest is not valid JSON of the schema, or lists more than {MAX_HARDWARE} hardware models")]
    Malformed,
    #[error("manifest field {0} is not valid")]
    Field(&'static str),
    #[error("manifest schema {0} is not supported (expected {SCHEMA})")]
    Schema(u32),
    #[error("requires_firmware is only allowed in config manifests")]
    RequiresFirmwareOnFirmware,
    #[error("expires_at is not after created_at")]
    ExpiresBeforeCreated,
    /// The place of the second mention.
    #[error("hardware lists a model more than once")]
    DuplicateHardware(usize),
}

impl<'a> Manifest<'a> {
    /// Reads and checks manifest bytes. Call only on verified payload bytes.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, ManifestError> {
        Self::read_with(bytes, |b| serde_json_core::from_slice(b).map(|(fields, _)| fields).ok())
    }

    /// [`Manifest::from_slice`] with another JSON reader of the same [`Fields`]: a host
    /// that carries `serde_json` already saves carrying a second reader. Strings with
    /// escapes are refused either way (they cannot be borrowed).
    pub fn read_with(
        bytes: &'a [u8],
        read: impl FnOnce(&'a [u8]) -> Option<Fields<'a>>,
    ) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let f = read(bytes).ok_or(ManifestError::Malformed)?;
        let field = |name: &'static str| ManifestError::Field(name);
        let requirement = |s: Option<&'a str>, name| s.map(VersionReq::parse).transpose().map_err(|_| field(name));
        let manifest = Manifest {
            kind: f.kind,
            name: id::check(f.name).map(|()| f.name).map_err(|_| field("name"))?,
            version: Version::parse(f.version).map_err(|_| field("version"))?,
            hardware: f.hardware,
            size: f.size,
            sha256: digest(f.sha256).ok_or(field("sha256"))?,
            created_at: timestamp(f.created_at).ok_or(field("created_at"))?,
            expires_at: f.expires_at.map(|e| timestamp(e).ok_or(field("expires_at"))).transpose()?,
            requires_firmware: requirement(f.requires_firmware, "requires_firmware")?,
            allow_downgrade_from: requirement(f.allow_downgrade_from, "allow_downgrade_from")?,
        };
        if f.schema != SCHEMA {
            return Err(ManifestError::Schema(f.schema));
        }
        manifest.check()?;
        Ok(manifest)
    }

    /// The rules the schema cannot express.
    fn check(&self) -> Result<(), ManifestError> {
        if self.hardware.iter().any(|h| id::check(h).is_err()) {
            return Err(ManifestError::Field("hardware"));
        }
        if self.kind == ArtifactKind::Firmware && self.requires_firmware.is_some() {
            return Err(ManifestError::RequiresFirmwareOnFirmware);
        }
        if self.expires_at.is_some_and(|e| e <= self.created_at) {
            return Err(ManifestError::ExpiresBeforeCreated);
        }
        let listed_before = |(i, h): (usize, &&str)| self.hardware[..i].contains(h).then_some(i);
        if let Some(i) = self.hardware.iter().enumerate().find_map(listed_before) {
            return Err(ManifestError::DuplicateHardware(i));
        }
        Ok(())
    }

    /// Whether a device running `installed`, a higher version than this one, may go back
    /// to it: only when `allow_downgrade_from` is present and matches `installed`.
    pub fn allows_downgrade_from(&self, installed: &Version<'_>) -> bool {
        self.allow_downgrade_from.as_ref().is_some_and(|req| req.matches(installed))
    }

    /// Whether this artifact may be installed on `model` (an empty list means any).
    pub fn fits_hardware(&self, model: &str) -> bool {
        self.hardware.is_empty() || self.hardware.contains(&model)
    }
}

/// 64 lowercase hex characters.
pub fn digest(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let lowercase = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (lowercase && hex::decode_to_slice(s, &mut out).is_ok()).then_some(out)
}

/// An RFC 3339 time in seconds since the Unix epoch.
pub fn timestamp(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use std::format;

    use super::*;
    use crate::signed::manifest;

    /// Both JSON readers (serde-json-core here, serde_json on hosts) accept the same
    /// manifests and read them alike. (They may refuse with different errors: serde_json
    /// refuses an escaped string at once, serde-json-core passes it on raw and a field's
    /// own rule refuses it.)
    #[test]
    fn serde_json_core_and_serde_json_read_the_same_manifests() {
        let hardware = (0..17).map(|i| format!("\"m{i}\"")).collect::<std::vec::Vec<_>>().join(",");
        let cases = [
            manifest("firmware", "1.1.0", ""),
            manifest("config", "1.1.0", r#","requires_firmware":">=1.0, <2""#),
            manifest("firmware", "1.1.0", r#","expires_at":"2020-01-01T00:00:00Z""#),
            manifest("firmware", "1.1.0", r#","extra":1"#),
            manifest("firmware", "1.1.0", "").replace("gateway-os", "gateway\\u002dos"),
            manifest("firmware", "1.1.0", "").replace("[\"rpi4\"]", &format!("[{hardware}]")),
            manifest("firmware", "v1", ""),
            manifest("kernel", "1.1.0", ""),
            "not json".into(),
        ];
        let mut accepted = 0;
        for case in &cases {
            let core = Manifest::from_slice(case.as_bytes());
            let host = Manifest::read_with(case.as_bytes(), |b| serde_json::from_slice(b).ok());
            assert_eq!(core.as_ref().ok(), host.as_ref().ok(), "{case}");
            assert_eq!(core.is_ok(), host.is_ok(), "{case}");
            accepted += usize::from(core.is_ok());
        }
        assert_eq!(accepted, 2, "the first two are manifests; the rest are refused");
    }
}
