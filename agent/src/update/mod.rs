//! One update, from accepted command to final state.
//!
//! - [`admission`]: whether a command starts an update, in CONTRACT §6's order (pure).
//! - [`confirmation`]: the command confirmed over HTTP before anything is done.
//! - [`checks`]: the pure rules of CONTRACT §6 step 3–4 (signature, kind, name, hardware,
//!   version, expiry, URL origin).
//! - [`machine`]: the pure state machine `step(state, event) -> (state, effects)`.
//! - [`journal`]: the versioned, atomically written record that survives crashes.
//! - [`download`]: streaming, resumable, hashing download; [`hashed_file`] writes and
//!   hashes its bytes off the runtime thread.

pub mod admission;
pub mod artifact;
pub mod checks;
mod client;
pub mod confirmation;
pub mod download;
pub mod hashed_file;
pub mod journal;
pub mod machine;

use fleet_protocol::{ArtifactKind, RolloutId};
use serde::{Deserialize, Serialize};

use self::artifact::Artifact;

/// An accepted update: everything needed to carry it out, persisted in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub rollout_id: RolloutId,
    pub kind: ArtifactKind,
    pub url: String,
    /// Read from verified bytes only; journaled under the name `manifest` ([`Artifact`]).
    #[serde(rename = "manifest")]
    pub artifact: Artifact,
}
