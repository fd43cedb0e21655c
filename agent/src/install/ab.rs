//! The default back end: two slot files (`slots/a.img`, `slots/b.img`) and
//! `slots/boot.json`, which plays the bootloader: the active slot, and an optional trial
//! slot with a boot counter. Every change to `boot.json` is atomic, so a crash at any point
//! leaves a bootable active slot. Firmware downloads stream straight into the inactive
//! slot ([`Installer::stream_target`]); an image from elsewhere is copied in.

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Installer;
use crate::atomic_file::{WriteOptions, write_atomically};

/// Boots of a trial slot before the bootloader falls back (`boot_failed`).
pub const TRIAL_BOOTS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BootState {
    active: String,
    trial: Option<Trial>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Trial {
    slot: String,
    boots_left: u32,
}

/// A/B slot files in a directory.
#[derive(Debug)]
pub struct AbSlots {
    dir: PathBuf,
    durable: bool,
    booted: Mutex<String>,
    /// Test-only: pause after each MiB copied, to make a copy observable.
    write_delay: Duration,
    /// Held by the copy writing a slot.
    writing: Arc<Mutex<()>>,
}

fn other(slot: &str) -> &'static str {
    if slot == "a" { "b" } else { "a" }
}

impl AbSlots {
    pub fn new(dir: PathBuf, durable: bool) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        for slot in ["a", "b"] {
            let path = dir.join(format!("{slot}.img"));
            if !path.exists() {
                std::fs::File::create(path)?;
            }
        }
        Ok(Self {
            dir,
            durable,
            booted: Mutex::new("a".into()),
            write_delay: Duration::ZERO,
            writing: Default::default(),
        })
    }

    #[cfg(test)]
    fn with_write_delay(self, write_delay: Duration) -> Self {
        Self { write_delay, ..self }
    }

    pub fn slot_path(&self, slot: &str) -> PathBuf {
        self.dir.join(format!("{slot}.img"))
    }

    /// The slot the bootloader starts when no trial is pending.
    pub fn active_slot(&self) -> io::Result<String> {
        Ok(self.load()?.active)
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("boot.json")
    }

    /// The boot state; a missing one is slot a with no trial, and so is one that cannot be
    /// parsed (truncated, garbage) — the default a bootloader falls back to on a corrupt
    /// environment — with the error logged and the file kept as `boot.json.corrupt`.
    fn load(&self) -> io::Result<BootState> {
        let default = || BootState { active: "a".into(), trial: None };
        match std::fs::read(self.state_path()) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(state) => Ok(state),
                Err(e) => {
                    let kept = self.state_path().with_extension("json.corrupt");
                    tracing::error!(
                        "boot state {} is corrupt ({e}): booting slot a; kept as {}",
                        self.state_path().display(),
                        kept.display()
                    );
                    std::fs::rename(self.state_path(), &kept)?;
                    Ok(default())
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(default()),
            Err(e) => Err(e),
        }
    }

    fn save(&self, state: &BootState) -> io::Result<()> {
        let bytes = serde_json::to_vec(state).map_err(io::Error::other)?;
        write_atomically(&self.state_path(), &bytes, WriteOptions { durable: self.durable, mode: None })
    }

    /// The slot an install may write: the one not running — unless that is the slot the
    /// bootloader falls back to (a trial of an earlier update still pending), which is
    /// never written.
    fn writable_slot(&self) -> io::Result<&'static str> {
        let target = other(&self.booted());
        if self.load()?.active == target {
            return Err(io::Error::other(format!("slot {target} is the fallback of a pending trial")));
        }
        Ok(target)
    }

    fn booted(&self) -> String {
        self.booted.lock().expect("not poisoned").clone()
    }

    /// Writes `image` into `slot` on a blocking thread, in-kernel where the system can
    /// (`copy_file_range`), a chunk at a time. Dropping the future (a cancelled install)
    /// stops the copy after the chunk in progress, and copies never overlap: the next
    /// install waits for the previous copy to stop.
    async fn copy_into(&self, image: &Path, slot: &str) -> io::Result<()> {
        let stop = CancellationToken::new();
        let _stop_when_dropped = stop.clone().drop_guard();
        let (image, target) = (image.to_owned(), self.slot_path(slot));
        let (writing, durable, delay) = (self.writing.clone(), self.durable, self.write_delay);
        tokio::task::spawn_blocking(move || {
            let _only_writer = writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // A copy stopped before it got the lock must not empty the slot a later
            // install has written meanwhile.
            if stop.is_cancelled() {
                return Err(cancelled());
            }
            copy_file(&image, &target, durable, delay, &stop)
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// Bytes copied between checks for a stop.
const COPY_CHUNK: u64 = 8 << 20;
/// Bytes copied between test-only pauses.
const DELAYED_CHUNK: u64 = 1 << 20;

fn cancelled() -> io::Error {
    io::Error::other("install cancelled")
}

fn copy_file(image: &Path, target: &Path, durable: bool, delay: Duration, stop: &CancellationToken) -> io::Result<()> {
    let mut src = std::fs::File::open(image)?;
    let mut dst = std::fs::File::create(target)?;
    let chunk = if delay.is_zero() { COPY_CHUNK } else { DELAYED_CHUNK };
    loop {
        if stop.is_cancelled() {
            return Err(cancelled());
        }
        if io::copy(&mut (&mut src).take(chunk), &mut dst)? == 0 {
            break;
        }
        std::thread::sleep(delay);
    }
    if durable {
        dst.sync_all()?;
    }
    Ok(())
}

impl Installer for AbSlots {
    async fn boot(&self) -> io::Result<()> {
        let mut state = self.load()?;
        let booted = match state.trial.take() {
            Some(t) if t.boots_left > 0 => {
                let slot = t.slot.clone();
                state.trial = Some(Trial { slot: t.slot, boots_left: t.boots_left - 1 });
                slot
            }
            // Out of boots (or no trial): the active slot.
            _ => state.active.clone(),
        };
        self.save(&state)?;
        *self.booted.lock().expect("not poisoned") = booted;
        Ok(())
    }

    async fn booted_slot(&self) -> io::Result<String> {
        Ok(self.booted())
    }

    fn stream_target(&self) -> Option<PathBuf> {
        self.writable_slot().ok().map(|slot| self.slot_path(slot))
    }

    async fn install(&self, image: &Path) -> io::Result<()> {
        let target = self.writable_slot()?;
        if image == self.slot_path(target) {
            // Downloaded into the slot, verified and fsynced there.
            return Ok(());
        }
        self.copy_into(image, target).await
    }

    async fn switch(&self) -> io::Result<()> {
        let mut state = self.load()?;
        state.trial = Some(Trial { slot: other(&self.booted()).into(), boots_left: TRIAL_BOOTS });
        self.save(&state)
    }

    async fn reboot(&self) -> io::Result<()> {
        Ok(())
    }

    async fn commit(&self) -> io::Result<()> {
        let booted = self.booted();
        self.save(&BootState { active: booted, trial: None })
    }

    async fn rollback(&self) -> io::Result<()> {
        let mut state = self.load()?;
        state.trial = None;
        self.save(&state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trial_commit_and_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let ab = AbSlots::new(dir.path().join("slots"), true).unwrap();
        ab.boot().await.unwrap();
        assert_eq!(ab.booted_slot().await.unwrap(), "a");
        let image = dir.path().join("img");
        std::fs::write(&image, b"new").unwrap();

        ab.install(&image).await.unwrap();
        assert_eq!(std::fs::read(ab.slot_path("b")).unwrap(), b"new");
        ab.switch().await.unwrap();
        ab.boot().await.unwrap();
        assert_eq!(ab.booted_slot().await.unwrap(), "b");
        ab.commit().await.unwrap();
        ab.boot().await.unwrap();
        assert_eq!((ab.booted_slot().await.unwrap(), ab.active_slot().unwrap()), ("b".into(), "b".into()));

        // A trial that never commits falls back after TRIAL_BOOTS boots.
        ab.install(&image).await.unwrap();
        ab.switch().await.unwrap();
        for _ in 0..TRIAL_BOOTS {
            ab.boot().await.unwrap();
            assert_eq!(ab.booted_slot().await.unwrap(), "a");
        }
        ab.boot().await.unwrap();
        assert_eq!(ab.booted_slot().await.unwrap(), "b");
    }

    #[tokio::test]
    async fn a_dropped_install_stops_and_never_overlaps_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let ab = AbSlots::new(dir.path().join("slots"), false).unwrap().with_write_delay(Duration::from_millis(100));
        ab.boot().await.unwrap();
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        std::fs::write(&old, vec![1u8; 30 << 20]).unwrap();
        std::fs::write(&new, vec![2u8; (1 << 20) + 5]).unwrap();

        // Cancelled mid-copy (the runner drops the task): the copy stops within a chunk
        // (the whole of it would take 3 s), and the next install waits for that.
        assert!(tokio::time::timeout(Duration::from_millis(150), ab.install(&old)).await.is_err());
        let started = std::time::Instant::now();
        ab.install(&new).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(1500), "the dropped copy went on: {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(std::fs::read(ab.slot_path("b")).unwrap(), std::fs::read(&new).unwrap());
    }

    #[tokio::test]
    async fn the_fallback_of_a_pending_trial_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let ab = AbSlots::new(dir.path().join("slots"), false).unwrap();
        ab.boot().await.unwrap();
        assert_eq!(ab.stream_target(), Some(ab.slot_path("b")));
        std::fs::write(ab.slot_path("a"), b"running").unwrap();
        // A trial of b is pending (its commit never happened): a is what the bootloader
        // falls back to, so neither a download nor an install may touch it.
        ab.switch().await.unwrap();
        ab.boot().await.unwrap();
        assert_eq!(ab.booted_slot().await.unwrap(), "b");
        assert_eq!(ab.stream_target(), None);
        let image = dir.path().join("img");
        std::fs::write(&image, b"new").unwrap();
        assert!(ab.install(&image).await.is_err());
        assert_eq!(std::fs::read(ab.slot_path("a")).unwrap(), b"running");
    }

    #[tokio::test]
    async fn rollback_returns_to_the_active_slot() {
        let dir = tempfile::tempdir().unwrap();
        let ab = AbSlots::new(dir.path().to_owned(), false).unwrap();
        ab.boot().await.unwrap();
        ab.switch().await.unwrap();
        ab.boot().await.unwrap();
        assert_eq!(ab.booted_slot().await.unwrap(), "b");
        ab.rollback().await.unwrap();
        ab.boot().await.unwrap();
        assert_eq!(ab.booted_slot().await.unwrap(), "a");
    }
}
