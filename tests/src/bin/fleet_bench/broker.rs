//! The physical limit of the message path: bare rumqttc clients moving the same number of
//! QoS 1 messages through the same broker software, with no server in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

/// A broker for the baseline: a fresh embedded one (rmqtt with the server's settings and
/// hooks, the bench logged in as its superuser), a bare Mosquitto with the same queue
/// settings as the server's, or the external broker the server used.
pub struct Baseline {
    host: String,
    port: u16,
    credentials: bool,
    root: String,
    embedded: Option<EmbeddedBaseline>,
    mosquitto: Option<(tokio::process::Child, tempfile::TempDir)>,
}

/// What one baseline pass took: wall time, and the broker's CPU seconds when known.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub time: Duration,
    pub broker_cpu: Option<f64>,
}

/// Name of the threads of the embedded baseline broker's runtime (15 bytes: Linux keeps no
/// more of a thread's name).
const BROKER_THREADS: &str = "baseline-broker";

/// The CPU seconds of this process's threads named `name`.
fn threads_cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
        .map(|t| crate::server::stat_cpu_seconds(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default()))
        .sum()
}

/// The embedded broker of the baseline, on a runtime of its own so its CPU time is its own.
struct EmbeddedBaseline {
    broker: Option<fleet_server::broker::EmbeddedBroker>,
    _store: Arc<dyn fleet_server::store::Store>,
    _dir: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
}

