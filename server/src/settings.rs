//! Command-line flags and `FLEET_*` environment variables (CONTRACT §1).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// 4 GiB, the default cap on one artifact.
pub const DEFAULT_MAX_ARTIFACT_SIZE: u64 = 4 << 30;

/// A secret string that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// How the server is configured. Every flag also reads `FLEET_<FLAG>`.
#[derive(Debug, Clone, Parser)]
#[command(name = "fleet-server", version, about = "Fleet OTA server: signed artifacts, devices and rollouts")]
pub struct Settings {
    /// Without a command, the server runs.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,

    /// HTTP listen address; port 0 picks a free port.
    #[arg(long, env = "FLEET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, blobs and the admin token.
    #[arg(long, env = "FLEET_DATA_DIR", default_value = "fleet-data")]
    pub data_dir: PathBuf,

    /// Address of the embedded MQTT broker (used unless --mqtt-url is given); port 0 picks one.
    #[arg(long, env = "FLEET_EMBEDDED_BROKER", default_value = "127.0.0.1:1883")]
    pub embedded_broker: SocketAddr,

    /// Seconds an HTTP client has to send a request's headers; an idle keep-alive connection
    /// is closed after as long. Bounds what silent or slow connections hold (1-3600).
    #[arg(long, env = "FLEET_HTTP_HEADER_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub http_header_timeout: Duration,

    /// Seconds a client of the embedded broker has from connecting to being let in (its
    /// CONNECT sent and answered); a connection past it is closed (1-3600).
    #[arg(long, env = "FLEET_MQTT_CONNECT_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub mqtt_connect_timeout: Duration,

    /// Seconds a device may stay silent (no status report, no presence message) before a
    /// retained `online` is taken for stale and the device is shown offline (1-3600). The
    /// agent says `online` again every 2 minutes; the default is two of those plus 1.5 MQTT
    /// keep-alives (45 s).
    #[arg(long, env = "FLEET_PRESENCE_TIMEOUT", default_value = "285", value_parser = parse_seconds)]
    pub presence_timeout: Duration,

    /// Seconds after which a finished (completed or cancelled) rollout is deleted with its
    /// per-device entries, by the clean-up pass at start and every hour; 0 keeps them
    /// forever.
    #[arg(long, env = "FLEET_ROLLOUT_RETENTION", default_value = "0", value_parser = parse_retention)]
    pub rollout_retention: Duration,

    /// Most connections to the embedded broker waiting to be let in at once; beyond it a new
    /// connection is closed at once.
    #[arg(long, env = "FLEET_MQTT_MAX_PENDING", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub mqtt_max_pending: u32,

    /// External MQTT broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS), instead of
    /// the embedded one.
    #[arg(long, env = "FLEET_MQTT_URL")]
    pub mqtt_url: Option<String>,

    /// The server's username on the external broker.
    #[arg(long, env = "FLEET_MQTT_USERNAME", requires = "mqtt_url")]
    pub mqtt_username: Option<String>,

    /// File holding the server's password on the external broker.
    #[arg(long, env = "FLEET_MQTT_PASSWORD_FILE", requires = "mqtt_username")]
    pub mqtt_password_file: Option<PathBuf>,

    /// CA certificate(s) (PEM) the external broker's certificate must chain to (mqtts://;
    /// default: the system's roots).
    #[arg(long, env = "FLEET_MQTT_CA_FILE", requires = "mqtt_url")]
    pub mqtt_ca_file: Option<PathBuf>,

    /// Mosquitto isolation: the directory where the server keeps Mosquitto's `password_file`
    /// (`passwords`) and `acl_file` (`acl`) up to date, one user per device.
    #[arg(long, env = "FLEET_MOSQUITTO_DIR")]
    pub mosquitto_dir: Option<PathBuf>,

    /// Command (run by `sh -c`) that makes Mosquitto reload its files after they change,
    /// e.g. `kill -HUP $(cat /run/mosquitto/mosquitto.pid)`.
    #[arg(long, env = "FLEET_MOSQUITTO_RELOAD_COMMAND", requires = "mosquitto_dir")]
    pub mosquitto_reload_command: Option<String>,

