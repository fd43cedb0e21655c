//! The open-files limit. Every connection (HTTP, MQTT) and open file costs a descriptor; a
//! service started without `LimitNOFILE=` gets a soft limit of 1,024, which a thousand idle
//! connections exhaust. At start the soft limit is raised to the hard one, and a limit
//! still low for a fleet is said out loud; accept loops (HTTP, the broker's gate) back off
//! through [`accept_failed`] rather than spin when descriptors run out. At start the
//! registered fleet is counted and a limit too low for it is said with the numbers
//! ([`warn_about_fleet`]).

use std::io;
use std::time::Duration;

pub use fleet_protocol::open_files::OpenFiles;
use fleet_protocol::open_files::{self, show};
use rustix::io::Errno;

/// How long an accept loop waits when the process is out of file descriptors (or kernel
/// memory) before it tries again: connections closing meanwhile free some.
pub const OUT_OF_FILES_BACKOFF: Duration = Duration::from_millis(100);

/// Below this many descriptors the server warns: room for a few thousand devices and
/// operators besides the database, blobs and the broker.
pub const LOW_OPEN_FILES: u64 = 8192;

/// Raises the soft open-files limit to the hard limit (`None` stands for unlimited), logs
/// the result, and warns when it stays below [`LOW_OPEN_FILES`].
pub fn raise_open_files_limit() -> OpenFiles {
    let (files, error) = open_files::raise_to_hard_limit();
    if let Some(e) = error {
        tracing::warn!("raising the open-files limit to the hard limit: {e}");
    }
    match files.now {
        Some(n) if n < LOW_OPEN_FILES => tracing::warn!(
            "open-files limit {} (hard limit): each device and HTTP client holds one; raise it (e.g. LimitNOFILE=65536) for more than a few hundred devices",
            n
        ),
        _ => tracing::info!("open-files limit {} (was {})", show(files.now), show(files.was)),
    }
    files
}

/// Descriptors a connected device holds on the embedded broker: its socket, which the
/// CONNECT gate hands to rmqtt (docs/security.md).
pub const FILES_PER_EMBEDDED_DEVICE: u64 = 1;

/// Descriptors beside the devices' MQTT connections: HTTP clients at once (a fleet
/// confirming and downloading during a rollout, operators), the database, blobs, logs.
pub const FILES_BESIDE_DEVICES: u64 = 1024;

/// What a registered fleet needs of the open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetNeeds {
    pub devices: u64,
    /// Descriptors the devices' MQTT connections hold in this process (none on an
    /// external broker).
    pub mqtt: u64,
    pub beside: u64,
}

impl FleetNeeds {
    /// `devices` registered, connected to the embedded broker or not.
    pub fn of(devices: u64, embedded_broker: bool) -> Self {
        let per_device = if embedded_broker { FILES_PER_EMBEDDED_DEVICE } else { 0 };
        Self { devices, mqtt: devices.saturating_mul(per_device), beside: FILES_BESIDE_DEVICES }
    }

    pub fn total(&self) -> u64 {
        self.mqtt.saturating_add(self.beside)
    }

    /// A `LimitNOFILE=` with room: the total's next power of two, at least 65,536.
    pub fn suggested_limit(&self) -> u64 {
        self.total().checked_next_power_of_two().unwrap_or(u64::MAX).max(65_536)
    }
}

/// Warns, with the numbers and what to do, when the open-files limit cannot hold the
/// registered fleet connected at once; returns what it needs when it cannot.
pub fn warn_if_short(files: OpenFiles, needs: FleetNeeds) -> Option<FleetNeeds> {
    let limit = files.now?;
    if files.fits(needs.total()) {
        return None;
    }
    tracing::warn!(
        "open-files limit {limit} is too low for the {} registered devices: they need {} ({} for their MQTT connections on the embedded broker, {} per device, + {} for HTTP clients, the database and blobs); devices beyond the limit will be refused (Too many open files). Raise the hard limit: LimitNOFILE={} in the systemd unit, or ulimit -n before starting",
        needs.devices,
        needs.total(),
        needs.mqtt,
        FILES_PER_EMBEDDED_DEVICE,
        needs.beside,
        needs.suggested_limit()
    );
    Some(needs)
}

/// At start: counts the registered devices and warns when the limit cannot hold them all
/// connected ([`warn_if_short`]); a count that fails is only logged.
pub async fn warn_about_fleet(files: OpenFiles, store: &dyn crate::store::Store, embedded_broker: bool) {
    match store.fleet_counts().await {
        Ok(counts) => {
            let devices = u64::try_from(counts.devices).unwrap_or(0);
            warn_if_short(files, FleetNeeds::of(devices, embedded_broker));
        }
        Err(e) => tracing::warn!("counting the registered devices (for the open-files limit): {e}"),
    }
}

/// After a failed `accept` on the `what` port: a connection the peer gave up on is skipped
/// at once; otherwise (out of descriptors or memory, mostly) the loop waits
/// [`OUT_OF_FILES_BACKOFF`], saying so once per episode. Returns whether the loop is
/// starved; the caller resets that on the next accepted connection.
pub async fn accept_failed(what: &str, e: &io::Error, starved: bool) -> bool {
    let errno = Errno::from_io_error(e);
    if matches!(errno, Some(Errno::CONNABORTED | Errno::CONNRESET | Errno::PROTO)) {
        return starved;
    }
    if !starved {
        if open_files::out_of_files(e) {
            tracing::warn!(
                "accepting a {what} connection: {e}; waiting for connections to close (deadlines, open-files limit)"
            );
        } else {
            tracing::warn!("accepting a {what} connection: {e}");
        }
    }
    tokio::time::sleep(OUT_OF_FILES_BACKOFF).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_too_large_for_the_limit_is_told_with_its_needs() {
        let limit = OpenFiles { was: Some(1024), now: Some(20_000) };
        let needs = FleetNeeds::of(30_000, true);
        assert_eq!((needs.mqtt, needs.total()), (30_000, 31_024));
        assert_eq!(needs.suggested_limit(), 65_536);
        assert_eq!(warn_if_short(limit, needs), Some(needs));
        assert_eq!(warn_if_short(limit, FleetNeeds::of(10_000, true)), None, "one descriptor per device");
        assert_eq!(warn_if_short(limit, FleetNeeds::of(100_000, false)), None, "an external broker holds them");
        assert_eq!(warn_if_short(OpenFiles { was: None, now: None }, needs), None);
    }

    #[test]
    fn the_soft_open_files_limit_is_raised_to_the_hard_limit() {
        let files = raise_open_files_limit();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
        assert_eq!(files.now, limit.current);
    }
}
