//! The device's trust document (CONTRACT §11): where it starts (the pinned `--trust-root`),
//! what it has accepted since (kept in `STATE_DIR/trust/`, one atomically written file per
//! version), and the rule for taking the next one ([`fleet_protocol::trust::accept_next`]).
//! The agent never goes back: on start it takes the higher of the pinned version and the
//! highest it accepted before, and a document of a version not above its own is refused.

use std::path::{Path, PathBuf};

use fleet_protocol::state::Reason;
use fleet_protocol::trust::{self, RoleName, TRUST_PAYLOAD_TYPE, TrustDocument, TrustError};
use fleet_protocol::{ArtifactKind, Envelope, Verifier};
use time::OffsetDateTime;

use crate::atomic_file::{WriteOptions, write_atomically};

/// Why a trust root could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: not a DSSE envelope: {1}")]
    Envelope(PathBuf, fleet_protocol::envelope::EnvelopeError),
    #[error("{0}: {1}")]
    Trust(PathBuf, TrustError),
}

/// The trust document in force and where accepted ones are kept.
#[derive(Debug, Clone)]
pub struct Trust {
    current: TrustDocument,
    dir: PathBuf,
    durable: bool,
}

/// The reason a refused trust document is reported with.
pub fn reason_of(e: &TrustError) -> Reason {
    match e {
        TrustError::Malformed(_) | TrustError::SignatureInvalid { .. } => Reason::TrustSignatureInvalid,
        TrustError::Version { .. } => Reason::TrustRollback,
        TrustError::Expired { .. } => Reason::TrustExpired,
    }
}

/// A stored envelope, checked against its own root (expiry aside: an expired document
/// still names who may sign its successor).
fn read_document(path: &Path) -> Result<TrustDocument, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Read(path.into(), e))?;
    let envelope = Envelope::from_json(&bytes).map_err(|e| LoadError::Envelope(path.into(), e))?;
    trust::accept_initial(&envelope, OffsetDateTime::UNIX_EPOCH).map_err(|e| LoadError::Trust(path.into(), e))
}

impl Trust {
    /// The pinned root, or the highest version accepted before (in `state_dir/trust`).
    pub fn load(pinned: &Path, state_dir: &Path, durable: bool) -> Result<Self, LoadError> {
        let mut current = read_document(pinned)?;
        let dir = state_dir.join("trust");
        std::fs::create_dir_all(&dir).map_err(|e| LoadError::Read(dir.clone(), e))?;
        let entries = std::fs::read_dir(&dir).map_err(|e| LoadError::Read(dir.clone(), e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match read_document(&path) {
                Ok(doc) if doc.version > current.version => current = doc,
                Ok(_) => {}
                Err(e) => tracing::warn!("ignoring a stored trust document: {e}"),
            }
        }
        tracing::info!(version = current.version, "trust document in force");
        Ok(Self { current, dir, durable })
    }

    pub fn version(&self) -> u64 {
        self.current.version
    }

    pub fn document(&self) -> &TrustDocument {
        &self.current
    }

    /// The verifier of the role that signs `kind`.
    pub fn verifier(&self, kind: ArtifactKind) -> Verifier {
        self.current.verifier(RoleName::from(kind))
    }

    /// Refuses an artifact while the document in force has expired (a frozen server cannot
    /// keep a revoked key working forever); `None` when it is current.
    pub fn refusal(&self, now: OffsetDateTime) -> Option<Reason> {
        self.current.expired(now).then_some(Reason::TrustExpired)
    }

    /// Applies the next version by TUF's rule and keeps it; the one in force is unchanged on
    /// a refusal.
    pub fn apply(&mut self, envelope: &Envelope, now: OffsetDateTime) -> Result<u64, ApplyError> {
        let next = trust::accept_next(&self.current, envelope, now)?;
        let path = self.dir.join(format!("{:020}.json", next.version));
        let bytes = serde_json::to_vec(envelope).expect("an envelope always serialises");
        write_atomically(&path, &bytes, WriteOptions { durable: self.durable, mode: None }).map_err(ApplyError::Io)?;
        self.current = next;
        Ok(self.current.version)
    }
}

/// Why the next document was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Refused(#[from] TrustError),
    #[error("keeping the trust document: {0}")]
    Io(std::io::Error),
}

/// The version an announcement claims (unverified: a hint of what to fetch).
pub fn announced_version(bytes: &[u8]) -> Option<u64> {
    let envelope = Envelope::from_json(bytes).ok()?;
    (envelope.payload_type == TRUST_PAYLOAD_TYPE).then(|| trust::claimed_version(&envelope)).flatten()
}
