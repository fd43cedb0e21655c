//! Content-addressed blob store: `blobs/sha256/<first two hex>/<digest>`.
//!
//! An upload streams into a temporary file under `blobs/tmp/` while it is hashed and
//! counted; only a complete, verified file is fsynced and renamed into place, so a blob
//! path always holds exactly the bytes its name promises. A temporary file that is dropped
//! without being committed is deleted.
//!
//! Hashing and writing run on a thread of their own, fed through a short queue, so they
//! overlap with receiving and parsing the request; the file is synced every
//! [`SYNC_EVERY`] bytes in the background, so the final fsync has little left to write.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use fleet_protocol::Sha256Digest;
use sha2::{Digest, Sha256};
use tokio::fs::{self, File};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// A temporary upload file untouched this long is a crash's leftover.
const STALE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(3600);

/// Buffered writes: 1 MiB per syscall keeps a 1 GiB upload cheap.
const WRITE_BUFFER: usize = 1 << 20;
/// Received chunks waiting for the writer thread at most (memory stays bounded while the
/// disk is slower than the network).
const QUEUED_CHUNKS: usize = 16;
/// Bytes written between background syncs of an upload.
const SYNC_EVERY: u64 = 64 << 20;

/// Where blobs live.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    /// Serialises "commit blob + insert row" against "delete row + remove blob" so that
    /// a blob is never removed between the rename and the insert of a new reference.
    lifecycle: Mutex<()>,
}

impl BlobStore {
    /// Opens the store below `root`, removing temporary files a crash left behind. The
    /// directory may be shared by replicas: only files untouched for an hour are removed,
    /// never another replica's upload in progress.
    pub async fn open(root: PathBuf) -> io::Result<Self> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).await?;
        let mut entries = fs::read_dir(&tmp).await?;
        while let Some(entry) = entries.next_entry().await? {
            let stale = entry.metadata().await?.modified()?.elapsed().is_ok_and(|age| age > STALE_UPLOAD);
            if stale {
                let _ = fs::remove_file(entry.path()).await;
            }
        }
        fs::create_dir_all(root.join("sha256")).await?;
        Ok(Self { root, lifecycle: Mutex::new(()) })
    }

    /// The blob directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, digest: &Sha256Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    /// Free bytes on the blob file system.
    pub fn available_space(&self) -> io::Result<u64> {
        fs4::available_space(&self.root)
    }

    /// Starts a new upload into a fresh temporary file.
    pub async fn begin(&self) -> io::Result<BlobUpload> {
        let name = crate::random::bytes::<16>().map_err(io::Error::other)?;
        let path = self.root.join("tmp").join(hex::encode(name));
        let temp = TempPath(Some(path.clone()));
        // Owner-only: a config blob may hold secrets.
        let file = File::options().write(true).create_new(true).mode(0o600).open(&path).await?.into_std().await;
        let (chunks, queue) = mpsc::channel(QUEUED_CHUNKS);
        let writer = tokio::task::spawn_blocking(move || write_hashed(file, queue));
        Ok(BlobUpload { chunks, writer: Some(writer), temp, len: 0 })
    }

    /// Holds the lifecycle lock while a reference to a blob is added or removed.
    pub async fn lock(&self) -> io::Result<LifecycleGuard<'_>> {
        let local = self.lifecycle.lock().await;
        let path = self.root.join("lifecycle.lock");
        let file = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
            fs4::FileExt::lock(&file)?;
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(LifecycleGuard { _local: local, _file: file })
    }

    /// Every stored blob's digest (files whose names are not digests are left alone).
    pub async fn digests(&self) -> io::Result<Vec<Sha256Digest>> {
        let mut out = vec![];
        let mut shards = fs::read_dir(self.root.join("sha256")).await?;
        while let Some(shard) = shards.next_entry().await? {
            if !shard.file_type().await?.is_dir() {
                continue;
            }
            let mut files = fs::read_dir(shard.path()).await?;
            while let Some(file) = files.next_entry().await? {
                if let Some(digest) = file.file_name().to_str().and_then(|n| Sha256Digest::parse(n).ok()) {
                    out.push(digest);
                }
            }
        }
        Ok(out)
    }

    /// Moves a finished upload into place (fsync, rename, fsync the directory). Returns
    /// whether the blob is new; an identical blob already present is kept as it is.
    /// Call with the lifecycle lock held.
    pub async fn commit(&self, upload: FinishedUpload) -> io::Result<bool> {
        let dest = self.path(&upload.digest);
        if fs::try_exists(&dest).await? {
            return Ok(false);
        }
        let dir = dest.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).await?;
        let mut temp = upload.temp;
        fs::rename(temp.path(), &dest).await?;
        temp.disarm();
        File::open(dir).await?.sync_all().await?;
        Ok(true)
    }

    /// Removes a blob; call with the lifecycle lock held, after checking no row refers to it.
    pub async fn remove(&self, digest: &Sha256Digest) -> io::Result<()> {
        match fs::remove_file(self.path(digest)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A temporary file deleted on drop unless disarmed.
/// Held while blobs are committed or removed: this process's mutex and an exclusive lock
/// on `lifecycle.lock` in the blob directory, so replicas sharing the directory exclude
/// each other too.
#[derive(Debug)]
pub struct LifecycleGuard<'a> {
    _local: tokio::sync::MutexGuard<'a, ()>,
    _file: std::fs::File,
}

#[derive(Debug)]
struct TempPath(Option<PathBuf>);

impl TempPath {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("path present until disarmed")
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An upload in progress: bytes are counted here, hashed and written by its writer thread.
#[derive(Debug)]
pub struct BlobUpload {
    // Dropped in this order: the writer sees the queue close before the file is removed.
    /// Chunks for the writer; `None` marks the end.
    chunks: mpsc::Sender<Option<Bytes>>,
    /// The writer thread, until its outcome was taken.
    writer: Option<JoinHandle<io::Result<Sha256Digest>>>,
    temp: TempPath,
    len: u64,
}

impl BlobUpload {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `chunk`; waits while the queue is full.
    pub async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.len += chunk.len() as u64;
        match self.chunks.send(Some(chunk)).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.writer_error().await),
        }
    }

    /// Waits for the writer to write, fsync and hash everything; returns the digest and
    /// length of what was written.
    pub async fn finish(mut self) -> io::Result<FinishedUpload> {
        // The end mark; an upload dropped without it is abandoned (no final fsync).
        if self.chunks.send(None).await.is_err() {
            return Err(self.writer_error().await);
        }
        let writer = self.writer.take().ok_or_else(|| io::Error::other("the upload's writer already ended"))?;
        let digest = writer.await.map_err(io::Error::other)??;
        Ok(FinishedUpload { temp: self.temp, digest, len: self.len })
    }

    /// Why the writer stopped before the end mark (it does only on an error).
    async fn writer_error(&mut self) -> io::Error {
        match self.writer.take() {
            Some(writer) => match writer.await {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => io::Error::other("the upload's writer stopped early"),
                Err(e) => io::Error::other(e),
            },
            None => io::Error::other("the upload's writer already ended"),
        }
    }
}

