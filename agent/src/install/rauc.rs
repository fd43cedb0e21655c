//! The `rauc` back end (CONTRACT §9): RAUC installs the bundle and its bootloader back end
//! keeps the slot states; the agent asks and tells it through the `rauc` client, which
//! talks to RAUC's D-Bus service on the system bus (`DBUS_SYSTEM_BUS_ADDRESS` from the
//! agent's environment when the bus is not at its usual place).
//!
//! - The firmware artifact is the bundle. The agent has verified our signature over its
//!   bytes before `rauc install BUNDLE` runs; RAUC then checks its own signature against
//!   its keyring, writes the slots of the inactive group and makes them primary (so
//!   `switch` has nothing left to do).
//! - The booted slot is `booted` of `rauc status --output-format=json` (a bootname such
//!   as `A`), which RAUC takes from the kernel command line or the bootloader.
//! - Committing is `rauc status mark-good` (the booted slot); rolling back is
//!   `rauc status mark-bad` (the booted trial slot, so the bootloader falls back to the
//!   other one at the reboot that follows). A rollback only ever runs while the trial slot
//!   is booted (the state machine's rule), so the slot that worked is never marked bad.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{Installer, run_hook, shell_quote};

/// How RAUC is driven.
#[derive(Debug, Clone)]
pub struct RaucSetup {
    /// Restarts the device (into the slot the bootloader picks).
    pub reboot: String,
    /// Per command; installs get ten times this.
    pub timeout: Duration,
}

/// What the agent reads of `rauc status --output-format=json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RaucStatus {
    /// The booted slot's bootname.
    pub booted: String,
    /// Each slot under its name (`rootfs.0`), one per entry.
    pub slots: Vec<HashMap<String, RaucSlot>>,
}

/// A slot as RAUC reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RaucSlot {
    /// The name the bootloader knows the slot by (absent for slots it does not boot).
    pub bootname: Option<String>,
    /// `booted`, `active` or `inactive`.
    pub state: String,
    /// The bootloader's verdict: `good` or `bad`.
    pub boot_status: Option<String>,
}

impl RaucStatus {
    pub fn parse(json: &str) -> io::Result<Self> {
        let status: Self = serde_json::from_str(json)
            .map_err(|e| io::Error::other(format!("`rauc status --output-format=json` printed {e}")))?;
        if status.booted.is_empty() {
            return Err(io::Error::other("RAUC does not know the booted slot"));
        }
        Ok(status)
    }

    /// The bootloader's verdict on the slot booted as `bootname`.
    pub fn boot_status(&self, bootname: &str) -> Option<&str> {
        self.slots
            .iter()
            .flat_map(|s| s.values())
            .find(|s| s.bootname.as_deref() == Some(bootname))
            .and_then(|s| s.boot_status.as_deref())
    }
}

/// Installs RAUC bundles.
#[derive(Debug)]
pub struct RaucInstaller {
    setup: RaucSetup,
}

impl RaucInstaller {
    pub fn new(setup: RaucSetup) -> Self {
        Self { setup }
    }

    async fn rauc(&self, args: &str) -> io::Result<String> {
        run_hook(&format!("rauc {args}"), self.setup.timeout).await
    }

    /// RAUC's view of the slots.
    pub async fn status(&self) -> io::Result<RaucStatus> {
        RaucStatus::parse(&self.rauc("status --output-format=json").await?)
    }
}

impl Installer for RaucInstaller {
    async fn boot(&self) -> io::Result<()> {
        // The bootloader has decided before the agent runs.
        Ok(())
    }

    async fn booted_slot(&self) -> io::Result<String> {
        Ok(self.status().await?.booted)
    }

    async fn install(&self, image: &Path) -> io::Result<()> {
        let command = format!("rauc install {}", shell_quote(image));
        run_hook(&command, self.setup.timeout * 10).await.map(drop)
    }

    async fn switch(&self) -> io::Result<()> {
        // `rauc install` made the new slot primary.
        Ok(())
    }

    async fn reboot(&self) -> io::Result<()> {
        run_hook(&self.setup.reboot, self.setup.timeout).await.map(drop)
    }

    async fn commit(&self) -> io::Result<()> {
        self.rauc("status mark-good").await.map(drop)
    }

    async fn rollback(&self) -> io::Result<()> {
        self.rauc("status mark-bad").await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As RAUC 1.8 prints it after installing into B while A runs.
    const STATUS: &str = r#"{"compatible":"fleet-test","variant":"","booted":"A","boot_primary":"rootfs.1",
        "slots":[{"rootfs.1":{"class":"rootfs","device":"/dev/b","type":"raw","bootname":"B",
        "state":"inactive","parent":null,"mountpoint":null,"boot_status":"bad"}},
        {"rootfs.0":{"class":"rootfs","device":"/dev/a","type":"raw","bootname":"A",
        "state":"booted","parent":null,"mountpoint":null,"boot_status":"good"}}]}"#;

    #[test]
    fn the_status_names_the_booted_slot_and_the_slot_states() {
        let status = RaucStatus::parse(STATUS).unwrap();
        assert_eq!(status.booted, "A");
        assert_eq!(status.boot_status("A"), Some("good"));
        assert_eq!(status.boot_status("B"), Some("bad"));
        assert_eq!(status.boot_status("C"), None);
        assert_eq!(status.slots[1]["rootfs.0"].state, "booted");
    }

    #[test]
    fn a_status_without_a_booted_slot_is_an_error() {
        let e = RaucStatus::parse(r#"{"booted":"","slots":[]}"#).unwrap_err();
        assert!(e.to_string().contains("booted"), "{e}");
        assert!(RaucStatus::parse("rauc-Message: no service").is_err());
    }
}
