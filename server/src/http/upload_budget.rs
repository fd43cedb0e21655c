//! What an upload may send before its `file` part: the envelope and the parts' headers.
//!
//! multer (under axum's `Multipart`) buffers a part's headers whole, whatever their length,
//! and limits only the whole stream, which an upload cannot bound before its manifest is
//! read. Fed through [`UploadBudget::meter`], a body that spends [`BEFORE_FILE`] bytes
//! before the file begins ends with an error instead of filling memory: a 4 MiB part name
//! is refused after about 1 MiB.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::BoxError;
use axum::body::Body;
use fleet_protocol::envelope::MAX_ENVELOPE_BYTES;
use futures_util::StreamExt as _;

/// The most bytes read before the `file` part begins: the largest envelope, plus room for
/// the parts' headers and for the file's first bytes, which arrive with them (hyper hands
/// a body over in chunks of up to a few hundred KiB).
pub const BEFORE_FILE: u64 = MAX_ENVELOPE_BYTES as u64 + 1024 * 1024;

/// Shared between the metered body and the upload handler, which lifts the limit once the
/// `file` part has begun.
#[derive(Debug, Clone, Default)]
pub struct UploadBudget(Arc<Flags>);

#[derive(Debug, Default)]
struct Flags {
    lifted: AtomicBool,
    exceeded: AtomicBool,
}

impl UploadBudget {
    /// `body`, failing once more than [`BEFORE_FILE`] bytes were read while the limit stands.
    pub fn meter(&self, body: Body) -> Body {
        let flags = self.0.clone();
        let mut read = 0u64;
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let chunk = chunk.map_err(BoxError::from)?;
            read = read.saturating_add(chunk.len() as u64);
            if read > BEFORE_FILE && !flags.lifted.load(Ordering::Acquire) {
                flags.exceeded.store(true, Ordering::Release);
                return Err(BoxError::from(format!("more than {BEFORE_FILE} bytes before the `file` part")));
            }
            Ok(chunk)
        }))
    }

    /// Lets the rest of the body through: the file part has its own bound (the signed size).
    pub fn lift(&self) {
        self.0.lifted.store(true, Ordering::Release);
    }

    /// Whether the body was cut for spending the budget.
    pub fn exceeded(&self) -> bool {
        self.0.exceeded.load(Ordering::Acquire)
    }
}