/// The writer thread: hashes and writes every chunk until the end mark, syncing in the
/// background every [`SYNC_EVERY`] bytes (one sync at a time), then fsyncs. Without the
/// end mark (the upload was dropped) it stops with an error and syncs nothing more.
fn write_hashed(file: std::fs::File, mut queue: mpsc::Receiver<Option<Bytes>>) -> io::Result<Sha256Digest> {
    let mut hasher = Sha256::new();
    let mut out = io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut unsynced = 0u64;
    let mut syncing: Option<std::thread::JoinHandle<io::Result<()>>> = None;
    loop {
        let chunk = match queue.blocking_recv() {
            Some(Some(chunk)) => chunk,
            Some(None) => break,
            None => return Err(io::Error::new(io::ErrorKind::Interrupted, "upload abandoned")),
        };
        hasher.update(&chunk);
        out.write_all(&chunk)?;
        unsynced += chunk.len() as u64;
        if unsynced >= SYNC_EVERY && syncing.as_ref().is_none_or(|s| s.is_finished()) {
            if let Some(done) = syncing.take() {
                joined(done)?;
            }
            out.flush()?;
            let file = out.get_ref().try_clone()?;
            syncing = Some(std::thread::Builder::new().name("blob-sync".into()).spawn(move || file.sync_data())?);
            unsynced = 0;
        }
    }
    if let Some(done) = syncing {
        joined(done)?;
    }
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok(Sha256Digest::from_bytes(hasher.finalize().into()))
}

/// The outcome of a background sync.
fn joined(sync: std::thread::JoinHandle<io::Result<()>>) -> io::Result<()> {
    sync.join().map_err(|_| io::Error::other("background sync panicked"))?
}

/// A complete temporary file, not yet in place.
#[derive(Debug)]
pub struct FinishedUpload {
    temp: TempPath,
    pub digest: Sha256Digest,
    pub len: u64,
}
