//! The `swupdate` back end (CONTRACT §9): SWUpdate writes the image, U-Boot's environment
//! ([`super::ubootenv`], shared with the `uboot` back end) says which slot boots.
//!
//! The firmware artifact is the `.swu`; the agent has verified our signature over its bytes
//! first. Its `sw-description` holds one software set with a mode per slot, each writing
//! that slot (`--swupdate-select SET,MODE_A,MODE_B`); the agent runs
//! `swupdate -i FILE -e SET,MODE` with the mode of the slot that is not booted, plus
//! `-k CA` (SWUpdate's own signature check) and `-H BOARD:REV` (its hardware
//! compatibility check) when configured. Switching, committing (which also writes
//! SWUpdate's `ustate=0`) and rolling back are environment writes.
//!
//! SWUpdate 2022.12 (Debian bookworm) cannot be judged by its exit status alone. Its `-i`
//! client streams the file to SWUpdate's own installer thread and then polls the
//! installer's status; a first poll that comes before the installer has woken finds it
//! idle, the client prints `SWUpdate was successful !` and the process exits 1, whether or
//! not the installer wrote the image before the exit. Seen on the test machine with small
//! files under load: the `.swu` for other hardware "installed" on a retry. The agent runs
//! it with `-v` and takes the image as installed only when SWUpdate's installer itself
//! announced it (`SWUPDATE successful !`, the notification it sends after writing every
//! image and storing the update state) and nothing logged `[ERROR]` ([`installed`]). The
//! agent never asks for a dry run (`-n`, `-c`), the one other way that notification comes
//! without an install. It runs no post-update command of SWUpdate's (it reboots by itself).

use std::io;
use std::path::{Path, PathBuf};

use super::ubootenv::UbootEnv;
use super::{Installer, failed, run_command, run_hook, shell_quote};

/// `--swupdate-select SET,MODE_A,MODE_B`: the software set of `sw-description` and its
/// mode that writes slot a, then slot b (e.g. `stable,copy-a,copy-b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub set: String,
    pub mode_a: String,
    pub mode_b: String,
}

impl Selection {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let plain = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        match parts.as_slice() {
            [set, a, b] if [set, a, b].iter().all(|p| plain(p)) && a != b => {
                Ok(Self { set: (*set).to_owned(), mode_a: (*a).to_owned(), mode_b: (*b).to_owned() })
            }
            _ => Err(format!(
                "--swupdate-select {text:?}: expected SET,MODE_A,MODE_B (two different modes; letters, digits, - _ .)"
            )),
        }
    }

    /// `-e`'s argument for writing `slot`.
    pub fn for_slot(&self, slot: &str) -> String {
        let mode = if slot == "a" { &self.mode_a } else { &self.mode_b };
        format!("{},{mode}", self.set)
    }
}

/// How SWUpdate is driven.
#[derive(Debug, Clone)]
pub struct SwupdateSetup {
    pub select: Selection,
    /// `-k`: the CA SWUpdate checks the `.swu`'s signature against.
    pub ca: Option<PathBuf>,
    /// `-H BOARD:REV`: the hardware SWUpdate checks `hardware-compatibility` against.
    pub hardware: Option<String>,
    pub env: UbootEnv,
    /// Restarts the device (into the slot `boot_slot` names).
    pub reboot: String,
}

/// Installs `.swu` files into the inactive slot and drives U-Boot's environment.
#[derive(Debug)]
pub struct SwupdateInstaller {
    setup: SwupdateSetup,
}

impl SwupdateInstaller {
    pub fn new(setup: SwupdateSetup) -> Self {
        Self { setup }
    }

    /// The command that installs `image` into `slot`.
    fn command(&self, image: &Path, slot: &str) -> String {
        let mut command = format!("swupdate -v -i {} -e {}", shell_quote(image), self.setup.select.for_slot(slot));
        if let Some(ca) = &self.setup.ca {
            command += &format!(" -k {}", shell_quote(ca));
        }
        if let Some(hardware) = &self.setup.hardware {
            command += &format!(" -H {}", shell_quote(Path::new(hardware)));
        }
        command
    }
}

