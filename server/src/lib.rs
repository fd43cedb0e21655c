//! Fleet OTA server: signed artifacts, the device registry and rollouts, over HTTP and MQTT.
//!
//! Its floors, from the bottom up (a module uses only those on its floor or below):
//!
//! - Values: [`clock`] (the one clock), [`random`] (randomness and ids), [`token`] (bearer
//!   tokens made and hashed), [`settings`] (flags and `FLEET_*` environment variables).
//! - Store: [`store`], the `Store` trait with its SQLite and PostgreSQL implementations;
//!   [`blobs`], the content-addressed blob store.
//! - Domain: [`rollout`] (planning, the engine task and report ingestion);
//!   [`credentials`] (device tokens issued, rotated and revoked); [`device_ca`] (device
//!   certificates signed, and which device a presented one stands for); [`audit`] (the trail of
//!   operator actions); [`gc`] (unreferenced blobs); [`retention`] (finished rollouts
//!   expiring); [`presence`] (devices silent too long
//!   marked offline); [`backup`] (online backups); [`trust_announce`] (the latest trust
//!   document, retained on `{root}/trust`);
//!   [`events`] (the retained event topics and webhooks, from one announcer);
//!   [`artifact_cache`] and [`device_tokens`] (records and tokens remembered a moment, by
//!   the rule of [`remembered`]); [`metrics`]; [`state`], what handlers share.
//! - HTTP: [`http`], the REST API, one module per resource, `http::error` mapping every
//!   error once, and `http::ui`, the operator dashboard under `/ui/`; [`auth`], who is
//!   calling (its extractors); [`tls`], HTTPS.
//! - MQTT: [`broker`], the embedded broker with per-device isolation and the files of an
//!   external Mosquitto; [`mqtt`], the server's own client (the only code touching it).
//! - Application: [`app`], `Application::build` does every fallible start-up step and
//!   `run_until_stopped` serves and stops gracefully; [`limits`], the open-files limit
//!   raised at start; [`entry`], the command line.

#![forbid(unsafe_code)]

pub mod app;
pub mod artifact_cache;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod blobs;
pub mod broker;
pub mod clock;
pub mod credentials;
pub mod device_ca;
pub mod device_tokens;
pub mod entry;
pub mod events;
pub mod gc;
pub mod ha;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod mqtt;
pub mod presence;
pub mod random;
pub mod remembered;
pub mod retention;
pub mod rollout;
pub mod sent_artifacts;
pub mod settings;
pub mod state;
pub mod store;
pub mod timestamp;
pub mod tls;
pub mod token;
pub mod trust_announce;

pub use app::{Application, StartupError};
pub use clock::now_ms;
pub use entry::{init_tracing, main_entry, main_with_args};
pub use random::new_id;
pub use settings::{LogFormat, Settings};
