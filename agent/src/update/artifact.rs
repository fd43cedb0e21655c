//! What a job keeps of its verified manifest: the fields the agent's steps use, owned,
//! taken from the device core's reading of the verified bytes (the agent reads a manifest
//! once, with the core's rules).

use fleet_agent_core::manifest::Manifest as CoreManifest;
use fleet_protocol::manifest::SCHEMA;
use fleet_protocol::{ArtifactKind, ProductName, Sha256Digest};
use semver::{BuildMetadata, Prerelease, Version};
use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;

/// The artifact a job installs. It is journaled as a manifest ([`AsManifest`]): agents
/// before this type journaled a job's whole manifest and read one back, and a rollback to
/// the other slot can start such an agent on this one's journal. Either form reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Artifact {
    pub kind: ArtifactKind,
    pub name: ProductName,
    pub version: Version,
    pub size: u64,
    pub sha256: Sha256Digest,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Artifact {
    /// The core's checked manifest, owned. `None` where the `semver` crate would not read
    /// the core's version (the server accepts only manifests both read), or where the
    /// creation time is past year 9999 in UTC, which RFC 3339 cannot write.
    pub fn of(m: &CoreManifest<'_>) -> Option<Self> {
        let v = &m.version;
        let version = Version {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre: Prerelease::new(v.pre).ok()?,
            build: BuildMetadata::new(v.build).ok()?,
        };
        let created_at = OffsetDateTime::from_unix_timestamp(m.created_at).ok().filter(|t| t.year() <= 9999)?;
        Some(Self {
            kind: m.kind,
            name: ProductName::parse(m.name).ok()?,
            version,
            size: m.size,
            sha256: Sha256Digest::from_bytes(m.sha256),
            created_at,
        })
    }
}

/// An [`Artifact`] written as a manifest of the contract's schema that lists no hardware:
/// every field a manifest requires and none it refuses.
#[derive(Serialize)]
struct AsManifest<'a> {
    schema: u32,
    kind: ArtifactKind,
    name: &'a ProductName,
    version: &'a Version,
    hardware: [(); 0],
    size: u64,
    sha256: &'a Sha256Digest,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl Serialize for Artifact {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AsManifest {
            schema: SCHEMA,
            kind: self.kind,
            name: &self.name,
            version: &self.version,
            hardware: [],
            size: self.size,
            sha256: &self.sha256,
            created_at: self.created_at,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
impl From<&fleet_protocol::Manifest> for Artifact {
    fn from(m: &fleet_protocol::Manifest) -> Self {
        Self {
            kind: m.kind,
            name: m.name.clone(),
            version: m.version.clone(),
            size: m.size,
            sha256: m.sha256,
            created_at: m.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_protocol::{Manifest, RolloutId};

    use super::*;
    use crate::update::Job;

    fn manifest() -> serde_json::Value {
        serde_json::json!({
            "schema": 1, "kind": "firmware", "name": "gateway-os", "version": "1.2.0-rc.1",
            "hardware": ["rpi4"], "size": 3, "sha256": Sha256Digest::of(b"abc"),
            "created_at": "2023-11-14T22:13:20Z", "allow_downgrade_from": ">=1.0.0",
        })
    }

    fn job_with(manifest: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"rollout_id": "r1", "kind": "firmware", "url": "http://s/blob", "manifest": manifest})
    }

    #[test]
    fn a_job_journaled_with_the_whole_manifest_reads_as_its_artifact() {
        let job: Job = serde_json::from_value(job_with(manifest())).unwrap();
        let whole: Manifest = serde_json::from_value(manifest()).unwrap();
        assert_eq!(job.rollout_id, RolloutId::parse("r1").unwrap());
        assert_eq!(job.artifact, Artifact::from(&whole));
        assert_eq!(job.artifact.created_at.unix_timestamp(), 1_700_000_000);
    }

    #[test]
    fn a_journaled_artifact_reads_as_a_manifest_for_the_agents_before_it() {
        let job: Job = serde_json::from_value(job_with(manifest())).unwrap();
        let written = serde_json::to_value(&job).unwrap();
        // What an earlier agent reads: the protocol's manifest, unknown fields refused.
        let whole: Manifest = serde_json::from_value(written["manifest"].clone()).unwrap();
        assert_eq!(Artifact::from(&whole), job.artifact);
        assert!(whole.hardware.is_empty() && whole.allow_downgrade_from.is_none());
        let again: Job = serde_json::from_value(written).unwrap();
        assert_eq!(again, job, "and this agent reads it back");
    }
}
