//! Replacing a file so that a crash leaves either the old or the new contents, and so that
//! nobody else on the device can steer the write.
//!
//! The new contents go to a temporary file with a random name in the target's directory,
//! created with `O_CREAT | O_EXCL` (a planted symlink or an existing sibling makes the
//! create fail instead of being followed or clobbered). The file gets the target's mode and
//! owner (or the mode asked for), is fsynced, renamed over the target, and the directory is
//! fsynced.

use std::fs::{File, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

/// The mode of a file that did not exist before and was given no mode: owner only.
pub const NEW_FILE_MODE: u32 = 0o600;

/// How [`write_atomically`] writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// fsync the file and its directory (off only for simulated devices).
    pub durable: bool,
    /// The mode of the new file; `None` keeps the target's (or [`NEW_FILE_MODE`]).
    pub mode: Option<u32>,
}

/// Writes `bytes` to `path` atomically; see the module documentation.
pub fn write_atomically(path: &Path, bytes: &[u8], options: WriteOptions) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".fleet-").suffix(".tmp").tempfile_in(dir)?;
    take_over_attributes(tmp.as_file(), path, options.mode)?;
    tmp.write_all(bytes)?;
    if options.durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if options.durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Gives `file` the mode (and, where we may, the owner) of the file it is about to replace.
fn take_over_attributes(file: &File, target: &Path, mode: Option<u32>) -> io::Result<()> {
    // symlink_metadata: a symlink as the target is replaced, not looked through.
    let existing = match std::fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_file() => Some(m),
        Ok(_) => None,
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(old) = &existing {
        // Only root may give a file away; as anyone else the file stays ours.
        match std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(e),
        }
    }
    let mode = mode.or(existing.map(|m| m.mode() & 0o7777)).unwrap_or(NEW_FILE_MODE);
    file.set_permissions(Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DURABLE: WriteOptions = WriteOptions { durable: true, mode: None };

    #[test]
    fn a_symlink_at_the_old_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("app.tmp")).unwrap();

        write_atomically(&dir.path().join("app.toml"), b"new", DURABLE).unwrap();

        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(dir.path().join("app.toml")).unwrap(), b"new");
    }

    #[test]
    fn a_sibling_named_like_the_old_temporary_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.tmp"), b"someone else's").unwrap();

        write_atomically(&dir.path().join("app.toml"), b"new", DURABLE).unwrap();

        assert_eq!(std::fs::read(dir.path().join("app.tmp")).unwrap(), b"someone else's");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "no temporary file is left behind: {left:?}");
    }

    #[test]
    fn the_target_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("app.toml");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, Permissions::from_mode(0o600)).unwrap();

        write_atomically(&target, b"new", DURABLE).unwrap();

        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o7777, 0o600);
    }

    #[test]
    fn a_new_file_is_private_unless_a_mode_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("a");
        write_atomically(&private, b"x", DURABLE).unwrap();
        assert_eq!(std::fs::metadata(&private).unwrap().mode() & 0o7777, NEW_FILE_MODE);

        let shared = dir.path().join("b");
        std::fs::write(&shared, b"old").unwrap();
        write_atomically(&shared, b"x", WriteOptions { durable: false, mode: Some(0o640) }).unwrap();
        assert_eq!(std::fs::metadata(&shared).unwrap().mode() & 0o7777, 0o640);
    }
}
