//! Stale presence. A device says `online` (retained) when it connects and again every
//! `fleet_protocol::presence::REFRESH`; its will, or the agent itself on a clean stop, says
//! `offline`. When neither arrives — a broker that lost its retained messages with a server
//! restart while the device went away, an agent that stopped without a word — a device stays
//! `online` from silence alone. This task ends that: a device still `online` that nothing
//! (a report, a presence message) has come from for `--presence-timeout` (default
//! `fleet_protocol::presence::SILENCE_BOUND`) is marked offline. It is one idempotent
//! statement, so every replica may run it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::DeviceChanges;
use crate::store::{Store, StoreError};

/// How often the bound is checked: a quarter of it, between 250 ms and 30 s.
pub fn check_every(bound: Duration) -> Duration {
    (bound / 4).clamp(Duration::from_millis(250), Duration::from_secs(30))
}

/// One pass: marks offline the devices silent for longer than `bound`; returns them.
pub async fn expire(store: &dyn Store, bound: Duration) -> Result<Vec<fleet_protocol::DeviceId>, StoreError> {
    let now = store.now_ms().await?;
    let bound_ms = i64::try_from(bound.as_millis()).unwrap_or(i64::MAX);
    let expired = store.expire_presence(now.saturating_sub(bound_ms)).await?;
    if !expired.is_empty() {
        tracing::info!(devices = expired.len(), ?bound, "silent devices marked offline");
    }
    Ok(expired)
}

/// Runs a pass every [`check_every`] until `stop` is cancelled; the devices it marks
/// offline go to the event announcer (`device.offline`).
pub async fn run(store: Arc<dyn Store>, bound: Duration, changes: Arc<DeviceChanges>, stop: CancellationToken) {
    let every = check_every(bound);
    while !stop.is_cancelled() {
        match expire(store.as_ref(), bound).await {
            Ok(expired) => changes.touch(expired),
            Err(e) => tracing::warn!("stale presence: {e}"),
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_a_quarter_of_the_bound_within_limits() {
        assert_eq!(check_every(Duration::from_secs(1)), Duration::from_millis(250));
        assert_eq!(check_every(Duration::from_secs(8)), Duration::from_secs(2));
        assert_eq!(check_every(fleet_protocol::presence::SILENCE_BOUND), Duration::from_secs(30));
    }
}
