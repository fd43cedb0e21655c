//! Start-up and serving. [`Application::build`] does every fallible step — check the
//! flags, bind, open the data directory, database and blob store, load or create the admin
//! token, wire MQTT — so that a broken configuration fails before anything is served;
//! [`Application::run_until_stopped`] only serves.
//!
//! - [`error`]: [`StartupError`], every reason not to start.
//! - [`checks`]: refusals and warnings from the flags alone.
//! - [`admin_token`]: the admin token file and `FLEET_ADMIN_TOKEN`.
//! - [`data_dir`]: the data directory owner-only, and a warning when it is not.
//! - [`data_lock`]: one server per data directory (an exclusive lock held for its life).
//! - [`mqtt_wiring`]: the embedded broker, or an external one and its account.
//! - [`serve`]: the HTTP(S) accept loop, with header deadlines and a back-off when out of
//!   file descriptors.

pub(crate) mod admin_token;
mod checks;
mod data_dir;
pub(crate) mod data_lock;
mod error;
mod mqtt_wiring;
mod self_signed;
mod serve;
mod server_tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use fleet_protocol::topic::Topics;

use data_lock::DataDirLock;
pub use error::StartupError;
use mqtt_wiring::MqttWiring;

use crate::artifact_cache::ArtifactCache;
use crate::blobs::BlobStore;
use crate::broker::EmbeddedBroker;
use crate::broker::mosquitto::MosquittoSync;
use crate::device_ca::DeviceCa;
use crate::device_tokens::DeviceTokens;
use crate::metrics::Metrics;
use crate::mqtt::{Inbound, MqttLink};
use crate::rollout::engine::Engine;
use crate::rollout::ingest::Ingest;
use crate::settings::Settings;
use crate::state::{AppState, Shared};
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;

/// A built server, ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    state: AppState,
    /// HTTPS settings (`--tls-cert`), else plain HTTP.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a client has to send a request's headers (`--http-header-timeout`).
    http_header_timeout: Duration,
    /// Cleartext HTTP to loopback peers only (`--require-tls`).
    require_tls: bool,
    /// How long a silent device stays `online` (`--presence-timeout`, [`crate::presence`]).
    presence_timeout: Duration,
    /// How long finished rollouts are kept (`--rollout-retention`, [`crate::retention`]).
    rollout_retention: Duration,
    store: Arc<dyn Store>,
    /// This replica's name (MQTT client id, rollout leases).
    instance: String,
    broker: Option<Arc<EmbeddedBroker>>,
    mqtt: Arc<MqttLink>,
    engine: Engine,
    ingest: (Ingest, tokio::sync::mpsc::UnboundedReceiver<Inbound>),
    mosquitto: Option<MosquittoSync>,
    /// Event topics and webhook deliveries (CONTRACT §10).
    events: crate::events::EventTasks,
    /// Home Assistant discovery (`--ha-discovery`).
    ha: Option<crate::ha::HaTask>,
    /// Held until the server has stopped: no second server opens this data directory.
    data_lock: DataDirLock,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