impl Installer for SwupdateInstaller {
    async fn boot(&self) -> io::Result<()> {
        // U-Boot has decided before the agent runs.
        Ok(())
    }

    async fn booted_slot(&self) -> io::Result<String> {
        Ok(self.setup.env.booted_slot().await?.to_owned())
    }

    async fn install(&self, image: &Path) -> io::Result<()> {
        let command = self.command(image, self.setup.env.inactive_slot().await?);
        let output = run_command(&command, self.setup.env.timeout * 10).await?;
        let said = [&output.stdout[..], &output.stderr[..]].map(String::from_utf8_lossy).join("\n");
        if installed(output.status.code(), &said) {
            if !output.status.success() {
                tracing::warn!("SWUpdate exited 1 after its installer announced the install (its client ended first)");
            }
            return Ok(());
        }
        Err(failed(&command, &output))
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

/// The notification SWUpdate's installer sends once it has written every image (its
/// console notifier prints it as `[INFO ] : SWUPDATE successful ! …`; the client's own
/// line reads `SWUpdate was successful`).
const INSTALLER_SUCCEEDED: &str = "SWUPDATE successful !";

/// Whether SWUpdate installed the image, judged from its exit code and its `-v` output:
/// exit 0 or 1 (1: its client ended before the installer, or its post-update step failed),
/// its installer announced success, and nothing logged an error.
pub fn installed(code: Option<i32>, output: &str) -> bool {
    matches!(code, Some(0 | 1)) && output.contains(INSTALLER_SUCCEEDED) && !output.contains("[ERROR]")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_selection_names_a_set_and_a_mode_per_slot() {
        let s = Selection::parse("stable,copy-a,copy-b").unwrap();
        assert_eq!((s.for_slot("a").as_str(), s.for_slot("b").as_str()), ("stable,copy-a", "stable,copy-b"));
        for bad in ["stable", "stable,copy-a", "stable,x,x", "stable,a b,c", "s,a,b,c", ",a,b"] {
            assert!(Selection::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_names_the_inactive_copy_and_the_configured_checks() {
        let env = UbootEnv { config: "/c".into(), script: "/s".into(), timeout: Duration::from_secs(1) };
        let mut setup = SwupdateSetup {
            select: Selection::parse("stable,copy-a,copy-b").unwrap(),
            ca: None,
            hardware: None,
            env,
            reboot: "reboot".into(),
        };
        let plain = SwupdateInstaller::new(setup.clone()).command(Path::new("/u.swu"), "b");
        assert_eq!(plain, "swupdate -v -i '/u.swu' -e stable,copy-b");
        setup.ca = Some("/ca.pem".into());
        setup.hardware = Some("board:1.0".into());
        let checked = SwupdateInstaller::new(setup).command(Path::new("/u.swu"), "a");
        assert_eq!(checked, "swupdate -v -i '/u.swu' -e stable,copy-a -k '/ca.pem' -H 'board:1.0'");
    }

    #[test]
    fn only_the_installers_own_announcement_counts_as_installed() {
        let installer = "[INFO ] : SWUPDATE successful ! SWUPDATE successful !\n";
        let client = "[INFO ] : SWUPDATE running :  [endupdate] : SWUpdate was successful !\n";
        let error = "[ERROR] : SWUPDATE failed [0] ERROR : SW not compatible with hardware\n";
        let ok = format!("{installer}{client}");
        assert!(installed(Some(0), &ok));
        assert!(installed(Some(1), &ok), "the client ended first; the installer finished before the exit");
        assert!(!installed(Some(0), client), "the client ended early: nothing was installed");
        assert!(!installed(Some(1), client));
        assert!(!installed(Some(1), &format!("{error}{ok}")));
        assert!(!installed(Some(2), &ok));
        assert!(!installed(None, &ok), "killed by a signal");
    }
}
