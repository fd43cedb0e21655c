//! Start-up and serving. [`Application::build`] does every fallible step — check the
//! flags, bind, open the data directory, database and blob store, load or create the admin
//! token — so that a broken configuration fails before anything is served;
//! [`Application::run_until_stopped`] only serves.

use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

use fleet_protocol::api::TokenScope;
use fleet_protocol::topic::Topics;

use crate::artifact_cache::ArtifactCache;
use crate::auth::{ADMIN_TOKEN_NAME, ADMIN_TOKEN_PREFIX, generate_token, hash_token};
use crate::blobs::BlobStore;
use crate::broker::EmbeddedBroker;
use crate::broker::mosquitto::{MosquittoHandle, MosquittoSync, ServerAccount};
use crate::device_tokens::DeviceTokens;
use crate::metrics::Metrics;
use crate::mqtt::{Inbound, MqttConfig, MqttLink};
use crate::rollout::engine::Engine;
use crate::rollout::ingest::Ingest;
use crate::settings::Settings;
use crate::state::{AppState, Shared};
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{OperatorTokenRecord, Store};
use crate::tls::TlsListener;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {0}: the address is already in use")]
    AddressInUse(SocketAddr),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, io::Error),
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, io::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("embedded MQTT broker on {0}: {1}")]
    Broker(SocketAddr, io::Error),
    #[error("admin token file {0}: {1}")]
    AdminToken(PathBuf, io::Error),
    #[error("{0}")]
    Other(String),
}

/// A built server, ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    state: AppState,
    /// HTTPS settings (`--tls-cert`), else plain HTTP.
    tls: Option<Arc<rustls::ServerConfig>>,
    store: Arc<dyn Store>,
    /// This replica's name (MQTT client id, rollout leases).
    instance: String,
    broker: Option<Arc<EmbeddedBroker>>,
    mqtt: Arc<MqttLink>,
    engine: Engine,
    ingest: (Ingest, tokio::sync::mpsc::UnboundedReceiver<Inbound>),
    mosquitto: Option<MosquittoSync>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        refuse_unbuilt(&settings)?;
        let listener = TcpListener::bind(settings.listen).await.map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => StartupError::AddressInUse(settings.listen),
            _ => StartupError::Bind(settings.listen, e),
        })?;
        let local_addr = listener.local_addr().map_err(|e| StartupError::Bind(settings.listen, e))?;
        tracing::info!(%local_addr, "HTTP listening");

        let data_dir = &settings.data_dir;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| StartupError::DataDir(data_dir.clone(), e))?;
        let store: Arc<dyn Store> = match settings.database_url.as_deref() {
            Some(url) => Arc::new(PgStore::connect(url).await?),
            None => Arc::new(SqliteStore::open(&data_dir.join("fleet.db")).await?),
        };
        let blobs = BlobStore::open(settings.blob_dir.clone().unwrap_or_else(|| data_dir.join("blobs")))
            .await
            .map_err(|e| StartupError::DataDir(data_dir.clone(), e))?;
        set_admin_token(&settings, store.as_ref()).await?;
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key).map_err(StartupError::Other)?),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local_addr}"))
            .trim_end_matches('/')
            .to_owned();
        warn_about_cleartext(&settings, local_addr, tls.is_some(), &public_url);

        let topics = Topics::new(settings.topic_root.clone());
        let instance = match &settings.replica_name {
            Some(name) => name.clone(),
            None => instance_name()?,
        };
        let device_tokens = Arc::new(DeviceTokens::default());
        let (broker, mqtt_config) = connect_mqtt(&settings, &store, &device_tokens, topics, &instance).await?;
        let broker_account = match (&settings.mqtt_url, &mqtt_config.credentials) {
            (Some(_), Some((user, password))) => Some(
                ServerAccount::new(user.clone(), password.clone()).map_err(|e| StartupError::Other(e.to_string()))?,
            ),
            _ => None,
        };
        let mosquitto = mosquitto_sync(&settings, &store, &mqtt_config, broker_account.clone())?;
        let mqtt_topics = mqtt_config.topics.clone();
        let metrics = Metrics::new();
        let (mqtt, inbound) = MqttLink::start(mqtt_config, metrics.clone());
        let mqtt = Arc::new(mqtt);
        let artifacts = Arc::new(ArtifactCache::default());
        let (engine, handle) = Engine::new(
            store.clone(),
            artifacts.clone(),
            mqtt.clone(),
            public_url.clone(),
            instance.clone(),
            metrics.clone(),
        );
        let ingest =
            Ingest { store: store.clone(), mqtt: mqtt.clone(), engine: handle.clone(), metrics: metrics.clone() };
        let state = AppState::new(Shared {
            store: store.clone(),
            blobs,
            artifacts,
            device_tokens,
            max_artifact_size: settings.max_artifact_size,
            upload_threshold: settings.upload_threshold as usize,
            public_url,
            engine: Some(handle),
            broker: broker.clone(),
            mosquitto: mosquitto.as_ref().map(|(_, handle)| handle.clone()),
            topics: mqtt_topics,
            metrics,
            mqtt: mqtt.clone(),
            broker_account,
        });
        Ok(Self {
            listener,
            local_addr,
            router: crate::http::router(state.clone()),
            state,
            tls,
            store,
            broker,
            mqtt,
            engine,
            instance,
            ingest: (ingest, inbound),
            mosquitto: mosquitto.map(|(sync, _)| sync),
        })
    }

    /// The embedded broker's address, when it runs.
    pub fn broker_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().map(|b| b.addr)
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let engine = tokio::spawn(self.engine.run());
        let (ingest, inbound) = self.ingest;
        let ingest = tokio::spawn(ingest.run(inbound));
        let mosquitto = self.mosquitto.map(|m| tokio::spawn(m.run()));
        let gc = tokio::spawn(crate::gc::run(self.state.clone()));
        let served = match self.tls {
            Some(config) => {
                let listener = TlsListener::new(self.listener, config)?;
                axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await
            }
            None => {
                let listener = self.listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!("TCP_NODELAY: {e}");
                    }
                });
                axum::serve(listener, self.router).with_graceful_shutdown(shutdown).await
            }
        };
        engine.abort();
        ingest.abort();
        gc.abort();
        if let Some(m) = mosquitto {
            m.abort();
        }
        let _ = engine.await;
        let _ = ingest.await;
        drop(self.mqtt);
        drop(self.broker);
        // Another replica (or the next start) drives our rollouts at once.
        if let Err(e) = self.store.release_leases(&self.instance).await {
            tracing::warn!("releasing rollout leases: {e}");
        }
        self.store.close().await;
        tracing::info!("stopped");
        served
    }
}

