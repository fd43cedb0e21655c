//! The U-Boot environment as the `uboot` and `swupdate` back ends use it (CONTRACT §9),
//! read and written with libubootenv's `fw_printenv`/`fw_setenv` (`--uboot-env-config`,
//! default `/etc/fw_env.config`).
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
//! "repairs" the environment by guessing.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::{run_hook, shell_quote};

/// Where the environment's configuration is, and how its tools are run.
#[derive(Debug, Clone)]
pub struct UbootEnv {
    /// libubootenv's configuration (`fw_env.config`).
    pub config: PathBuf,
    /// A file for `fw_setenv -s` scripts (in the agent's state directory).
    pub script: PathBuf,
    pub timeout: Duration,
}

/// The other slot's name.
pub fn other(slot: &str) -> &'static str {
    if slot == "a" { "b" } else { "a" }
}

/// An environment as `fw_printenv` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// `name=value` lines; a value may hold `=`.
    pub fn parse(text: &str) -> Self {
        Self(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// The slot U-Boot boots: `boot_slot`, which must be `a` or `b`.
    pub fn boot_slot(&self) -> io::Result<&'static str> {
        match self.0.get("boot_slot").map(String::as_str) {
            Some("a") => Ok("a"),
            Some("b") => Ok("b"),
            other => Err(io::Error::other(format!("the U-Boot environment's boot_slot is {other:?}, not a or b"))),
        }
    }

    /// A trial boot is pending (`upgrade_available=1`).
    pub fn in_trial(&self) -> bool {
        self.0.get("upgrade_available").is_some_and(|v| v == "1")
    }
}

impl UbootEnv {
    /// The whole environment.
    pub async fn read(&self) -> io::Result<Env> {
        let command = format!("fw_printenv -c {}", shell_quote(&self.config));
        Ok(Env::parse(&run_hook(&command, self.timeout).await?))
    }

    /// Writes `pairs` in one environment write (`fw_setenv -s`).
    pub async fn write(&self, pairs: &[(&str, &str)]) -> io::Result<()> {
        let script: String = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        tokio::fs::write(&self.script, script).await?;
        let (config, file) = (shell_quote(&self.config), shell_quote(&self.script));
        run_hook(&format!("fw_setenv -c {config} -s {file}"), self.timeout).await.map(drop)
    }

    /// The slot running now.
    pub async fn booted_slot(&self) -> io::Result<&'static str> {
        self.read().await?.boot_slot()
    }

    /// The slot an install may write: the one not booted, and only outside a trial (the
    /// slot U-Boot falls back to during a trial is never written).
    pub async fn inactive_slot(&self) -> io::Result<&'static str> {
        let env = self.read().await?;
        if env.in_trial() {
            return Err(io::Error::other("a trial boot is pending: the slot U-Boot falls back to is not written"));
        }
        Ok(other(env.boot_slot()?))
    }

    /// Marks the other slot for a trial boot, in one write.
    pub async fn switch(&self) -> io::Result<()> {
        let next = other(self.booted_slot().await?);
        self.write(&[("boot_slot", next), ("upgrade_available", "1"), ("bootcount", "0")]).await
    }

    /// Keeps the booted slot.
    pub async fn commit(&self) -> io::Result<()> {
        self.write(&[("upgrade_available", "0"), ("bootcount", "0"), ("ustate", "0")]).await
    }

    /// Ends the trial: the previous slot boots next.
    pub async fn rollback(&self) -> io::Result<()> {
        let previous = other(self.booted_slot().await?);
        self.write(&[("boot_slot", previous), ("upgrade_available", "0"), ("bootcount", "0")]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_parses_and_names_its_slot() {
        let env = Env::parse("bootcmd=run a=b\nboot_slot=b\nupgrade_available=1\n");
        assert_eq!(env.0["bootcmd"], "run a=b");
        assert_eq!(env.boot_slot().unwrap(), "b");
        assert!(env.in_trial());
        let e = Env::parse("boot_slot=c\n").boot_slot().unwrap_err();
        assert!(e.to_string().contains("\"c\""), "{e}");
        assert!(Env::default().boot_slot().is_err(), "no boot_slot is an error, not slot a");
    }
}
