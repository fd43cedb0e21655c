//! Per-device isolation on Mosquitto 2 with its classic files: a `password_file` with one
//! user per device (the device id, with a `$7$` PBKDF2-SHA512 hash of its token computed
//! when the token is issued) and an `acl_file` whose `pattern` rules confine each user to
//! its own topics. The server rewrites both when credentials change and runs the reload
//! command; Mosquitto then also disconnects sessions whose credentials are gone, so a
//! rotation or a decommissioning takes effect at once.
//!
//! With device certificates (a device CA), it also writes `devices.crl`, the CRL of the
//! revoked ones that have not expired (signed again daily), for a TLS listener with
//! `require_certificate true`, `use_identity_as_username true` and `crlfile`; after the
//! reload a revoked certificate is refused at the next connect. The reload does not check
//! connected clients' certificates, so with `--mosquitto-cert-url` the server then takes
//! over the session of each device whose certificates were just revoked ([`Takeover`]).

mod files;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleet_protocol::DeviceId;
use fleet_protocol::topic::Topics;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

pub use self::files::{ServerAccount, acl_file, password_file, password_hash};
use super::takeover::Takeover;
use crate::device_ca::DeviceCa;
use crate::store::{DeviceCertificateRecord, Store, StoreError};

/// The CRL of revoked device certificates in `--mosquitto-dir` (Mosquitto's `crlfile`).
pub const CRL_FILE: &str = "devices.crl";

/// How often the credentials' change counter is read even without a nudge (changes made
/// through another replica); the credentials themselves only when it moved.
const POLL: Duration = Duration::from_secs(2);
/// How often the credentials are compared with the files even when the counter stood
/// still: a certificate revoked earlier expires and leaves the CRL, a database restored
/// under a running server.
const FULL_LOOK: Duration = Duration::from_secs(60);

/// What one poll saw before it compared the credentials with the files.
#[derive(Debug)]
struct Look {
    /// The credentials' change counter (`None`: it could not be read).
    changes: Option<i64>,
    /// Syncs asked for so far.
    covers: u64,
    /// The CRL's day.
    day: i64,
    at: Instant,
}

impl Look {
    /// Whether `now` finds nothing this look did not already compare: the counter read and
    /// unmoved, no sync asked for, the same day, and less than [`FULL_LOOK`] ago.
    fn still(&self, now: &Look) -> bool {
        self.changes.is_some()
            && self.changes == now.changes
            && self.covers == now.covers
            && self.day == now.day
            && now.at.duration_since(self.at) < FULL_LOOK
    }
}

