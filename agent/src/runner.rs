//! The runner: feeds events into the pure state machine and performs its effects, with
//! the MQTT link, the journal, the downloader and the installer.
//!
//! Long effects (download, install, health check) run as one background task at a time, so
//! the runner keeps answering commands — a cancel, a re-sent command — while they run.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_protocol::message::{Installed, StatusReport};
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{RolloutId, Sha256Digest};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::device::Device;
use crate::install::Installer;
use crate::mqtt::{Link, LinkEvent};
use crate::trust::Trust;
use crate::update::Job;
use crate::update::download::Downloader;
use crate::update::journal::{Final, Journal, JournalFile};
use crate::update::machine::{Effect, Event, Phase, State, step};

/// Progress reports at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

type Task = Pin<Box<dyn Future<Output = Option<Event>> + Send>>;

/// What woke the runner.
enum Wake {
    Shutdown,
    Task(Option<Event>),
    Progress(Event),
    Link(Option<LinkEvent>),
    /// Time to say `online` again (CONTRACT §4 presence; `fleet_protocol::presence`).
    RefreshPresence,
    /// The device certificate is due for renewal.
    RenewCertificate,
}

/// One device's agent.
pub struct Runner<I: Installer> {
    pub(crate) device: Arc<Device>,
    pub(crate) installer: Arc<I>,
    pub(crate) journal: Journal,
    pub(crate) journal_file: JournalFile,
    pub(crate) downloader: Downloader,
    pub(crate) link: Option<Link>,
    pub(crate) link_events: mpsc::UnboundedReceiver<LinkEvent>,
    pub(crate) task: Option<Task>,
    pub(crate) download_cancel: CancellationToken,
    /// Where the download in progress writes: an inactive slot, or `None` for a file in
    /// the downloads directory.
    pub(crate) download_target: Option<PathBuf>,
    /// The digest and slot of the image this run's download streamed into the inactive
    /// slot, hashing every byte it wrote there (and what an earlier run had left, read back
    /// from the slot): the install takes it as proof and need not read that slot again.
    /// Never saved, so after a restart the slot is read back.
    pub(crate) streamed_and_verified: Option<(Sha256Digest, PathBuf)>,
    pub(crate) progress_tx: mpsc::UnboundedSender<Event>,
    pub(crate) progress_rx: mpsc::UnboundedReceiver<Event>,
    pub(crate) queue: VecDeque<Event>,
    pub(crate) http: crate::http::Http,
    /// Told once, the first time the link is up (simulate counts devices online).
    pub(crate) online_signal: Option<mpsc::UnboundedSender<fleet_protocol::DeviceId>>,
    /// The trust document in force, with `--trust-root` (see [`crate::trust`]).
    pub(crate) trust: Option<Trust>,
}

