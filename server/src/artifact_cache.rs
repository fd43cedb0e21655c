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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_protocol::ArtifactKind;

use crate::store::{ArtifactRecord, Store, StoreError, StoreResult};

/// How long a record is served from memory before the store is asked again.
pub const TTL: Duration = Duration::from_secs(30);
/// Records kept at most; when full, expired ones are dropped, then all of them.
const CAPACITY: usize = 256;

/// Recently read artifact records by id.
#[derive(Debug, Default)]
pub struct ArtifactCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    records: HashMap<String, (Instant, Arc<ArtifactRecord>)>,
    /// Bumped by every `forget`: a read that began before one is not kept, since it may
    /// have raced the deletion.
    forgets: u64,
}

impl ArtifactCache {
    /// The record of `kind` `id`, from memory if read within [`TTL`], else from `store`.
    pub async fn get(&self, store: &dyn Store, kind: ArtifactKind, id: &str) -> StoreResult<Arc<ArtifactRecord>> {
        if let Some(record) = self.fresh(id) {
            // Ids are unique across kinds: a firmware id asked for as a config is not found.
            return if record.kind == kind { Ok(record) } else { Err(StoreError::NotFound) };
        }
        let forgets = self.entries.lock().expect("not poisoned").forgets;
        let record = Arc::new(store.get_artifact(kind, id).await?);
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.forgets != forgets {
            return Ok(record);
        }
        if entries.records.len() >= CAPACITY {
            entries.records.retain(|_, (read, _)| read.elapsed() < TTL);
            if entries.records.len() >= CAPACITY {
                entries.records.clear();
            }
        }
        entries.records.insert(id.to_owned(), (Instant::now(), record.clone()));
        Ok(record)
    }

    /// Drops `id` (deleted, or its blob found missing).
    pub fn forget(&self, id: &str) {
        let mut entries = self.entries.lock().expect("not poisoned");
        entries.records.remove(id);
        entries.forgets += 1;
    }

    fn fresh(&self, id: &str) -> Option<Arc<ArtifactRecord>> {
        let entries = self.entries.lock().expect("not poisoned");
        let (read, record) = entries.records.get(id)?;
        (read.elapsed() < TTL).then(|| record.clone())
    }
}
