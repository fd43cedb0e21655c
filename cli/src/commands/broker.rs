//! `fleetctl broker sync`: for a Mosquitto on another host than the server, fetch the
//! password and ACL files the server keeps and install them, then make Mosquitto reload.
//! It needs an admin token: the password file holds every device's password hash.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use fleet_protocol::paths;

use crate::ApiClient;
use crate::output::Format;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write DIR/passwords and DIR/acl (Mosquitto's password_file and acl_file) when they
    /// changed, then run the reload command.
    Sync {
        /// Where Mosquitto reads its files.
        #[arg(long)]
        dir: PathBuf,
        /// Makes Mosquitto reload, e.g. `systemctl reload mosquitto`.
        #[arg(long)]
        reload_command: Option<String>,
        /// Keep syncing at this interval (e.g. `5s`) instead of once.
        #[arg(long, value_parser = humantime::parse_duration)]
        every: Option<Duration>,
        /// Also write the server's own broker account (`--mqtt-username`) into the password
        /// file: only on the host whose Mosquitto the server itself logs in to.
        #[arg(long)]
        include_server_account: bool,
    },
}

pub async fn run(client: &ApiClient, out: Format, cmd: &Command) -> anyhow::Result<()> {
    let Command::Sync { dir, reload_command, every, include_server_account } = cmd;
    // After a change, the next round reloads once more even if nothing changed: Mosquitto
    // drops a SIGHUP that arrives while it is still reloading.
    let mut settle = false;
    loop {
        let synced = sync(client, dir, reload_command.as_deref(), *include_server_account, settle).await;
        settle = matches!(synced, Ok(true));
        match synced {
            Ok(changed) if out.is_json() => {
                println!("{}", serde_json::json!({"dir": dir, "changed": changed}));
            }
            Ok(true) => println!("{}: files updated", dir.display()),
            Ok(false) if every.is_none() => println!("{}: up to date", dir.display()),
            Ok(false) => {}
            Err(e) if every.is_some() => eprintln!("sync failed: {e:#}"),
            Err(e) => return Err(e),
        }
        match every {
            Some(every) => tokio::time::sleep(*every).await,
            None => return Ok(()),
        }
    }
}

/// Returns whether anything changed; reloads when it did, or when `reload_anyway`.
async fn sync(
    client: &ApiClient,
    dir: &Path,
    reload_command: Option<&str>,
    include_server_account: bool,
    reload_anyway: bool,
) -> anyhow::Result<bool> {
    let query = if include_server_account { "?include_server_account=true" } else { "" };
    let passwords = client.get_text(&format!("{}{query}", paths::MOSQUITTO_PASSWORDS)).await?;
    let acl = client.get_text(paths::MOSQUITTO_ACL).await?;
    let mut changed = false;
    for (name, contents) in [("passwords", passwords), ("acl", acl)] {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
            write_private(&path, &contents).with_context(|| format!("writing {}", path.display()))?;
            changed = true;
        }
    }
    if let (true, Some(command)) = (changed || reload_anyway, reload_command) {
        let status = tokio::process::Command::new("sh").arg("-c").arg(command).status().await?;
        anyhow::ensure!(status.success(), "reload command `{command}` failed: {status}");
    }
    Ok(changed)
}

/// Temp file in the same directory (mode 0640), fsync, rename.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.as_file().set_permissions(std::fs::Permissions::from_mode(0o640))?;
    file.write_all(contents.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
