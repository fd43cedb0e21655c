//! The `uboot` back end (CONTRACT §9): two slots (block devices or files, `--slot-a`,
//! `--slot-b`) and U-Boot's boot counting in its environment, read and written with
//! libubootenv's `fw_printenv`/`fw_setenv` (`--uboot-env-config`, default
//! `/etc/fw_env.config`).
//!
//! - `boot_slot` (`a` or `b`) is the slot U-Boot boots; it is also the slot running now,
//!   since U-Boot's fallback (`altbootcmd`, see docs/agent.md) switches it back.
//! - Switching to a new slot is one environment write (`fw_setenv -s`): `boot_slot`,
//!   `upgrade_available=1`, `bootcount=0`. U-Boot counts boots while `upgrade_available`
//!   is 1 and falls back once `bootcount` exceeds `bootlimit`.
//! - Committing writes `upgrade_available=0`, `bootcount=0` and SWUpdate's `ustate=0`;
//!   rolling back points `boot_slot` at the previous slot and ends the trial.
//!
//! An environment that cannot be read is an error: the agent reports it and never
//! "repairs" the environment by guessing. The slot U-Boot falls back to during a trial is
//! never written.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;

use super::{Installer, run_hook, shell_quote};

/// Where the slots and the environment are.
#[derive(Debug, Clone)]
pub struct UbootSetup {
    pub slot_a: PathBuf,
    pub slot_b: PathBuf,
    /// libubootenv's configuration (`fw_env.config`).
    pub env_config: PathBuf,
    /// Restarts the device (into the slot `boot_slot` names).
    pub reboot: String,
    /// A file for `fw_setenv -s` scripts (in the agent's state directory).
    pub script: PathBuf,
    pub timeout: Duration,
}

/// Installs into the inactive slot and drives U-Boot's environment.
#[derive(Debug)]
pub struct UbootInstaller {
    setup: UbootSetup,
}

/// The other slot's name.
fn other(slot: &str) -> &'static str {
    if slot == "a" { "b" } else { "a" }
}

impl UbootInstaller {
    pub fn new(setup: UbootSetup) -> Self {
        Self { setup }
    }

    fn slot_path(&self, slot: &str) -> &Path {
        if slot == "a" { &self.setup.slot_a } else { &self.setup.slot_b }
    }

    /// The whole environment, as `fw_printenv` prints it.
    async fn read_env(&self) -> io::Result<HashMap<String, String>> {
        let command = format!("fw_printenv -c {}", shell_quote(&self.setup.env_config));
        let text = run_hook(&command, self.setup.timeout).await?;
        Ok(parse_env(&text))
    }

    /// Writes `pairs` in one environment write (`fw_setenv -s`).
    async fn write_env(&self, pairs: &[(&str, &str)]) -> io::Result<()> {
        let script: String = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        tokio::fs::write(&self.setup.script, script).await?;
        let (config, file) = (shell_quote(&self.setup.env_config), shell_quote(&self.setup.script));
        run_hook(&format!("fw_setenv -c {config} -s {file}"), self.setup.timeout).await.map(drop)
    }
}

/// `name=value` lines; a value may hold `=`.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// The slot an environment says U-Boot boots.
fn boot_slot(env: &HashMap<String, String>) -> io::Result<&'static str> {
    match env.get("boot_slot").map(String::as_str) {
        Some("a") => Ok("a"),
        Some("b") => Ok("b"),
        other => Err(io::Error::other(format!("the U-Boot environment's boot_slot is {other:?}, not a or b"))),
    }
}

fn in_trial(env: &HashMap<String, String>) -> bool {
    env.get("upgrade_available").is_some_and(|v| v == "1")
}

impl Installer for UbootInstaller {
    async fn boot(&self) -> io::Result<()> {
        // U-Boot has decided before the agent runs.
        Ok(())
    }

    async fn booted_slot(&self) -> io::Result<String> {
        Ok(boot_slot(&self.read_env().await?)?.to_owned())
    }

    async fn install(&self, image: &Path) -> io::Result<()> {
        let env = self.read_env().await?;
        if in_trial(&env) {
            return Err(io::Error::other("a trial boot is pending: the slot U-Boot falls back to is not written"));
        }
        let target = self.slot_path(other(boot_slot(&env)?)).to_owned();
        let mut source = tokio::fs::File::open(image).await?;
        // A block device is written in place; a file is replaced from its start.
        let mut slot = tokio::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&target).await?;
        tokio::io::copy(&mut source, &mut slot).await?;
        slot.flush().await?;
        slot.sync_all().await
    }

    async fn switch(&self) -> io::Result<()> {
        let next = other(boot_slot(&self.read_env().await?)?);
        self.write_env(&[("boot_slot", next), ("upgrade_available", "1"), ("bootcount", "0")]).await
    }

    async fn reboot(&self) -> io::Result<()> {
        run_hook(&self.setup.reboot, self.setup.timeout).await.map(drop)
    }

    async fn commit(&self) -> io::Result<()> {
        self.write_env(&[("upgrade_available", "0"), ("bootcount", "0"), ("ustate", "0")]).await
    }

    async fn rollback(&self) -> io::Result<()> {
        let previous = other(boot_slot(&self.read_env().await?)?);
        self.write_env(&[("boot_slot", previous), ("upgrade_available", "0"), ("bootcount", "0")]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_parses_and_names_its_slot() {
        let env = parse_env("bootcmd=run a=b\nboot_slot=b\nupgrade_available=1\n");
        assert_eq!(env["bootcmd"], "run a=b");
        assert_eq!(boot_slot(&env).unwrap(), "b");
        assert!(in_trial(&env));
        let broken = parse_env("boot_slot=c\n");
        let e = boot_slot(&broken).unwrap_err();
        assert!(e.to_string().contains("\"c\""), "{e}");
        assert!(boot_slot(&HashMap::new()).is_err(), "no boot_slot is an error, not slot a");
    }
}
