//! The engine task: for every live rollout, starts a scheduled one at its `start_at`, times
//! out silent devices, judges the failure gate, moves through waves, claims `pending`
//! devices under the wave, rate and in-flight limits while the maintenance window (if any)
//! is open (marked `sent` in one transaction, then published), re-sends commands after
//! 60 s of silence, and sends `cancel` to devices in flight of a cancelled rollout.
//! All state lives in the database, so a restarted server continues where it was.
//!
//! Replicas: each live rollout is driven by one replica at a time, the holder of its lease
//! (renewed while it lives, taken over by another replica [`LEASE_MS`] after it dies). So
//! the limits hold across replicas, and the claims' compare-and-set keeps a device from
//! being dispatched twice even if two replicas ever overlapped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::DeviceId;
use fleet_protocol::state::DeviceState;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::health::judge_watches;
use super::model::{Count, EntryChange, RolloutRecord, RolloutState};
use super::progress::{WaveProgress, wave_progress};
use super::rules::{cancel_pending, dispatch, on_tick_timeout};
use super::schedule::start_due;
use crate::artifact_cache::ArtifactCache;
use crate::metrics::Metrics;
use crate::mqtt::MqttLink;
use crate::store::rollouts::EntrySelect;
use crate::store::{ArtifactRecord, Store, StoreResult};

/// How often the engine looks even when nothing woke it.
const TICK: Duration = Duration::from_millis(250);
/// The shortest time between two steps. Ingestion wakes the engine after every batch it
/// commits, hundreds of times a second while a large rollout reports; each step reads the
/// rollout's counts, so wake-ups within this time are folded into one step.
const SETTLE: Duration = Duration::from_millis(50);
/// How long a wake-up waits after a step, as a multiple of the step's own time (when that
/// is longer than [`SETTLE`]). A step of a large rollout reads counts over all its entries
/// (tens of milliseconds at 10,000 devices on a loaded machine), and ingestion wakes the
/// engine continuously, so without this the engine would take a core's share that grows
/// with the rollout's size; with it, steps woken by ingestion use at most a quarter of the
/// time. Never longer than [`TICK`] after the step ended, as without a wake-up: a slow or
/// failed step does not delay the next one (or a lease's renewal) further.
const REST_PER_STEP: u32 = 3;
/// Silence after which a command is sent again (CONTRACT §4).
const RESEND_AFTER_MS: i64 = 60_000;
/// The shortest time between two re-sends a device asks for with `connect: true` reports:
/// a device that sends thousands of them gets one command per interval, not thousands.
/// A command lost in between goes again after [`RESEND_AFTER_MS`] of silence.
pub const RESEND_THROTTLE: Duration = Duration::from_secs(5);
/// How long a rollout's lease lasts without renewal: a dead replica's rollouts wait this
/// long before another replica drives them. Its holder renews it every [`RENEW_MS`], so a
/// tick that stalls for seconds on a loaded machine does not lose it.
pub const LEASE_MS: i64 = 10_000;
const RENEW_MS: i64 = 2_500;
/// How many unhealthy devices a health gate's pause detail names.
const UNHEALTHY_NAMED: i64 = 10;

/// When a wake-up may start the next step, given when this one started and ended.
fn next_woken_step(started: Instant, ended: Instant) -> Instant {
    let spacing = SETTLE.max((ended - started) * (1 + REST_PER_STEP));
    (started + spacing).min(ended + TICK)
}

/// Handles shared with HTTP and ingestion.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    pub wake: Arc<Notify>,
    /// Rollout ids whose body changed (SSE listens).
    pub changes: broadcast::Sender<String>,
    /// Commands to send again now: (device, rollout).
    pub resend: mpsc::UnboundedSender<(DeviceId, String)>,
}