/// What start-up has opened before the tasks are made.
struct Opened {
    data_lock: DataDirLock,
    listener: TcpListener,
    local_addr: SocketAddr,
    store: Arc<dyn Store>,
    blobs: BlobStore,
    tls: Option<Arc<rustls::ServerConfig>>,
    device_ca: Option<Arc<DeviceCa>>,
    public_url: String,
    instance: String,
    device_tokens: Arc<DeviceTokens>,
    mqtt: MqttWiring,
    /// The client webhooks are delivered with.
    webhook_http: reqwest::Client,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        checks::refuse_unbuilt(&settings)?;
        let open_files = crate::limits::raise_open_files_limit();
        let (listener, local_addr) = bind(settings.listen).await?;
        data_dir::prepare(&settings.data_dir)?;
        let data_lock = data_lock::acquire(&settings.data_dir)?;
        let store = open_store(&settings).await?;
        crate::limits::warn_about_fleet(open_files, store.as_ref(), settings.mqtt_url.is_none()).await;
        let blob_dir = settings.blob_dir.clone().unwrap_or_else(|| settings.data_dir.join("blobs"));
        let blobs = BlobStore::open(blob_dir).await.map_err(|e| StartupError::DataDir(settings.data_dir.clone(), e))?;
        admin_token::set_admin_token(&settings, store.as_ref()).await?;
        let (tls, device_ca) = server_tls::server_tls(&settings, local_addr)?;
        let public_url = public_url(&settings, local_addr, tls.is_some());
        checks::warn_about_cleartext(&settings, local_addr, tls.is_some(), &public_url);
        let instance = match &settings.replica_name {
            Some(name) => name.clone(),
            None => crate::random::instance_name()?,
        };
        let device_tokens = Arc::new(DeviceTokens::default());
        let topics = Topics::new(settings.topic_root.clone()).with_ha_prefix(settings.ha_prefix());
        let mqtt = mqtt_wiring::wire_mqtt(
            &settings,
            &store,
            &device_tokens,
            topics,
            &instance,
            tls.as_ref(),
            device_ca.as_ref(),
        )
        .await?;
        let webhook_http = crate::events::webhooks::deliver::client()?;
        let opened = Opened {
            data_lock,
            listener,
            local_addr,
            store,
            blobs,
            tls,
            device_ca,
            public_url,
            instance,
            device_tokens,
            mqtt,
            webhook_http,
        };
        Ok(Self::assemble(&settings, opened))
    }

    /// Makes the MQTT client, the engine and ingestion tasks and the shared state.
    fn assemble(settings: &Settings, o: Opened) -> Self {
        let metrics = Metrics::new();
        let mqtt_topics = o.mqtt.config.topics.clone();
        let (mqtt, (inbound, ha_commands)) = MqttLink::start(o.mqtt.config, metrics.clone());
        let mqtt = Arc::new(mqtt);
        let artifacts = Arc::new(ArtifactCache::default());
        let (engine, ingest, handle) = rollout_tasks(&o.store, &o.public_url, &o.instance, &mqtt, &artifacts, &metrics);
        let (ha, ha_inputs) = settings.ha_discovery.then(|| crate::ha::channels(settings.ha_allow_install)).unzip();
        let mut events = crate::events::EventTasks::new(
            &o.store,
            &artifacts,
            &mqtt,
            mqtt_topics.clone(),
            ingest.devices.clone(),
            o.webhook_http,
            &o.instance,
        );
        events.announcer.ha = ha.clone();
        let (store, instance) = (o.store, o.instance);
        let (mosquitto, mosquitto_handle) = o.mqtt.mosquitto.unzip();
        let state = AppState::new(Shared {
            store: store.clone(),
            blobs: o.blobs,
            artifacts,
            device_tokens: o.device_tokens,
            sent_artifacts: crate::sent_artifacts::SentArtifacts::default(),
            device_ca: o.device_ca,
            max_artifact_size: settings.max_artifact_size,
            upload_threshold: settings.upload_threshold as usize,
            public_url: o.public_url,
            engine: Some(handle),
            broker: o.mqtt.broker.clone(),
            mosquitto: mosquitto_handle,
            topics: mqtt_topics,
            metrics,
            mqtt: mqtt.clone(),
            broker_account: o.mqtt.account,
            trust_stored: Arc::new(tokio::sync::Notify::new()),
            ha,
        });
        let ha = ha_inputs.map(|inputs| inputs.task(state.clone(), ha_commands));
        Self {
            listener: o.listener,
            local_addr: o.local_addr,
            router: crate::http::router(state.clone()),
            state,
            tls: o.tls,
            http_header_timeout: settings.http_header_timeout,
            require_tls: settings.require_tls,
            presence_timeout: settings.presence_timeout,
            rollout_retention: settings.rollout_retention,
            store,
            instance,
            broker: o.mqtt.broker,
            mqtt,
            engine,
            mosquitto,
            events,
            ha,
            ingest: (ingest, inbound),
            data_lock: o.data_lock,
        }
    }

    /// The embedded broker's address, when it runs.
    pub fn broker_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().map(|b| b.addr)
    }

    /// The embedded broker's mqtts:// address, when it runs with TLS.
    pub fn broker_tls_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().and_then(|b| b.tls_addr)
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests; the engine,
    /// ingestion, blob collection, the stale-presence check and the Mosquitto file sync
    /// then finish the work they have under way (at most [`FINISH_WITHIN`]) before the
    /// database is closed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let stop = CancellationToken::new();
        let (ingest, inbound) = self.ingest;
        let mut tasks = vec![
            ("rollout engine", tokio::spawn(self.engine.run(stop.clone()))),
            ("ingestion", tokio::spawn(ingest.run(inbound, stop.clone()))),
            ("blob collection", tokio::spawn(crate::gc::run(self.state.clone(), self.rollout_retention, stop.clone()))),
            (
                "stale presence",
                tokio::spawn(crate::presence::run(
                    self.store.clone(),
                    self.presence_timeout,
                    self.events.announcer.devices.clone(),
                    stop.clone(),
                )),
            ),
        ];
        let announce = crate::trust_announce::run(
            self.store.clone(),
            self.mqtt.clone(),
            self.state.trust_stored.clone(),
            stop.clone(),
        );
        tasks.push(("trust announcement", tokio::spawn(announce)));
        let changes = self.state.engine.as_ref().map(|e| e.changes.subscribe());
        if let Some(changes) = changes {
            tasks.push(("event announcer", tokio::spawn(self.events.announcer.run(changes, stop.clone()))));
        }
        tasks.push(("webhook delivery", tokio::spawn(self.events.deliverer.run(stop.clone()))));
        if let Some(ha) = self.ha {
            tasks.push(("Home Assistant discovery", tokio::spawn(ha.run(stop.clone()))));
        }
        if let Some(m) = self.mosquitto {
            tasks.push(("Mosquitto file sync", tokio::spawn(m.run(stop.clone()))));
        }
        let served =
            serve::serve(self.listener, self.router, self.tls, self.require_tls, self.http_header_timeout, shutdown)
                .await;
        stop.cancel();
        finish(tasks, FINISH_WITHIN).await;
        drop(self.mqtt);
        drop(self.broker);
        // Another replica (or the next start) drives our rollouts at once.
        if let Err(e) = self.store.release_leases(&self.instance).await {
            tracing::warn!("releasing rollout leases: {e}");
        }
        self.store.close().await;
        drop(self.data_lock);
        tracing::info!("stopped");
        served
    }
}

