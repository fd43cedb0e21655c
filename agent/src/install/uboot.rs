//! The `uboot` back end (CONTRACT §9): two slots (block devices or files, `--slot-a`,
//! `--slot-b`) and U-Boot's boot counting in its environment ([`super::ubootenv`]).
//!
//! The image is written to the slot `boot_slot` does not name, and only outside a trial;
//! switching, committing and rolling back are the environment writes of
//! [`UbootEnv`].

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt as _;

use super::ubootenv::UbootEnv;
use super::{Installer, run_hook};

/// Where the slots and the environment are.
#[derive(Debug, Clone)]
pub struct UbootSetup {
    pub slot_a: PathBuf,
    pub slot_b: PathBuf,
    pub env: UbootEnv,
    /// Restarts the device (into the slot `boot_slot` names).
    pub reboot: String,
}

/// Installs into the inactive slot and drives U-Boot's environment.
#[derive(Debug)]
pub struct UbootInstaller {
    setup: UbootSetup,
}

impl UbootInstaller {
    pub fn new(setup: UbootSetup) -> Self {
        Self { setup }
    }

    fn slot_path(&self, slot: &str) -> &Path {
        if slot == "a" { &self.setup.slot_a } else { &self.setup.slot_b }
    }
}

impl Installer for UbootInstaller {
    async fn boot(&self) -> io::Result<()> {
        // U-Boot has decided before the agent runs.
        Ok(())
    }

    async fn booted_slot(&self) -> io::Result<String> {
        Ok(self.setup.env.booted_slot().await?.to_owned())
    }

    async fn install(&self, image: &Path) -> io::Result<()> {
        let target = self.slot_path(self.setup.env.inactive_slot().await?).to_owned();
        let mut source = tokio::fs::File::open(image).await?;
        // A block device is written in place; a file is replaced from its start.
        let mut slot = tokio::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&target).await?;
        tokio::io::copy(&mut source, &mut slot).await?;
        slot.flush().await?;
        slot.sync_all().await
    }

    async fn switch(&self) -> io::Result<()> {
        self.setup.env.switch().await
    }

    async fn reboot(&self) -> io::Result<()> {
        run_hook(&self.setup.reboot, self.setup.env.timeout).await.map(drop)
    }

    async fn commit(&self) -> io::Result<()> {
        self.setup.env.commit().await
    }

    async fn rollback(&self) -> io::Result<()> {
        self.setup.env.rollback().await
    }
}
