//! Prometheus metrics (`GET /metrics`). Counters and histograms are this replica's; the
//! gauges of rollouts and devices are read from the database at each scrape, so every
//! replica reports the same fleet.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::store::{FleetCounts, Store, StoreResult};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route's pattern (`/api/v1/rollouts/{id}`), never the concrete path.
    pub route: String,
    pub status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms … 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub rollouts: Family<StateLabel, Gauge>,
    pub rollout_devices: Family<StateLabel, Gauge>,
    pub devices: Gauge,
    pub devices_online: Gauge,
    pub commands_dispatched: Counter,
    pub commands_published: Counter,
    pub reports_applied: Counter,
    pub reports_ignored: Family<ReasonLabel, Counter>,
    pub ingest_lag: Histogram,
    pub upload_bytes: Counter,
    pub download_bytes: Counter,
    pub mqtt_connected: Gauge,
    pub mqtt_reconnects: Counter,
    pub blobs_collected: Counter,
    pub http_requests: HistogramFamily<RouteLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            rollouts: Family::default(),
            rollout_devices: Family::default(),
            devices: Gauge::default(),
            devices_online: Gauge::default(),
            commands_dispatched: Counter::default(),
            commands_published: Counter::default(),
            reports_applied: Counter::default(),
            reports_ignored: Family::default(),
            ingest_lag: latency_histogram(),
            upload_bytes: Counter::default(),
            download_bytes: Counter::default(),
            mqtt_connected: Gauge::default(),
            mqtt_reconnects: Counter::default(),
            blobs_collected: Counter::default(),
            http_requests: Family::new_with_constructor(latency_histogram),
        };
        m.register_all();
        m
    }
}

impl Metrics {
    /// Registers every metric under its exported name and help text.
    fn register_all(&mut self) {
        let m = &*self;
        let mut r = Registry::with_prefix("fleet");
        r.register("rollouts", "Rollouts by state", m.rollouts.clone());
        r.register(
            "rollout_devices",
            "Devices of scheduled, running or paused rollouts, by state",
            m.rollout_devices.clone(),
        );
        r.register("devices", "Registered devices", m.devices.clone());
        r.register("devices_online", "Devices whose presence is online", m.devices_online.clone());
        r.register("commands_dispatched", "Devices claimed and sent their command", m.commands_dispatched.clone());
        r.register(
            "commands_published",
            "Commands published, re-sends and cancels included",
            m.commands_published.clone(),
        );
        r.register("reports_applied", "Status reports applied", m.reports_applied.clone());
        r.register(
            "reports_ignored",
            "Status reports and presence messages ignored, by reason",
            m.reports_ignored.clone(),
        );
        r.register_with_unit(
            "ingest_lag",
            "Time from a message's arrival to its commit",
            Unit::Seconds,
            m.ingest_lag.clone(),
        );
        r.register_with_unit("upload", "Artifact bytes accepted", Unit::Bytes, m.upload_bytes.clone());
        r.register_with_unit("download", "Blob bytes served", Unit::Bytes, m.download_bytes.clone());
        r.register("mqtt_connected", "1 while the server's MQTT client is connected", m.mqtt_connected.clone());
        r.register("mqtt_reconnects", "Reconnections of the server's MQTT client", m.mqtt_reconnects.clone());
        r.register("blobs_collected", "Unreferenced blobs removed by garbage collection", m.blobs_collected.clone());
        r.register_with_unit(
            "http_request_duration",
            "HTTP request latency by route",
            Unit::Seconds,
            m.http_requests.clone(),
        );
        self.registry = r;
    }

    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Reads the fleet's gauges from the database, then renders everything in the text
    /// exposition format.
    pub async fn render(&self, store: &dyn Store) -> StoreResult<String> {
        let FleetCounts { rollouts, entries, devices, online } = store.fleet_counts().await?;
        self.rollouts.clear();
        for (state, n) in rollouts {
            self.rollouts.get_or_create(&StateLabel { state }).set(n);
        }
        self.rollout_devices.clear();
        for (state, n) in entries {
            self.rollout_devices.get_or_create(&StateLabel { state }).set(n);
        }
        self.devices.set(devices);
        self.devices_online.set(online);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        Ok(out)
    }

    pub fn ignored(&self, reason: &str) {
        self.reports_ignored.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }
}
