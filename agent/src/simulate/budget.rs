//! The simulator's open-files budget: at start the soft limit is raised to the hard one,
//! and a `--count` that cannot fit under it is refused with the numbers, rather than
//! failing later, device by device, with `Too many open files` in the middle of a rollout.
//!
//! Each virtual device holds one MQTT connection for good; HTTP connections are shared and
//! bounded (`--http-connections` in use, and the pool's idle ones); and files are open only
//! while a blocking thread writes or hashes one, or in a runtime worker's hands.

use fleet_protocol::open_files::{self, OpenFiles, show};

/// Idle HTTP connections the pool keeps at most.
pub const IDLE_CONNECTIONS: u64 = crate::update::download::MAX_IDLE_CONNECTIONS as u64;
/// Files open at once on tokio's blocking pool at most (its default thread count): a
/// download being written, a file hashed, a slot installed.
pub const BLOCKING_THREADS: u64 = 512;
/// The process itself: standard streams, the runtime's poller and wakers, logs, the
/// registration's connections, the runtime workers' own files.
pub const PROCESS: u64 = 64;

/// What `count` devices with `http` connections at once need of the open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub devices: u64,
    pub http: u64,
    /// Idle HTTP connections, files being written, the process's own.
    pub margin: u64,
}

impl Needs {
    pub fn of(count: usize, http: usize) -> Self {
        Self { devices: count as u64, http: http as u64, margin: IDLE_CONNECTIONS + BLOCKING_THREADS + PROCESS }
    }

    /// With `--certificates`: each device's own HTTPS client may keep its idle connection
    /// (a few seconds) beside its MQTT one, one more file per device.
    pub fn with_own_pools(mut self) -> Self {
        self.margin += self.devices;
        self
    }

    pub fn total(&self) -> u64 {
        self.devices + self.http + self.margin
    }
}

/// The count does not fit under the hard open-files limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} simulated devices need {} open files ({} MQTT connections + {} HTTP connections (--http-connections) + {} for idle connections, files being written and the process), but the open-files hard limit is {}: raise it to at least {} (ulimit -n, LimitNOFILE=), or run fewer devices per process",
    .needs.devices, .needs.total(), .needs.devices, .needs.http, .needs.margin, show(.limit.now), .needs.total()
)]
pub struct TooFewFiles {
    pub needs: Needs,
    pub limit: OpenFiles,
}

/// Raises the soft limit to the hard one; refuses when `needs` cannot fit under it.
pub fn reserve(needs: Needs) -> Result<OpenFiles, TooFewFiles> {
    let (limit, error) = open_files::raise_to_hard_limit();
    if let Some(e) = error {
        tracing::warn!("raising the open-files limit to the hard limit: {e}");
    }
    tracing::info!("open-files limit {} (was {}); {} needed", show(limit.now), show(limit.was), needs.total());
    if limit.fits(needs.total()) { Ok(limit) } else { Err(TooFewFiles { needs, limit }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_devices_fit_in_twenty_thousand_files_and_the_refusal_has_the_numbers() {
        let needs = Needs::of(10_000, 64);
        assert!(needs.total() <= 20_000, "{needs:?}");
        assert_eq!(needs.total(), 10_000 + 64 + 64 + 512 + 64);
        let refused = TooFewFiles { needs: Needs::of(300, 64), limit: OpenFiles { was: Some(256), now: Some(512) } };
        let text = refused.to_string();
        for number in ["300 simulated devices need 1004 open files", "64 HTTP connections", "hard limit is 512"] {
            assert!(text.contains(number), "{text}");
        }
    }

    #[test]
    fn with_certificates_each_device_may_also_hold_its_own_https_connection() {
        let needs = Needs::of(10_000, 64).with_own_pools();
        assert_eq!(needs.total(), 2 * 10_000 + 64 + 64 + 512 + 64);
        assert!(needs.total() > 20_000, "10,000 devices with certificates need more than one process at 20,000");
    }
}
