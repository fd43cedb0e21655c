//! Applying a configuration document: write it atomically to its path, run the reload
//! hook, and if the hook fails put the previous file back (and reload again).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::run_hook;
use crate::atomic_file::{WriteOptions, write_atomically};

/// Where configuration documents go and how the service picks them up.
#[derive(Debug, Clone)]
pub struct ConfigTarget {
    pub path: PathBuf,
    pub reload: Option<String>,
    pub timeout: Duration,
    /// The file's mode; `None` keeps the mode of the file replaced (0600 for a new one).
    pub mode: Option<u32>,
}

impl ConfigTarget {
    /// Installs `document`; on a failed reload the previous contents are restored.
    pub async fn apply(&self, document: &Path) -> io::Result<()> {
        let previous = match std::fs::read(&self.path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let options = WriteOptions { durable: true, mode: self.mode };
        write_atomically(&self.path, &std::fs::read(document)?, options)?;
        let Some(reload) = &self.reload else {
            return Ok(());
        };
        let Err(e) = run_hook(reload, self.timeout).await else {
            return Ok(());
        };
        tracing::warn!("config reload failed, restoring the previous file: {e}");
        match previous {
            Some(bytes) => write_atomically(&self.path, &bytes, options)?,
            None => std::fs::remove_file(&self.path)?,
        }
        if let Err(again) = run_hook(reload, self.timeout).await {
            tracing::warn!("reload after restoring failed too: {again}");
        }
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failing_reload_restores_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("app.toml");
        std::fs::write(&target, b"old").unwrap();
        let doc = dir.path().join("new");
        std::fs::write(&doc, b"new").unwrap();

        let failing = ConfigTarget {
            path: target.clone(),
            reload: Some("exit 3".into()),
            timeout: Duration::from_secs(5),
            mode: None,
        };
        assert!(failing.apply(&doc).await.is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"old");

        let ok = ConfigTarget { reload: Some("true".into()), ..failing };
        ok.apply(&doc).await.unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
