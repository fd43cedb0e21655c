//! [`StartupError`]: every reason the server refuses to start, each with its own message.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use fleet_protocol::tls::TlsError;
use fleet_protocol::topic::BrokerUrlError;

use crate::random::RandomnessError;
use crate::store::StoreError;
use crate::tls::TlsConfigError;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {0}: the address is already in use")]
    AddressInUse(SocketAddr),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, io::Error),
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, io::Error),
    /// Another server holds the data directory's lock (`app/data_lock.rs`).
    #[error(
        "data directory {} is in use by another fleet-server ({}): stop that one, or give this one its own --data-dir",
        .dir.display(),
        crate::app::data_lock::describe_holder(.pid)
    )]
    DataDirLocked { dir: PathBuf, pid: Option<u32> },
    #[error("--database-url takes postgres://… (the default SQLite database lives in --data-dir)")]
    DatabaseUrl,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("embedded MQTT broker on {0}: {1}")]
    Broker(SocketAddr, io::Error),
    #[error("--mqtt-url: {0}")]
    BrokerUrl(#[from] BrokerUrlError),
    #[error("--mqtt-ca-file: {0}")]
    MqttCaFile(TlsError),
    #[error("--mqtt-ca-file needs an mqtts:// --mqtt-url")]
    MqttCaFileWithoutTls,
    #[error("password file {0}: {1}")]
    PasswordFile(PathBuf, io::Error),
    #[error("webhook HTTP client: {0}")]
    WebhookClient(#[from] reqwest::Error),
    #[error("--mosquitto-dir needs --mqtt-url (the Mosquitto it is for)")]
    MosquittoDirWithoutBroker,
    #[error("--mosquitto-cert-url needs a device CA (--device-ca-cert or --tls-self-signed)")]
    MosquittoCertUrlWithoutDeviceCa,
    #[error(transparent)]
    Takeover(#[from] crate::broker::takeover::TakeoverError),
    #[error("admin token file {0}: {1}")]
    AdminToken(PathBuf, io::Error),
    #[error(
        "the admin token must be as strong as a generated one: at least {} characters, {} of them different \
         (e.g. `openssl rand -base64 32`)",
        crate::app::admin_token::MIN_LEN,
        crate::app::admin_token::MIN_DISTINCT
    )]
    AdminTokenWeak,
    #[error("FLEET_ADMIN_TOKEN and --admin-token-file are both set: give one")]
    AdminTokenTwice,
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error(transparent)]
    DeviceCa(#[from] crate::device_ca::DeviceCaError),
    #[error("device CA: {0}")]
    DeviceCaVerifier(String),
    #[error("--tls-self-signed: {0}")]
    SelfSigned(#[from] super::self_signed::SelfSignedError),
    /// Secrets (the broker password, the admin token) and this replica's name need it.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
}
