//! What every request handler shares.

use std::ops::Deref;
use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::store::Store;

/// Shared application state, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub blobs: BlobStore,
    pub admin_token_hash: String,
    pub max_artifact_size: u64,
    pub upload_threshold: usize,
    /// Base URL devices download from, without a trailing slash.
    pub public_url: String,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
