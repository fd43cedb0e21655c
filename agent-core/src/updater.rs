//! A whole update on a microcontroller: two image regions of one flash (A/B), the image
//! streamed straight into the inactive one as it arrives, a trial boot, a confirm or a
//! fallback. The board support package provides the flash and the boot selection
//! ([`Board`]); the host loop moves bytes between the network and this type, in the
//! contract's order (CONTRACT §6):
//!
//! 1. [`Updater::screen`] a command from MQTT; for [`Screened::Confirm`], confirm it with
//!    `GET /api/v1/devices/{id}/command`, then [`Updater::admit`] it;
//! 2. publish every [`Effect::Report`] ([`Updater::report`] writes the JSON);
//! 3. on [`Effect::Download`], fetch the URL and hand each chunk to [`Updater::chunk`],
//!    then call [`Updater::downloaded`];
//! 4. after the reset, call [`Updater::started`]; on [`Effect::HealthCheck`], check and
//!    call [`Updater::health`].
//!
//! Every call returns what the host must still do; flash and boot effects are done here.

use heapless::String;

use crate::admission::{Device, Installed, Update, Verdict, judge};
use crate::command::Command;
pub use crate::flash::{Board, Slot};
use crate::image::ImageCheck;
use crate::kind::ArtifactKind;
use crate::machine::{self, Effect, Event, Phase, State};
use crate::manifest::Manifest;
use crate::report::{InstalledReport, Report, TooLarge};
use crate::verify::Keys;
use crate::version::Version;
use crate::{DeviceState, Reason, VERIFY_BUFFER_BYTES};

/// The longest rollout id, product name or version text kept.
pub const MAX_TEXT: usize = 64;

/// The longest download URL kept.
pub const MAX_URL: usize = 256;

/// What the device knows of itself.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'k> {
    pub device_id: &'k str,
    pub hardware: &'k str,
    pub keys: Keys<'k>,
}

/// The firmware a device runs, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    pub name: String<MAX_TEXT>,
    pub version: String<MAX_TEXT>,
    pub sha256: [u8; 32],
}

impl Firmware {
    /// `None` when the name or version is longer than [`MAX_TEXT`].
    pub fn new(name: &str, version: &str, sha256: [u8; 32]) -> Option<Self> {
        Some(Self { name: text(name)?, version: text(version)?, sha256 })
    }
}

/// An accepted update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub rollout_id: String<MAX_TEXT>,
    pub url: String<MAX_URL>,
    pub target: Slot,
    pub firmware: Firmware,
    pub size: u64,
}

impl machine::Job for Job {
    type Rollout = String<MAX_TEXT>;

    fn kind(&self) -> ArtifactKind {
        ArtifactKind::Firmware
    }

    fn rollout(&self) -> &Self::Rollout {
        &self.rollout_id
    }
}

/// What to do with a command before the server confirms it.
// One lives on the stack per command; without an allocator there is nothing to box into.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screened<'j> {
    /// Not a command, another device's, or a cancel of nothing: log and drop.
    Ignore,
    /// This device's update or cancel: confirm it over HTTP, then [`Updater::admit`].
    Confirm(Command<'j>),
    /// The rollout in progress again: report its state, start nothing.
    Repeat(DeviceState),
}

/// The update core of one device on one board.
#[derive(Debug)]
pub struct Updater<'k, B: Board> {
    board: B,
    identity: Identity<'k>,
    firmware: Option<Firmware>,
    time_floor: i64,
    state: State<Job>,
    image: Option<ImageCheck>,
    last_final: Option<(String<MAX_TEXT>, DeviceState, Option<Reason>)>,
    /// The rollout the effects last returned are about.
    subject: String<MAX_TEXT>,
}

/// What the host must do after one call, in order: publish reports, download, reset.
pub type Todo = heapless::Vec<Effect, 6>;