/// Starts the embedded broker (unless `--mqtt-url` names another) and says how the
/// server's own client connects.
async fn connect_mqtt(
    settings: &Settings,
    store: &Arc<dyn Store>,
    device_tokens: &Arc<DeviceTokens>,
    topics: Topics,
    instance: &str,
) -> Result<(Option<Arc<EmbeddedBroker>>, MqttConfig), StartupError> {
    let client_id = instance.to_owned();
    let shared_group = settings.shared_subscription_group.clone();
    if let Some(url) = &settings.mqtt_url {
        let url = fleet_protocol::topic::parse_broker_url(url).map_err(|e| StartupError::Other(e.to_string()))?;
        let credentials = match (&settings.mqtt_username, &settings.mqtt_password_file) {
            (Some(user), Some(file)) => Some((user.clone(), read_secret_file(file)?)),
            (Some(user), None) => Some((user.clone(), String::new())),
            _ => None,
        };
        let tls = match url.tls {
            true => Some(Arc::new(
                fleet_protocol::tls::client_config(settings.mqtt_ca_file.as_deref())
                    .map_err(|e| StartupError::Other(format!("--mqtt-ca-file: {e}")))?,
            )),
            false if settings.mqtt_ca_file.is_some() => {
                return Err(StartupError::Other("--mqtt-ca-file needs an mqtts:// --mqtt-url".into()));
            }
            false => None,
        };
        let (host, port) = (url.host, url.port);
        let config = MqttConfig { host, port, client_id, credentials, tls, topics, shared_group };
        return Ok((None, config));
    }
    let addr = settings.embedded_broker;
    let password = generate_token("").map_err(|e| StartupError::Other(e.to_string()))?;
    let tokens = device_tokens.clone();
    let broker = EmbeddedBroker::start(addr, store, tokens, topics.clone(), SERVER_MQTT_USER.into(), password.clone())
        .await
        .map_err(|e| StartupError::Broker(addr, e))?;
    let config = MqttConfig {
        host: broker.addr.ip().to_string(),
        port: broker.addr.port(),
        client_id,
        credentials: Some((SERVER_MQTT_USER.into(), password)),
        tls: None,
        topics,
        shared_group,
    };
    Ok((Some(Arc::new(broker)), config))
}

/// This process's name among replicas: its MQTT client id and its name in rollout leases.
fn instance_name() -> Result<String, StartupError> {
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| StartupError::Other(e.to_string()))?;
    Ok(format!("fleet-server-{}", hex::encode(suffix)))
}

/// The server's own MQTT username on the embedded broker (its password is generated at
/// every start).
const SERVER_MQTT_USER: &str = "fleet-server";

