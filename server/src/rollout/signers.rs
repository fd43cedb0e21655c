//! Whether an artifact may still ship: enough of its signers must be registered and not
//! revoked. Checked when a rollout is created or resumed, and after a key is revoked
//! (running rollouts of artifacts that fall short pause with `key_revoked`).

use fleet_protocol::ArtifactKind;

use super::error::RolloutError;
use super::model::CONTROL_TRIES;
use super::model::{PauseReason, RolloutState};
use crate::state::AppState;
use crate::store::{ArtifactRecord, StoreError};

/// The artifact, unless fewer than the upload threshold of its signers are registered and
/// not revoked ([`RolloutError::KeyRevoked`]).
pub async fn check_signers(
    app: &AppState,
    kind: ArtifactKind,
    artifact_id: &str,
) -> Result<ArtifactRecord, RolloutError> {
    let artifact = app.store.get_artifact(kind, artifact_id).await.map_err(|e| match e {
        StoreError::NotFound => RolloutError::UnknownArtifact { kind, id: artifact_id.to_owned() },
        e => e.into(),
    })?;
    let active = app.store.active_keys().await?;
    let valid = artifact.signers.iter().filter(|s| active.iter().any(|k| &k.keyid == *s)).count();
    if valid < app.upload_threshold {
        let id = artifact_id.to_owned();
        return Err(RolloutError::KeyRevoked { kind, id, valid, needed: app.upload_threshold });
    }
    Ok(artifact)
}

/// Pauses running (and scheduled) rollouts whose artifact no longer has enough non-revoked signers. A
/// rollout the engine wrote meanwhile (compare-and-set lost) is read and judged again (up
/// to [`CONTROL_TRIES`] times, as an operator's control); one that stopped running is left
/// alone.
pub async fn pause_unsigned(app: &AppState) -> Result<(), RolloutError> {
    for r in app.store.live_rollouts().await? {
        let mut r = r;
        for _ in 0..CONTROL_TRIES {
            if !matches!(r.state, RolloutState::Running | RolloutState::Scheduled) {
                break;
            }
            let Err(RolloutError::KeyRevoked { .. }) = check_signers(app, r.kind, &r.artifact_id).await else {
                break;
            };
            let mut next = r.clone();
            next.state = RolloutState::Paused;
            next.reason = Some(PauseReason::KeyRevoked);
            next.updated_at = app.store.now_ms().await?;
            if app.store.update_rollout(&next).await? {
                tracing::warn!(rollout = %r.id, "paused: its artifact's signing keys were revoked");
                break;
            }
            r = app.store.get_rollout(&r.id).await?;
        }
    }
    app.wake_engine();
    Ok(())
}