/// `s` kept, or `None` when longer than `N` (heapless's `From` would panic).
fn kept<const N: usize>(s: &str) -> Option<String<N>> {
    let mut out = String::new();
    out.push_str(s).ok()?;
    Some(out)
}

fn text(s: &str) -> Option<String<MAX_TEXT>> {
    kept(s)
}

impl<'k, B: Board> Updater<'k, B> {
    pub fn new(board: B, identity: Identity<'k>, firmware: Option<Firmware>, time_floor: i64) -> Self {
        Self {
            board,
            identity,
            firmware,
            time_floor,
            state: State::Idle,
            image: None,
            last_final: None,
            subject: String::new(),
        }
    }

    pub fn board(&self) -> &B {
        &self.board
    }

    pub fn board_mut(&mut self) -> &mut B {
        &mut self.board
    }

    pub fn into_board(self) -> B {
        self.board
    }

    pub fn firmware(&self) -> Option<&Firmware> {
        self.firmware.as_ref()
    }

    /// Steps 0 and 1: commands for other devices and rollouts already known.
    pub fn screen<'j>(&self, json: &'j [u8]) -> Screened<'j> {
        let Ok(command) = Command::from_json(json) else { return Screened::Ignore };
        if command.device_id() != self.identity.device_id {
            return Screened::Ignore;
        }
        let current = match &self.state {
            State::Busy { job, phase } if job.rollout_id == command.rollout_id() => Some(phase.reported()),
            _ => None,
        };
        let finished =
            self.last_final.as_ref().filter(|(r, state, _)| r == command.rollout_id() && *state != DeviceState::Failed);
        match (&command, current, finished) {
            (Command::Update { .. }, Some(state), _) => Screened::Repeat(state),
            (_, _, Some((_, state, _))) => Screened::Repeat(*state),
            (Command::Cancel { .. }, None, None) => Screened::Ignore,
            _ => Screened::Confirm(command),
        }
    }

    /// Steps 3 and 4 for a confirmed command; `url_from_server` says whether its URL has
    /// the server's origin, `now` is the clock (seconds since the Unix epoch).
    pub fn admit(&mut self, command: &Command<'_>, url_from_server: bool, now: i64) -> Todo {
        let (rollout, kind, envelope, url) = match command {
            Command::Cancel { rollout_id, .. } => {
                return self.event(Event::Cancel(text(rollout_id).unwrap_or_default()));
            }
            Command::Update { rollout_id, kind, envelope, url, .. } => (*rollout_id, *kind, envelope, *url),
        };
        if self.state != State::Idle {
            return self.refuse(rollout, DeviceState::Rejected, Reason::Busy);
        }
        self.time_floor = self.time_floor.max(now);
        let firmware = self.firmware.clone();
        let installed = firmware.as_ref().and_then(|f| {
            Some(Installed {
                name: f.name.as_str(),
                version: Version::parse(f.version.as_str()).ok()?,
                sha256: f.sha256,
            })
        });
        let device = Device {
            keys: self.identity.keys,
            hardware: self.identity.hardware,
            firmware: installed,
            config: None,
            time_floor: self.time_floor,
        };
        let mut buffer = [0u8; VERIFY_BUFFER_BYTES];
        match judge(&device, &Update { kind, envelope, url_from_server }, &mut buffer) {
            Verdict::Reject(reason) => self.refuse(rollout, DeviceState::Rejected, reason),
            Verdict::AlreadyInstalled(_) => self.refuse(rollout, DeviceState::Succeeded, Reason::AlreadyInstalled),
            Verdict::Accept(m) => self.start(rollout, url, &m),
        }
    }

    /// An accepted update: the inactive slot erased, the download next.
    fn start(&mut self, rollout: &str, url: &str, m: &Manifest<'_>) -> Todo {
        if m.size > self.board.region_size() {
            return self.refuse(rollout, DeviceState::Failed, Reason::InsufficientSpace);
        }
        self.time_floor = self.time_floor.max(m.created_at);
        let firmware = (text(m.name), text(version_text(&m.version).as_str()));
        let (Some(rollout_id), Some(url), (Some(name), Some(version))) = (text(rollout), kept(url), firmware) else {
            return self.refuse(rollout, DeviceState::Rejected, Reason::SignatureInvalid);
        };
        let target = self.board.booted().other();
        if self.board.erase(target).is_err() {
            return self.refuse(rollout, DeviceState::Failed, Reason::InstallFailed);
        }
        self.image = Some(ImageCheck::new(m.size, m.sha256));
        let firmware = Firmware { name, version, sha256: m.sha256 };
        self.event(Event::Accepted(Job { rollout_id, url, target, firmware, size: m.size }))
    }
}

