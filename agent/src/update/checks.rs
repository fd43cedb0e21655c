//! The pure checks of CONTRACT §6 steps 3 and 4, in the contract's order, as the device
//! core decides them ([`fleet_agent_core::admission`]); this module hands it the agent's
//! knowledge and takes the verdict back in the protocol's types. Nothing here touches the
//! device.

use fleet_agent_core::admission::{self as core, Device, Update};
use fleet_agent_core::envelope::Envelope as CoreEnvelope;
use fleet_agent_core::manifest::Manifest as CoreManifest;
use fleet_agent_core::version::Version;
use fleet_protocol::message::Installed;
use fleet_protocol::state::Reason;
use fleet_protocol::{ArtifactKind, Envelope, HardwareModel, Verifier};
use time::OffsetDateTime;

use super::artifact::Artifact;

/// What the agent knows when it judges an update.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub verifier: &'a Verifier,
    pub hardware: &'a HardwareModel,
    pub firmware: Option<&'a Installed>,
    pub config: Option<&'a Installed>,
    /// The later of the clock and the newest `created_at` verified so far.
    pub time_floor: OffsetDateTime,
    /// The `--server` origin; downloads come only from there.
    pub server: &'a reqwest::Url,
}

/// The verdict on an update command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Install it.
    Accept(Artifact),
    /// Already installed (same version and digest): report `succeeded`/`already_installed`.
    AlreadyInstalled(Artifact),
    /// Refuse with this reason (`rejected`).
    Reject(Reason),
}

/// Judges an update command's kind, envelope and URL.
pub fn judge(ctx: &Context<'_>, kind: ArtifactKind, envelope: &Envelope, url: &str) -> Verdict {
    let signatures = envelope.core_signatures();
    let Some(envelope_ref) = CoreEnvelope::from_parts(&envelope.payload_type, &envelope.payload, signatures) else {
        return Verdict::Reject(Reason::SignatureInvalid);
    };
    let device = Device {
        keys: ctx.verifier.keys(),
        hardware: ctx.hardware.as_str(),
        firmware: ctx.firmware.map(installed),
        config: ctx.config.map(installed),
        time_floor: ctx.time_floor.unix_timestamp(),
    };
    let url_from_server = same_origin(ctx.server, url);
    let update = Update { kind, envelope: &envelope_ref, url_from_server };
    let mut buffer = vec![0; fleet_agent_core::verify::buffer_len(&envelope.payload_type, envelope.payload.len())];
    // The core reads the verified bytes in place, with serde_json (which the agent carries
    // anyway); the job keeps the owned artifact of that one reading.
    let read = |bytes| CoreManifest::read_with(bytes, |b| serde_json::from_slice(b).ok());
    let owned = |m: &CoreManifest<'_>, verdict: fn(Artifact) -> Verdict| {
        Artifact::of(m).map_or(Verdict::Reject(Reason::SignatureInvalid), verdict)
    };
    match core::judge_with(&device, &update, &mut buffer, read) {
        core::Verdict::Reject(reason) => Verdict::Reject(reason),
        core::Verdict::Accept(m) => owned(&m, Verdict::Accept),
        core::Verdict::AlreadyInstalled(m) => owned(&m, Verdict::AlreadyInstalled),
    }
}

/// What is installed, as the core takes it: the same version, part by part.
fn installed(i: &Installed) -> core::Installed<'_> {
    let v = &i.version;
    let version =
        Version { major: v.major, minor: v.minor, patch: v.patch, pre: v.pre.as_str(), build: v.build.as_str() };
    core::Installed { name: i.name.as_str(), version, sha256: *i.sha256.as_bytes() }
}

/// Scheme, host and port equal to the server's.
pub fn same_origin(server: &reqwest::Url, url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.origin() == server.origin())
}

#[cfg(test)]
mod tests {
    use fleet_protocol::manifest::SCHEMA;
    use fleet_protocol::sign::{SigningKey, sign_payload};
    use fleet_protocol::{Manifest, ProductName, PublicKey, Sha256Digest};
    use semver::Version;

    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn manifest(kind: ArtifactKind, version: &str) -> Manifest {
        Manifest {
            schema: SCHEMA,
            kind,
            name: ProductName::parse("gateway-os").unwrap(),
            version: Version::parse(version).unwrap(),
            hardware: vec![HardwareModel::parse("rpi4").unwrap()],
            size: 3,
            sha256: Sha256Digest::of(b"abc"),
            created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            expires_at: None,
            requires_firmware: None,
            allow_downgrade_from: None,
        }
    }

