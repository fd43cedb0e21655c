//! Token files: readable and writable by their owner only (0600), whatever the umask.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A secret that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing {}", .path.display())]
pub struct SecretFileError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Writes `secret` and a newline to `path`, replacing what was there. The bytes go to a
/// temporary file in the same directory (created 0600), are synced and renamed over
/// `path`, so an existing file that was open to others is replaced, not reused.
pub fn write_secret(path: &Path, secret: &str) -> Result<(), SecretFileError> {
    let failed = |source| SecretFileError { path: path.to_owned(), source };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".fleet-secret").tempfile_in(dir).map_err(failed)?;
    set_owner_only(file.as_file()).map_err(failed)?;
    file.write_all(secret.as_bytes()).map_err(failed)?;
    file.write_all(b"\n").map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

fn set_owner_only(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_token_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw-1.token");
        write_secret(&path, "fleet_dev_abc").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fleet_dev_abc\n");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_world_readable_file_is_replaced_by_an_owner_only_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw-1.token");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_secret(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let err = write_secret(Path::new("/nonexistent-dir/x.token"), "t").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.token"));
    }
}