/// A version's text again, from its parts (the manifest's text is borrowed from a buffer
/// that is gone by the time the job is kept).
fn version_text(v: &Version<'_>) -> String<MAX_TEXT> {
    use core::fmt::Write as _;
    let mut out = String::new();
    let _ = write!(out, "{}.{}.{}", v.major, v.minor, v.patch);
    if !v.pre.is_empty() {
        let _ = write!(out, "-{}", v.pre);
    }
    if !v.build.is_empty() {
        let _ = write!(out, "+{}", v.build);
    }
    out
}

impl<B: Board> Updater<'_, B> {
    /// A final answer to `rollout` that starts nothing.
    fn refuse(&mut self, rollout: &str, state: DeviceState, reason: Reason) -> Todo {
        self.subject = text(rollout).unwrap_or_default();
        self.last_final = Some((self.subject.clone(), state, Some(reason)));
        Todo::from_slice(&[Effect::Report { state, reason: Some(reason), progress: None }]).expect("room")
    }

    /// One event through the state machine; the flash and boot effects done, the rest
    /// returned with resets last.
    fn event(&mut self, event: Event<Job>) -> Todo {
        let before = core::mem::replace(&mut self.state, State::Idle);
        let was = match &before {
            State::Busy { job, .. } => Some(job.clone()),
            State::Idle => None,
        };
        let (after, effects) = machine::step(before, event);
        self.state = after;
        let job = match &self.state {
            State::Busy { job, .. } => Some(job.clone()),
            State::Idle => was,
        };
        let mut todo = Todo::new();
        let mut resets = Todo::new();
        if let Some(job) = &job {
            self.subject = job.rollout_id.clone();
        }
        let mut kept = true;
        for effect in effects {
            match effect {
                // The image went straight into its slot as it arrived.
                Effect::Install => todo.extend(self.event(Event::Installed)),
                Effect::Commit => kept = self.board.confirm().is_ok(),
                // A trial the board could not keep goes back at the next reset.
                Effect::Finish { state: DeviceState::Succeeded, .. } if !kept => {
                    let (state, reason) = (DeviceState::Failed, Some(Reason::InstallFailed));
                    self.last_final = Some((self.subject.clone(), state, reason));
                    let _ = todo.push(Effect::Report { state, reason, progress: None });
                }
                Effect::Finish { state, reason } => {
                    if let (DeviceState::Succeeded, Some(job)) = (state, &job) {
                        self.firmware = Some(job.firmware.clone());
                    }
                    self.image = None;
                    self.last_final = Some((self.subject.clone(), state, reason));
                    let _ = todo.push(Effect::Report { state, reason, progress: None });
                }
                Effect::SwitchAndReboot | Effect::Rollback => {
                    let _ = resets.push(effect);
                }
                other => {
                    let _ = todo.push(other);
                }
            }
        }
        todo.extend(resets);
        todo
    }

    /// The next chunk of the image: into the inactive slot, counted and hashed. A chunk past
    /// the signed size, or one the flash refuses, ends the download (`failed`).
    pub fn chunk(&mut self, data: &[u8]) -> Todo {
        let (State::Busy { job, phase: Phase::Downloading }, Some(image)) = (&self.state, &mut self.image) else {
            return Todo::new();
        };
        let offset = image.received();
        if let Err(reason) = image.push(data) {
            return self.event(Event::DownloadFailed(reason));
        }
        if self.board.write(job.target, offset, data).is_err() {
            return self.event(Event::DownloadFailed(Reason::InstallFailed));
        }
        Todo::new()
    }

    /// Where the image of the update being downloaded is.
    pub fn download_url(&self) -> Option<String<MAX_URL>> {
        match &self.state {
            State::Busy { job, phase: Phase::Downloading } => Some(job.url.clone()),
            _ => None,
        }
    }

    /// The download could not be completed.
    pub fn download_failed(&mut self) -> Todo {
        self.image = None;
        self.event(Event::DownloadFailed(Reason::DownloadFailed))
    }

    /// The download ended: the image is verified (size and SHA-256), then the slot switch.
    pub fn downloaded(&mut self) -> Todo {
        match self.image.take().map(ImageCheck::finish) {
            Some(Ok(())) => self.event(Event::Downloaded),
            Some(Err(reason)) => self.event(Event::DownloadFailed(reason)),
            None => Todo::new(),
        }
    }

    /// After the `Rebooting` report is out: the trial boot of the new slot.
    pub fn switch_and_reset(&mut self) {
        if let State::Busy { job, .. } = &self.state {
            let target = job.target;
            if self.board.try_next(target).is_ok() {
                self.board.reset();
            }
        }
    }

    /// After a rollback's report is out: a reset without confirming goes back.
    pub fn roll_back(&mut self) {
        self.board.reset();
    }

    /// After a reset: whether the boot system started the new slot.
    pub fn started(&mut self) -> Todo {
        let into_target = match &self.state {
            State::Busy { job, phase: Phase::Rebooting | Phase::Trial } => self.board.booted() == job.target,
            _ => return Todo::new(),
        };
        self.event(Event::Booted { into_target })
    }

    /// The health check's verdict during a trial.
    pub fn health(&mut self, passed: bool) -> Todo {
        self.event(if passed { Event::HealthPassed } else { Event::HealthFailed })
    }

    /// Writes the status report for a [`Effect::Report`] just returned, with `seq`.
    pub fn report(&self, effect: &Effect, seq: u64, out: &mut [u8]) -> Result<usize, TooLarge> {
        let Effect::Report { state, reason, progress } = *effect else { return Ok(0) };
        self.encode(Some(self.subject.as_str()), state, reason, progress, seq, false, out)
    }

    /// The report sent on every connect: the update in progress, its last final state, or
    /// `idle`.
    pub fn connect_report(&self, seq: u64, out: &mut [u8]) -> Result<usize, TooLarge> {
        match (&self.state, &self.last_final) {
            (State::Busy { job, phase }, _) => {
                self.encode(Some(job.rollout_id.as_str()), phase.reported(), None, None, seq, true, out)
            }
            (State::Idle, Some((rollout, state, reason))) => {
                self.encode(Some(rollout.as_str()), *state, *reason, None, seq, true, out)
            }
            (State::Idle, None) => self.encode(None, DeviceState::Idle, None, None, seq, true, out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn encode(
        &self,
        rollout_id: Option<&str>,
        state: DeviceState,
        reason: Option<Reason>,
        progress: Option<u8>,
        seq: u64,
        connect: bool,
        out: &mut [u8],
    ) -> Result<usize, TooLarge> {
        let firmware = self.firmware.as_ref().map(|f| InstalledReport {
            name: f.name.as_str(),
            version: f.version.as_str(),
            sha256: f.sha256,
        });
        let hardware = Some(self.identity.hardware);
        Report { rollout_id, state, progress, reason, seq, connect, hardware, firmware, config: None }.encode(out)
    }
}

#[cfg(test)]
mod tests;
