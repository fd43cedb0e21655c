//! Rollout retention: finished rollouts (completed or cancelled, with no device still being
//! told to stop) older than `--rollout-retention` are deleted with their entries. Run by
//! the clean-up task in [`crate::gc`], before its blob pass; each deletion is audited as
//! `rollout.expired` by the actor `server`.

use std::time::Duration;

use crate::audit::Actor;
use crate::state::AppState;
use crate::store::StoreError;

/// The audit trail's actor for what the server does on its own.
const SERVER: &str = "server";

/// Deletes rollouts that finished more than `retention` ago (by the database's clock);
/// zero keeps them forever. Returns how many were deleted.
pub async fn expire_rollouts(app: &AppState, retention: Duration) -> Result<usize, StoreError> {
    if retention.is_zero() {
        return Ok(0);
    }
    let now = app.store.now_ms().await?;
    let before = now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let expired = app.store.delete_expired_rollouts(before).await?;
    for id in &expired {
        tracing::info!(rollout = %id, "finished rollout expired");
        let details = serde_json::json!({"retention_s": retention.as_secs()});
        app.audit(Actor(SERVER.to_owned()), "rollout.expired", id, details).await;
    }
    Ok(expired.len())
}
