//! The received image against its manifest, chunk by chunk: never more bytes than the
//! manifest's size, and at the end exactly its size and SHA-256. Nothing is kept but the
//! running hash, so a device streams the image straight into its inactive slot.

use sha2::{Digest as _, Sha256};

use crate::Reason;

/// Whether `incoming` more bytes after `have` stay within `size` (else `size_exceeded`).
pub fn within_size(have: u64, incoming: usize, size: u64) -> Result<(), Reason> {
    let total = have.checked_add(incoming as u64).ok_or(Reason::SizeExceeded)?;
    if total > size { Err(Reason::SizeExceeded) } else { Ok(()) }
}

/// Whether the hash of what arrived is the manifest's (else `digest_mismatch`).
pub fn digest_matches(received: &[u8; 32], expected: &[u8; 32]) -> Result<(), Reason> {
    if received == expected { Ok(()) } else { Err(Reason::DigestMismatch) }
}

/// A streaming check of one image.
#[derive(Debug, Clone)]
pub struct ImageCheck {
    size: u64,
    sha256: [u8; 32],
    have: u64,
    hasher: Sha256,
}

impl ImageCheck {
    pub fn new(size: u64, sha256: [u8; 32]) -> Self {
        Self { size, sha256, have: 0, hasher: Sha256::new() }
    }

    /// Takes the next chunk, refusing it if it would pass the manifest's size.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Reason> {
        within_size(self.have, chunk.len(), self.size)?;
        self.hasher.update(chunk);
        self.have += chunk.len() as u64;
        Ok(())
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.have
    }

    /// The final word: all bytes arrived and their SHA-256 is the manifest's. A short
    /// image is a failed download, not a digest mismatch.
    pub fn finish(self) -> Result<(), Reason> {
        if self.have != self.size {
            return Err(Reason::DownloadFailed);
        }
        digest_matches(&self.hasher.finalize().into(), &self.sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(image: &[u8]) -> ImageCheck {
        ImageCheck::new(image.len() as u64, Sha256::digest(image).into())
    }

    #[test]
    fn an_image_in_chunks_of_any_size_passes() {
        let image: [u8; 1000] = core::array::from_fn(|i| (i % 251) as u8);
        for chunk in [1, 7, 256, 999, 1000] {
            let mut c = check(&image);
            image.chunks(chunk).try_for_each(|part| c.push(part)).unwrap();
            assert_eq!(c.finish(), Ok(()), "chunks of {chunk}");
        }
    }

    #[test]
    fn a_byte_too_many_a_byte_changed_or_missing_is_refused() {
        let image = [7u8; 64];
        let mut long = check(&image);
        long.push(&image).unwrap();
        assert_eq!(long.push(&[0]), Err(Reason::SizeExceeded));
        let mut changed = check(&image);
        changed.push(&[8u8; 64]).unwrap();
        assert_eq!(changed.finish(), Err(Reason::DigestMismatch));
        let mut short = check(&image);
        short.push(&image[..63]).unwrap();
        assert_eq!(short.finish(), Err(Reason::DownloadFailed));
        assert_eq!(within_size(u64::MAX, 1, u64::MAX), Err(Reason::SizeExceeded));
    }
}
