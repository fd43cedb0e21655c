//! The updater's journal on the board: read at start, written before each change is acted
//! on, so a reset anywhere resumes where the device stood.

use super::*;
use crate::JOURNAL_BYTES;
use crate::journal::Journal;

impl<'k, B: Board> Updater<'k, B> {
    /// The updater after a reset: the board's journal, or for a first start the `factory`
    /// firmware and reports numbered from `clock_ms`, the clock in milliseconds (CONTRACT
    /// §4). An update whose download a reset broke is failed by [`Updater::started`].
    pub fn open(board: B, identity: Identity<'k>, factory: Option<Firmware>, clock_ms: u64) -> Self {
        let journal = stored(&board).unwrap_or_else(|| Journal::first(factory, clock_ms));
        let mut updater = Self {
            board,
            identity,
            firmware: None,
            time_floor: 0,
            state: State::Idle,
            image: None,
            last_final: None,
            seq: 0,
            subject: String::new(),
        };
        updater.restore(journal);
        updater
    }

    fn restore(&mut self, journal: Journal) {
        self.firmware = journal.firmware;
        self.time_floor = journal.time_floor;
        self.state = journal.state;
        self.last_final = journal.last_final;
        self.seq = journal.seq;
        self.image = None;
        if let State::Busy { job, .. } = &self.state {
            self.subject = job.rollout_id.clone();
        }
    }

    /// Forgets everything but the journal, as a reset does (a host's stand-in reset
    /// returns; a board's does not).
    pub(super) fn reload(&mut self) {
        if let Some(journal) = stored(&self.board) {
            self.restore(journal);
        }
    }

    /// Writes the journal; `false` when the board could not keep it.
    #[inline(never)]
    pub(super) fn save(&mut self) -> bool {
        let journal = Journal {
            version: crate::journal::JOURNAL_VERSION,
            seq: self.seq,
            time_floor: self.time_floor,
            firmware: self.firmware.clone(),
            state: self.state.clone(),
            last_final: self.last_final.clone(),
        };
        let mut out = [0u8; JOURNAL_BYTES];
        journal.encode(&mut out).is_ok_and(|len| self.board.store(&out[..len]).is_ok())
    }

    /// The next report's `seq`, kept in the journal first so it only grows; `None` when
    /// the journal could not be written.
    pub(super) fn next_seq(&mut self) -> Option<u64> {
        self.seq += 1;
        self.save().then_some(self.seq)
    }
}

#[inline(never)]
fn stored<B: Board>(board: &B) -> Option<Journal> {
    let mut buffer = [0u8; JOURNAL_BYTES];
    let len = board.load(&mut buffer)?;
    Journal::decode(buffer.get(..len)?).ok()
}
