//! Whether a verified update may start: CONTRACT §6 steps 3 and 4, in the contract's
//! order, each refusal with its reason code. Pure; the caller performs the outcome.

use crate::Reason;
use crate::envelope::{Envelope, PAYLOAD_TYPE};
use crate::manifest::{ArtifactKind, Manifest};
use crate::verify::{Keys, VerifyError};
use crate::version::Version;

/// What a device has installed of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed<'a> {
    pub name: &'a str,
    pub version: Version<'a>,
    pub sha256: [u8; 32],
}

/// What the device knows when it judges an update.
#[derive(Debug, Clone, Copy)]
pub struct Device<'a> {
    pub keys: Keys<'a>,
    pub hardware: &'a str,
    pub firmware: Option<Installed<'a>>,
    pub config: Option<Installed<'a>>,
    /// The later of the clock and the newest `created_at` verified so far, in seconds
    /// since the Unix epoch; persisted, so a clock set back cannot revive an expired
    /// manifest.
    pub time_floor: i64,
}

/// The update to judge: the command's kind and envelope, and whether its download URL has
/// the server's origin (the host decides that: it knows its server).
#[derive(Debug, Clone, Copy)]
pub struct Update<'e> {
    pub kind: ArtifactKind,
    pub envelope: &'e Envelope<'e>,
    pub url_from_server: bool,
}

/// The verdict on an update command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'b> {
    /// Install it.
    Accept(Manifest<'b>),
    /// Already installed (same version and digest): report `succeeded`/`already_installed`.
    AlreadyInstalled(Manifest<'b>),
    /// Refuse with this reason (`rejected`).
    Reject(Reason),
}

/// Judges an update; `buffer` ([`crate::VERIFY_BUFFER_BYTES`]) holds the verified
/// manifest the verdict borrows.
pub fn judge<'b>(device: &Device<'_>, update: &Update<'_>, buffer: &'b mut [u8]) -> Verdict<'b> {
    judge_with(device, update, buffer, Manifest::from_slice)
}

/// [`judge`] reading the manifest with `read` ([`Manifest::read_with`] and a host's JSON
/// reader).
pub fn judge_with<'b>(
    device: &Device<'_>,
    update: &Update<'_>,
    buffer: &'b mut [u8],
    read: impl FnOnce(&'b [u8]) -> Result<Manifest<'b>, crate::manifest::ManifestError>,
) -> Verdict<'b> {
    let envelope = update.envelope;
    let verified =
        device.keys.verify(PAYLOAD_TYPE, envelope.payload_type, envelope.payload, &envelope.signatures, buffer);
    let payload = match verified {
        Ok(v) => v.payload,
        Err(VerifyError::UntrustedKey) => return Verdict::Reject(Reason::UntrustedKey),
        Err(_) => return Verdict::Reject(Reason::SignatureInvalid),
    };
    // Verified bytes that do not parse were still signed by us: refuse them as invalid.
    let Ok(manifest) = read(payload) else {
        return Verdict::Reject(Reason::SignatureInvalid);
    };
    match refusal(device, update, &manifest) {
        Some(Reason::AlreadyInstalled) => Verdict::AlreadyInstalled(manifest),
        Some(reason) => Verdict::Reject(reason),
        None => Verdict::Accept(manifest),
    }
}

/// The first rule `manifest` breaks, in the contract's order; `AlreadyInstalled` when the
/// same version and digest are installed.
fn refusal(device: &Device<'_>, update: &Update<'_>, manifest: &Manifest<'_>) -> Option<Reason> {
    if manifest.kind != update.kind {
        return Some(Reason::KindMismatch);
    }
    let installed = match update.kind {
        ArtifactKind::Firmware => device.firmware,
        ArtifactKind::Config => device.config,
    };
    if installed.is_some_and(|i| i.name != manifest.name) {
        return Some(Reason::NameMismatch);
    }
    if !manifest.fits_hardware(device.hardware) {
        return Some(Reason::HardwareMismatch);
    }
    if let Some(i) = installed {
        if manifest.version == i.version {
            return Some(if manifest.sha256 == i.sha256 { Reason::AlreadyInstalled } else { Reason::Downgrade });
        }
        // Lower only with the signed permission, and only from the versions it names.
        if manifest.version < i.version && !manifest.allows_downgrade_from(&i.version) {
            return Some(Reason::Downgrade);
        }
    }
    if manifest.expires_at.is_some_and(|e| e <= device.time_floor) {
        return Some(Reason::Expired);
    }
    let firmware_fits = match (&manifest.requires_firmware, device.firmware) {
        (None, _) => true,
        (Some(req), Some(fw)) => req.matches(&fw.version),
        (Some(_), None) => false,
    };
    if !firmware_fits {
        return Some(Reason::IncompatibleFirmware);
    }
    (!update.url_from_server).then_some(Reason::UntrustedUrl)
}

#[cfg(test)]
mod tests {
    use std::string::String;

    use super::*;
    use crate::VERIFY_BUFFER_BYTES;
    use crate::signed::{envelope, key, manifest, trusted};
    use crate::verify::TrustedKey;

    /// created_at in the manifests is 1_700_000_000.
    const FLOOR: i64 = 1_700_000_100;

