//! Fleet OTA device agent: it installs nothing it should not, and never leaves a device
//! without a bootable slot.
//!
//! - [`atomic_file`]: replacing a file atomically, with no symlink or name to hijack.
//! - [`certificate`]: `fleet-agent enroll`, and the device certificate presented and renewed.
//! - [`cli`]: `fleet-agent run`, `fleet-agent enroll` and `fleet-agent simulate`.
//! - [`config`]: flags, `FLEET_AGENT_*` environment and `agent.toml`.
//! - [`device`]: who the device is and what it trusts.
//! - [`health`]: the reconnect health check after an update.
//! - [`http`]: the shared HTTP client, the simulator's gate, and errors of local resources.
//! - [`mqtt`]: the MQTT link (the only code touching the MQTT client).
//! - [`runner`]: feeds events to the state machine; [`effects`] performs what it asks.
//! - [`update`]: the pure checks and state machine, the journal, the download.
//! - [`install`]: the `Installer` trait (A/B slot files, external commands) and config files.
//! - [`simulate`]: many virtual devices on the same code path.
//! - [`trust`]: the trust document in force (pinned, then accepted by TUF's rule, kept in
//!   the state directory); `trust_sync` fetches and applies newer versions.

#![forbid(unsafe_code)]

pub mod atomic_file;
pub mod certificate;
pub mod cli;
mod commands;
pub mod config;
pub mod device;
mod effects;
pub mod enroll;
pub mod health;
pub mod http;
pub mod install;
pub mod mqtt;
pub mod runner;
pub mod simulate;
pub mod trust;
mod trust_sync;
pub mod update;