    /// Mosquitto's listener for devices with certificates (`mqtts://HOST:PORT`, its
    /// certificate checked with --mqtt-ca-file). After each reload that revoked device
    /// certificates, the server closes their sessions there by taking them over with a
    /// short-lived stand-in certificate (Mosquitto keeps them open otherwise).
    #[arg(long, env = "FLEET_MOSQUITTO_CERT_URL", requires = "mosquitto_reload_command")]
    pub mosquitto_cert_url: Option<String>,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "FLEET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "FLEET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS and mqtts:// with a certificate of a CA of our own, made in the data
    /// directory on first start (`tls/ca.crt`: give it to devices and fleetctl as --ca-file).
    #[arg(long, env = "FLEET_TLS_SELF_SIGNED", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,

    /// A further name (DNS name or IP address) of this server for --tls-self-signed's
    /// certificate; repeatable. The listen address and --public-url's host are included.
    #[arg(long = "tls-san", env = "FLEET_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,

    /// The CA certificate (PEM) that signs device certificates (`POST
    /// /devices/{id}/certificate`) and that client certificates must chain to; needs
    /// --device-ca-key. With --tls-self-signed and without it, that CA signs them.
    #[arg(long, env = "FLEET_DEVICE_CA_CERT", requires = "device_ca_key")]
    pub device_ca_cert: Option<PathBuf>,

    /// The private key (PEM) of --device-ca-cert.
    #[arg(long, env = "FLEET_DEVICE_CA_KEY", requires = "device_ca_cert")]
    pub device_ca_key: Option<PathBuf>,

    /// Lifetime of a device certificate, in days.
    #[arg(long, env = "FLEET_DEVICE_CERT_DAYS", default_value_t = crate::device_ca::DEFAULT_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub device_cert_days: u32,

    /// TEST ONLY: device certificates live this many seconds instead of --device-cert-days.
    #[arg(long, env = "FLEET_TEST_DEVICE_CERT_LIFETIME_S", hide = true)]
    pub test_device_cert_lifetime_s: Option<u64>,

    /// With TLS (--tls-cert or --tls-self-signed), the embedded broker's mqtts:// address,
    /// served with the same certificate; port 0 picks one.
    #[arg(long, env = "FLEET_EMBEDDED_BROKER_TLS", default_value = "127.0.0.1:8883")]
    pub embedded_broker_tls: SocketAddr,

    /// Refuse cleartext HTTP and MQTT from every peer that is not loopback (TLS is served to
    /// all; cleartext stays open to local clients).
    #[arg(long, env = "FLEET_REQUIRE_TLS")]
    pub require_tls: bool,

    /// Topic root of every device topic.
    #[arg(long, env = "FLEET_TOPIC_ROOT", default_value = "fleet")]
    pub topic_root: String,

    /// Home Assistant MQTT discovery: one retained `update` entity per device under
    /// --ha-prefix, its state on `{root}/ha/{device}/state` (CONTRACT §10).
    #[arg(long, env = "FLEET_HA_DISCOVERY")]
    pub ha_discovery: bool,

    /// Home Assistant's discovery prefix (its MQTT integration's "discovery prefix").
    #[arg(long, env = "FLEET_HA_PREFIX", default_value = "homeassistant", value_parser = parse_topic_prefix)]
    pub ha_prefix: String,

    /// Let Home Assistant's Install button start a one-device rollout of the newest
    /// firmware (checked like any rollout); without it the command is ignored and logged.
    #[arg(long, env = "FLEET_HA_ALLOW_INSTALL", requires = "ha_discovery")]
    pub ha_allow_install: bool,

    /// Share status ingestion with other replicas through `$share/GROUP/…`.
    #[arg(long, env = "FLEET_SHARED_SUBSCRIPTION_GROUP")]
    pub shared_subscription_group: Option<String>,

    /// This replica's name, distinct per replica: its MQTT client id and its name in
    /// rollout leases (default: fleet-server-<random>).
    #[arg(long, env = "FLEET_REPLICA_NAME", value_parser = parse_replica_name)]
    pub replica_name: Option<String>,

    /// PostgreSQL instead of the default SQLite file in the data dir: postgres://USER@HOST/DB.
    #[arg(long, env = "FLEET_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Blob directory (default: DATA_DIR/blobs); replicas share one (later: object storage).
    #[arg(long, env = "FLEET_BLOB_DIR")]
    pub blob_dir: Option<PathBuf>,