impl<I: Installer> std::fmt::Debug for Runner<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("device", &self.device.id).finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl<I: Installer> Runner<I> {
    /// Loads (or starts) the journal; does not connect yet.
    pub fn new(device: Device, installer: I, http: crate::http::Http) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&device.state_dir)?;
        let journal_file = JournalFile::new(&device.state_dir, device.durable);
        let journal = journal_file.load_or_reset(now_ms())?;
        let trust = match &device.trust_root {
            Some(pinned) => Some(Trust::load(pinned, &device.state_dir, device.durable)?),
            None => None,
        };
        let downloader = Downloader {
            http: http.clone(),
            server: device.server.clone(),
            token: device.token.clone(),
            dir: device.state_dir.join("downloads"),
            chunk_delay: device.download_delay,
            writes: Default::default(),
        };
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let (_, link_events) = mpsc::unbounded_channel();
        Ok(Self {
            device: Arc::new(device),
            installer: Arc::new(installer),
            journal,
            journal_file,
            downloader,
            link: None,
            link_events,
            task: None,
            download_cancel: CancellationToken::new(),
            download_target: None,
            streamed_and_verified: None,
            progress_tx,
            progress_rx,
            queue: VecDeque::new(),
            http,
            online_signal: None,
            trust,
        })
    }

    /// Sends the device's id on `tx` the first time the link is up.
    pub fn with_online_signal(mut self, tx: mpsc::UnboundedSender<fleet_protocol::DeviceId>) -> Self {
        self.online_signal = Some(tx);
        self
    }

    /// Boots, resumes whatever the journal holds, connects and serves until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.installer.boot().await?;
        self.resume().await?;
        self.connect();
        let refresh = fleet_protocol::presence::REFRESH;
        let mut refresh = tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renew_at = self.device.client_cert.as_ref().map(|c| crate::certificate::instant_of(c.renew_at()));
        loop {
            while let Some(event) = self.queue.pop_front() {
                self.handle(event).await?;
            }
            let wake = {
                let task = &mut self.task;
                let progress = &mut self.progress_rx;
                let link = &mut self.link_events;
                tokio::select! {
                    () = shutdown.cancelled() => Wake::Shutdown,
                    outcome = async {
                        match task.as_mut() {
                            Some(t) => t.await,
                            None => std::future::pending().await,
                        }
                    } => Wake::Task(outcome),
                    Some(event) = progress.recv() => Wake::Progress(event),
                    event = link.recv() => Wake::Link(event),
                    _ = refresh.tick() => Wake::RefreshPresence,
                    () = async {
                        match renew_at {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    } => Wake::RenewCertificate,
                }
            };
            match wake {
                Wake::Shutdown => break,
                Wake::Task(outcome) => {
                    self.task = None;
                    self.queue.extend(outcome);
                }
                Wake::Progress(event) => self.queue.push_back(event),
                Wake::Link(Some(LinkEvent::Up)) => self.on_link_up().await?,
                Wake::Link(Some(LinkEvent::Command(bytes))) => self.on_command(&bytes).await?,
                Wake::Link(Some(LinkEvent::Trust(bytes))) => self.on_trust_announced(&bytes).await?,
                Wake::Link(None) => self.connect(),
                Wake::RefreshPresence => self.refresh_presence().await,
                Wake::RenewCertificate => renew_at = self.renew_certificate().await,
            }
        }
        if let Some(link) = self.link.take() {
            link.close().await;
        }
        Ok(())
    }

    /// Says `online` again while connected, so the server's silence bound does not take an
    /// idle device for gone.
    async fn refresh_presence(&mut self) {
        if let Some(link) = self.link.as_ref().filter(|l| *l.up.borrow()) {
            link.online().await;
        }
    }

    /// Renews the device certificate, unless an update is in progress (then, and after a
    /// failure, it tries again a little later); the time of the next renewal.
    async fn renew_certificate(&mut self) -> Option<tokio::time::Instant> {
        let cert = self.device.client_cert.clone()?;
        let later = Some(tokio::time::Instant::now() + crate::certificate::RETRY);
        if self.journal.current.is_some() || self.task.is_some() {
            tracing::debug!("certificate renewal waits for the update in progress");
            return later;
        }
        let d = &self.device;
        match cert.renew(self.http.client(), &d.server, &d.id, &d.token, d.durable).await {
            Ok(()) => Some(crate::certificate::instant_of(cert.renew_at())),
            Err(e) => {
                tracing::warn!("renewing the device certificate: {e:#}");
                later
            }
        }
    }

    /// The link's up/down state, for callers that wait for a connection.
    pub fn link_up(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.link.as_ref().map(|l| l.up.clone())
    }

    pub(crate) fn connect(&mut self) {
        let (link, events) = Link::start(&self.device.link_config());
        self.link = Some(link);
        self.link_events = events;
    }

    /// Continues an update a crash or reboot interrupted.
    async fn resume(&mut self) -> anyhow::Result<()> {
        let Some(current) = self.journal.current.clone() else {
            return Ok(());
        };
        tracing::info!(rollout = %current.job.rollout_id, phase = ?current.phase, "resuming");
        match current.phase {
            Phase::Downloading => self.perform(&current.job, Effect::Download).await?,
            Phase::Installing => self.perform(&current.job, Effect::Install).await?,
            Phase::Rebooting | Phase::Trial => {
                let booted = self.booted_event().await?;
                self.queue.push_back(booted);
            }
        }
        Ok(())
    }

    /// After a boot: did the boot system start the new slot?
    pub(crate) async fn booted_event(&mut self) -> anyhow::Result<Event> {
        let booted = self.installer.booted_slot().await?;
        let from = self.journal.current.as_ref().and_then(|c| c.from_slot.clone());
        Ok(Event::Booted { into_target: from.is_some_and(|f| f != booted) })
    }

    /// One event through the machine, then its effects.
    async fn handle(&mut self, event: Event) -> anyhow::Result<()> {
        let before = self.journal.state();
        let job = match &before {
            State::Busy { job, .. } => Some(job.clone()),
            State::Idle => match &event {
                Event::Accepted(job) => Some(job.clone()),
                _ => None,
            },
        };
        if let (Event::Downloaded, State::Busy { job, phase: Phase::Downloading }) = (&event, &before) {
            // Only this run's download task says so, after its digest matched.
            self.streamed_and_verified = self.download_target.take().map(|slot| (job.artifact.sha256, slot));
        }
        let (after, effects) = step(before, event);
        if let Some(job) = job {
            // A job that ends by committing or rolling back changes the boot system before
            // the journal says it is over: a power cut in between repeats the step (both
            // are idempotent) instead of leaving a trial that nobody ends.
            let ends = after == State::Idle;
            let (boot, rest): (Vec<Effect>, Vec<Effect>) =
                effects.into_iter().partition(|e| ends && matches!(e, Effect::Commit | Effect::Rollback));
            for effect in boot {
                self.perform(&job, effect).await?;
            }
            let from_slot = self.journal.current.as_ref().and_then(|c| c.from_slot.clone());
            self.journal.set_state(&after);
            if let Some(c) = self.journal.current.as_mut() {
                c.from_slot = from_slot;
            }
            // ...and its final goes into the same journal write as its end, so a cut before
            // the report still reports it (at the next connect).
            for effect in &rest {
                if let Effect::Finish { state, reason } = effect {
                    self.journal.record_final(Final {
                        rollout_id: job.rollout_id.clone(),
                        state: *state,
                        reason: *reason,
                    });
                }
            }
            self.save()?;
            for effect in rest {
                self.perform(&job, effect).await?;
            }
        }
        Ok(())
    }

    pub(crate) fn save(&mut self) -> std::io::Result<()> {
        self.journal.raise_time_floor(self.device.now());
        self.journal_file.save(&self.journal)
    }

    /// Sends a report with the next `seq` (its block reserved in the journal first).
    pub(crate) async fn report(
        &mut self,
        rollout_id: Option<RolloutId>,
        state: DeviceState,
        reason: Option<Reason>,
        progress: Option<u8>,
        connect: bool,
    ) -> anyhow::Result<()> {
        let (seq, reserved) = self.journal.next_seq();
        if reserved {
            self.save()?;
        }
        let report = StatusReport {
            rollout_id,
            state,
            progress,
            reason,
            seq,
            connect,
            hardware: Some(self.device.hardware.clone()),
            firmware: self.journal.firmware.clone(),
            config: self.journal.config.clone(),
            trust_version: self.trust.as_ref().map(Trust::version),
        };
        tracing::info!(state = %state, ?reason, seq, "report");
        if let Some(link) = &self.link {
            link.report(&report).await;
        }
        Ok(())
    }

    /// Connected and subscribed: `online`, then the journal's state (CONTRACT §4).
    async fn on_link_up(&mut self) -> anyhow::Result<()> {
        if let Some(link) = &self.link {
            link.online().await;
        }
        if let Some(tx) = self.online_signal.take() {
            let _ = tx.send(self.device.id.clone());
        }
        self.report_journal(true).await
    }

    /// The journal's state: the update in progress, or the last final state, or `idle`.
    pub(crate) async fn report_journal(&mut self, connect: bool) -> anyhow::Result<()> {
        let (rollout, state, reason) = match (&self.journal.current, self.journal.last_final()) {
            (Some(c), _) => (Some(c.job.rollout_id.clone()), c.phase.reported(), None),
            (None, Some(f)) => (Some(f.rollout_id.clone()), f.state, f.reason),
            (None, None) => (None, DeviceState::Idle, None),
        };
        self.report(rollout, state, reason, None, connect).await
    }

    pub(crate) fn progress_reporter(&self) -> impl FnMut(u64, u64) + Send + 'static {
        let tx = self.progress_tx.clone();
        let mut last = Instant::now();
        move |have, size| {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                let pct = have.saturating_mul(100).checked_div(size).unwrap_or(100) as u8;
                let _ = tx.send(Event::Progress(pct));
            }
        }
    }

    pub(crate) fn installed_of(job: &Job) -> Installed {
        Installed {
            name: job.artifact.name.clone(),
            version: job.artifact.version.clone(),
            sha256: job.artifact.sha256,
        }
    }
}