/// With `--mosquitto-dir`: the task keeping Mosquitto's files, and its handle. The server's
/// own account goes into the files when it has one (`--mqtt-username`).
fn mosquitto_sync(
    settings: &Settings,
    store: &Arc<dyn Store>,
    mqtt: &MqttConfig,
    server: Option<ServerAccount>,
) -> Result<Option<(MosquittoSync, MosquittoHandle)>, StartupError> {
    let Some(dir) = &settings.mosquitto_dir else {
        return Ok(None);
    };
    if settings.mqtt_url.is_none() {
        return Err(StartupError::Other("--mosquitto-dir needs --mqtt-url (the Mosquitto it is for)".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| StartupError::DataDir(dir.clone(), e))?;
    let reload = settings.mosquitto_reload_command.clone();
    Ok(Some(MosquittoSync::new(dir, reload, server, mqtt.topics.clone(), store.clone())))
}

/// The first line of a secret file, without its line break.
fn read_secret_file(path: &Path) -> Result<String, StartupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StartupError::Other(format!("password file {}: {e}", path.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// Warns, once at start, about every way a credential would cross a non-loopback link in
/// cleartext.
fn warn_about_cleartext(settings: &Settings, listen: SocketAddr, https: bool, public_url: &str) {
    use fleet_protocol::topic::{is_loopback_host, parse_broker_url};
    if !https && !listen.ip().is_loopback() {
        tracing::warn!(%listen, "HTTP without TLS beyond loopback: operator and device tokens travel in cleartext \
            (use --tls-cert/--tls-key, or a TLS-terminating proxy in front)");
    }
    if let Some(rest) = public_url.strip_prefix("http://") {
        let host = rest.split('/').next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !is_loopback_host(host) {
            tracing::warn!(
                public_url,
                "devices download over cleartext HTTP with their tokens: use an https:// --public-url"
            );
        }
    }
    let broker = settings.mqtt_url.as_deref().and_then(|u| parse_broker_url(u).ok());
    if broker.as_ref().is_some_and(|url| !url.tls && !url.is_loopback()) {
        tracing::warn!(
            "MQTT without TLS beyond loopback: passwords and device tokens travel in \
            cleartext (use mqtts://)"
        );
    }
}

fn refuse_unbuilt(settings: &Settings) -> Result<(), StartupError> {
    match settings.database_url.as_deref() {
        None => Ok(()),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(()),
        Some(_) => Err(StartupError::Other(
            "--database-url takes postgres://… (the default SQLite database lives in --data-dir)".into(),
        )),
    }
}

/// Puts the admin token's hash in the database, where every replica finds it.
/// `FLEET_ADMIN_TOKEN` replaces the stored one (that is how it is rotated); without it the
/// token file in the data directory is used (created on first start) unless the database
/// already holds an admin token, which then stays.
async fn set_admin_token(settings: &Settings, store: &dyn Store) -> Result<(), StartupError> {
    let now = store.now_ms().await?;
    let record = |token: &str| OperatorTokenRecord {
        name: ADMIN_TOKEN_NAME.into(),
        scope: TokenScope::Admin,
        token_hash: hash_token(token),
        created_at_ms: now,
    };
    match &settings.admin_token {
        Some(token) if token.expose().len() < 16 => {
            Err(StartupError::Other("FLEET_ADMIN_TOKEN must be at least 16 characters".into()))
        }
        Some(token) => {
            store.put_operator_token(&record(token.expose())).await?;
            tracing::info!("admin token set from FLEET_ADMIN_TOKEN");
            Ok(())
        }
        None => {
            let path = settings.data_dir.join("admin.token");
            let token = load_or_create_admin_token(&path)?;
            let wanted = record(&token);
            if store.init_operator_token(&wanted).await?.token_hash != wanted.token_hash {
                tracing::warn!(
                    path = %path.display(),
                    "the database holds another admin token (set by FLEET_ADMIN_TOKEN or another replica); \
                     the one in this file is not valid"
                );
            }
            Ok(())
        }
    }
}

/// Reads the admin token file, or creates it (mode 0600) on first start. Logs the path,
/// never the token.
fn load_or_create_admin_token(path: &Path) -> Result<String, StartupError> {
    let err = |e| StartupError::AdminToken(path.to_owned(), e);
    match std::fs::read_to_string(path) {
        Ok(token) if !token.trim().is_empty() => {
            tracing::info!(path = %path.display(), "admin token loaded");
            return Ok(token.trim().to_owned());
        }
        Ok(_) => return Err(err(io::Error::other("file is empty"))),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(e)),
        Err(_) => {}
    }
    let token = generate_token(ADMIN_TOKEN_PREFIX).map_err(|e| StartupError::Other(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
    file.write_all(token.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(err)?;
    tracing::info!(path = %path.display(), "admin token created");
    Ok(token)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutdown signal received; finishing requests in flight");
}
