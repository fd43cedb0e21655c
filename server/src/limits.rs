//! The open-files limit. Every connection (HTTP, MQTT) and open file costs a descriptor; a
//! service started without `LimitNOFILE=` gets a soft limit of 1,024, which a thousand idle
//! connections exhaust. At start the soft limit is raised to the hard one, and a limit
//! still low for a fleet is said out loud; accept loops (HTTP, the broker's gate) back off
//! through [`accept_failed`] rather than spin when descriptors run out.

use std::io;
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// How long an accept loop waits when the process is out of file descriptors (or kernel
/// memory) before it tries again: connections closing meanwhile free some.
pub const OUT_OF_FILES_BACKOFF: Duration = Duration::from_millis(100);

/// Below this many descriptors the server warns: room for a few thousand devices and
/// operators besides the database, blobs and the broker.
pub const LOW_OPEN_FILES: u64 = 8192;

/// The open-files limit before and after [`raise_open_files_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub was: Option<u64>,
    pub now: Option<u64>,
}

/// Raises the soft open-files limit to the hard limit (`None` stands for unlimited), logs
/// the result, and warns when it stays below [`LOW_OPEN_FILES`].
pub fn raise_open_files_limit() -> OpenFiles {
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
    let now = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(e) => {
            tracing::warn!("raising the open-files limit to the hard limit: {e}");
            limit.current
        }
    };
    let files = OpenFiles { was: limit.current, now };
    let show = |n: Option<u64>| n.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    match now {
        Some(n) if n < LOW_OPEN_FILES => tracing::warn!(
            "open-files limit {} (hard limit): each device and HTTP client holds one; raise it (e.g. LimitNOFILE=65536) for more than a few hundred devices",
            n
        ),
        _ => tracing::info!("open-files limit {} (was {})", show(now), show(files.was)),
    }
    files
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
        let out_of_files = matches!(errno, Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM));
        if out_of_files {
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
    fn the_soft_open_files_limit_is_raised_to_the_hard_limit() {
        let files = raise_open_files_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
        assert_eq!(files.now, limit.current);
    }
}
