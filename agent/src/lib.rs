//! Fleet OTA device agent. A placeholder in this release: the agent (confirmed commands,
//! verification, resumable download, A/B install, rollback, simulate mode) is built next,
//! on the `fleet-protocol` crate it already depends on.

#![forbid(unsafe_code)]
