//! Rollouts: pure planning and per-device rules, then the engine task that runs them and
//! the ingester that applies device reports.
//!
//! - [`model`]: the domain types: a rollout, its states and pause reasons, its entries.
//! - [`create`]: checking and recording a new rollout; [`signers`]: whether its artifact
//!   may still ship; [`control`]: pause, resume, cancel; [`device_control`]: cancel,
//!   retry or skip one device; [`error`]: why these fail.
//! - [`plan`]: the request, wave sizes, the failure gate, retry backoff (pure).
//! - [`progress`]: where a running rollout's wave stands at one step (pure).
//! - [`rules`]: what a report or a timeout does to one device's entry (pure).
//! - [`engine`]: the task that dispatches, times out, gates and completes rollouts.
//! - [`reports`]: what a batch of status reports does (pure); [`ingest`]: the task that
//!   applies them in batched transactions.
//! - [`view`]: the rollout body served over HTTP and SSE.
//! - [`schedule`]: `start_at` and whether the maintenance window lets it dispatch (pure);
//!   [`window`]: the weekly window in a time zone (pure); [`dynamic`]: which devices
//!   registered or relabelled later join a dynamic rollout (pure).

pub mod control;
pub mod create;
pub mod device_control;
pub mod dynamic;
pub mod engine;
pub mod error;
pub mod health;
pub mod ingest;
pub mod model;
pub mod plan;
pub mod progress;
pub mod reports;
pub mod rules;
pub mod schedule;
pub mod signers;
pub mod view;
pub mod window;

use fleet_protocol::message::Command;
use fleet_protocol::{DeviceId, Envelope, RolloutId};

use crate::store::ArtifactRecord;

/// The command a device in a rollout receives: the same JSON over MQTT and from
/// `GET /devices/{id}/command` (which the agent compares).
pub fn command(
    public_url: &str,
    rollout_id: &str,
    device: &DeviceId,
    artifact: &ArtifactRecord,
    cancel: bool,
) -> Option<Command> {
    let rollout_id = RolloutId::parse(rollout_id).ok()?;
    if cancel {
        return Some(Command::Cancel { device_id: device.clone(), rollout_id });
    }
    let envelope: Envelope = serde_json::from_str(&artifact.envelope_json).ok()?;
    Some(Command::Update {
        device_id: device.clone(),
        rollout_id,
        kind: artifact.kind,
        url: fleet_protocol::paths::api_url(
            public_url,
            &fleet_protocol::paths::artifact_blob(artifact.kind, &artifact.id),
        ),
        envelope,
    })
}