    /// Base URL devices download from (default: http://<listen address>).
    #[arg(long, env = "FLEET_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Largest artifact accepted, in bytes.
    #[arg(long, env = "FLEET_MAX_ARTIFACT_SIZE", default_value_t = DEFAULT_MAX_ARTIFACT_SIZE)]
    pub max_artifact_size: u64,

    /// Uploads need valid signatures by this many registered, non-revoked keys.
    #[arg(long, env = "FLEET_UPLOAD_THRESHOLD", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub upload_threshold: u32,

    /// The admin token, from the environment only (a flag would show it in `ps`; the flag
    /// is refused): stored hashed in the database, replacing the one there (default:
    /// --admin-token-file, else DATA_DIR/admin.token, created on first start, unless the
    /// database holds one). As strong as a generated token: 43 or more characters.
    #[arg(long, env = "FLEET_ADMIN_TOKEN", hide = true, hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Log filter, e.g. `info` or `fleet_server=debug,info`.
    #[arg(long, env = "FLEET_LOG", default_value = "info")]
    pub log: String,

    /// `text` for people, `json` (one object per line, with request ids) for log pipelines.
    #[arg(long, env = "FLEET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// A file whose first line is the admin token, used like FLEET_ADMIN_TOKEN.
    #[arg(long, env = "FLEET_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// What `fleet-server` does besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServerCommand {
    /// Online backup of the database (SQLite: a consistent copy; PostgreSQL: pg_dump) and
    /// the blobs, into a new directory, while the server runs. Uses the same flags as the
    /// server (--data-dir, --database-url, --blob-dir).
    Backup {
        /// The backup directory (created; must not exist).
        #[arg(long)]
        to: PathBuf,
    },
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Replica names are MQTT client ids: 1–64 characters of `[A-Za-z0-9._-]`.
fn parse_replica_name(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(s.to_owned()) } else { Err("1-64 characters of A-Z a-z 0-9 . _ -".into()) }
}

/// A topic prefix: plain topic levels, no wildcards, no empty level, no leading `$`.
fn parse_topic_prefix(s: &str) -> Result<String, String> {
    let ok = !s.starts_with('$') && s.split('/').all(|level| !level.is_empty() && !level.contains(['+', '#']));
    if ok && s.len() <= 200 { Ok(s.to_owned()) } else { Err("topic levels without + # or empty levels".into()) }
}

/// A deadline in whole seconds, 1 to 3600.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(n @ 1..=3600) => Ok(Duration::from_secs(n)),
        _ => Err("whole seconds, 1-3600".into()),
    }
}

/// Whole seconds, 0 (keep forever) up to ten years.
fn parse_retention(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(n @ 0..=315_360_000) => Ok(Duration::from_secs(n)),
        _ => Err("whole seconds, 0 (keep forever) to 315360000".into()),
    }
}

impl Settings {
    /// Home Assistant's discovery prefix when --ha-discovery is on.
    pub fn ha_prefix(&self) -> Option<String> {
        self.ha_discovery.then(|| self.ha_prefix.clone())
    }

    /// Settings for tests and embedding: loopback, port 0, everything else default.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut s = Self::parse_from(["fleet-server"]);
        s.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        s.embedded_broker = SocketAddr::from(([127, 0, 0, 1], 0));
        s.embedded_broker_tls = SocketAddr::from(([127, 0, 0, 1], 0));
        s.data_dir = data_dir.into();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_presence_timeout_is_the_protocols_silence_bound() {
        assert_eq!(Settings::for_data_dir("d").presence_timeout, fleet_protocol::presence::SILENCE_BOUND);
    }

    #[test]
    fn home_assistant_flags() {
        let s = Settings::for_data_dir("d");
        assert_eq!((s.ha_prefix(), s.ha_prefix.as_str()), (None, "homeassistant"), "off by default");
        let s = Settings::parse_from(["fleet-server", "--ha-discovery", "--ha-prefix", "ha/x"]);
        assert_eq!(s.ha_prefix().as_deref(), Some("ha/x"));
        for bad in ["", "ha/#", "+", "a//b", "/a", "$SYS"] {
            assert!(parse_topic_prefix(bad).is_err(), "{bad}");
        }
        assert!(Settings::try_parse_from(["fleet-server", "--ha-allow-install"]).is_err(), "needs --ha-discovery");
    }
}