/// The engine task's state.
#[derive(Debug)]
pub struct Engine {
    store: Arc<dyn Store>,
    artifacts: Arc<ArtifactCache>,
    mqtt: Arc<MqttLink>,
    public_url: String,
    /// This replica's name in rollout leases.
    owner: String,
    metrics: Arc<Metrics>,
    /// Rollouts whose lease this replica holds, with the lease's end.
    leases: HashMap<String, i64>,
    handle: EngineHandle,
    resend_rx: mpsc::UnboundedReceiver<(DeviceId, String)>,
    last_sent: HashMap<(String, String), i64>,
    /// When each device last got a re-send it asked for (see [`RESEND_THROTTLE`]).
    resent_at: HashMap<DeviceId, Instant>,
    cancels_sent: HashSet<(String, String)>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        artifacts: Arc<ArtifactCache>,
        mqtt: Arc<MqttLink>,
        public_url: String,
        owner: String,
        metrics: Arc<Metrics>,
    ) -> (Self, EngineHandle) {
        let (resend, resend_rx) = mpsc::unbounded_channel();
        let (changes, _) = broadcast::channel(1024);
        let handle = EngineHandle { wake: Arc::new(Notify::new()), changes, resend };
        let engine = Self {
            store,
            artifacts,
            mqtt,
            public_url,
            owner,
            metrics,
            leases: HashMap::new(),
            handle: handle.clone(),
            resend_rx,
            last_sent: HashMap::new(),
            resent_at: HashMap::new(),
            cancels_sent: HashSet::new(),
        };
        (engine, handle)
    }

    /// Steps until `stop` is cancelled; a step under way finishes first.
    pub async fn run(mut self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let stepped = Instant::now();
            if let Err(e) = self.tick().await {
                tracing::error!("rollout engine: {e}");
            }
            let next_step = next_woken_step(stepped, Instant::now());
            let wake = self.handle.wake.clone();
            tokio::select! {
                () = stop.cancelled() => {}
                () = wake.notified() => {
                    let _ = stop.run_until_cancelled(tokio::time::sleep_until(next_step)).await;
                }
                () = tokio::time::sleep(TICK) => {}
                Some((device, rollout)) = self.resend_rx.recv() => {
                    if let Err(e) = self.resend(&device, &rollout).await {
                        tracing::warn!("re-sending to {device}: {e}");
                    }
                }
            }
        }
    }

    /// On taking a rollout over (at start, or from a replica that died): every device in
    /// flight gets its command again.
    async fn republish_in_flight(&mut self, r: &RolloutRecord, now: i64) -> StoreResult<()> {
        let artifact = self.artifact(r).await?;
        for e in self.store.select_entries(&r.id, EntrySelect::InFlight).await? {
            self.publish(r, &artifact, &e.device_id, r.state == RolloutState::Cancelled, now).await;
        }
        Ok(())
    }

    /// Whether this replica drives `r` now: takes or renews its lease, and re-publishes in-flight commands when the rollout is new to it.
    async fn hold_lease(&mut self, r: &RolloutRecord, now: i64) -> StoreResult<bool> {
        match self.leases.get(&r.id) {
            Some(&until) if now < until - LEASE_MS + RENEW_MS => return Ok(true),
            _ => {}
        }
        if !self.store.lease_rollout(&r.id, &self.owner, now, now + LEASE_MS).await? {
            self.leases.remove(&r.id);
            return Ok(false);
        }
        if self.leases.insert(r.id.clone(), now + LEASE_MS).is_none() {
            tracing::info!(rollout = %r.id, owner = %self.owner, "driving rollout");
            self.republish_in_flight(r, now).await?;
        }
        Ok(true)
    }

    /// A re-send a device's connect report asked for, at most one per [`RESEND_THROTTLE`]
    /// per device whatever it reports; checked before anything is read.
    async fn resend(&mut self, device: &DeviceId, rollout_id: &str) -> StoreResult<()> {
        let now = Instant::now();
        if self.resent_at.get(device).is_some_and(|at| now.duration_since(*at) < RESEND_THROTTLE) {
            self.metrics.ignored("resend_throttled");
            return Ok(());
        }
        self.resent_at.insert(device.clone(), now);
        let r = self.store.get_rollout(rollout_id).await?;
        let artifact = self.artifact(&r).await?;
        let now = self.store.now_ms().await?;
        // A device an operator cancelled is sent `cancel`, whatever its rollout does.
        let cancelled = self.store.entry(rollout_id, device).await?.state == DeviceState::Cancelled;
        self.publish(&r, &artifact, device.as_str(), r.state == RolloutState::Cancelled || cancelled, now).await;
        Ok(())
    }

    /// Publishes a device's command; `now` is the database's clock, like every other time here.
    async fn publish(&mut self, r: &RolloutRecord, artifact: &ArtifactRecord, device: &str, cancel: bool, now: i64) {
        let Ok(device_id) = DeviceId::parse(device) else {
            return;
        };
        if let Some(command) = super::command(&self.public_url, &r.id, &device_id, artifact, cancel) {
            let expiry = u32::try_from(r.device_timeout_s).ok();
            self.mqtt.publish_command(&command, expiry).await;
            self.last_sent.insert((r.id.clone(), device.to_owned()), now);
        }
    }

    /// The artifact a rollout ships, from the records shared with the device routes (a
    /// record never changes; a deletion is forgotten at once here).
    async fn artifact(&self, r: &RolloutRecord) -> StoreResult<Arc<ArtifactRecord>> {
        self.artifacts.get(self.store.as_ref(), r.kind, &r.artifact_id).await
    }

    async fn tick(&mut self) -> StoreResult<()> {
        self.resent_at.retain(|_, at| at.elapsed() < RESEND_THROTTLE);
        let live = self.store.live_rollouts().await?;
        self.leases.retain(|id, _| live.iter().any(|r| &r.id == id));
        for r in live {
            // One clock read per rollout's step: a long step of one does not age the next's.
            let now = self.store.now_ms().await?;
            if !self.hold_lease(&r, now).await? {
                continue;
            }
            let changed = self.advance(&r, now).await?;
            if changed {
                let _ = self.handle.changes.send(r.id.clone());
            }
        }
        Ok(())
    }

    /// One step of one rollout; returns whether anything changed. It reads counts and the
    /// few entries it acts on, never the whole rollout.
    async fn advance(&mut self, r: &RolloutRecord, now: i64) -> StoreResult<bool> {
        let artifact = self.artifact(r).await?;
        let timed_out = self.time_out_overdue(r, now).await?;
        let watched = self.watch_health(r, now).await?;
        self.send_device_cancels(r, &artifact, now).await?;
        let changed = match r.state {
            RolloutState::Scheduled => self.start_if_due(r, now).await?,
            RolloutState::Cancelled => self.wind_down(r, &artifact, now).await?,
            RolloutState::Paused | RolloutState::Completed => {
                self.resend_silent(r, &artifact, now).await?;
                false
            }
            RolloutState::Running => self.run_wave(r, &artifact, now).await?,
        };
        Ok(timed_out || watched || changed)
    }

    /// Judges the devices watched in their health window ([`judge_watches`]).
    async fn watch_health(&self, r: &RolloutRecord, now: i64) -> StoreResult<bool> {
        if r.health_window_s == 0 {
            return Ok(false);
        }
        let watched = self.store.watched_entries(&r.id).await?;
        if watched.is_empty() {
            return Ok(false);
        }
        let counts = self.store.rollout_counts(&r.id).await?;
        Ok(!self.change(judge_watches(r, &watched, &counts, now), now).await?.is_empty())
    }

    /// A health gate's pause names (some of) the unhealthy devices that tripped it.
    async fn name_unhealthy(&self, r: &RolloutRecord, next: &mut RolloutRecord) -> StoreResult<()> {
        let select = EntrySelect::Unhealthy { wave: r.current_wave, since: r.gate_since, limit: UNHEALTHY_NAMED };
        let named: Vec<String> = self
            .store
            .select_entries(&r.id, select)
            .await?
            .iter()
            .map(|e| match (e.state, e.reason) {
                (DeviceState::Succeeded, _) => format!("{} (offline)", e.device_id),
                (state, Some(reason)) => format!("{} ({}: {})", e.device_id, state.as_str(), reason.as_str()),
                (state, None) => format!("{} ({})", e.device_id, state.as_str()),
            })
            .collect();
        if let Some(detail) = &mut next.pause_detail {
            detail.push_str("; unhealthy: ");
            detail.push_str(&named.join(", "));
        }
        Ok(())
    }

    /// Devices in flight past `device_timeout_s` time out (and retry while attempts remain).
    async fn time_out_overdue(&self, r: &RolloutRecord, now: i64) -> StoreResult<bool> {
        let timeout_ms = r.device_timeout_s * 1000;
        let overdue = self.store.select_entries(&r.id, EntrySelect::InFlightSentBy(now - timeout_ms)).await?;
        let timeouts = overdue.iter().filter_map(|e| on_tick_timeout(e, timeout_ms, r.max_attempts, now)).collect();
        Ok(!self.change(timeouts, now).await?.is_empty())
    }

    /// Devices an operator cancelled in flight get `cancel` once (their entries are
    /// already `cancelled`): before the step judges the wave, so it is sent even if that
    /// cancel was what the rollout waited for.
    async fn send_device_cancels(&mut self, r: &RolloutRecord, artifact: &ArtifactRecord, now: i64) -> StoreResult<()> {
        for e in self.store.select_entries(&r.id, EntrySelect::CancelDue).await? {
            self.publish(r, artifact, &e.device_id, true, now).await;
            self.store.clear_cancel_due(&r.id, &e.device_id).await?;
        }
        Ok(())
    }

    /// A cancelled rollout: pending devices are cancelled, devices in flight get `cancel` once.
    async fn wind_down(&mut self, r: &RolloutRecord, artifact: &ArtifactRecord, now: i64) -> StoreResult<bool> {
        let pending = self.store.select_entries(&r.id, EntrySelect::Pending).await?;
        let changed = !self.change(pending.iter().filter_map(cancel_pending).collect(), now).await?.is_empty();
        for e in self.store.select_entries(&r.id, EntrySelect::InFlight).await? {
            if self.cancels_sent.insert((r.id.clone(), e.device_id.clone())) {
                self.publish(r, artifact, &e.device_id, true, now).await;
            }
        }
        Ok(changed)
    }

    /// A scheduled rollout whose `start_at` has come starts running ([`start_due`]); it
    /// dispatches from the next step on. A compare-and-set, like every write here.
    async fn start_if_due(&self, r: &RolloutRecord, now: i64) -> StoreResult<bool> {
        let Some(next) = start_due(r, now) else {
            return Ok(false);
        };
        let started = self.store.update_rollout(&next).await?;
        if started {
            tracing::info!(rollout = %r.id, "start_at reached: running");
        }
        Ok(started)
    }

    /// A running rollout: judges its wave ([`wave_progress`]), stores what that changed,
    /// then dispatches (while its maintenance window, if any, is open) and re-sends
    /// unless it paused, completed or soaks.
    async fn run_wave(&mut self, r: &RolloutRecord, artifact: &ArtifactRecord, now: i64) -> StoreResult<bool> {
        let tallies = self.store.tallies(&r.id, r.gate_since, now - 60_000).await?;
        let progress = wave_progress(r, &tallies, now);
        match progress {
            WaveProgress::GateTripped { finished, failures, unhealthy } => {
                tracing::warn!(rollout = %r.id, finished, failures, unhealthy, "failure threshold reached: pausing");
            }
            WaveProgress::Completed => tracing::info!(rollout = %r.id, "rollout completed"),
            _ => {}
        }
        let mut next = progress.apply(r, now);
        if let (Some(next), WaveProgress::GateTripped { unhealthy: 1.., .. }) = (&mut next, progress) {
            self.name_unhealthy(r, next).await?;
        }
        if let Some(next) = &mut next {
            // A compare-and-set on the version read at the start of this step: an
            // operator's pause or cancel committed since then wins, and this step ends
            // (the next one reads what the operator wrote).
            if !self.store.update_rollout(next).await? {
                tracing::debug!(rollout = %r.id, "changed during the step: judged again at the next");
                return Ok(false);
            }
            next.version += 1;
        }
        // Starting a soak changes no part of the rollout's body.
        let mut changed = next.is_some() && !matches!(progress, WaveProgress::Soaking { .. });
        if progress.dispatches() {
            let r = next.as_ref().unwrap_or(r);
            if r.schedule.may_dispatch(now) {
                changed |= self.dispatch(r, artifact, &tallies, now).await?;
            }
            self.resend_silent(r, artifact, now).await?;
        }
        Ok(changed)
    }

    /// Applies compare-and-set changes; returns those applied.
    async fn change(&self, changes: Vec<EntryChange>, now: i64) -> StoreResult<Vec<EntryChange>> {
        if changes.is_empty() {
            return Ok(vec![]);
        }
        self.store.change_entries(&changes, now).await
    }

    /// Claims pending devices of the waves reached, within the limits, then publishes.
    async fn dispatch(
        &mut self,
        r: &RolloutRecord,
        artifact: &ArtifactRecord,
        tallies: &[Count],
        now: i64,
    ) -> StoreResult<bool> {
        let in_flight: i64 = tallies.iter().filter(|t| t.state.is_in_flight()).map(|t| t.n).sum();
        let last_minute: i64 = tallies.iter().map(|t| t.sent_recently).sum();
        let mut budget = i64::MAX;
        if let Some(max) = r.max_in_flight {
            budget = budget.min(max - in_flight);
        }
        if let Some(max) = r.max_per_minute {
            budget = budget.min(max - last_minute);
        }
        if budget <= 0 {
            return Ok(false);
        }
        let due = EntrySelect::Due { wave: r.current_wave, now, limit: budget };
        let claims: Vec<EntryChange> =
            self.store.select_entries(&r.id, due).await?.iter().map(|e| dispatch(e, now)).collect();
        if claims.is_empty() {
            return Ok(false);
        }
        // Claimed only while the rollout is still running at the version this step read:
        // a pause committed during the step stops the claims, so nothing is published.
        let applied = self.store.claim_entries(r, &claims, now).await?;
        self.metrics.commands_dispatched.inc_by(applied.len() as u64);
        for c in &applied {
            self.publish(r, artifact, &c.device_id, false, now).await;
        }
        Ok(!applied.is_empty())
    }

    /// 60 s without a report from a device in flight: send its command again.
    async fn resend_silent(&mut self, r: &RolloutRecord, artifact: &ArtifactRecord, now: i64) -> StoreResult<()> {
        let quiet = self.store.select_entries(&r.id, EntrySelect::InFlightQuietSince(now - RESEND_AFTER_MS)).await?;
        for e in quiet {
            let heard = e.last_heard_at.into_iter().chain(e.sent_at).max().unwrap_or(now);
            let key = (r.id.clone(), e.device_id.clone());
            let sent = self.last_sent.get(&key).copied().unwrap_or(heard);
            if now - heard.max(sent) >= RESEND_AFTER_MS {
                self.publish(r, artifact, &e.device_id, r.state == RolloutState::Cancelled, now).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woken_steps_are_spaced_by_settle_or_a_multiple_of_the_step_but_never_past_the_tick() {
        let started = Instant::now();
        let after = |took_ms| next_woken_step(started, started + Duration::from_millis(took_ms)) - started;
        assert_eq!(after(2), SETTLE);
        assert_eq!(after(40), Duration::from_millis(160));
        assert_eq!(after(1_000), Duration::from_millis(1_000) + TICK);
    }
}