impl EmbeddedBaseline {
    /// A fresh embedded broker (its own SQLite store, the bench as its superuser) on a
    /// runtime of two workers, as the server's runtime has on this machine.
    async fn start(root: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn fleet_server::store::Store> =
            Arc::new(fleet_server::store::sqlite::SqliteStore::open(&dir.path().join("db")).await?);
        let access = fleet_server::broker::Access {
            store: Arc::downgrade(&store),
            tokens: Default::default(),
            cert_logins: Default::default(),
            topics: fleet_protocol::topic::Topics::new(root.to_owned()),
            server_username: USER.into(),
            server_password: PASSWORD.into(),
        };
        let listen = fleet_server::broker::Listen::cleartext("127.0.0.1:0".parse()?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(BROKER_THREADS)
            .enable_all()
            .build()?;
        let broker = runtime
            .spawn(fleet_server::broker::EmbeddedBroker::start(listen, access, Default::default()))
            .await?
            .map_err(|(addr, e)| anyhow::anyhow!("{addr}: {e}"))?;
        Ok(Self { broker: Some(broker), _store: store, _dir: dir, runtime: Some(runtime) })
    }

    /// Host and port clients connect to.
    fn address(&self) -> (String, u16) {
        let addr = self.broker.as_ref().expect("running").addr;
        (addr.ip().to_string(), addr.port())
    }
}

impl Drop for EmbeddedBaseline {
    fn drop(&mut self) {
        drop(self.broker.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Baseline {
    pub async fn start(backends: &crate::server::Backends) -> anyhow::Result<Self> {
        let root = format!("base{}", std::process::id());
        if backends.mosquitto {
            let (child, dir, port) = bare_mosquitto().await?;
            let host = "127.0.0.1".to_owned();
            return Ok(Self { host, port, credentials: false, root, embedded: None, mosquitto: Some((child, dir)) });
        }
        if let Some(url) = &backends.mqtt_url {
            let url = fleet_protocol::topic::parse_broker_url(url)?;
            let (host, port) = (url.host, url.port);
            return Ok(Self { host, port, credentials: false, root, embedded: None, mosquitto: None });
        }
        let embedded = EmbeddedBaseline::start(&root).await?;
        let (host, port) = embedded.address();
        Ok(Self { host, port, credentials: true, root, embedded: Some(embedded), mosquitto: None })
    }

    /// The CPU seconds the broker has used so far, when they can be told apart from the
    /// bench's: Mosquitto's process, or the threads of the embedded broker's own runtime.
    fn broker_cpu_seconds(&self) -> Option<f64> {
        match (&self.embedded, &self.mosquitto) {
            (Some(_), _) => Some(threads_cpu_seconds(BROKER_THREADS)),
            (None, Some((child, _))) => child.id().map(crate::server::cpu_seconds),
            (None, None) => None,
        }
    }

    fn options(&self, id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(id, &self.host, self.port);
        // rumqttc keeps a slot per possible in-flight publish (65,535 by default, ~10 MiB).
        o.set_keep_alive(Duration::from_secs(60)).set_outgoing_inflight_upper_limit(64);
        if self.credentials {
            o.set_credentials(USER, PASSWORD);
        }
        o
    }

    /// `messages` QoS 1 publishes of 200 bytes, spread round-robin over `publishers`
    /// connections, to one subscriber: the time from the first publish until the last
    /// arrives, and the broker's CPU time meanwhile.
    pub async fn pass(&self, publishers: usize, messages: usize) -> anyhow::Result<Pass> {
        let filter = format!("{}/devices/+/status", self.root);
        let (sub, mut sub_loop) = AsyncClient::new(self.options("bench-sub"), 1024);
        sub.subscribe(&filter, QoS::AtLeastOnce).await?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let receiver = tokio::spawn(async move {
            let (mut got, mut ready) = (0, Some(ready_tx));
            let mut last = Instant::now();
            while got < messages {
                match sub_loop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(_))) => {
                        got += 1;
                        last = Instant::now();
                    }
                    Ok(_) => {}
                    Err(e) => anyhow::bail!("subscriber: {e}"),
                }
            }
            Ok(last)
        });
        ready_rx.await?;
        let mut clients = Vec::with_capacity(publishers);
        for i in 0..publishers.max(1) {
            clients.push(connected(self.options(&format!("bench-pub-{i}"))).await?);
        }
        let payload = vec![b'x'; 200];
        let cpu_before = self.broker_cpu_seconds();
        let started = Instant::now();
        let mut sending = tokio::task::JoinSet::new();
        for (i, client) in clients.iter().enumerate() {
            let share = messages / clients.len() + usize::from(i < messages % clients.len());
            let (client, payload, topic) =
                (client.clone(), payload.clone(), format!("{}/devices/d{i}/status", self.root));
            sending.spawn(async move {
                for _ in 0..share {
                    client.publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone()).await?;
                }
                Ok::<_, rumqttc::v5::ClientError>(())
            });
        }
        while let Some(sent) = sending.join_next().await {
            sent??;
        }
        let last = tokio::time::timeout(Duration::from_secs(600), receiver).await???;
        let broker_cpu = self.broker_cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
        for client in clients {
            let _ = client.disconnect().await;
        }
        Ok(Pass { time: last - started, broker_cpu })
    }
}

/// A connected client whose event loop runs in its own task until it disconnects.
pub async fn connected(options: MqttOptions) -> anyhow::Result<AsyncClient> {
    let (client, mut events) = AsyncClient::new(options, 64);
    let (up_tx, up_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut up = Some(up_tx);
        while let Ok(event) = events.poll().await {
            if matches!(event, Event::Incoming(Packet::ConnAck(_))) {
                if let Some(up) = up.take() {
                    let _ = up.send(());
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), up_rx).await??;
    Ok(client)
}

/// Mosquitto on a free port, anonymous, with the queue settings of the server's Mosquitto.
async fn bare_mosquitto() -> anyhow::Result<(tokio::process::Child, tempfile::TempDir, u16)> {
    let dir = tempfile::tempdir()?;
    let port = crate::server::free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n\
             max_inflight_messages 1000\nlog_dest none\n"
        ),
    )?;
    let child = tokio::process::Command::new("mosquitto").arg("-c").arg(&conf).kill_on_drop(true).spawn()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((child, dir, port));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("mosquitto did not start on port {port}")
}
