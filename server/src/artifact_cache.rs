//! Artifact records for the device routes and rollout bodies, kept in memory for a short
//! while.
//!
//! During a rollout every device asks for its command and then its blob; each used to read
//! the same artifact row and its signers again (two statements per request), and so did
//! every `GET /rollouts/{id}` an operator's dashboard polls. A record
//! never changes after its upload (ids are fresh random values, never reused), so it can be
//! kept; it can only disappear. Deleting through this process forgets it at once; another
//! replica's deletion is seen within [`TTL`], and sooner on the blob route, which checks the
//! blob file and asks the store again when it is gone. The artifact routes themselves
//! (`GET /firmware/{id}`, …) read the store.

use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::ArtifactKind;

use crate::remembered::Remembered;
use crate::store::{ArtifactRecord, Store, StoreError, StoreResult};

/// How long a record is served from memory before the store is asked again.
pub const TTL: Duration = Duration::from_secs(30);
/// Records kept at most.
const CAPACITY: usize = 256;

/// Recently read artifact records by id.
#[derive(Debug)]
pub struct ArtifactCache {
    records: Remembered<Arc<ArtifactRecord>>,
}

impl Default for ArtifactCache {
    fn default() -> Self {
        Self { records: Remembered::new(TTL, CAPACITY) }
    }
}

impl ArtifactCache {
    /// The record of `kind` `id`, from memory if read within [`TTL`], else from `store`.
    pub async fn get(&self, store: &dyn Store, kind: ArtifactKind, id: &str) -> StoreResult<Arc<ArtifactRecord>> {
        if let Some(record) = self.records.fresh(id) {
            // Ids are unique across kinds: a firmware id asked for as a config is not found.
            return if record.kind == kind { Ok(record) } else { Err(StoreError::NotFound) };
        }
        let generation = self.records.generation();
        let record = Arc::new(store.get_artifact(kind, id).await?);
        self.records.keep(id, record.clone(), generation);
        Ok(record)
    }

    /// Drops `id` (deleted, or its blob found missing).
    pub fn forget(&self, id: &str) {
        self.records.forget(id);
    }
}
