//! `fleet-agent run` settings: flags, `FLEET_AGENT_*` environment variables, or a TOML file
//! (`--config agent.toml`, keys spelled like the flags). Flags and environment win over the
//! file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet_protocol::topic::{BrokerUrl, Topics};
use fleet_protocol::{DeviceId, HardwareModel, PublicKey, Verifier};
use serde::Deserialize;

use crate::certificate::ClientCert;
use crate::device::{Device, HealthCheck, Injected};
use crate::install::config_file::ConfigTarget;

/// The firmware back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallerKind {
    /// Two slot files in the state directory, with a trial boot and a boot counter.
    #[default]
    AbSlots,
    /// External commands (RAUC, SWUpdate, …).
    Command,
    /// Two slots (--slot-a, --slot-b) and U-Boot's boot counting in its environment.
    Uboot,
    /// RAUC bundles through RAUC's D-Bus service (`rauc install`, `rauc status`).
    Rauc,
    /// `.swu` files through SWUpdate (--swupdate-select), slots in U-Boot's environment.
    Swupdate,
}

/// The flags of `fleet-agent run`.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunArgs {
    /// A TOML file with any of these settings.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This device's id, as registered with the server (also its MQTT client id).
    #[arg(long, env = "FLEET_AGENT_DEVICE_ID")]
    pub device_id: Option<String>,
    /// File holding the device token (not needed with --client-cert).
    #[arg(long, env = "FLEET_AGENT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The device certificate (PEM, from `fleet-agent enroll`), presented on mqtts:// and
    /// https:// in place of the token, and renewed after two thirds of its lifetime.
    #[arg(long, env = "FLEET_AGENT_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert.
    #[arg(long, env = "FLEET_AGENT_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// This device's hardware model; updates for other hardware are rejected.
    #[arg(long, env = "FLEET_AGENT_HARDWARE")]
    pub hardware: Option<String>,
    /// Server base URL; the only origin downloads come from and the token goes to.
    #[arg(long, env = "FLEET_AGENT_SERVER")]
    pub server: Option<String>,
    /// The broker, mqtt://HOST:PORT or mqtts://HOST:PORT.
    #[arg(long, env = "FLEET_AGENT_MQTT_URL")]
    pub mqtt_url: Option<String>,
    /// A trusted release key (PEM); repeatable.
    #[arg(long, env = "FLEET_AGENT_TRUST", value_delimiter = ',')]
    #[serde(default)]
    pub trust: Vec<PathBuf>,
    /// The pinned trust document (CONTRACT §11): with it, artifacts are verified by its
    /// `firmware` and `config` roles, and newer versions are taken by TUF's rule; `--trust`
    /// is then not needed.
    #[arg(long, env = "FLEET_AGENT_TRUST_ROOT")]
    pub trust_root: Option<PathBuf>,
    /// Signatures by this many trusted keys are required.
    #[arg(long, env = "FLEET_AGENT_THRESHOLD")]
    pub threshold: Option<usize>,
    /// Where the agent keeps its journal, slot files and downloads (survives restarts).
    #[arg(long, env = "FLEET_AGENT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// CA certificate(s) (PEM) for https:// and mqtts://: only these are trusted (default:
    /// the system's roots).
    #[arg(long, env = "FLEET_AGENT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// How firmware is installed (default: ab-slots).
    #[arg(long, env = "FLEET_AGENT_INSTALLER", value_enum)]
    pub installer: Option<InstallerKind>,
    /// `command` installer: e.g. `rauc install {file}`.
    #[arg(long, env = "FLEET_AGENT_INSTALL_COMMAND")]
    pub install_command: Option<String>,
    /// `command` installer: prints the booted slot's name.
    #[arg(long, env = "FLEET_AGENT_BOOTED_SLOT_COMMAND")]
    pub booted_slot_command: Option<String>,
    /// Reboots into the newly installed slot: required by the `command` installer; for
    /// `uboot`, `rauc` and `swupdate` the default is `reboot`.
    #[arg(long, env = "FLEET_AGENT_REBOOT_COMMAND")]
    pub reboot_command: Option<String>,
    /// `command` installer: marks the booted slot good after a passed health check.
    #[arg(long, env = "FLEET_AGENT_COMMIT_COMMAND")]
    pub commit_command: Option<String>,
    /// `command` installer: goes back to the previous slot after a failed trial.
    #[arg(long, env = "FLEET_AGENT_ROLLBACK_COMMAND")]
    pub rollback_command: Option<String>,
    /// `uboot` installer: slot A's block device or file.
    #[arg(long, env = "FLEET_AGENT_SLOT_A")]
    pub slot_a: Option<PathBuf>,
    /// `uboot` installer: slot B's block device or file.
    #[arg(long, env = "FLEET_AGENT_SLOT_B")]
    pub slot_b: Option<PathBuf>,
    /// `swupdate` installer: SET,MODE_A,MODE_B — the software set of `sw-description` and
    /// its modes that write slot a and slot b (`swupdate -e SET,MODE` of the inactive slot).
    #[arg(long, env = "FLEET_AGENT_SWUPDATE_SELECT")]
    pub swupdate_select: Option<String>,
    /// `swupdate` installer: CA certificate SWUpdate checks the image's signature with (`-k`).
    #[arg(long, env = "FLEET_AGENT_SWUPDATE_CA")]
    pub swupdate_ca: Option<PathBuf>,
    /// `swupdate` installer: BOARD:REV for SWUpdate's hardware-compatibility check (`-H`).
    #[arg(long, env = "FLEET_AGENT_SWUPDATE_HARDWARE")]
    pub swupdate_hardware: Option<String>,
    /// `uboot` and `swupdate` installers: libubootenv's configuration (default
    /// /etc/fw_env.config).
    #[arg(long, env = "FLEET_AGENT_UBOOT_ENV_CONFIG")]
    pub uboot_env_config: Option<PathBuf>,
    /// Timeout of each hook, in seconds (default 60; installs get ten times this).
    #[arg(long, env = "FLEET_AGENT_HOOK_TIMEOUT_S")]
    pub hook_timeout_s: Option<u64>,
    /// Health check after a trial boot (default: broker and server reached again).
    #[arg(long, env = "FLEET_AGENT_HEALTH_COMMAND")]
    pub health_command: Option<String>,
    /// Seconds the health check may take (default 120).
    #[arg(long, env = "FLEET_AGENT_HEALTH_TIMEOUT_S")]
    pub health_timeout_s: Option<u64>,
    /// Where configuration documents are written (default: STATE_DIR/config/current).
    #[arg(long, env = "FLEET_AGENT_CONFIG_PATH")]
    pub config_path: Option<PathBuf>,
    /// Run after a configuration document is written; on failure it is reverted.
    #[arg(long, env = "FLEET_AGENT_CONFIG_RELOAD_COMMAND")]
    pub config_reload_command: Option<String>,
    /// Octal mode of the configuration file, e.g. 640 (default: the replaced file's mode,
    /// 600 for a new file).
    #[arg(long, env = "FLEET_AGENT_CONFIG_MODE")]
    pub config_mode: Option<String>,
    /// The MQTT topic root (the server's --topic-root; default fleet).
    #[arg(long, env = "FLEET_AGENT_TOPIC_ROOT")]
    pub topic_root: Option<String>,
    /// TEST ONLY: seconds added to the clock (negative sets it back).
    #[arg(long, env = "FLEET_AGENT_TEST_CLOCK_OFFSET_S", hide = true, allow_hyphen_values = true)]
    pub test_clock_offset_s: Option<i64>,
    /// TEST ONLY: pause after each downloaded chunk.
    #[arg(long, env = "FLEET_AGENT_TEST_DOWNLOAD_DELAY_MS", hide = true)]
    pub test_download_delay_ms: Option<u64>,
}

