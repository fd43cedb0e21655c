//! The host loop around an [`Updater`]: one command from MQTT carried through to its last
//! report, over a [`Network`] the board support package provides. A microcontroller's main
//! loop and the host test against the real server run this same code.

use crate::command::Command;
use crate::machine::Effect;
use crate::updater::{Board, Screened, Todo, Updater};

/// The buffer one status report is written into.
pub const REPORT_BYTES: usize = 512;

/// What the board's network stack provides: an MQTT session subscribed to the device's
/// `commands`, and HTTP to the server it was configured with.
pub trait Network {
    /// The body of `GET /api/v1/devices/{id}/command` (CONTRACT §6 step 2) in `into`: its
    /// length, or `None` when there is none or the request failed.
    fn current_command(&mut self, into: &mut [u8]) -> Option<usize>;

    /// Whether `url` has the origin of the configured server.
    fn is_server_origin(&self, url: &str) -> bool;

    /// Bytes of `url` from `offset` into `into`: how many, 0 at the end, `None` on failure.
    fn fetch(&mut self, url: &str, offset: u64, into: &mut [u8]) -> Option<usize>;

    /// Publishes a status report on the device's `status` topic.
    fn publish(&mut self, report: &[u8]);

    /// The health check after a trial boot ("reached the broker and the server again").
    fn healthy(&mut self) -> bool;

    /// The clock, in seconds since the Unix epoch (0 when unknown).
    fn now(&self) -> i64;
}

/// One device's session: its updater and its network.
#[derive(Debug)]
pub struct Session<'k, B: Board, N: Network> {
    pub updater: Updater<'k, B>,
    pub network: N,
}

impl<'k, B: Board, N: Network> Session<'k, B, N> {
    pub fn new(updater: Updater<'k, B>, network: N) -> Self {
        Self { updater, network }
    }

    /// After each (re)connect and its SUBACK: the connect report, then what a reset left
    /// to finish (a trial to check, a broken download to fail).
    #[inline(never)]
    pub fn connected(&mut self, chunk: &mut [u8]) {
        let mut out = [0u8; REPORT_BYTES];
        if let Ok(len) = self.updater.connect_report(&mut out) {
            self.network.publish(&out[..len]);
        }
        let todo = self.updater.started();
        self.perform(todo, chunk);
    }

    /// One command received on `commands`, carried through; `chunk` is the receive buffer
    /// the image streams through.
    #[inline(never)]
    pub fn command(&mut self, json: &[u8], chunk: &mut [u8]) {
        let todo = match self.updater.screen(json) {
            Screened::Ignore => return,
            Screened::Repeat { rollout, state, reason } => {
                let mut out = [0u8; REPORT_BYTES];
                if let Ok(len) = self.updater.repeat(rollout, state, reason, &mut out) {
                    self.network.publish(&out[..len]);
                }
                return;
            }
            Screened::Confirm(command) if self.confirmed(&command, chunk) => {
                let url_ok = match &command {
                    Command::Update { url, .. } => self.network.is_server_origin(url),
                    Command::Cancel { .. } => true,
                };
                self.updater.admit(&command, url_ok, self.network.now())
            }
            Screened::Confirm(_) => return,
        };
        self.perform(todo, chunk);
    }

    /// Does what the updater returned, and what that returns, until nothing is left.
    #[inline(never)]
    fn perform(&mut self, mut todo: Todo, chunk: &mut [u8]) {
        while !todo.is_empty() {
            let mut next = Todo::new();
            for effect in &todo {
                match effect {
                    Effect::Report { .. } => self.publish(effect),
                    Effect::Download => next = self.download(chunk),
                    Effect::SwitchAndReboot => {
                        self.updater.switch_and_reset();
                        self.connected(chunk);
                    }
                    Effect::HealthCheck => {
                        let healthy = self.network.healthy();
                        next = self.updater.health(healthy);
                    }
                    Effect::Rollback => {
                        self.updater.roll_back();
                        self.connected(chunk);
                    }
                    _ => {}
                }
            }
            todo = next;
        }
    }

    /// Whether the server's current command for this device is `command` (read through
    /// `buffer`, which is free until a download starts).
    fn confirmed(&mut self, command: &Command<'_>, buffer: &mut [u8]) -> bool {
        let Some(len) = self.network.current_command(buffer) else { return false };
        buffer.get(..len).and_then(|b| Command::from_json(b).ok()).is_some_and(|current| &current == command)
    }

    fn publish(&mut self, effect: &Effect) {
        let mut out = [0u8; REPORT_BYTES];
        if let Ok(len) = self.updater.report(effect, &mut out) {
            self.network.publish(&out[..len]);
        }
    }

    /// Streams the image through `chunk` into the updater, resuming where a fetch broke
    /// off (three tries in a row without progress end it).
    #[inline(never)]
    fn download(&mut self, chunk: &mut [u8]) -> Todo {
        let Some(url) = self.updater.download_url() else { return Todo::new() };
        let mut offset = 0u64;
        let mut failures = 0;
        loop {
            match self.network.fetch(&url, offset, chunk) {
                Some(0) => return self.updater.downloaded(),
                Some(len) => {
                    failures = 0;
                    offset += len as u64;
                    let todo = self.updater.chunk(&chunk[..len]);
                    if !todo.is_empty() {
                        return todo;
                    }
                }
                None if failures < 2 => failures += 1,
                None => return self.updater.download_failed(),
            }
        }
    }
}
