//! Streaming, resumable, hashing download (CONTRACT §6 step 4).
//!
//! Bytes go to `<sha256>.part` while they are hashed (on the blocking pool, a batch at a
//! time: [`HashedFile`]); the moment more bytes arrive than the
//! signed `size` the download stops (`size_exceeded`). After a restart the part is re-hashed
//! and the download continues with `Range: bytes=N-` (206 appends, 200 starts over). Only
//! a file of the signed size and digest is renamed to `<sha256>`. The token is sent only to
//! the `--server` origin and redirects to another origin are not followed.
//!
//! Firmware can instead stream straight into the installer's inactive slot
//! ([`Installer::stream_target`](crate::install::Installer::stream_target)), which saves
//! writing the image twice. The slot held an older image, so the download first removes
//! every claim on the slot, empties it durably and leaves `<sha256>.<slot file name>` to say
//! the slot's bytes are this download's: a restart resumes from them only then. Nothing
//! trusts the claim beyond that — a resumed download re-hashes what the slot holds, and an
//! install that does not follow this run's download reads the slot back before it counts.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleet_agent_core::image;
use fleet_protocol::state::Reason;
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RANGE};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::Job;
pub use super::client::{MAX_IDLE_CONNECTIONS, http_client, http_client_presenting};
use super::hashed_file::{HashedFile, WriteLock, spawn_locked};
use crate::http::{Http, LocalError, with_causes};

/// Attempts per download before `download_failed`.
const ATTEMPTS: u32 = 5;
/// Space kept free beyond the artifact.
const SPACE_RESERVE: u64 = 1024 * 1024;

/// Why a download ended without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadError {
    /// The device's update failed, for this reason (reported).
    Failed(Reason),
    Cancelled,
    /// This process ran out of its own resources: try again later, report nothing (what
    /// was downloaded so far is kept for the resume).
    Local(LocalError),
}

/// A file operation's error: local when the process is out of descriptors, else the
/// download failed.
fn file_error(e: io::Error) -> DownloadError {
    LocalError::of_io(&e).map_or(DownloadError::Failed(Reason::DownloadFailed), DownloadError::Local)
}

/// An HTTP client bound to one server origin and device token.
#[derive(Debug, Clone)]
pub struct Downloader {
    pub http: Http,
    pub server: reqwest::Url,
    pub token: String,
    pub dir: PathBuf,
    /// Test-only pause after each chunk.
    pub chunk_delay: Duration,
    /// Held by every change to a download's file, on the blocking pool, until it is done.
    pub writes: WriteLock,
}

impl Downloader {
    fn named(&self, job: &Job, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", job.artifact.sha256))
    }

    pub fn part_path(&self, job: &Job) -> PathBuf {
        self.named(job, ".part")
    }

    /// The verified file of a finished download (not streamed into a slot).
    pub fn done_path(&self, job: &Job) -> PathBuf {
        self.named(job, "")
    }

    /// Removes what a job downloaded and its claims on slots (a slot's bytes stay: the
    /// slot is inactive).
    pub fn discard(&self, job: &Job) {
        let hex = job.artifact.sha256.to_hex();
        remove_where(&self.dir, |name| name.starts_with(&hex));
    }

