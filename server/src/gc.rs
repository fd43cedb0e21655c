//! Blob garbage collection: a blob no artifact references any more is removed. Deleting an
//! artifact removes its blob at once; this pass catches what a crash or a replica left
//! behind. It holds the blob lifecycle lock (shared by replicas through a file lock), so an
//! upload of the same digest either commits before the pass looks (and is referenced) or
//! after it (and finds no blob, so writes its own). The same task expires finished
//! rollouts ([`crate::retention`]) before each pass.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::store::StoreError;

/// How often the pass runs (and once at start).
const EVERY: Duration = Duration::from_secs(3600);

/// Why a pass stopped (the next one tries again).
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("blob store: {0}")]
    Blobs(#[from] std::io::Error),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// One pass; returns how many blobs it removed.
pub async fn collect(app: &AppState) -> Result<usize, GcError> {
    let _lifecycle = app.blobs.lock().await?;
    let mut removed = 0;
    for digest in app.blobs.digests().await? {
        if !app.store.blob_referenced(&digest.to_hex()).await? {
            app.blobs.remove(&digest).await?;
            tracing::info!(sha256 = %digest, "unreferenced blob removed");
            removed += 1;
        }
    }
    app.metrics.blobs_collected.inc_by(removed as u64);
    Ok(removed)
}

/// Runs a pass at start and then every hour, until `stop` is cancelled; a pass under way
/// finishes first. Each pass first deletes rollouts finished longer than `retention` ago
/// (zero: never).
pub async fn run(app: AppState, retention: Duration, stop: CancellationToken) {
    while !stop.is_cancelled() {
        if let Err(e) = crate::retention::expire_rollouts(&app, retention).await {
            tracing::error!("rollout retention: {e}");
        }
        if let Err(e) = collect(&app).await {
            tracing::error!("blob garbage collection: {e}");
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
