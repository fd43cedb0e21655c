//! Installing firmware: the [`Installer`] trait and its back ends, plus applying
//! configuration documents ([`config_file`]).
//!
//! - [`ab`]: two slot files in the state directory and a boot-state file playing the
//!   bootloader (A/B with a trial boot and a boot counter).
//! - [`command`]: configured commands, e.g. `rauc install {file}` or `swupdate -i {file}`.
//! - [`rauc`]: RAUC bundles, RAUC's slot states (`rauc install`, `rauc status`).
//! - [`swupdate`]: `.swu` files written by SWUpdate, slots switched in U-Boot's environment.
//! - [`uboot`]: two slot devices or files and U-Boot's boot counting in its environment.
//! - [`ubootenv`]: that environment (`fw_printenv`/`fw_setenv`), shared with `swupdate`.

pub mod ab;
pub mod command;
pub mod config_file;
pub mod rauc;
mod settings;
pub mod swupdate;
pub mod uboot;
pub mod ubootenv;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What installs firmware on this device. The boot system, not the journal, says which
/// slot is running.
pub trait Installer: Send + Sync + 'static {
    /// The boot system's decision at (simulated) boot: trial, fallback or normal.
    fn boot(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// The slot that is running now.
    fn booted_slot(&self) -> impl Future<Output = io::Result<String>> + Send;
    /// Where a firmware download may be written directly — the inactive slot — so the
    /// image is written once; `install` is then given that path. `None`: the download goes
    /// to a file of its own, which `install` writes to the slot.
    fn stream_target(&self) -> Option<PathBuf> {
        None
    }
    /// Writes the image to the inactive slot.
    fn install(&self, image: &Path) -> impl Future<Output = io::Result<()>> + Send;
    /// Marks the freshly written slot for a trial boot.
    fn switch(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reboots. Returns only where the reboot is simulated (the agent then boots again
    /// in-process); a real reboot ends the process.
    fn reboot(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Keeps the booted trial slot.
    fn commit(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Abandons the trial: the previous slot boots next.
    fn rollback(&self) -> impl Future<Output = io::Result<()>> + Send;
}

/// Runs a shell command with a timeout; `Ok(stdout)` when it exits 0.
pub async fn run_hook(command: &str, timeout: Duration) -> io::Result<String> {
    let output = run_command(command, timeout).await?;
    if !output.status.success() {
        return Err(failed(command, &output));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs a shell command with a timeout and returns how it ended, whatever its exit status.
pub async fn run_command(command: &str, timeout: Duration) -> io::Result<std::process::Output> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("`{command}` timed out after {timeout:?}")))?
}

/// The error of a command that exited non-zero: its status and what it said.
pub fn failed(command: &str, output: &std::process::Output) -> io::Error {
    // Some tools say why on stdout only.
    let said = match String::from_utf8_lossy(&output.stderr).trim() {
        "" => last_lines(&String::from_utf8_lossy(&output.stdout), 5),
        stderr => stderr.to_owned(),
    };
    io::Error::other(format!("`{command}` failed ({}): {said}", output.status))
}

/// The last `n` lines of `text`, trimmed.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Single-quotes a path for `sh -c`.
pub fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}
