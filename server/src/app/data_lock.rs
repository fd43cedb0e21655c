//! One server per data directory. Two servers on one SQLite database and one blob store
//! would each believe they own them (rollout leases, the admin token file, blob clean-up),
//! so start-up takes an exclusive advisory lock on `DATA_DIR/lock` and holds it for the
//! process's life, as PostgreSQL and Mosquitto do with their pid files. The kernel drops the
//! lock when the process ends, however it ends (even `kill -9`), so a stale file never
//! blocks a start; the holder's pid is written in it for the refusal's message.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use super::StartupError;
use super::data_dir::FILE_MODE;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "lock";

/// The held lock; dropping it (or ending the process) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Locks `dir` for this process, or says which process holds it.
pub fn acquire(dir: &Path) -> Result<DataDirLock, StartupError> {
    let path = dir.join(LOCK_FILE);
    let err = |e| StartupError::DataDir(path.clone(), e);
    // Not truncated on open: the file holds the current holder's pid until we have the lock.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(err)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            return Err(StartupError::DataDirLocked { dir: dir.to_owned(), pid: holder(&mut file) });
        }
        Err(fs4::TryLockError::Error(e)) => return Err(err(e)),
    }
    write_pid(&mut file).map_err(err)?;
    Ok(DataDirLock { _file: file })
}

/// The pid the holder wrote, if it is there and readable.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_data()
}

/// `pid 1234`, or words saying it is not known, for the refusal.
pub fn describe_holder(pid: &Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path()).unwrap();
        let refused = acquire(dir.path()).unwrap_err();
        match &refused {
            StartupError::DataDirLocked { dir: d, pid } => {
                assert_eq!(d, dir.path());
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("{other}"),
        }
        assert!(refused.to_string().contains(&format!("pid {}", std::process::id())), "{refused}");
        drop(held);
        acquire(dir.path()).expect("free again once the holder is gone");
    }
}
