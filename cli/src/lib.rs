//! `fleetctl`, the operator's CLI, and the typed API client the tests reuse.
//!
//! - [`client`]: `ApiClient`, one typed method per REST call.
//! - [`commands`]: one module per subcommand (keygen, sign, keys, firmware/configs, devices,
//!   rollouts).
//! - [`sse`]: reading a Server-Sent Events stream.

#![forbid(unsafe_code)]

pub mod client;
pub mod commands;
pub mod sse;

pub use client::{ApiClient, ClientError};
pub use commands::{Cli, run};
