//! The journal: what the agent must remember across crashes and power loss, written
//! atomically through [`crate::atomic_file`] (unique temporary file, fsync, rename, fsync the
//! directory).
//!
//! It holds the update in progress, the last final state per rollout, the report `seq`,
//! the installed firmware and config, and the time floor of CONTRACT §6.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use fleet_protocol::message::Installed;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, RolloutId};
use serde::{Deserialize, Serialize};

use super::Job;
use super::machine::{Phase, State};
use crate::atomic_file::{WriteOptions, write_atomically};

/// The journal format this build writes and reads.
pub const VERSION: u32 = 1;
/// How many final states are remembered (re-sent commands of older rollouts are rare).
const FINALS_KEPT: usize = 64;

/// A rollout's final state as the agent reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Final {
    pub rollout_id: RolloutId,
    pub state: DeviceState,
    pub reason: Option<Reason>,
}

/// Report `seq` numbers are reserved this many at a time: the journal is written when a
/// block runs out, not before every report, and a restart resumes numbering above the
/// block, so `seq` still only grows (it may skip).
const SEQ_BLOCK: u64 = 64;

/// The journal's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    /// No report used a `seq` above this one (the end of the block reserved last).
    pub seq: u64,
    /// The last `seq` used since this journal was loaded or made.
    #[serde(skip)]
    used: Option<u64>,
    /// Unix seconds: the later of the clock and the newest `created_at` verified.
    pub time_floor: i64,
    pub current: Option<Current>,
    /// Newest last.
    pub finals: VecDeque<Final>,
    pub firmware: Option<Installed>,
    pub config: Option<Installed>,
}

/// The update in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    pub job: Job,
    pub phase: Phase,
    /// The slot that was running when the install began (firmware only).
    #[serde(default)]
    pub from_slot: Option<String>,
}

/// Why the journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {0}: {1}")]
    Io(PathBuf, io::Error),
    #[error("journal {0} is corrupt: {1}")]
    Corrupt(PathBuf, String),
    #[error("journal {0} has version {1}; this agent reads version {VERSION}")]
    Version(PathBuf, u32),
}

impl Journal {
    /// A fresh journal. Without history, `seq` starts from the clock in milliseconds so it
    /// is still above anything an earlier installation reported (CONTRACT §4).
    pub fn new(now_ms: u64) -> Self {
        Self {
            version: VERSION,
            seq: now_ms,
            used: None,
            time_floor: 0,
            current: None,
            finals: VecDeque::new(),
            firmware: None,
            config: None,
        }
    }

    pub fn state(&self) -> State {
        match &self.current {
            Some(c) => State::Busy { job: c.job.clone(), phase: c.phase },
            None => State::Idle,
        }
    }

    pub fn set_state(&mut self, state: &State) {
        self.current = match state {
            State::Idle => None,
            State::Busy { job, phase } => Some(Current { job: job.clone(), phase: *phase, from_slot: None }),
        };
    }

    /// The next report's `seq`, and whether it began a new block: then the journal must
    /// be saved before the report is sent.
    pub fn next_seq(&mut self) -> (u64, bool) {
        let next = self.used.unwrap_or(self.seq) + 1;
        self.used = Some(next);
        let reserve = next > self.seq;
        if reserve {
            self.seq = next + SEQ_BLOCK - 1;
        }
        (next, reserve)
    }

    pub fn final_of(&self, rollout: &RolloutId) -> Option<&Final> {
        self.finals.iter().rev().find(|f| &f.rollout_id == rollout)
    }

    pub fn last_final(&self) -> Option<&Final> {
        self.finals.back()
    }

    pub fn record_final(&mut self, f: Final) {
        self.finals.retain(|old| old.rollout_id != f.rollout_id);
        self.finals.push_back(f);
        while self.finals.len() > FINALS_KEPT {
            self.finals.pop_front();
        }
    }

    pub fn installed(&self, kind: ArtifactKind) -> Option<&Installed> {
        match kind {
            ArtifactKind::Firmware => self.firmware.as_ref(),
            ArtifactKind::Config => self.config.as_ref(),
        }
    }

    pub fn set_installed(&mut self, kind: ArtifactKind, installed: Installed) {
        match kind {
            ArtifactKind::Firmware => self.firmware = Some(installed),
            ArtifactKind::Config => self.config = Some(installed),
        }
    }

    /// Raises the time floor (never lowers it).
    pub fn raise_time_floor(&mut self, unix_secs: i64) {
        self.time_floor = self.time_floor.max(unix_secs);
    }
}

/// Where the journal lives and whether writes are fsynced.
#[derive(Debug, Clone)]
pub struct JournalFile {
    path: PathBuf,
    durable: bool,
}

