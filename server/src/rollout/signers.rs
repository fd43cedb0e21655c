//! Whether an artifact may still ship: enough of its signers must be registered and not
//! revoked. Checked when a rollout is created or resumed, and after a key is revoked
//! (running rollouts of artifacts that fall short pause with `key_revoked`).

use fleet_protocol::ArtifactKind;

use super::error::RolloutError;
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

/// Pauses running rollouts whose artifact no longer has enough non-revoked signers.
pub async fn pause_unsigned(app: &AppState) -> Result<(), RolloutError> {
    for mut r in app.store.live_rollouts().await? {
        if r.state != RolloutState::Running {
            continue;
        }
        if let Err(RolloutError::KeyRevoked { .. }) = check_signers(app, r.kind, &r.artifact_id).await {
            r.state = RolloutState::Paused;
            r.reason = Some(PauseReason::KeyRevoked);
            r.updated_at = app.store.now_ms().await?;
            app.store.update_rollout(&r).await?;
            tracing::warn!(rollout = %r.id, "paused: its artifact's signing keys were revoked");
        }
    }
    app.wake_engine();
    Ok(())
}
