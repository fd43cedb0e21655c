//! The data directory keeps the database and, by default, the blobs: nobody but the server's
//! user reads it. It is created 0700; an existing one open to other users is warned about
//! at start (the server does not change an operator's modes). The files the server makes
//! in it are 0600: the SQLite database is created so before SQLite opens it (SQLite gives
//! its `-wal` and `-shm` files the database's mode), blobs and the admin token are too.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use super::StartupError;

/// The mode of a data directory the server creates.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the files the server creates in it.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` owner-only, or warns when the existing one lets other users in.
pub fn prepare(dir: &Path) -> Result<(), StartupError> {
    let err = |e| StartupError::DataDir(dir.to_owned(), e);
    match std::fs::metadata(dir) {
        Ok(meta) if open_to_others(meta.permissions().mode()) => {
            let mode = format!("{:o}", meta.permissions().mode() & 0o777);
            tracing::warn!(path = %dir.display(), mode, "the data directory is open to other users; `chmod 700` it");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// Creates `path` empty with [`FILE_MODE`] unless it exists.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether a directory's mode lets users other than its owner and group read or enter it.
pub fn open_to_others(mode: u32) -> bool {
    mode & 0o007 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_world_access_counts_as_open() {
        assert!(open_to_others(0o755));
        assert!(open_to_others(0o701));
        assert!(!open_to_others(0o750));
        assert!(!open_to_others(0o700));
    }
}
