//! [`RolloutError`]: why creating or steering a rollout failed. The HTTP layer maps it to
//! an answer in one place (`http::error`); the domain knows nothing of HTTP.

use fleet_protocol::{ArtifactKind, IdError};

use super::model::RolloutState;
use super::plan::PlanError;
use crate::random::RandomnessError;
use crate::store::StoreError;

/// A domain failure of a rollout.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The request's options or target are not acceptable.
    #[error(transparent)]
    Invalid(#[from] PlanError),
    #[error("invalid device id: {0}")]
    InvalidDeviceId(IdError),
    #[error("invalid hardware: {0}")]
    InvalidHardware(IdError),
    #[error("unknown devices: {}", .0.join(", "))]
    UnknownDevices(Vec<String>),
    #[error("{kind} {id} not found")]
    UnknownArtifact { kind: ArtifactKind, id: String },
    #[error("rollout {0} not found")]
    UnknownRollout(String),
    /// Too few of the artifact's signers are registered and not revoked.
    #[error("{kind} {id} has {valid} non-revoked signers; {needed} needed")]
    KeyRevoked { kind: ArtifactKind, id: String, valid: usize, needed: usize },
    /// These (device, rollout) pairs: the devices are in a scheduled, running or paused rollout.
    #[error("{} devices are in a scheduled, running or paused rollout", .0.len())]
    DevicesBusy(Vec<(String, String)>),
    #[error("rollout {id} is {}; it cannot become {}", .from.as_str(), .to.as_str())]
    NotAllowed { id: String, from: RolloutState, to: RolloutState },
    #[error("device {device} is not in rollout {id}")]
    UnknownEntry { id: String, device: String },
    /// A per-device action the device's (or the rollout's) state does not allow.
    #[error("cannot {action} device {device} of rollout {id}: {why}")]
    DeviceNotAllowed { id: String, device: String, action: &'static str, why: String },
    /// Other writes to the rollout kept coming first (see `control::control`).
    #[error("rollout {0} kept changing while being updated; try again")]
    Contended(String),
    /// No id could be made for a new rollout.
    #[error("no id for the rollout: {0}")]
    NoId(#[from] RandomnessError),
    #[error("encoding the target: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}