macro_rules! or_file {
    ($cli:ident, $file:ident, $($field:ident),*) => {
        $( $cli.$field = $cli.$field.or($file.$field); )*
    };
}

impl RunArgs {
    /// Fills what flags and environment left open from `--config`.
    pub fn with_file(mut self) -> anyhow::Result<Self> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let file: RunArgs = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        or_file!(
            self,
            file,
            device_id,
            token_file,
            client_cert,
            client_key,
            hardware,
            server,
            mqtt_url,
            trust_root,
            threshold,
            state_dir,
            ca_file,
            installer,
            install_command,
            booted_slot_command,
            reboot_command,
            commit_command,
            rollback_command,
            slot_a,
            slot_b,
            uboot_env_config,
            swupdate_select,
            swupdate_ca,
            swupdate_hardware,
            hook_timeout_s,
            health_command,
            health_timeout_s,
            config_path,
            config_reload_command,
            config_mode,
            topic_root,
            test_clock_offset_s,
            test_download_delay_ms
        );
        if self.trust.is_empty() {
            self.trust = file.trust;
        }
        Ok(self)
    }

    /// Checks every setting and builds the device.
    pub fn device(&self) -> anyhow::Result<Device> {
        let need = |v: &Option<String>, flag: &str| v.clone().with_context(|| format!("--{flag} is required"));
        let id = DeviceId::parse(need(&self.device_id, "device-id")?).context("--device-id")?;
        let client_cert = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some(Arc::new(ClientCert::load(cert.clone(), key.clone())?)),
            (None, None) => None,
            _ => bail!("--client-cert and --client-key go together"),
        };
        let token = match (&self.token_file, &client_cert) {
            (Some(file), _) => read_token(file)?,
            (None, Some(_)) => String::new(),
            (None, None) => bail!("--token-file (or --client-cert) is required"),
        };
        let state_dir = self.state_dir.clone().context("--state-dir is required")?;
        let health_timeout = Duration::from_secs(self.health_timeout_s.unwrap_or(120));
        let server = server_url(&need(&self.server, "server")?)?;
        let presented = client_cert.as_ref().map(|c| c.identity.clone());
        let broker = broker_presenting(&need(&self.mqtt_url, "mqtt-url")?, self.ca_file.as_deref(), presented)?;
        warn_if_cleartext(&server, &broker.url);
        Ok(Device {
            id,
            token,
            hardware: HardwareModel::parse(need(&self.hardware, "hardware")?).context("--hardware")?,
            server,
            verifier: match &self.trust_root {
                Some(_) if self.trust.is_empty() => Verifier::new([], 1),
                _ => verifier(&self.trust, self.threshold.unwrap_or(1))?,
            },
            trust_root: self.trust_root.clone(),
            topics: Topics::new(self.topic_root.clone().unwrap_or_else(|| "fleet".into())),
            mqtt_host: String::new(),
            mqtt_port: 0,
            mqtt_tls: None,
            durable: true,
            health: match &self.health_command {
                Some(command) => HealthCheck::Command { command: command.clone(), timeout: health_timeout },
                None => HealthCheck::Reconnect { timeout: health_timeout },
            },
            config: ConfigTarget {
                path: self.config_path.clone().unwrap_or_else(|| state_dir.join("config/current")),
                reload: self.config_reload_command.clone(),
                timeout: Duration::from_secs(self.hook_timeout_s.unwrap_or(60)),
                mode: self.config_mode.as_deref().map(octal_mode).transpose()?,
            },
            state_dir,
            injected: Injected::default(),
            client_cert,
            clock_offset_s: self.test_clock_offset_s.unwrap_or(0),
            download_delay: Duration::from_millis(self.test_download_delay_ms.unwrap_or(0)),
        }
        .with_broker(&broker))
    }
}