    struct Fixture {
        verifier: Verifier,
        hardware: HardwareModel,
        firmware: Option<Installed>,
        server: reqwest::Url,
        floor: OffsetDateTime,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                verifier: Verifier::new([PublicKey::from_verifying_key(key(1).verifying_key())], 1),
                hardware: HardwareModel::parse("rpi4").unwrap(),
                firmware: Some(Installed {
                    name: ProductName::parse("gateway-os").unwrap(),
                    version: Version::new(1, 0, 0),
                    sha256: Sha256Digest::of(b"old"),
                }),
                server: reqwest::Url::parse("http://127.0.0.1:8080").unwrap(),
                floor: OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap(),
            }
        }

        fn judge(&self, m: &Manifest, signer: &SigningKey, url: &str) -> Verdict {
            let ctx = Context {
                verifier: &self.verifier,
                hardware: &self.hardware,
                firmware: self.firmware.as_ref(),
                config: None,
                time_floor: self.floor,
                server: &self.server,
            };
            judge(&ctx, ArtifactKind::Firmware, &sign_payload(&m.to_bytes(), &[signer]), url)
        }
    }

    const URL: &str = "http://127.0.0.1:8080/api/v1/firmware/x/blob";

    #[test]
    fn accepts_a_newer_version() {
        let m = manifest(ArtifactKind::Firmware, "1.1.0");
        assert_eq!(Fixture::new().judge(&m, &key(1), URL), Verdict::Accept((&m).into()));
    }

    #[test]
    fn each_rule_refuses_with_its_reason() {
        let f = Fixture::new();
        let good = manifest(ArtifactKind::Firmware, "1.1.0");
        assert_eq!(f.judge(&good, &key(2), URL), Verdict::Reject(Reason::UntrustedKey));

        let config = manifest(ArtifactKind::Config, "1.1.0");
        assert_eq!(f.judge(&config, &key(1), URL), Verdict::Reject(Reason::KindMismatch));

        let mut other = good.clone();
        other.name = ProductName::parse("sensor-os").unwrap();
        assert_eq!(f.judge(&other, &key(1), URL), Verdict::Reject(Reason::NameMismatch));

        let mut hw = good.clone();
        hw.hardware = vec![HardwareModel::parse("rpi3").unwrap()];
        assert_eq!(f.judge(&hw, &key(1), URL), Verdict::Reject(Reason::HardwareMismatch));

        let older = manifest(ArtifactKind::Firmware, "0.9.0");
        assert_eq!(f.judge(&older, &key(1), URL), Verdict::Reject(Reason::Downgrade));

        let same_other_digest = manifest(ArtifactKind::Firmware, "1.0.0");
        assert_eq!(f.judge(&same_other_digest, &key(1), URL), Verdict::Reject(Reason::Downgrade));

        let mut same = manifest(ArtifactKind::Firmware, "1.0.0");
        same.sha256 = Sha256Digest::of(b"old");
        assert_eq!(f.judge(&same, &key(1), URL), Verdict::AlreadyInstalled((&same).into()));

        let mut expired = good.clone();
        expired.expires_at = Some(f.floor);
        assert_eq!(f.judge(&expired, &key(1), URL), Verdict::Reject(Reason::Expired));

        for foreign in ["http://evil.example/blob", "https://127.0.0.1:8080/x", "http://127.0.0.1:8081/x", "nonsense"] {
            assert_eq!(f.judge(&good, &key(1), foreign), Verdict::Reject(Reason::UntrustedUrl), "{foreign}");
        }
    }

    #[test]
    fn a_lower_version_needs_a_permission_matching_the_installed_version() {
        let f = Fixture::new();
        let allow = |req: &str| {
            let mut m = manifest(ArtifactKind::Firmware, "0.9.0");
            m.allow_downgrade_from = Some(semver::VersionReq::parse(req).unwrap());
            m
        };
        let matching = allow(">=1.0.0, <2.0.0");
        assert_eq!(f.judge(&matching, &key(1), URL), Verdict::Accept((&matching).into()));
        assert_eq!(f.judge(&allow(">=1.1.0"), &key(1), URL), Verdict::Reject(Reason::Downgrade));
        // The same version with another digest stays a downgrade, permission or not.
        let mut same = manifest(ArtifactKind::Firmware, "1.0.0");
        same.allow_downgrade_from = Some(semver::VersionReq::parse("*").unwrap());
        assert_eq!(f.judge(&same, &key(1), URL), Verdict::Reject(Reason::Downgrade));
    }

    #[test]
    fn the_artifact_keeps_the_version_as_the_semver_crate_reads_it() {
        let m = manifest(ArtifactKind::Firmware, "2.0.0-rc.1+build.7");
        let Verdict::Accept(artifact) = Fixture::new().judge(&m, &key(1), URL) else { panic!("not accepted") };
        assert_eq!(artifact.version, m.version);
        assert_eq!(artifact, Artifact::from(&m));
    }

    #[test]
    fn hardware_list_empty_means_any() {
        let mut m = manifest(ArtifactKind::Firmware, "2.0.0");
        m.hardware.clear();
        assert!(matches!(Fixture::new().judge(&m, &key(1), URL), Verdict::Accept(_)));
    }
}
