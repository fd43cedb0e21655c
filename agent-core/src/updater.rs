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
pub use crate::job::{Firmware, Job, MAX_TEXT, MAX_URL};
use crate::job::{kept, text};
use crate::journal::Final;
use crate::machine::{self, Effect, Event, Phase, State};
use crate::manifest::Manifest;
use crate::report::{InstalledReport, Report, TooLarge};
use crate::verify::Keys;
use crate::version::Version;
use crate::{DeviceState, Reason, VERIFY_BUFFER_BYTES};

/// What the device knows of itself.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'k> {
    pub device_id: &'k str,
    pub hardware: &'k str,
    pub keys: Keys<'k>,
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
    /// A rollout already known: report its state again, start nothing.
    Repeat { rollout: &'j str, state: DeviceState, reason: Option<Reason> },
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
    last_final: Option<Final>,
    /// The last `seq` a report used.
    seq: u64,
    /// The rollout the effects last returned are about.
    subject: String<MAX_TEXT>,
}

/// What the host must do after one call, in order: publish reports, download, reset.
pub type Todo = heapless::Vec<Effect, 6>;

impl<'k, B: Board> Updater<'k, B> {
    pub fn board(&self) -> &B {
        &self.board
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
        // A rollout id that is not one (CONTRACT §4) could not even be reported on.
        if command.device_id() != self.identity.device_id || crate::id::check(command.rollout_id()).is_err() {
            return Screened::Ignore;
        }
        let current = match &self.state {
            State::Busy { job, phase } if job.rollout_id == command.rollout_id() => Some(phase.reported()),
            _ => None,
        };
        let finished =
            self.last_final.as_ref().filter(|f| f.rollout_id == command.rollout_id() && f.state != DeviceState::Failed);
        let rollout = command.rollout_id();
        match (&command, current, finished) {
            (Command::Update { .. }, Some(state), _) => Screened::Repeat { rollout, state, reason: None },
            (_, _, Some(f)) => Screened::Repeat { rollout, state: f.state, reason: f.reason },
            (Command::Cancel { .. }, None, None) => Screened::Ignore,
            _ => Screened::Confirm(command),
        }
    }

    /// Steps 3 and 4 for a confirmed command; `url_from_server` says whether its URL has
    /// the server's origin, `now` is the clock (seconds since the Unix epoch).
    #[inline(never)]
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
        let installed = self.firmware.as_ref().and_then(|f| {
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
        let firmware = (text(m.name), version_text(&m.version));
        let (Some(rollout_id), Some(url), (Some(name), Some(version))) = (text(rollout), kept(url), firmware) else {
            return self.refuse(rollout, DeviceState::Rejected, Reason::SignatureInvalid);
        };
        // Running a trial that was not kept: its fallback is the only slot known to boot.
        if self.board.booted() != self.board.kept() {
            return self.refuse(rollout, DeviceState::Rejected, Reason::Busy);
        }
        let target = self.board.booted().other();
        if self.board.erase(target).is_err() {
            return self.refuse(rollout, DeviceState::Failed, Reason::InstallFailed);
        }
        self.image = Some(ImageCheck::new(m.size, m.sha256));
        let firmware = Firmware { name, version, sha256: m.sha256 };
        let todo = self.event(Event::Accepted(Job { rollout_id, url, target, firmware, size: m.size }));
        if !self.save() {
            // Without a journal a reset would forget the update: nothing starts.
            self.state = State::Idle;
            self.image = None;
            return self.refuse(rollout, DeviceState::Failed, Reason::InstallFailed);
        }
        todo
    }
}

/// A version's text again, from its parts (the manifest's text is borrowed from a buffer
/// that is gone by the time the job is kept); `None` when it is longer than [`MAX_TEXT`]
/// (cut short, it would read as another version or none).
fn version_text(v: &Version<'_>) -> Option<String<MAX_TEXT>> {
    use core::fmt::Write as _;
    let mut out = String::new();
    write!(out, "{}.{}.{}", v.major, v.minor, v.patch).ok()?;
    if !v.pre.is_empty() {
        write!(out, "-{}", v.pre).ok()?;
    }
    if !v.build.is_empty() {
        write!(out, "+{}", v.build).ok()?;
    }
    Some(out)
}

mod persist;
mod reports;
mod steps;
#[cfg(test)]
mod tests;
