//! The status reports an updater sends (CONTRACT §4), each with the next `seq`.

use super::*;

/// One report's contents.
struct Contents<'a> {
    rollout_id: Option<&'a str>,
    state: DeviceState,
    reason: Option<Reason>,
    progress: Option<u8>,
    connect: bool,
}

/// Why a report was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// Its `seq` could not be journaled: sent anyway, it might be used again after a reset.
    #[error("the report's seq could not be journaled")]
    NotJournaled,
}

impl<B: Board> Updater<'_, B> {
    /// Writes the status report for an [`Effect::Report`] just returned.
    pub fn report(&mut self, effect: &Effect, out: &mut [u8]) -> Result<usize, ReportError> {
        let Effect::Report { state, reason, progress } = *effect else { return Ok(0) };
        let subject = self.subject.clone();
        self.encode(Contents { rollout_id: Some(subject.as_str()), state, reason, progress, connect: false }, out)
    }

    /// Writes the answer to a command for a rollout already known ([`Screened::Repeat`]).
    pub fn repeat(
        &mut self,
        rollout: &str,
        state: DeviceState,
        reason: Option<Reason>,
        out: &mut [u8],
    ) -> Result<usize, ReportError> {
        self.encode(Contents { rollout_id: Some(rollout), state, reason, progress: None, connect: false }, out)
    }

    /// The report sent on every connect: the update in progress, its last final state, or
    /// `idle`.
    pub fn connect_report(&mut self, out: &mut [u8]) -> Result<usize, ReportError> {
        let (rollout, state, reason) = match (&self.state, &self.last_final) {
            (State::Busy { job, phase }, _) => (Some(job.rollout_id.clone()), phase.reported(), None),
            (State::Idle, Some(f)) => (Some(f.rollout_id.clone()), f.state, f.reason),
            (State::Idle, None) => (None, DeviceState::Idle, None),
        };
        let rollout_id = rollout.as_ref().map(String::as_str);
        self.encode(Contents { rollout_id, state, reason, progress: None, connect: true }, out)
    }

    fn encode(&mut self, c: Contents<'_>, out: &mut [u8]) -> Result<usize, ReportError> {
        let seq = self.next_seq().ok_or(ReportError::NotJournaled)?;
        let firmware = self.firmware.as_ref().map(|f| InstalledReport {
            name: f.name.as_str(),
            version: f.version.as_str(),
            sha256: f.sha256,
        });
        let (rollout_id, state, reason, progress, connect) = (c.rollout_id, c.state, c.reason, c.progress, c.connect);
        let hardware = Some(self.identity.hardware);
        Ok(Report { rollout_id, state, progress, reason, seq, connect, hardware, firmware, config: None }
            .encode(out)?)
    }
}