    fn judged(
        keys: &[TrustedKey],
        kind: ArtifactKind,
        json: &str,
        url_from_server: bool,
    ) -> Result<ArtifactKind, Reason> {
        let firmware = Installed { name: "gateway-os", version: Version::parse("1.0.0").unwrap(), sha256: [9; 32] };
        let device = Device {
            keys: Keys::new(keys, 1),
            hardware: "rpi4",
            firmware: Some(firmware),
            config: None,
            time_floor: FLOOR,
        };
        let envelope = Envelope::from_json(json.as_bytes()).unwrap();
        let mut buffer = [0u8; VERIFY_BUFFER_BYTES];
        match judge(&device, &Update { kind, envelope: &envelope, url_from_server }, &mut buffer) {
            Verdict::Accept(m) => Ok(m.kind),
            Verdict::AlreadyInstalled(_) => Err(Reason::AlreadyInstalled),
            Verdict::Reject(reason) => Err(reason),
        }
    }

    fn signed(m: &str) -> String {
        envelope(m.as_bytes(), &[&key(1)])
    }

    #[test]
    fn a_newer_signed_firmware_is_accepted() {
        assert_eq!(
            judged(&[trusted(1)], ArtifactKind::Firmware, &signed(&manifest("firmware", "1.1.0", "")), true),
            Ok(ArtifactKind::Firmware)
        );
    }

    #[test]
    fn each_rule_refuses_with_its_reason_in_the_contracts_order() {
        let keys = [trusted(1)];
        let newer = manifest("firmware", "1.1.0", "");
        let cases = [
            (envelope(newer.as_bytes(), &[&key(2)]), ArtifactKind::Firmware, true, Reason::UntrustedKey),
            (
                signed(&newer).replacen("\"payload\":\"", "\"payload\":\"e30", 1),
                ArtifactKind::Firmware,
                true,
                Reason::SignatureInvalid,
            ),
            (signed(&newer), ArtifactKind::Config, true, Reason::KindMismatch),
            (signed(&newer.replace("gateway-os", "sensor-os")), ArtifactKind::Firmware, true, Reason::NameMismatch),
            (signed(&newer.replace("rpi4", "rpi3")), ArtifactKind::Firmware, true, Reason::HardwareMismatch),
            (signed(&manifest("firmware", "0.9.0", "")), ArtifactKind::Firmware, true, Reason::Downgrade),
            (signed(&manifest("firmware", "1.0.0", "")), ArtifactKind::Firmware, true, Reason::Downgrade),
            (
                signed(&manifest("firmware", "1.1.0", r#","expires_at":"2023-11-14T22:15:00Z""#)),
                ArtifactKind::Firmware,
                true,
                Reason::Expired,
            ),
            (
                signed(&manifest("config", "1.1.0", r#","requires_firmware":">=2""#)),
                ArtifactKind::Config,
                true,
                Reason::IncompatibleFirmware,
            ),
            (signed(&newer), ArtifactKind::Firmware, false, Reason::UntrustedUrl),
            (
                signed(&newer.replace("\"size\":3", "\"size\":3,\"extra\":1")),
                ArtifactKind::Firmware,
                true,
                Reason::SignatureInvalid,
            ),
        ];
        for (json, kind, same_origin, reason) in cases {
            assert_eq!(judged(&keys, kind, &json, same_origin), Err(reason), "{json}");
        }
    }

    #[test]
    fn a_lower_version_needs_a_signed_permission_naming_the_installed_one() {
        let keys = [trusted(1)];
        let allowed = manifest("firmware", "0.9.0", r#","allow_downgrade_from":">=1.0.0, <2.0.0""#);
        assert_eq!(judged(&keys, ArtifactKind::Firmware, &signed(&allowed), true), Ok(ArtifactKind::Firmware));
        let other = manifest("firmware", "0.9.0", r#","allow_downgrade_from":">=1.1.0""#);
        assert_eq!(judged(&keys, ArtifactKind::Firmware, &signed(&other), true), Err(Reason::Downgrade));
    }

    #[test]
    fn a_threshold_counts_distinct_trusted_keys() {
        let keys = [trusted(1), trusted(2)];
        let m = manifest("firmware", "1.1.0", "");
        let device = |threshold| Device {
            keys: Keys::new(&keys, threshold),
            hardware: "rpi4",
            firmware: None,
            config: None,
            time_floor: 0,
        };
        let check = |json: &str, threshold| {
            let envelope = Envelope::from_json(json.as_bytes()).unwrap();
            let mut buffer = [0u8; VERIFY_BUFFER_BYTES];
            let update = Update { kind: ArtifactKind::Firmware, envelope: &envelope, url_from_server: true };
            matches!(judge(&device(threshold), &update, &mut buffer), Verdict::Accept(_))
        };
        assert!(check(&envelope(m.as_bytes(), &[&key(1), &key(2)]), 2));
        assert!(!check(&envelope(m.as_bytes(), &[&key(1), &key(1)]), 2), "one key twice is one signer");
        assert!(
            check(&envelope(m.as_bytes(), &[&key(3), &key(2)]), 1),
            "an unknown key beside a trusted one is ignored"
        );
    }
}
