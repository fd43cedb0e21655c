//! The agent's HTTP client and, in the simulator, the gate in front of it: one client (one
//! connection pool) serves every virtual device, and at most `--http-connections` requests
//! are under way at once; the rest wait their turn (a fair queue, with no deadline: what
//! waits is the load generator's, not the fleet's). A request holds its permit until its
//! answer is read, so connections in use stay within the gate and open files within the
//! budget `simulate` checks at start. A device agent (`run`) has no gate.
//!
//! Errors of the agent's own resources (out of descriptors) are told apart from the
//! server's and the network's by [`LocalError`]: they are retried or logged, never
//! reported to the server as the device's failure.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A failure of the agent's (the simulator's) own resources, not of the device's update.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// The process is out of file descriptors (or the kernel memory a socket needs).
    #[error("out of open files: {0}")]
    OutOfFiles(String),
}

impl LocalError {
    /// `Some` when `e` (or any of its causes) says the process ran out of descriptors.
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        fleet_protocol::open_files::caused_by_out_of_files(e).then(|| Self::OutOfFiles(with_causes(e)))
    }

    /// [`LocalError::of`] for a file operation's error.
    pub fn of_io(e: &std::io::Error) -> Option<Self> {
        Self::of(e)
    }
}

/// The HTTP client, shared by every device of a process, with the simulator's gate.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    gate: Option<Arc<Semaphore>>,
}

/// A turn at the gate: hold it until the answer is read.
#[derive(Debug)]
pub struct Turn {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Http {
    /// A client without a gate (a device agent).
    pub fn new(client: reqwest::Client) -> Self {
        Self { client, gate: None }
    }

    /// A client whose requests pass `at_once` at a time.
    pub fn gated(client: reqwest::Client, at_once: usize) -> Self {
        Self { client, gate: Some(Arc::new(Semaphore::new(at_once.max(1)))) }
    }

    /// Another client behind the same gate: a simulated device presenting a certificate
    /// of its own needs a client (and pool) of its own, yet counts against the same limit.
    pub fn with_client(&self, client: reqwest::Client) -> Self {
        Self { client, gate: self.gate.clone() }
    }

    /// The client, for building requests (send them holding a [`Turn`]).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Waits for a turn at the gate (at once without one).
    pub async fn turn(&self) -> Turn {
        match &self.gate {
            // The semaphore is never closed, so acquiring only waits.
            Some(gate) => Turn { _permit: gate.clone().acquire_owned().await.ok() },
            None => Turn { _permit: None },
        }
    }
}

/// After a failure of this process's own resources (out of descriptors), the pause before
/// trying again.
pub const LOCAL_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// An error with its causes, e.g. `error sending request: … invalid peer certificate:
/// UnknownIssuer` (reqwest's own message stops at the first line).
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_lets_so_many_through_and_queues_the_rest() {
        let http = Http::gated(crate::update::download::http_client(None).unwrap(), 2);
        let (a, b) = (http.turn().await, http.turn().await);
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), http.turn()).await;
        assert!(third.is_err(), "a third request waits while two are under way");
        drop(a);
        let third = tokio::time::timeout(std::time::Duration::from_secs(1), http.turn()).await;
        assert!(third.is_ok(), "and goes once one is done");
        drop(b);
        let ungated = Http::new(crate::update::download::http_client(None).unwrap());
        let turns: Vec<Turn> = futures_util::future::join_all((0..100).map(|_| ungated.turn())).await;
        assert_eq!(turns.len(), 100);
    }

    #[test]
    fn out_of_files_is_local_and_a_refused_connection_is_not() {
        let emfile = std::io::Error::from_raw_os_error(24);
        assert!(matches!(LocalError::of_io(&emfile), Some(LocalError::OutOfFiles(_))));
        assert!(LocalError::of_io(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused)).is_none());
    }
}
