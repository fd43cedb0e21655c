//! The Fleet OTA wire contract, shared by the server, the agent and `fleetctl`.
//!
//! Everything that crosses a process boundary is defined here, once:
//!
//! - [`id`]: validated identifiers ([`DeviceId`], [`ProductName`], [`HardwareModel`]).
//! - [`digest`]: [`Sha256Digest`], lowercase hex SHA-256.
//! - [`manifest`]: the signed description of one artifact (schema 1, strict parsing).
//! - [`envelope`]: the DSSE envelope and its pre-authentication encoding (PAE).
//! - [`keys`]: Ed25519 public keys, key ids and PEM loading (openssl-compatible).
//! - [`verify`]: strict signature verification against trusted keys with a threshold.
//! - [`sign`]: creating envelopes (feature `sign`; only operator tools hold private keys).
//! - [`trust`]: trust documents (root, firmware and config roles) and TUF's rule for
//!   accepting the next one.
//! - [`topic`]: MQTT topic builders and parsers.
//! - [`message`]: commands (server → device) and status reports (device → server).
//! - [`state`]: per-device rollout states, reason codes and the table of legal transitions.
//! - [`problem`]: the RFC 9457 error body and its stable error codes.
//! - [`api`]: the REST request and response bodies.
//! - [`events`]: event types and patterns, the device event and webhook bodies (§10).
//! - [`paths`]: the `/api/v1` prefix and the path of every REST resource.
//! - [`presence`]: the keep-alive, the `online` refresh and the silence bound of presence.
//! - `tls`: TLS client settings shared by every client (feature `tls`).
//! - `open_files`: raising the open-files limit, telling out-of-files errors (feature
//!   `open-files`; the server and the simulator both need it, neither may depend on the other).

#![forbid(unsafe_code)]

pub mod api;
pub mod digest;
pub mod envelope;
pub mod events;
pub mod id;
pub mod keys;
pub mod manifest;
pub mod message;
#[cfg(feature = "open-files")]
pub mod open_files;
pub mod paths;
pub mod presence;
pub mod problem;
#[cfg(feature = "sign")]
pub mod sign;
/// The device core's states and reasons: one definition for devices and servers.
pub use fleet_agent_core::state;
#[cfg(test)]
mod state_tests;
#[cfg(feature = "tls")]
pub mod tls;
pub mod topic;
pub mod trust;
pub mod verify;

pub use digest::Sha256Digest;
pub use envelope::Envelope;
pub use id::{DeviceId, HardwareModel, IdError, ProductName, RolloutId};
pub use keys::{KeyError, KeyId, PublicKey};
pub use manifest::{ArtifactKind, Manifest, ManifestError};
pub use problem::{ErrorCode, Problem};
pub use verify::{Verified, Verifier, VerifyError};
