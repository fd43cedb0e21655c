//! Home Assistant's Install button: `install` on `{root}/ha/{device}/install` starts a
//! one-device rollout of the firmware the entity offers, through the same function as
//! `POST /rollouts` (so the same rules: signers not revoked, device not busy, the audit
//! trail) — only with `--ha-allow-install`. Everything else is ignored and logged.

use fleet_protocol::DeviceId;
use serde_json::json;

use super::newest::NewestFirmware;
use super::payload::PAYLOAD_INSTALL;
use crate::audit::Actor;
use crate::mqtt::HaCommand;
use crate::rollout::create::{Created, create};
use crate::rollout::error::RolloutError;
use crate::rollout::plan::RolloutRequest;
use crate::state::AppState;
use crate::store::StoreError;

/// Who the audit trail names for rollouts Home Assistant started (MQTT does not say which
/// operator account published the command).
pub const ACTOR: &str = "home-assistant";

/// Why an install command started nothing.
#[derive(Debug, thiserror::Error)]
pub enum Ignored {
    #[error("the payload is not `{PAYLOAD_INSTALL}`")]
    Payload,
    #[error("a retained command (only live presses count)")]
    Retained,
    #[error("installs from Home Assistant are off (--ha-allow-install)")]
    NotAllowed,
    #[error("the device is not registered")]
    UnknownDevice,
    #[error("no firmware is offered to it")]
    NothingOffered,
    #[error("it already runs the newest firmware")]
    UpToDate,
    #[error("a plan came back instead of a rollout")]
    DryRun,
    #[error("the rollout was refused: {0}")]
    Refused(#[from] RolloutError),
}

/// Handles one command; the id of the rollout it started.
pub async fn handle(app: &AppState, allow: bool, command: &HaCommand) -> Result<String, Ignored> {
    if command.payload.as_ref() != PAYLOAD_INSTALL.as_bytes() {
        return Err(Ignored::Payload);
    }
    if command.publish.retain {
        return Err(Ignored::Retained);
    }
    if !allow {
        return Err(Ignored::NotAllowed);
    }
    start(app, &command.device).await
}

/// Starts the one-device rollout of the firmware offered to `id` now.
async fn start(app: &AppState, id: &DeviceId) -> Result<String, Ignored> {
    let device = match app.store.get_device(id).await {
        Err(StoreError::NotFound) => return Err(Ignored::UnknownDevice),
        d => d.map_err(RolloutError::from)?,
    };
    let now = app.store.now_ms().await.map_err(RolloutError::from)?;
    let newest = NewestFirmware::load(app.store.as_ref(), now).await.map_err(RolloutError::from)?;
    let offer = newest.for_device(&device).ok_or(Ignored::NothingOffered)?;
    if device.firmware.as_ref().is_some_and(|f| f.version == offer.version) {
        return Err(Ignored::UpToDate);
    }
    let request = json!({"firmware": offer.artifact_id, "target": {"devices": [id.as_str()]}});
    let request: RolloutRequest = serde_json::from_value(request).map_err(RolloutError::from)?;
    let Created::Rollout(record) = create(app, request, false).await? else {
        return Err(Ignored::DryRun);
    };
    app.wake_engine();
    let details = json!({"kind": record.kind.as_str(), "artifact_id": record.artifact_id, "devices": 1,
        "waves": record.waves, "via": "home-assistant", "device": id.as_str()});
    app.audit(Actor(ACTOR.into()), "rollout.created", &record.id, details).await;
    Ok(record.id)
}

/// Handles one command and says what came of it in the log.
pub async fn handle_and_log(app: &AppState, allow: bool, command: &HaCommand) {
    let device = command.device.as_str();
    match handle(app, allow, command).await {
        Ok(rollout) => tracing::info!(device, rollout, "Home Assistant install: rollout started"),
        Err(why @ Ignored::Refused(_)) => tracing::warn!(device, "Home Assistant install ignored: {why}"),
        Err(why) => tracing::info!(device, "Home Assistant install ignored: {why}"),
    }
}
