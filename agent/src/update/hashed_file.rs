//! A download's file: hashed as the chunks arrive, written on the blocking pool a batch at
//! a time while the next batch is received and hashed.
//!
//! The runtime thread hands what it gathered to a blocking thread that writes it whenever
//! that thread is idle, or once [`BATCH`] bytes wait, and goes on receiving and hashing:
//! a fast stream is written in large batches, a slow one chunk by chunk. At most one batch
//! is being written, so memory stays at two batches whatever the disk does, and no thread
//! waits on the network. Writing is the slow part here (fresh page-cache pages on a VM:
//! BENCHMARKS.md), so the writer does nothing else: hashing on the writer too made a
//! 256 MiB download slower (0.63–0.72 s → 0.88–0.94 s).

use std::io::{self, Write as _};
use std::mem;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Bytes gathered before they are handed to the writer: 1 MiB per `write` syscall.
const BATCH: usize = 1 << 20;

/// Held by every change to a download's file (a batch written, the file opened, cut to
/// where a resume starts, a slot emptied), shared by every download of one device: a
/// cancelled download's last change never lands after the next download's claim.
pub type WriteLock = Arc<Mutex<()>>;

/// Starts `change` on the blocking pool holding `lock` until it is done, whether or not
/// anyone still waits for it.
pub async fn spawn_locked<T: Send + 'static>(
    lock: &WriteLock,
    change: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> JoinHandle<io::Result<T>> {
    let guard = lock.clone().lock_owned().await;
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        change()
    })
}

/// What the writer thread holds while it writes a batch, and hands back.
#[derive(Debug)]
struct Parts {
    file: std::fs::File,
    /// The written batch's buffer, emptied, for the next batch.
    spare: Vec<u8>,
}

/// A file being written and hashed.
#[derive(Debug)]
pub struct HashedFile {
    lock: WriteLock,
    hasher: Sha256,
    /// Received bytes not yet handed off.
    pending: Vec<u8>,
    /// The file while no batch is being written.
    idle: Option<Parts>,
    /// The batch being written.
    writing: Option<JoinHandle<io::Result<Parts>>>,
}

impl HashedFile {
    /// Appends to `file` (positioned where the bytes go), continuing `hasher`.
    pub fn new(file: std::fs::File, hasher: Sha256, lock: WriteLock) -> Self {
        Self { lock, hasher, pending: Vec::new(), idle: Some(Parts { file, spare: Vec::new() }), writing: None }
    }

    /// Takes `chunk`. It is handed to the writer at once if the writer is idle (a slow link
    /// loses little to a crash); otherwise it joins the next batch, and only a full batch
    /// waits for the writer. A batch is handed off before `chunk` would take it past
    /// [`BATCH`], so a buffer never grows beyond it (or one larger chunk).
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        if !self.pending.is_empty() && self.pending.len() + chunk.len() > BATCH {
            self.hand_off().await?;
        }
        self.pending.extend_from_slice(chunk);
        if self.writing.as_ref().is_none_or(JoinHandle::is_finished) {
            self.hand_off().await?;
        }
        Ok(())
    }

    /// Writes and hashes everything taken, then fsyncs when `sync`; returns the hasher.
    pub async fn finish(mut self, sync: bool) -> io::Result<Sha256> {
        if !self.pending.is_empty() {
            self.hand_off().await?;
        }
        let Parts { file, .. } = self.settle().await?;
        if sync {
            tokio::task::spawn_blocking(move || file.sync_all()).await.map_err(io::Error::other)??;
        }
        Ok(self.hasher)
    }

    /// Starts writing the pending bytes once the previous batch is written.
    async fn hand_off(&mut self) -> io::Result<()> {
        let Parts { mut file, spare } = self.settle().await?;
        let mut batch = mem::replace(&mut self.pending, spare);
        self.writing = Some(
            spawn_locked(&self.lock, move || {
                file.write_all(&batch)?;
                batch.clear();
                Ok(Parts { file, spare: batch })
            })
            .await,
        );
        Ok(())
    }

    /// The file, once no batch is being written.
    async fn settle(&mut self) -> io::Result<Parts> {
        if let Some(writing) = self.writing.take() {
            return writing.await.map_err(io::Error::other)?;
        }
        self.idle.take().ok_or_else(|| io::Error::other("an earlier write of this download failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_and_hashes_every_chunk_in_order_after_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        std::fs::write(&path, b"head-").unwrap();
        let mut hasher = Sha256::new();
        hasher.update(b"head-");
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.flush().unwrap();
        let mut out = HashedFile::new(file, hasher, WriteLock::default());
        // Chunks of odd sizes that cross batch boundaries several times.
        let body: Vec<u8> = (0..(3 * BATCH + 12_345)).map(|i| (i % 251) as u8).collect();
        for chunk in body.chunks(70_001) {
            out.write(chunk).await.unwrap();
        }
        let digest: [u8; 32] = out.finish(true).await.unwrap().finalize().into();

        let written = std::fs::read(&path).unwrap();
        assert_eq!(written.len(), 5 + body.len());
        assert_eq!(&written[5..], &body[..]);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&written)));
    }

    #[tokio::test]
    async fn a_claim_waits_for_the_batch_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("slot")).unwrap();
        let lock = WriteLock::default();
        let mut out = HashedFile::new(file, Sha256::new(), lock.clone());
        // The writer is idle: the batch goes to it at once, and it holds the lock until the
        // batch is written.
        out.write(&vec![7u8; BATCH]).await.unwrap();
        drop(out);
        let _claimed = lock.lock().await;
        assert_eq!(std::fs::metadata(dir.path().join("slot")).unwrap().len(), BATCH as u64);
    }
}
