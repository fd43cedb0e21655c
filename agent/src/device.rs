//! Who this device is and what it trusts: the settings every part of the runner shares.

use std::path::PathBuf;
use std::time::Duration;

use fleet_protocol::topic::Topics;
use fleet_protocol::{DeviceId, HardwareModel, Verifier};

use crate::install::config_file::ConfigTarget;
use crate::mqtt::LinkConfig;

/// How the health check after a trial boot is decided.
#[derive(Debug, Clone)]
pub enum HealthCheck {
    /// The broker and the server are reached again within the timeout.
    Reconnect { timeout: Duration },
    /// A command that exits 0 within the timeout.
    Command { command: String, timeout: Duration },
}

/// Failures injected into simulated devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Injected {
    pub install_fails: bool,
    pub health_fails: bool,
}

/// Everything the runner needs to know about its device.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: DeviceId,
    pub token: String,
    pub hardware: HardwareModel,
    /// The `--server` base URL; the only origin that sees the token.
    pub server: reqwest::Url,
    /// The `--trust` keys; unused when a trust root is given.
    pub verifier: Verifier,
    /// `--trust-root`: the pinned trust document (CONTRACT §11); with it, artifacts are
    /// verified by the roles of the trust document in force.
    pub trust_root: Option<PathBuf>,
    pub topics: Topics,
    pub mqtt_host: String,
    pub mqtt_port: u16,
    /// `mqtts://`: the TLS settings (trusting `--ca-file`, else the system's roots).
    pub mqtt_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub state_dir: PathBuf,
    /// fsync journal and slot writes (off for simulated devices).
    pub durable: bool,
    pub health: HealthCheck,
    pub config: ConfigTarget,
    pub injected: Injected,
    /// `--client-cert/--client-key`: the device certificate presented and renewed.
    pub client_cert: Option<std::sync::Arc<crate::certificate::ClientCert>>,
    /// Test-only: seconds added to the clock (negative sets it back).
    pub clock_offset_s: i64,
    /// Test-only: pause after each downloaded chunk, so a download can be interrupted.
    pub download_delay: std::time::Duration,
}

impl Device {
    pub fn link_config(&self) -> LinkConfig {
        LinkConfig {
            device_id: self.id.clone(),
            token: self.token.clone(),
            host: self.mqtt_host.clone(),
            port: self.mqtt_port,
            tls: self.mqtt_tls.clone(),
            topics: self.topics.clone(),
            keep_alive: fleet_protocol::presence::KEEP_ALIVE,
            trust: self.trust_root.is_some(),
        }
    }

    /// Unix seconds by this device's clock.
    pub fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp() + self.clock_offset_s
    }

    /// The URL of a REST path (one of `fleet_protocol::paths`) on this device's server.
    pub fn api(&self, path: &str) -> String {
        fleet_protocol::paths::api_url(self.server.as_str(), path)
    }
}