/// Why Mosquitto's files were not brought in step (tried again at the next sync).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading the devices' credentials: {0}")]
    Store(#[from] StoreError),
    #[error("writing the files: {0}")]
    Write(#[from] std::io::Error),
    #[error("signing the CRL: {0}")]
    Crl(String),
    #[error("reload command `{command}` failed: {status}")]
    Reload { command: String, status: std::process::ExitStatus },
}

/// Keeps a Mosquitto's files in step with the devices.
#[derive(Debug)]
pub struct MosquittoSync {
    dir: PathBuf,
    reload_command: Option<String>,
    server: Option<ServerAccount>,
    topics: Topics,
    store: Arc<dyn Store>,
    /// With device certificates: the CA whose CRL of revoked ones is written too.
    device_ca: Option<Arc<DeviceCa>>,
    /// With `--mosquitto-cert-url`: where sessions of revoked certificates are taken over.
    takeover: Option<Takeover>,
    nudge: Arc<Notify>,
    requested: Arc<AtomicU64>,
    synced: watch::Sender<u64>,
}

/// What was last written: both files, and the revoked serials with the day the CRL was
/// signed (it is signed again daily, long before it expires).
type Written = (String, String, Option<(Vec<String>, i64)>);

/// What request handlers hold: nudge the sync and wait until the files are written.
#[derive(Debug, Clone)]
pub struct MosquittoHandle {
    nudge: Arc<Notify>,
    /// Syncs asked for so far; a sync covers every request made before it read the devices.
    requested: Arc<AtomicU64>,
    synced: watch::Receiver<u64>,
}

impl MosquittoHandle {
    /// Asks for a sync now and waits (at most a few seconds) until one that started after
    /// this call has completed.
    pub async fn sync_now(&self) {
        let mine = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.nudge.notify_one();
        let mut synced = self.synced.clone();
        if tokio::time::timeout(Duration::from_secs(5), synced.wait_for(|n| *n >= mine)).await.is_err() {
            tracing::warn!("Mosquitto files not written within 5 s");
        }
    }
}

impl MosquittoSync {
    pub fn new(
        dir: &Path,
        reload_command: Option<String>,
        server: Option<ServerAccount>,
        topics: Topics,
        store: Arc<dyn Store>,
        device_ca: Option<Arc<DeviceCa>>,
    ) -> (Self, MosquittoHandle) {
        let nudge = Arc::new(Notify::new());
        let requested = Arc::new(AtomicU64::new(0));
        let (synced, rx) = watch::channel(0);
        let handle = MosquittoHandle { nudge: nudge.clone(), requested: requested.clone(), synced: rx };
        let dir = dir.to_owned();
        let takeover = None;
        (Self { dir, reload_command, server, topics, store, device_ca, takeover, nudge, requested, synced }, handle)
    }

    /// After each reload that revoked certificates, takes over their devices' sessions there.
    pub fn with_takeover(mut self, takeover: Takeover) -> Self {
        self.takeover = Some(takeover);
        self
    }

    /// Writes the files at start, then whenever nudged or the credentials changed, until
    /// `stop`; a write under way is finished first. A poll reads the database's change
    /// counter (one row) and compares every credential only when it moved, when nudged,
    /// after a write, at a new day or [`FULL_LOOK`] after the last comparison.
    ///
    /// Once the files have stayed the same for a [`POLL`] after a write, Mosquitto is told to
    /// reload once more: it drops a SIGHUP that arrives while it is still reloading (it
    /// clears its flag after the reload), so the last write of a burst of registrations
    /// could otherwise stay unloaded and its devices refused (seen at 10,000 devices).
    pub async fn run(self, stop: CancellationToken) {
        let mut written: Option<Written> = None;
        let mut settle = false;
        let mut compared: Option<Look> = None;
        loop {
            let covers = self.requested.load(Ordering::SeqCst);
            // Read before the credentials, so a change made while they are read moves it again.
            let look = Look {
                changes: self.store.credential_changes().await.ok(),
                covers,
                day: crl_day(crate::clock::now_ms()),
                at: Instant::now(),
            };
            if settle || !compared.as_ref().is_some_and(|c| c.still(&look)) {
                compared = self.sync(&mut written, &mut settle).await.then_some(look);
            }
            self.synced.send_replace(covers);
            tokio::select! {
                () = self.nudge.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Compares the credentials with what was `written` and brings the files in step;
    /// false if that failed (tried again at the next poll).
    async fn sync(&self, written: &mut Option<Written>, settle: &mut bool) -> bool {
        match self.write_if_changed(written.as_ref()).await {
            Ok((files, revoked)) => {
                let unchanged = written.as_ref() == Some(&files);
                if unchanged && *settle {
                    self.reload_again().await;
                }
                *settle = !unchanged;
                *written = Some(files);
                if let Some(takeover) = self.takeover.as_ref().filter(|_| !revoked.is_empty()) {
                    takeover.close_sessions(&revoked).await;
                }
                true
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), "writing Mosquitto's files: {e}");
                false
            }
        }
    }

    /// Runs the reload command once more (see [`MosquittoSync::run`]).
    async fn reload_again(&self) {
        if let Err(e) = self.reload().await {
            tracing::error!(dir = %self.dir.display(), "reloading Mosquitto again: {e}");
        }
    }

    async fn reload(&self) -> Result<(), SyncError> {
        if let Some(command) = &self.reload_command {
            let status = tokio::process::Command::new("sh").arg("-c").arg(command).status().await?;
            if !status.success() {
                return Err(SyncError::Reload { command: command.clone(), status });
            }
        }
        Ok(())
    }

    /// Writes the files and reloads if they changed since `written`; with them, the devices
    /// whose certificates were revoked since then, now in the CRL Mosquitto has loaded.
    async fn write_if_changed(&self, written: Option<&Written>) -> Result<(Written, Vec<DeviceId>), SyncError> {
        let devices = self.store.broker_credentials().await?;
        let now_ms = crate::clock::now_ms();
        let revoked = match &self.device_ca {
            Some(_) => Some(self.store.revoked_device_certificates(now_ms).await?),
            None => None,
        };
        let crl_key = revoked.as_ref().map(|r| (r.iter().map(|c| c.serial.clone()).collect(), crl_day(now_ms)));
        let files = (
            password_file(self.server.as_ref(), &devices),
            acl_file(self.server.as_ref(), &self.topics, &devices),
            crl_key,
        );
        if written == Some(&files) {
            return Ok((files, vec![]));
        }
        write_atomically(&self.dir.join("passwords"), &files.0)?;
        write_atomically(&self.dir.join("acl"), &files.1)?;
        if let (Some(ca), Some(revoked)) = (&self.device_ca, &revoked) {
            let crl = ca.crl(revoked, now_ms).map_err(|e| SyncError::Crl(e.to_string()))?;
            write_atomically(&self.dir.join(CRL_FILE), &crl)?;
        }
        tracing::info!(devices = devices.len(), dir = %self.dir.display(), "Mosquitto files written");
        self.reload().await?;
        let newly_revoked = newly_revoked(written, revoked.as_deref().unwrap_or_default());
        Ok((files, newly_revoked))
    }
}

/// The day a CRL is signed for: it is signed again when the day changes.
fn crl_day(now_ms: i64) -> i64 {
    now_ms / 86_400_000
}

/// The devices of the certificates in `revoked` whose serials `written` did not list yet;
/// none at the first write (a start is no revocation).
fn newly_revoked(written: Option<&Written>, revoked: &[DeviceCertificateRecord]) -> Vec<DeviceId> {
    let Some((_, _, Some((before, _)))) = written else {
        return vec![];
    };
    let devices: std::collections::BTreeSet<_> =
        revoked.iter().filter(|c| !before.contains(&c.serial)).map(|c| c.device_id.clone()).collect();
    devices.into_iter().collect()
}

/// Temp file in the same directory (mode 0640: Mosquitto's group may read it), fsync,
/// rename.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let mut file = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
    file.as_file().set_permissions(std::fs::Permissions::from_mode(0o640))?;
    file.write_all(contents.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certificates_revoked_since_the_last_write_are_taken_over() {
        let cert = |serial: &str, device: &str| DeviceCertificateRecord {
            sha256: String::new(),
            serial: serial.into(),
            device_id: DeviceId::parse(device.to_owned()).unwrap(),
            not_after_ms: 0,
            revoked_at_ms: Some(0),
            created_at_ms: 0,
        };
        let revoked = [cert("01", "dev-a"), cert("02", "dev-b"), cert("03", "dev-b")];
        assert!(newly_revoked(None, &revoked).is_empty(), "a start is no revocation");
        let before: Written = (String::new(), String::new(), Some((vec!["01".into()], 0)));
        let devices = newly_revoked(Some(&before), &revoked);
        assert_eq!(devices.iter().map(DeviceId::as_str).collect::<Vec<_>>(), ["dev-b"]);
        let without_ca: Written = (String::new(), String::new(), None);
        assert!(newly_revoked(Some(&without_ca), &revoked).is_empty());
    }

    #[test]
    fn a_poll_compares_again_only_when_something_moved() {
        let at = Instant::now();
        let first = Look { changes: Some(7), covers: 2, day: 100, at };
        let same = |f: fn(&mut Look)| {
            let mut now = Look { changes: Some(7), covers: 2, day: 100, at: at + POLL };
            f(&mut now);
            first.still(&now)
        };
        assert!(same(|_| {}));
        assert!(!same(|l| l.changes = Some(8)), "the counter moved");
        assert!(!same(|l| l.changes = None), "the counter could not be read");
        assert!(!same(|l| l.covers = 3), "a sync was asked for");
        assert!(!same(|l| l.day = 101), "a new day signs the CRL again");
        assert!(!same(|l| l.at += FULL_LOOK - POLL), "a minute since the last comparison");
        let unread = Look { changes: None, covers: 2, day: 100, at };
        assert!(!unread.still(&Look { at: at + POLL, ..unread }), "no counter, no skipping");
    }

    /// A device registered through another replica (here: straight into the store, no
    /// nudge) reaches the password file by the counter the database raised.
    #[tokio::test]
    async fn a_change_the_counter_shows_is_written_without_a_nudge() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("fleet.db")).await.unwrap());
        let files = dir.path().join("mosquitto");
        std::fs::create_dir(&files).unwrap();
        let before = store.credential_changes().await.unwrap();
        let (sync, _handle) = MosquittoSync::new(&files, None, None, Topics::new("fleet"), store.clone(), None);
        let stop = CancellationToken::new();
        let task = tokio::spawn(sync.run(stop.clone()));
        let device = crate::store::NewDevice {
            id: DeviceId::parse("dev-late").unwrap(),
            hardware: fleet_protocol::HardwareModel::parse("rpi4").unwrap(),
            labels: Default::default(),
            token_hash: "hash-late".into(),
            broker_password_hash: "$7$late".into(),
            created_at_ms: 1,
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        store.insert_device(&device).await.unwrap();
        assert!(store.credential_changes().await.unwrap() > before, "registering raised the counter");
        let mut written = String::new();
        for _ in 0..50 {
            written = std::fs::read_to_string(files.join("passwords")).unwrap_or_default();
            if written.contains("dev-late:$7$late") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(written.contains("dev-late:$7$late"), "{written}");
        stop.cancel();
        task.await.unwrap();
    }
}