impl JournalFile {
    /// `durable: false` skips fsync (simulated devices only).
    pub fn new(dir: &Path, durable: bool) -> Self {
        Self { path: dir.join("journal.json"), durable }
    }

    pub fn load(&self) -> Result<Option<Journal>, JournalError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(JournalError::Io(self.path.clone(), e)),
        };
        let version: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| JournalError::Corrupt(self.path.clone(), e.to_string()))?;
        let v = version.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if v != VERSION {
            return Err(JournalError::Version(self.path.clone(), v));
        }
        serde_json::from_value(version).map(Some).map_err(|e| JournalError::Corrupt(self.path.clone(), e.to_string()))
    }

    /// [`Self::load`], or a fresh journal when the file cannot be read as one (truncated by
    /// a failing disk, garbage, another version): the error is logged and the file kept
    /// beside it as `journal.json.corrupt`, so the agent starts instead of failing at every
    /// start. The server re-sends a command that was in flight; an install it no longer
    /// knows about is never switched to (the back ends keep their own boot state).
    pub fn load_or_reset(&self, now_ms: u64) -> io::Result<Journal> {
        match self.load() {
            Ok(journal) => Ok(journal.unwrap_or_else(|| Journal::new(now_ms))),
            Err(JournalError::Io(_, e)) => Err(e),
            Err(e) => {
                let kept = self.path.with_extension("json.corrupt");
                tracing::error!("{e}; starting with a new journal (the old one is kept as {})", kept.display());
                std::fs::rename(&self.path, &kept)?;
                Ok(Journal::new(now_ms))
            }
        }
    }

    pub fn save(&self, journal: &Journal) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(journal).map_err(io::Error::other)?;
        write_atomically(&self.path, &bytes, WriteOptions { durable: self.durable, mode: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let file = JournalFile::new(dir.path(), true);
        assert!(file.load().unwrap().is_none());
        let mut j = Journal::new(1000);
        assert_eq!(j.next_seq(), (1001, true));
        j.record_final(Final {
            rollout_id: RolloutId::parse("r1").unwrap(),
            state: DeviceState::Succeeded,
            reason: None,
        });
        file.save(&j).unwrap();
        let mut loaded = file.load().unwrap().unwrap();
        // Everything round-trips but the in-memory count of what was used.
        let mut saved = j.clone();
        saved.used = None;
        assert_eq!(loaded, saved);
        // Numbering resumes above everything reserved before the restart.
        assert_eq!(loaded.next_seq(), (1001 + SEQ_BLOCK, true));

        std::fs::write(dir.path().join("journal.json"), br#"{"version": 99}"#).unwrap();
        let mut fresh = file.load_or_reset(5000).unwrap();
        assert_eq!(fresh.next_seq().0, 5001, "a new journal");
        assert!(dir.path().join("journal.json.corrupt").exists(), "the unreadable one is kept");
        std::fs::write(dir.path().join("journal.json"), br#"{"version": 99}"#).unwrap();
        assert!(matches!(file.load(), Err(JournalError::Version(_, 99))));
        std::fs::write(dir.path().join("journal.json"), b"{garbage").unwrap();
        assert!(matches!(file.load(), Err(JournalError::Corrupt(..))));
    }

    #[test]
    fn seq_is_saved_once_per_block_and_only_grows() {
        let mut j = Journal::new(0);
        let seqs: Vec<_> = (0..2 * SEQ_BLOCK + 1).map(|_| j.next_seq()).collect();
        assert!(seqs.windows(2).all(|w| w[0].0 + 1 == w[1].0));
        let saves: Vec<u64> = seqs.iter().filter(|(_, save)| *save).map(|(seq, _)| *seq).collect();
        assert_eq!(saves, [1, 1 + SEQ_BLOCK, 1 + 2 * SEQ_BLOCK]);
        assert!(j.seq >= seqs.last().unwrap().0);
    }

    #[test]
    fn finals_replace_per_rollout_and_stay_bounded() {
        let mut j = Journal::new(0);
        for i in 0..100 {
            j.record_final(Final {
                rollout_id: RolloutId::parse(format!("r{}", i % 70)).unwrap(),
                state: DeviceState::Failed,
                reason: None,
            });
        }
        assert_eq!(j.finals.len(), FINALS_KEPT);
        assert_eq!(j.last_final().unwrap().rollout_id.as_str(), "r29");
        assert!(j.final_of(&RolloutId::parse("r29").unwrap()).is_some());
    }

    #[test]
    fn time_floor_only_rises() {
        let mut j = Journal::new(0);
        j.raise_time_floor(100);
        j.raise_time_floor(50);
        assert_eq!(j.time_floor, 100);
    }
}
