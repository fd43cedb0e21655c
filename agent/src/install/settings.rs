//! Each firmware back end's settings, read from `fleet-agent run`'s flags
//! ([`RunArgs`]): what `--installer KIND` needs and its defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::command::Commands;
use super::rauc::RaucSetup;
use super::swupdate::{Selection, SwupdateSetup};
use super::uboot::UbootSetup;
use super::ubootenv::UbootEnv;
use crate::config::RunArgs;

impl RunArgs {
    /// The `command` installer's hooks, all required.
    pub fn commands(&self) -> anyhow::Result<Commands> {
        let need =
            |v: &Option<String>, flag: &str| v.clone().with_context(|| format!("--installer command needs --{flag}"));
        Ok(Commands {
            install: need(&self.install_command, "install-command")?,
            booted_slot: need(&self.booted_slot_command, "booted-slot-command")?,
            reboot: need(&self.reboot_command, "reboot-command")?,
            commit: need(&self.commit_command, "commit-command")?,
            rollback: need(&self.rollback_command, "rollback-command")?,
            timeout_s: self.hook_timeout_s.unwrap_or(60),
        })
    }

    /// The `uboot` installer's slots and environment; `state_dir` keeps its scripts.
    pub fn uboot(&self, state_dir: &Path) -> anyhow::Result<UbootSetup> {
        let need =
            |v: &Option<PathBuf>, flag: &str| v.clone().with_context(|| format!("--installer uboot needs --{flag}"));
        Ok(UbootSetup {
            slot_a: need(&self.slot_a, "slot-a")?,
            slot_b: need(&self.slot_b, "slot-b")?,
            env: self.uboot_env(state_dir),
            reboot: self.reboot_command.clone().unwrap_or_else(|| "reboot".into()),
        })
    }

    /// The `rauc` installer.
    pub fn rauc(&self) -> RaucSetup {
        RaucSetup {
            reboot: self.reboot_command.clone().unwrap_or_else(|| "reboot".into()),
            timeout: Duration::from_secs(self.hook_timeout_s.unwrap_or(60)),
        }
    }

    /// The `swupdate` installer; `state_dir` keeps its environment scripts.
    pub fn swupdate(&self, state_dir: &Path) -> anyhow::Result<SwupdateSetup> {
        let select = self.swupdate_select.as_deref().context("--installer swupdate needs --swupdate-select")?;
        Ok(SwupdateSetup {
            select: Selection::parse(select).map_err(anyhow::Error::msg)?,
            ca: self.swupdate_ca.clone(),
            hardware: self.swupdate_hardware.clone(),
            env: self.uboot_env(state_dir),
            reboot: self.reboot_command.clone().unwrap_or_else(|| "reboot".into()),
        })
    }

    /// The U-Boot environment of the `uboot` and `swupdate` installers.
    fn uboot_env(&self, state_dir: &Path) -> UbootEnv {
        UbootEnv {
            config: self.uboot_env_config.clone().unwrap_or_else(|| "/etc/fw_env.config".into()),
            script: state_dir.join("uboot-env.script"),
            timeout: Duration::from_secs(self.hook_timeout_s.unwrap_or(60)),
        }
    }
}
