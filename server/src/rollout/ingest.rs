//! Ingestion: status reports and presence from devices, applied in batched transactions
//! and acknowledged only after they are committed. Bad input (malformed JSON, unknown
//! devices, other rollouts, stale `seq`, illegal transitions) is counted by reason and
//! logged, never a crash.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::DeviceId;
use fleet_protocol::message::{MAX_REPORT_BYTES, StatusReport};
use fleet_protocol::topic::Channel;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::engine::EngineHandle;
use super::model::{IncomingReport, ReportOutcome};
use crate::metrics::Metrics;
use crate::mqtt::{Inbound, MqttLink};
use crate::store::Store;

/// Most messages applied in one transaction.
const BATCH: usize = 1000;
/// After the stop: messages still arriving within this time of each other are applied
/// (and acknowledged) before ingestion ends, so a report already on its way is not lost.
const QUIET: Duration = Duration::from_millis(250);

/// The ingestion task.
#[derive(Debug)]
pub struct Ingest {
    pub store: Arc<dyn Store>,
    pub mqtt: Arc<MqttLink>,
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    /// Devices whose presence or reports were applied, for the event announcer (a set
    /// insert per message: events cost ingestion nothing else).
    pub devices: Arc<crate::events::DeviceChanges>,
}

impl Ingest {
    /// Applies batches until `stop` is cancelled and no message has come for [`QUIET`].
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<Inbound>, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(first) = next(&mut rx, &stop).await {
            batch.push(first);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut delay = Duration::from_millis(100);
            while let Err(e) = self.process(&batch).await {
                tracing::error!("ingesting {} messages failed, retrying: {e}", batch.len());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            for m in batch.drain(..) {
                self.metrics.ingest_lag.observe(m.received.elapsed().as_secs_f64());
                self.mqtt.ack(&m.publish).await;
            }
        }
    }

    /// Applies one batch: presence, then status reports; wakes the engine.
    async fn process(&self, batch: &[Inbound]) -> Result<(), crate::store::StoreError> {
        let now = self.store.now_ms().await?;
        let (reports, presence) = self.sort(batch);
        if !presence.is_empty() {
            self.store.set_presence(&presence, now).await?;
            self.devices.touch(presence.iter().map(|(d, _)| d.clone()));
        }
        if reports.is_empty() {
            return Ok(());
        }
        let outcomes = self.store.apply_reports(&reports, now).await?;
        for r in self.follow_up(&reports, outcomes) {
            let _ = self.engine.changes.send(r);
        }
        self.engine.wake.notify_one();
        Ok(())
    }

    /// Parses a batch into status reports and presence changes; the rest is counted.
    fn sort(&self, batch: &[Inbound]) -> (Vec<IncomingReport>, Vec<(DeviceId, bool)>) {
        let (mut reports, mut presence) = (Vec::new(), Vec::new());
        for m in batch {
            match m.channel {
                Channel::Presence => match &m.payload[..] {
                    b"online" | b"offline" => presence.push((m.device.clone(), &m.payload[..] == b"online")),
                    _ => self.metrics.ignored("bad_presence"),
                },
                Channel::Status => match parse(&m.payload) {
                    Ok(report) => reports.push(IncomingReport { device: m.device.clone(), report }),
                    Err(why) => {
                        tracing::info!(device = %m.device, "ignoring a status report: {why}");
                        self.metrics.ignored(why);
                    }
                },
                Channel::Commands => self.metrics.ignored("wrong_topic"),
            }
        }
        (reports, presence)
    }

    /// Counts each report's outcome and asks for re-sends; returns the rollouts changed.
    fn follow_up(&self, reports: &[IncomingReport], outcomes: Vec<ReportOutcome>) -> HashSet<String> {
        let mut changed = HashSet::new();
        for (incoming, outcome) in reports.iter().zip(outcomes) {
            match outcome {
                ReportOutcome::Applied { rollout_id } => {
                    self.metrics.reports_applied.inc();
                    self.devices.touch([incoming.device.clone()]);
                    changed.extend(rollout_id);
                }
                ReportOutcome::Resend { rollout_id } => {
                    let _ = self.engine.resend.send((incoming.device.clone(), rollout_id));
                }
                ReportOutcome::Ignored(why) => {
                    tracing::debug!(device = %incoming.device, why, "report ignored");
                    self.metrics.ignored(why);
                }
            }
        }
        changed
    }
}

/// The next message; once `stop` is cancelled, only one that comes within [`QUIET`].
async fn next(rx: &mut mpsc::UnboundedReceiver<Inbound>, stop: &CancellationToken) -> Option<Inbound> {
    tokio::select! {
        biased;
        m = rx.recv() => m,
        () = stop.cancelled() => tokio::time::timeout(QUIET, rx.recv()).await.ok().flatten(),
    }
}

fn parse(payload: &[u8]) -> Result<StatusReport, &'static str> {
    if payload.len() > MAX_REPORT_BYTES {
        return Err("oversized");
    }
    let report: StatusReport = serde_json::from_slice(payload).map_err(|_| "malformed")?;
    if !report.state.is_reportable() {
        return Err("unreportable_state");
    }
    Ok(report)
}
