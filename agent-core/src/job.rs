//! An accepted update and the firmware a device runs, kept in fixed-size text: what the
//! updater works on and its journal keeps.

use heapless::String;
use serde::{Deserialize, Serialize};

use crate::flash::Slot;
use crate::kind::ArtifactKind;
use crate::machine;

/// The longest rollout id, product name or version text kept.
pub const MAX_TEXT: usize = 64;

/// The longest download URL kept.
pub const MAX_URL: usize = 256;

/// The firmware a device runs, kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firmware {
    pub name: String<MAX_TEXT>,
    pub version: String<MAX_TEXT>,
    pub sha256: [u8; 32],
}

impl Firmware {
    /// `None` when the name or version is longer than [`MAX_TEXT`], or the version is not
    /// one.
    pub fn new(name: &str, version: &str, sha256: [u8; 32]) -> Option<Self> {
        crate::version::Version::parse(version).ok()?;
        Some(Self { name: text(name)?, version: text(version)?, sha256 })
    }
}

/// An accepted update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub rollout_id: String<MAX_TEXT>,
    pub url: String<MAX_URL>,
    pub target: Slot,
    pub firmware: Firmware,
    pub size: u64,
}

impl machine::Job for Job {
    type Rollout = String<MAX_TEXT>;

    fn kind(&self) -> ArtifactKind {
        ArtifactKind::Firmware
    }

    fn rollout(&self) -> &Self::Rollout {
        &self.rollout_id
    }
}

/// `s` kept, or `None` when longer than `N` (heapless's `From` would panic).
pub(crate) fn kept<const N: usize>(s: &str) -> Option<String<N>> {
    let mut out = String::new();
    out.push_str(s).ok()?;
    Some(out)
}

pub(crate) fn text(s: &str) -> Option<String<MAX_TEXT>> {
    kept(s)
}