/// How long the background tasks may take to finish their work after the stop.
pub const FINISH_WITHIN: Duration = Duration::from_secs(10);

/// Waits for stopped tasks to finish, together at most `within`; one still running then is
/// aborted, with a warning.
async fn finish(tasks: impl IntoIterator<Item = (&'static str, JoinHandle<()>)>, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    for (name, mut task) in tasks {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            tracing::warn!(task = name, "still busy {within:?} after the stop: aborted");
            task.abort();
            let _ = task.await;
        }
    }
}

/// The rollout engine and report ingestion, which share the engine's handle.
fn rollout_tasks(
    store: &Arc<dyn Store>,
    public_url: &str,
    instance: &str,
    mqtt: &Arc<MqttLink>,
    artifacts: &Arc<ArtifactCache>,
    metrics: &Arc<Metrics>,
) -> (Engine, Ingest, crate::rollout::engine::EngineHandle) {
    let (engine, handle) = Engine::new(
        store.clone(),
        artifacts.clone(),
        mqtt.clone(),
        public_url.to_owned(),
        instance.to_owned(),
        metrics.clone(),
    );
    let ingest = Ingest {
        store: store.clone(),
        mqtt: mqtt.clone(),
        engine: handle.clone(),
        metrics: metrics.clone(),
        devices: Arc::default(),
    };
    (engine, ingest, handle)
}

/// Binds the HTTP listener; a taken address says so.
async fn bind(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(listen).await.map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => StartupError::AddressInUse(listen),
        _ => StartupError::Bind(listen, e),
    })?;
    let local_addr = listener.local_addr().map_err(|e| StartupError::Bind(listen, e))?;
    tracing::info!(%local_addr, "HTTP listening");
    Ok((listener, local_addr))
}

/// Opens the database (the data directory prepared and locked): PostgreSQL with
/// `--database-url`, else SQLite in the data directory, created 0600.
async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, StartupError> {
    let data_dir = &settings.data_dir;
    Ok(match settings.database_url.as_deref() {
        Some(url) => Arc::new(PgStore::connect(url).await?),
        None => {
            let path = data_dir.join("fleet.db");
            data_dir::create_private_file(&path).map_err(|e| StartupError::DataDir(path.clone(), e))?;
            Arc::new(SqliteStore::open(&path).await?)
        }
    })
}

/// The base URL devices download from, without a trailing slash.
fn public_url(settings: &Settings, local_addr: SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    settings.public_url.clone().unwrap_or_else(|| format!("{scheme}://{local_addr}")).trim_end_matches('/').to_owned()
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
