//! What a job keeps of its verified manifest: the fields the agent's steps use, owned,
//! taken from the device core's reading of the verified bytes (the agent reads a manifest
//! once, with the core's rules).

use fleet_agent_core::manifest::Manifest as CoreManifest;
use fleet_protocol::{Manifest, ProductName, Sha256Digest};
use semver::{BuildMetadata, Prerelease, Version};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The artifact a job installs. Its fields carry the manifest's own names and forms, so a
/// journal written when jobs kept the whole manifest reads as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: ProductName,
    pub version: Version,
    pub size: u64,
    pub sha256: Sha256Digest,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Artifact {
    /// The core's checked manifest, owned; `None` only where the core and the `semver`
    /// crate disagree on a version (a test checks they agree).
    pub fn of(m: &CoreManifest<'_>) -> Option<Self> {
        let v = &m.version;
        let version = Version {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre: Prerelease::new(v.pre).ok()?,
            build: BuildMetadata::new(v.build).ok()?,
        };
        Some(Self {
            name: ProductName::parse(m.name).ok()?,
            version,
            size: m.size,
            sha256: Sha256Digest::from_bytes(m.sha256),
            created_at: OffsetDateTime::from_unix_timestamp(m.created_at).ok()?,
        })
    }
}

impl From<&Manifest> for Artifact {
    fn from(m: &Manifest) -> Self {
        Self {
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
    use fleet_protocol::RolloutId;

    use super::*;
    use crate::update::Job;

    #[test]
    fn a_job_journaled_with_the_whole_manifest_reads_as_its_artifact() {
        let manifest = serde_json::json!({
            "schema": 1, "kind": "firmware", "name": "gateway-os", "version": "1.2.0-rc.1",
            "hardware": ["rpi4"], "size": 3, "sha256": Sha256Digest::of(b"abc"),
            "created_at": "2023-11-14T22:13:20Z", "allow_downgrade_from": ">=1.0.0",
        });
        let old = serde_json::json!({
            "rollout_id": "r1", "kind": "firmware", "url": "http://s/blob", "manifest": manifest,
        });
        let job: Job = serde_json::from_value(old).unwrap();
        let manifest: Manifest = serde_json::from_value(manifest).unwrap();
        assert_eq!(job.rollout_id, RolloutId::parse("r1").unwrap());
        assert_eq!(job.artifact, Artifact::from(&manifest));
        assert_eq!(job.artifact.created_at.unix_timestamp(), 1_700_000_000);
        let again: Job = serde_json::from_slice(&serde_json::to_vec(&job).unwrap()).unwrap();
        assert_eq!(again, job, "and the new form round-trips");
    }
}
