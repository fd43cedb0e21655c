//! What a microcontroller keeps across resets, as the agent's journal does: the update in
//! progress, the last final state, the installed firmware, the time floor and the report
//! sequence. A board stores it where it survives a reset ([`crate::flash::Board::store`]);
//! the updater writes it before it acts on a change.

use heapless::String;
use serde::{Deserialize, Serialize};

use crate::job::{Firmware, Job, MAX_TEXT};
use crate::machine::State;
use crate::report::TooLarge;
use crate::{DeviceState, Reason};

/// The format's version; a journal of another version is not read.
pub const JOURNAL_VERSION: u32 = 1;

/// A rollout's final state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Final {
    pub rollout_id: String<MAX_TEXT>,
    pub state: DeviceState,
    pub reason: Option<Reason>,
}

/// The journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    /// The last `seq` a report used.
    pub seq: u64,
    pub time_floor: i64,
    pub firmware: Option<Firmware>,
    pub state: State<Job>,
    pub last_final: Option<Final>,
}

/// Bytes that are not a journal of this version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a journal of version {JOURNAL_VERSION}")]
pub struct NotAJournal;

impl Journal {
    /// A device's first journal: `firmware` installed, reports numbered on from `seq`.
    pub fn first(firmware: Option<Firmware>, seq: u64) -> Self {
        Self { version: JOURNAL_VERSION, seq, time_floor: 0, firmware, state: State::Idle, last_final: None }
    }

    /// The journal in postcard's compact binary form (a flash page holds it easily).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, TooLarge> {
        postcard::to_slice(self, out).map(|written| written.len()).map_err(|_| TooLarge)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, NotAJournal> {
        let journal: Self = postcard::from_bytes(bytes).map_err(|_| NotAJournal)?;
        if journal.version == JOURNAL_VERSION { Ok(journal) } else { Err(NotAJournal) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::Slot;
    use crate::machine::Phase;

    #[test]
    fn a_journal_with_an_update_in_progress_round_trips_in_its_buffer() {
        let firmware = Firmware::new("sensor-fw", "1.1.0-rc.1", [7; 32]).unwrap();
        let mut journal = Journal::first(Firmware::new("sensor-fw", "1.0.0", [1; 32]), 0);
        let mut url = String::new();
        url.push_str("http://gw.example:8080/api/v1/firmware/fw-1/blob").unwrap();
        let job = Job { rollout_id: String::from("r1"), url, target: Slot::B, firmware, size: 600 * 1024 };
        journal.state = State::Busy { job, phase: Phase::Trial };
        journal.last_final = Some(Final {
            rollout_id: String::from("r0"),
            state: DeviceState::Failed,
            reason: Some(Reason::DigestMismatch),
        });
        journal.seq = u64::MAX;
        journal.time_floor = -1;
        let mut out = [0u8; crate::JOURNAL_BYTES];
        let len = journal.encode(&mut out).unwrap();
        assert!(len < 200, "{len} bytes");
        assert_eq!(Journal::decode(&out[..len]), Ok(journal.clone()));
        let mut other = out;
        other[0] = 2;
        assert_eq!(Journal::decode(&other[..len]), Err(NotAJournal), "another version");
        assert_eq!(Journal::decode(b"\xff\xff"), Err(NotAJournal), "erased flash is no journal");
    }
}
