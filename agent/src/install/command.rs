//! The `command` back end: an external updater such as RAUC or SWUpdate does the work;
//! the agent runs its configured commands, each with a timeout.
//!
//! `{file}` in the install command is replaced by the verified image's path. The
//! booted-slot command prints the running slot's name; the install command is expected to
//! make the new slot boot next (as `rauc install` does), so `switch` is a no-op.

use std::io;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Installer, run_hook, shell_quote};

/// The commands, e.g. for RAUC: install `rauc install {file}`, booted
/// `rauc status --output-format=shell | sed -n 's/^RAUC_SYSTEM_BOOTED_BOOTNAME=//p'`,
/// reboot `systemctl reboot`, commit `rauc status mark-good`, rollback
/// `rauc status mark-bad booted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Commands {
    pub install: String,
    pub booted_slot: String,
    pub reboot: String,
    pub commit: String,
    pub rollback: String,
    /// Per command; installs get ten times this.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
}

fn default_timeout_s() -> u64 {
    60
}

/// Runs the configured commands.
#[derive(Debug)]
pub struct CommandInstaller {
    commands: Commands,
}

impl CommandInstaller {
    pub fn new(commands: Commands) -> Self {
        Self { commands }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.commands.timeout_s)
    }
}

impl Installer for CommandInstaller {
    async fn boot(&self) -> io::Result<()> {
        Ok(())
    }

    async fn booted_slot(&self) -> io::Result<String> {
        let slot = run_hook(&self.commands.booted_slot, self.timeout()).await?;
        if slot.is_empty() {
            return Err(io::Error::other("booted-slot command printed nothing"));
        }
        Ok(slot)
    }

    async fn install(&self, image: &Path) -> io::Result<()> {
        let command = self.commands.install.replace("{file}", &shell_quote(image));
        run_hook(&command, self.timeout() * 10).await.map(drop)
    }

    async fn switch(&self) -> io::Result<()> {
        Ok(())
    }

    async fn reboot(&self) -> io::Result<()> {
        run_hook(&self.commands.reboot, self.timeout()).await.map(drop)
    }

    async fn commit(&self) -> io::Result<()> {
        run_hook(&self.commands.commit, self.timeout()).await.map(drop)
    }

    async fn rollback(&self) -> io::Result<()> {
        run_hook(&self.commands.rollback, self.timeout()).await.map(drop)
    }
}