/// `--config-mode`: an octal file mode such as 640 or 0600.
fn octal_mode(text: &str) -> anyhow::Result<u32> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => bail!("--config-mode {text:?}: expected an octal file mode such as 640"),
    }
}

impl Device {
    /// Connects to `broker`.
    pub fn with_broker(mut self, broker: &Broker) -> Self {
        self.mqtt_host = broker.url.host.clone();
        self.mqtt_port = broker.url.port;
        self.mqtt_tls = broker.tls.clone();
        self
    }
}

/// The broker: where, and with which TLS settings.
#[derive(Debug, Clone)]
pub struct Broker {
    pub url: BrokerUrl,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Parses an `mqtt://` or `mqtts://` URL; TLS trusts `ca_file` (else the system's roots).
pub fn broker(url: &str, ca_file: Option<&Path>) -> anyhow::Result<Broker> {
    broker_presenting(url, ca_file, None)
}

/// [`broker`], presenting `identity` (a device certificate) over TLS.
pub fn broker_presenting(
    url: &str,
    ca_file: Option<&Path>,
    identity: Option<Arc<fleet_protocol::tls::ReloadableIdentity>>,
) -> anyhow::Result<Broker> {
    let url = fleet_protocol::topic::parse_broker_url(url).context("--mqtt-url")?;
    let tls = match (url.tls, identity) {
        (true, None) => Some(Arc::new(fleet_protocol::tls::client_config(ca_file).context("--ca-file")?)),
        (true, Some(identity)) => {
            Some(Arc::new(fleet_protocol::tls::client_config_with_resolver(ca_file, identity).context("--ca-file")?))
        }
        (false, Some(_)) => bail!("--client-cert needs an mqtts:// --mqtt-url"),
        (false, None) => None,
    };
    Ok(Broker { url, tls })
}

/// Warns when the token would cross a non-loopback link in cleartext.
pub fn warn_if_cleartext(server: &reqwest::Url, broker: &BrokerUrl) {
    let remote = |host: &str| !fleet_protocol::topic::is_loopback_host(host);
    if server.scheme() == "http" && server.host_str().is_some_and(remote) {
        tracing::warn!(%server, "the device token travels to the server in cleartext: use https://");
    }
    if !broker.tls && remote(&broker.host) {
        tracing::warn!(host = %broker.host, "the device token travels to the broker in cleartext: use mqtts://");
    }
}

/// The `--server` URL: http(s), with a host.
pub fn server_url(s: &str) -> anyhow::Result<reqwest::Url> {
    let url = reqwest::Url::parse(s).with_context(|| format!("--server {s}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("--server {s}: expected http(s)://HOST[:PORT]");
    }
    Ok(url)
}

/// Pinned keys and the threshold.
pub fn verifier(trust: &[PathBuf], threshold: usize) -> anyhow::Result<Verifier> {
    if trust.is_empty() {
        bail!("at least one --trust KEY.pub (or a --trust-root) is required");
    }
    let keys = trust
        .iter()
        .map(|p| {
            let pem = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            PublicKey::from_pem(&pem).with_context(|| format!("{}", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Verifier::new(keys, threshold))
}

pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swupdate_and_rauc_back_ends_come_from_agent_toml() {
        let text = r#"
            installer = "swupdate"
            swupdate-select = "stable,copy-a,copy-b"
            swupdate-ca = "/etc/swupdate/ca.pem"
            swupdate-hardware = "rpi4:1.0"
            uboot-env-config = "/etc/fw_env.config"
        "#;
        let args: RunArgs = toml::from_str(text).unwrap();
        assert_eq!(args.installer, Some(InstallerKind::Swupdate));
        let setup = args.swupdate(Path::new("/state")).unwrap();
        assert_eq!(setup.select.for_slot("b"), "stable,copy-b");
        assert_eq!(
            (setup.ca.as_deref(), setup.hardware.as_deref()),
            (Some(Path::new("/etc/swupdate/ca.pem")), Some("rpi4:1.0"))
        );
        assert_eq!(setup.env.script, Path::new("/state/uboot-env.script"));
        assert_eq!(setup.reboot, "reboot");

        let rauc: RunArgs = toml::from_str("installer = \"rauc\"").unwrap();
        assert_eq!(rauc.installer, Some(InstallerKind::Rauc));
        let missing = rauc.swupdate(Path::new("/state")).unwrap_err();
        assert!(missing.to_string().contains("--swupdate-select"), "{missing}");
        let bad = RunArgs { swupdate_select: Some("stable".into()), ..RunArgs::default() };
        assert!(bad.swupdate(Path::new("/state")).is_err());
    }
}
