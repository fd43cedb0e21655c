//! How the server reaches MQTT: its embedded broker (the default), or another broker named
//! by `--mqtt-url` — then with its own account there (`--mqtt-username`) and, with
//! `--mosquitto-dir`, the task keeping that Mosquitto's password and ACL files.

use std::path::Path;
use std::sync::Arc;

use fleet_protocol::topic::Topics;

use super::StartupError;
use crate::broker::mosquitto::{MosquittoHandle, MosquittoSync, ServerAccount};
use crate::broker::takeover::Takeover;
use crate::broker::{Access, ConnectLimits, EmbeddedBroker, Listen};
use crate::device_tokens::DeviceTokens;
use crate::mqtt::MqttConfig;
use crate::settings::Settings;
use crate::store::Store;
use crate::token::generate_token;

/// The server's own MQTT username on the embedded broker (its password is generated at
/// every start).
const SERVER_MQTT_USER: &str = "fleet-server";

/// Everything MQTT the server starts with.
#[derive(Debug)]
pub struct MqttWiring {
    /// The embedded broker, when no `--mqtt-url` names another.
    pub broker: Option<Arc<EmbeddedBroker>>,
    /// How the server's own client connects.
    pub config: MqttConfig,
    /// The server's own account on an external broker.
    pub account: Option<ServerAccount>,
    /// With `--mosquitto-dir`: the task keeping Mosquitto's files, and its handle.
    pub mosquitto: Option<(MosquittoSync, MosquittoHandle)>,
}

/// Starts the embedded broker (unless `--mqtt-url` names another) and says how the
/// server's own client connects.
pub async fn wire_mqtt(
    settings: &Settings,
    store: &Arc<dyn Store>,
    device_tokens: &Arc<DeviceTokens>,
    topics: Topics,
    instance: &str,
    tls: Option<&Arc<rustls::ServerConfig>>,
    device_ca: Option<&Arc<crate::device_ca::DeviceCa>>,
) -> Result<MqttWiring, StartupError> {
    if settings.mqtt_url.is_none() {
        if settings.mosquitto_dir.is_some() {
            return Err(StartupError::MosquittoDirWithoutBroker);
        }
        let listen = Listen {
            plain: settings.embedded_broker,
            tls: tls.map(|config| (settings.embedded_broker_tls, crate::tls::for_mqtt(config))),
            require_tls: settings.require_tls,
        };
        let (broker, config) = embedded(settings, listen, store, device_tokens, topics, instance).await?;
        return Ok(MqttWiring { broker: Some(broker), config, account: None, mosquitto: None });
    }
    let config = external(settings, topics, instance)?;
    let account = match &config.credentials {
        Some((user, password)) => Some(ServerAccount::new(user.clone(), password.clone())?),
        None => None,
    };
    let mosquitto = mosquitto_sync(settings, store, &config, account.clone(), device_ca.cloned())?;
    Ok(MqttWiring { broker: None, config, account, mosquitto })
}

/// The broker named by `--mqtt-url`, with the server's credentials and trust there.
fn external(settings: &Settings, topics: Topics, instance: &str) -> Result<MqttConfig, StartupError> {
    let url = settings.mqtt_url.as_deref().unwrap_or_default();
    let url = fleet_protocol::topic::parse_broker_url(url)?;
    let credentials = match (&settings.mqtt_username, &settings.mqtt_password_file) {
        (Some(user), Some(file)) => Some((user.clone(), read_secret_file(file)?)),
        (Some(user), None) => Some((user.clone(), String::new())),
        _ => None,
    };
    let tls = match url.tls {
        true => Some(Arc::new(
            fleet_protocol::tls::client_config(settings.mqtt_ca_file.as_deref()).map_err(StartupError::MqttCaFile)?,
        )),
        // --mosquitto-cert-url is mqtts:// and uses --mqtt-ca-file too.
        false if settings.mqtt_ca_file.is_some() && settings.mosquitto_cert_url.is_none() => {
            return Err(StartupError::MqttCaFileWithoutTls);
        }
        false => None,
    };
    let shared_group = settings.shared_subscription_group.clone();
    let client_id = instance.to_owned();
    Ok(MqttConfig { host: url.host, port: url.port, client_id, credentials, tls, topics, shared_group })
}

/// Starts the embedded broker with a password for the server's own client made now.
async fn embedded(
    settings: &Settings,
    listen: Listen,
    store: &Arc<dyn Store>,
    device_tokens: &Arc<DeviceTokens>,
    topics: Topics,
    instance: &str,
) -> Result<(Arc<EmbeddedBroker>, MqttConfig), StartupError> {
    let password = generate_token("")?;
    let limits =
        ConnectLimits { deadline: settings.mqtt_connect_timeout, max_pending: settings.mqtt_max_pending as usize };
    let access = Access {
        store: Arc::downgrade(store),
        tokens: device_tokens.clone(),
        topics: topics.clone(),
        cert_logins: Arc::default(),
        server_username: SERVER_MQTT_USER.to_owned(),
        server_password: password.clone(),
    };
    let broker =
        EmbeddedBroker::start(listen, access, limits).await.map_err(|(addr, e)| StartupError::Broker(addr, e))?;
    let config = MqttConfig {
        host: broker.internal_addr.ip().to_string(),
        port: broker.internal_addr.port(),
        client_id: instance.to_owned(),
        credentials: Some((SERVER_MQTT_USER.into(), password)),
        tls: None,
        topics,
        shared_group: settings.shared_subscription_group.clone(),
    };
    Ok((Arc::new(broker), config))
}

/// With `--mosquitto-dir`: the task keeping Mosquitto's files, and its handle. The server's
/// own account goes into the files when it has one (`--mqtt-username`); with
/// `--mosquitto-cert-url`, it takes over sessions of revoked certificates there.
fn mosquitto_sync(
    settings: &Settings,
    store: &Arc<dyn Store>,
    mqtt: &MqttConfig,
    server: Option<ServerAccount>,
    device_ca: Option<Arc<crate::device_ca::DeviceCa>>,
) -> Result<Option<(MosquittoSync, MosquittoHandle)>, StartupError> {
    let Some(dir) = &settings.mosquitto_dir else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).map_err(|e| StartupError::DataDir(dir.clone(), e))?;
    let reload = settings.mosquitto_reload_command.clone();
    let takeover = match (&settings.mosquitto_cert_url, &device_ca) {
        (Some(url), Some(ca)) => Some(Takeover::new(url, settings.mqtt_ca_file.as_deref(), ca.clone())?),
        (Some(_), None) => return Err(StartupError::MosquittoCertUrlWithoutDeviceCa),
        (None, _) => None,
    };
    let (mut sync, handle) = MosquittoSync::new(dir, reload, server, mqtt.topics.clone(), store.clone(), device_ca);
    if let Some(takeover) = takeover {
        sync = sync.with_takeover(takeover);
    }
    Ok(Some((sync, handle)))
}

/// The first line of a secret file, without its line break.
fn read_secret_file(path: &Path) -> Result<String, StartupError> {
    let text = std::fs::read_to_string(path).map_err(|e| StartupError::PasswordFile(path.to_owned(), e))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
