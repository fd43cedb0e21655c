//! Artifacts this replica handed to a device a moment ago, kept in memory for [`TTL`].
//!
//! A device downloads only the artifact of a command it was sent (CONTRACT §3), which the
//! blob route asks the store every time. But a device that takes an update confirms its
//! command over HTTP first, and that answer names the artifact: the device was sent it, a
//! fact no later change undoes. The command route remembers it, so the download that
//! follows asks the store nothing (one statement fewer per device in a rollout).
//!
//! Removing an artifact forgets everything remembered, before its request answers. A
//! download that finds nothing here asks the store as before (another replica answered
//! the command, or it was longer ago than [`TTL`]).

use std::time::Duration;

use fleet_protocol::{ArtifactKind, DeviceId};

use crate::remembered::Remembered;

/// How long a command's artifact stays granted to its device without asking the store.
pub const TTL: Duration = Duration::from_secs(600);
/// Grants kept at most.
const CAPACITY: usize = 100_000;

/// (device, artifact) pairs whose command this replica answered.
#[derive(Debug)]
pub struct SentArtifacts {
    grants: Remembered<()>,
}

impl Default for SentArtifacts {
    fn default() -> Self {
        Self { grants: Remembered::new(TTL, CAPACITY) }
    }
}

impl SentArtifacts {
    /// To be taken before the store names the device's command, and handed to
    /// [`SentArtifacts::sent`].
    pub fn generation(&self) -> u64 {
        self.grants.generation()
    }

    /// `device` was handed its command for `artifact` (read after `generation`).
    pub fn sent(&self, device: &DeviceId, kind: ArtifactKind, artifact: &str, generation: u64) {
        self.grants.keep(&key(device, kind, artifact), (), generation);
    }

    /// Whether `device` was handed a command for `artifact` within [`TTL`].
    pub fn was_sent(&self, device: &DeviceId, kind: ArtifactKind, artifact: &str) -> bool {
        self.grants.fresh(&key(device, kind, artifact)).is_some()
    }

    /// Forgets every grant (an artifact was removed).
    pub fn forget_all(&self) {
        self.grants.forget_all();
    }
}

/// Kinds and device ids hold no `/` (CONTRACT §4), so the key is unambiguous whatever the
/// artifact id holds.
fn key(device: &DeviceId, kind: ArtifactKind, artifact: &str) -> String {
    format!("{}/{artifact}/{device}", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str) -> DeviceId {
        DeviceId::parse(id).expect("valid")
    }

    #[test]
    fn a_grant_is_for_its_device_kind_and_artifact_only() {
        let sent = SentArtifacts::default();
        let gw = device("gw-1");
        sent.sent(&gw, ArtifactKind::Firmware, "fw-1", sent.generation());
        assert!(sent.was_sent(&gw, ArtifactKind::Firmware, "fw-1"));
        assert!(!sent.was_sent(&device("gw-2"), ArtifactKind::Firmware, "fw-1"));
        assert!(!sent.was_sent(&gw, ArtifactKind::Config, "fw-1"));
        assert!(!sent.was_sent(&gw, ArtifactKind::Firmware, "fw-2"));
    }

    #[test]
    fn removing_an_artifact_forgets_grants_and_a_racing_answer_is_not_kept() {
        let sent = SentArtifacts::default();
        let gw = device("gw-1");
        sent.sent(&gw, ArtifactKind::Firmware, "fw-1", sent.generation());
        let before_removal = sent.generation();
        sent.forget_all();
        assert!(!sent.was_sent(&gw, ArtifactKind::Firmware, "fw-1"));
        sent.sent(&gw, ArtifactKind::Firmware, "fw-1", before_removal);
        assert!(!sent.was_sent(&gw, ArtifactKind::Firmware, "fw-1"));
    }
}