    /// Runs `change` (to a download's file) on the blocking pool, holding the write lock
    /// until it is done: a download dropped meanwhile (cancelled) cannot let it land after
    /// the next claim.
    async fn locked<T: Send + 'static>(
        &self,
        change: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        spawn_locked(&self.writes, change).await.await.map_err(io::Error::other)?
    }

    /// Marks `slot` as holding the start of `job`'s download, after removing every other
    /// claim on it and emptying it durably.
    async fn claim(&self, job: &Job, slot: &Path) -> io::Result<PathBuf> {
        let slot_name = slot.file_name().and_then(|n| n.to_str()).unwrap_or("slot").to_owned();
        let claim = self.named(job, &format!(".{slot_name}"));
        let (dir, slot) = (self.dir.clone(), slot.to_owned());
        self.locked(move || {
            if !claim.exists() {
                remove_where(&dir, |name| name.ends_with(&format!(".{slot_name}")));
                // Emptied durably: a restart must not take an older image's bytes for the
                // start of this download.
                std::fs::File::create(&slot)?.sync_all()?;
                std::fs::File::create(&claim)?;
            }
            Ok(claim)
        })
        .await
    }

    /// Downloads `job`'s artifact into `into` (an inactive slot) or, without one, into the
    /// downloads directory, resuming what an earlier run left. Returns the verified image.
    pub async fn fetch(
        &self,
        job: &Job,
        into: Option<&Path>,
        mut progress: impl FnMut(u64, u64),
        cancel: &CancellationToken,
    ) -> Result<PathBuf, DownloadError> {
        let failed = file_error;
        let done = self.done_path(job);
        if into.is_none() && done.exists() {
            return Ok(done);
        }
        tokio::fs::create_dir_all(&self.dir).await.map_err(failed)?;
        let (part, claim) = match into {
            Some(slot) => (slot.to_owned(), Some(self.claim(job, slot).await.map_err(failed)?)),
            None => (self.part_path(job), None),
        };
        // What a download that fails for good removes: its claim on the slot, or its part.
        let leftover = claim.as_ref().unwrap_or(&part);
        let mut hashed = self.resume(job, &part).await?;
        self.attempts(job, &part, leftover, &mut hashed, &mut progress, cancel).await?;
        let digest: [u8; 32] = hashed.hasher.finalize().into();
        if let Err(reason) = image::digest_matches(&digest, job.artifact.sha256.as_bytes()) {
            let _ = std::fs::remove_file(leftover);
            return Err(DownloadError::Failed(reason));
        }
        if claim.is_some() {
            // Durable even when an earlier run wrote the last byte and this one only re-hashed.
            tokio::fs::File::open(&part).await.map_err(failed)?.sync_all().await.map_err(failed)?;
            return Ok(part);
        }
        std::fs::rename(&part, &done).map_err(failed)?;
        Ok(done)
    }

    /// Checks there is room for the rest, then re-hashes what an earlier run left in `part`
    /// (the rest is hashed as it streams).
    async fn resume(&self, job: &Job, part: &Path) -> Result<Hashed, DownloadError> {
        let size = job.artifact.size;
        let partial = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0).min(size);
        let free = fs4::available_space(&self.dir).unwrap_or(u64::MAX);
        if free < (size - partial).saturating_add(SPACE_RESERVE) {
            return Err(DownloadError::Failed(Reason::InsufficientSpace));
        }
        let mut hashed = Hashed { hasher: Sha256::new(), have: 0 };
        if std::fs::metadata(part).is_ok_and(|m| m.len() > 0 && m.len() <= size) {
            let part = part.to_owned();
            if let Ok((hasher, have)) = self.locked(move || hash_file_now(&part)).await {
                hashed = Hashed { hasher, have };
            }
        }
        Ok(hashed)
    }

    /// Up to [`ATTEMPTS`] requests with a growing pause between them, until every byte is
    /// in `part`. A final refusal removes `leftover`.
    async fn attempts(
        &self,
        job: &Job,
        part: &Path,
        leftover: &Path,
        hashed: &mut Hashed,
        progress: &mut impl FnMut(u64, u64),
        cancel: &CancellationToken,
    ) -> Result<(), DownloadError> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                let wait = Duration::from_millis(250 << attempt.min(5));
                tokio::select! {
                    () = cancel.cancelled() => return Err(DownloadError::Cancelled),
                    () = tokio::time::sleep(wait) => {}
                }
            }
            let outcome = tokio::select! {
                () = cancel.cancelled() => return Err(DownloadError::Cancelled),
                r = self.attempt(job, part, hashed, progress) => r,
            };
            match outcome {
                Ok(Attempt::Complete) => return Ok(()),
                Ok(Attempt::Retry) => {}
                // Kept for the resume: nothing is wrong with what was downloaded.
                Err(local @ DownloadError::Local(_)) => return Err(local),
                Err(e) => {
                    let _ = std::fs::remove_file(leftover);
                    return Err(e);
                }
            }
        }
        Err(DownloadError::Failed(Reason::DownloadFailed))
    }

    /// One request, holding a turn at the HTTP gate until its answer is read.
    /// `Ok(Retry)` keeps the part for the next attempt; `Err` is final (`Local`: for now).
    async fn attempt(
        &self,
        job: &Job,
        part: &Path,
        hashed: &mut Hashed,
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<Attempt, DownloadError> {
        if hashed.have == job.artifact.size && part.exists() {
            return Ok(Attempt::Complete);
        }
        let _turn = self.http.turn().await;
        let Some(response) = self.request(job, hashed.have).await? else {
            return Ok(Attempt::Retry);
        };
        match self.open_part(response.status(), part, hashed).await? {
            Some(file) => self.stream(response, file, job.artifact.size, hashed, progress).await,
            None => Ok(Attempt::Retry),
        }
    }

    /// Sends the request for the bytes from `from` on (the token only to the server's
    /// origin); `None` when it could not be sent, `Local` when this process is out of
    /// descriptors.
    async fn request(&self, job: &Job, from: u64) -> Result<Option<reqwest::Response>, DownloadError> {
        let mut req = self.http.client().get(&job.url);
        if super::checks::same_origin(&self.server, &job.url) {
            req = req.header(AUTHORIZATION, format!("Bearer {}", self.token));
        }
        if from > 0 {
            req = req.header(RANGE, format!("bytes={from}-"));
        }
        match req.send().await {
            Ok(response) => Ok(Some(response)),
            Err(e) => match LocalError::of(&e) {
                Some(local) => Err(DownloadError::Local(local)),
                None => {
                    tracing::warn!("download: {}", with_causes(&e));
                    Ok(None)
                }
            },
        }
    }

    /// The part opened for what the answer brings: appended to after a 206, started over
    /// after a 200. `None` for an answer worth retrying; `Err` for a refusal.
    async fn open_part(
        &self,
        status: StatusCode,
        part: &Path,
        hashed: &mut Hashed,
    ) -> Result<Option<std::fs::File>, DownloadError> {
        let failed = file_error;
        let (part, from) = (part.to_owned(), hashed.have);
        let file = match status {
            StatusCode::PARTIAL_CONTENT if from > 0 => self
                .locked(move || {
                    let mut f = std::fs::OpenOptions::new().write(true).open(&part)?;
                    f.set_len(from)?;
                    io::Seek::seek(&mut f, io::SeekFrom::Start(from))?;
                    Ok(f)
                })
                .await
                .map_err(failed)?,
            StatusCode::OK => {
                *hashed = Hashed { hasher: Sha256::new(), have: 0 };
                self.locked(move || std::fs::File::create(&part)).await.map_err(failed)?
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => return Ok(None),
            s => {
                tracing::warn!(status = %s, "download refused");
                return Err(DownloadError::Failed(Reason::DownloadFailed));
            }
        };
        Ok(Some(file))
    }

    /// Writes and hashes the answer's body into `file`, stopping the moment it runs past
    /// the signed `size`.
    async fn stream(
        &self,
        response: reqwest::Response,
        file: std::fs::File,
        size: u64,
        hashed: &mut Hashed,
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<Attempt, DownloadError> {
        let failed = file_error;
        let mut out = HashedFile::new(file, std::mem::take(&mut hashed.hasher), self.writes.clone());
        let mut stream = response.bytes_stream();
        let mut interrupted = false;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("download interrupted: {}", with_causes(&e));
                    interrupted = true;
                    break;
                }
            };
            image::within_size(hashed.have, chunk.len(), size).map_err(DownloadError::Failed)?;
            out.write(&chunk).await.map_err(failed)?;
            hashed.have += chunk.len() as u64;
            progress(hashed.have, size);
            if !self.chunk_delay.is_zero() {
                tokio::time::sleep(self.chunk_delay).await;
            }
        }
        // What arrived is written either way; an interrupted attempt's part is resumed.
        hashed.hasher = out.finish(!interrupted).await.map_err(failed)?;
        Ok(if hashed.have == size { Attempt::Complete } else { Attempt::Retry })
    }
}

/// The hash of the bytes in the part so far, and how many they are.
struct Hashed {
    hasher: Sha256,
    have: u64,
}

enum Attempt {
    Complete,
    /// Keep the part and try again.
    Retry,
}

/// Removes the files in `dir` whose names match.
fn remove_where(dir: &Path, matches: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(&matches) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A file's bytes fed into a fresh hasher, and its length: read on a blocking thread a MiB
/// at a time (through tokio's file API each read would be a hop to that pool).
pub async fn hash_file(path: &Path) -> io::Result<(Sha256, u64)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || hash_file_now(&path)).await.map_err(io::Error::other)?
}

/// [`hash_file`] on the calling thread.
fn hash_file_now(path: &Path) -> io::Result<(Sha256, u64)> {
    let mut file = std::fs::File::open(path)?;
    let (mut hasher, mut len) = (Sha256::new(), 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            return Ok((hasher, len));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_error_out_of_descriptors_is_local_and_others_fail_the_download() {
        let emfile = io::Error::from_raw_os_error(24);
        assert!(matches!(file_error(emfile), DownloadError::Local(LocalError::OutOfFiles(_))));
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(file_error(denied), DownloadError::Failed(Reason::DownloadFailed));
    }
}
