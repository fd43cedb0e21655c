//! The part of a Fleet OTA device that decides and verifies, for the Linux agent and for
//! microcontrollers alike: `#![no_std]`, no allocator, fixed-size buffers, explicit limits.
//!
//! - [`envelope`] and [`verify`]: a DSSE envelope checked against pinned Ed25519 keys and a
//!   threshold (CONTRACT §2);
//! - [`manifest`] and [`version`]: the signed manifest and its semantic versions;
//! - [`admission`]: whether a verified update may start (CONTRACT §6, steps 3–4);
//! - [`image`]: the received image's size and SHA-256, chunk by chunk;
//! - [`machine`]: the update state machine, `step(state, event) -> (state, effects)`;
//! - [`report`]: the status report a device publishes (CONTRACT §4);
//! - [`state`]: the contract's states, reasons and legal transitions (CONTRACT §5);
//! - [`command`], [`updater`] and [`session`]: a microcontroller's whole update over its
//!   own flash (A/B) and network, with the board support package behind two traits.
//!
//! What it leaves to its host: the network (MQTT, HTTP), the flash or file system, the
//! clock and the reboot. Its limits are the constants below.
#![no_std]

// Tests, and the OpenAPI derives (whose code uses `vec!`), run where std is.
#[cfg(any(test, feature = "openapi"))]
#[macro_use]
extern crate std;

pub mod admission;
pub mod command;
pub mod envelope;
pub mod flash;
pub mod id;
pub mod image;
pub mod job;
pub mod journal;
mod kind;
pub mod machine;
pub mod manifest;
pub mod report;
pub mod session;
pub mod state;
pub mod updater;
pub mod verify;
pub mod version;

#[cfg(test)]
mod signed;

pub use state::{DeviceState, Reason};

/// The largest manifest payload accepted, decoded (the contract's manifests are a few
/// hundred bytes).
pub const MAX_PAYLOAD_BYTES: usize = 2048;

/// The most signatures one envelope may carry (as CONTRACT §2's envelope limit).
pub const MAX_SIGNATURES: usize = 16;

/// The most hardware models one manifest lists.
pub const MAX_HARDWARE: usize = 16;

/// The most comparators in one version requirement (`>=1.2.0, <2.0.0` has two).
pub const MAX_COMPARATORS: usize = 8;

/// The buffer [`verify::Keys::verify`] needs: the DSSE pre-authentication encoding of the
/// largest payload (`DSSEv1`, two lengths and the payload type around it).
pub const VERIFY_BUFFER_BYTES: usize = MAX_PAYLOAD_BYTES + 256;

/// The largest journal an updater writes (`journal::Journal`; an update in progress takes
/// under 200 bytes).
pub const JOURNAL_BYTES: usize = 1024;
