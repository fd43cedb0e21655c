//! The open-files limit, the same way for the server and the agent's simulator: every
//! connection and open file costs a descriptor, and a process started without
//! `LimitNOFILE=` (or `ulimit -n`) gets a soft limit of 1,024 while the hard limit is often
//! far higher. [`raise_to_hard_limit`] lifts the soft limit; [`out_of_files`] tells the
//! errors of a process that has run out of descriptors (or kernel memory) from the rest.

use std::io;

use rustix::io::Errno;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The open-files limit before and after [`raise_to_hard_limit`] (`None` is unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub was: Option<u64>,
    pub now: Option<u64>,
}

impl OpenFiles {
    /// Whether `needed` descriptors fit under the limit now.
    pub fn fits(&self, needed: u64) -> bool {
        self.now.is_none_or(|limit| needed <= limit)
    }
}

/// Raises the soft open-files limit to the hard limit. When the kernel refuses (it should
/// not: lowering nothing, raising within the hard limit), the limit stays as it was and the
/// error is returned beside it.
pub fn raise_to_hard_limit() -> (OpenFiles, Option<io::Error>) {
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => (OpenFiles { was: limit.current, now: limit.maximum }, None),
        Err(e) => (OpenFiles { was: limit.current, now: limit.current }, Some(e.into())),
    }
}

/// Whether `e` says the process (or the system) is out of file descriptors or of the
/// kernel memory a socket needs: `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`.
pub fn out_of_files(e: &io::Error) -> bool {
    matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM))
}

/// Whether `e` or any error in its chain of causes is [`out_of_files`] (a socket that
/// could not be opened, deep inside an HTTP client's error).
pub fn caused_by_out_of_files(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        let io = c.downcast_ref::<io::Error>();
        if io.is_some_and(out_of_files) {
            return true;
        }
        // An `io::Error` wrapping another error reports that error's causes, not the error.
        if let Some(inner) = io.and_then(io::Error::get_ref) {
            return caused_by_out_of_files(inner);
        }
        cause = c.source();
    }
    false
}

/// "unlimited" or the number.
pub fn show(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let (files, error) = raise_to_hard_limit();
        let limit = getrlimit(Resource::Nofile);
        assert!(error.is_none(), "{error:?}");
        assert_eq!((limit.current, files.now), (limit.maximum, limit.maximum));
    }

    #[test]
    fn out_of_files_is_told_from_other_errors_also_as_a_cause() {
        let emfile = io::Error::from_raw_os_error(Errno::MFILE.raw_os_error());
        assert!(out_of_files(&emfile));
        assert!(!out_of_files(&io::Error::from(io::ErrorKind::ConnectionRefused)));
        let wrapped = io::Error::other(emfile);
        assert!(!out_of_files(&wrapped), "the outer error is not EMFILE itself");
        assert!(caused_by_out_of_files(&wrapped));
        #[derive(Debug, thiserror::Error)]
        #[error("connect")]
        struct Connect(#[source] io::Error);
        assert!(caused_by_out_of_files(&Connect(io::Error::from_raw_os_error(Errno::NFILE.raw_os_error()))));
        assert!(!caused_by_out_of_files(&Connect(io::Error::from(io::ErrorKind::TimedOut))));
    }

    #[test]
    fn a_count_fits_under_a_limit_or_none() {
        assert!(OpenFiles { was: None, now: None }.fits(u64::MAX));
        let limit = OpenFiles { was: Some(1024), now: Some(2048) };
        assert!(limit.fits(2048) && !limit.fits(2049));
    }
}
