//! The flash of a microcontroller as the updater sees it: two image regions (A/B) and the
//! boot selection, provided by the board support package ([`Board`]); and a simulated one
//! in memory for examples and tests ([`SimulatedFlash`]).

use serde::{Deserialize, Serialize};

use crate::JOURNAL_BYTES;

/// One of the two image regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
        }
    }
}

/// What a board support package provides.
pub trait Board {
    type Error: core::fmt::Debug;

    /// Each image region's size in bytes.
    fn region_size(&self) -> u64;

    fn erase(&mut self, slot: Slot) -> Result<(), Self::Error>;

    fn write(&mut self, slot: Slot, offset: u64, data: &[u8]) -> Result<(), Self::Error>;

    /// The slot running now: the boot system says, not the updater's memory.
    fn booted(&self) -> Slot;

    /// Starts `slot` at the next reset, once: unless confirmed, the reset after goes back.
    fn try_next(&mut self, slot: Slot) -> Result<(), Self::Error>;

    /// Keeps the slot running now.
    fn confirm(&mut self) -> Result<(), Self::Error>;

    /// The slot a plain reset starts: the one last kept.
    fn kept(&self) -> Slot;

    /// Resets the device (a board does not return; a host test's stand-in does).
    fn reset(&mut self);

    /// Keeps the updater's journal where a reset does not lose it (a flash page of its
    /// own, written so that a power cut leaves the old or the new one).
    fn store(&mut self, journal: &[u8]) -> Result<(), Self::Error>;

    /// The journal last stored, copied into `into`: its length, or `None` if there is none.
    fn load(&self, into: &mut [u8]) -> Option<usize>;
}

/// A board lent for a while is still a board (a host keeps a large one in a box).
impl<B: Board + ?Sized> Board for &mut B {
    type Error = B::Error;

    fn region_size(&self) -> u64 {
        (**self).region_size()
    }

    fn erase(&mut self, slot: Slot) -> Result<(), Self::Error> {
        (**self).erase(slot)
    }

    fn write(&mut self, slot: Slot, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        (**self).write(slot, offset, data)
    }

    fn booted(&self) -> Slot {
        (**self).booted()
    }

    fn try_next(&mut self, slot: Slot) -> Result<(), Self::Error> {
        (**self).try_next(slot)
    }

    fn confirm(&mut self) -> Result<(), Self::Error> {
        (**self).confirm()
    }

    fn kept(&self) -> Slot {
        (**self).kept()
    }

    fn reset(&mut self) {
        (**self).reset()
    }

    fn store(&mut self, journal: &[u8]) -> Result<(), Self::Error> {
        (**self).store(journal)
    }

    fn load(&self, into: &mut [u8]) -> Option<usize> {
        (**self).load(into)
    }
}

/// Two regions in memory (`S`: an array on a board, a `Vec` on a host) and a boot
/// selection like a bootloader's: a trial start once, back to the kept region at the next
/// reset unless confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedFlash<S> {
    pub regions: [S; 2],
    pub running: Slot,
    pub next: Option<Slot>,
    pub kept: Slot,
    /// Writes to the regions so far.
    pub writes: usize,
    /// The journal's page and how much of it is written.
    pub journal: [u8; JOURNAL_BYTES],
    pub journal_len: usize,
}

/// Why the simulated flash refused a write (past a region, or a journal past its page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the write goes past the region")]
pub struct PastTheRegion;

impl<S: AsRef<[u8]> + AsMut<[u8]>> SimulatedFlash<S> {
    /// Region A runs and is kept.
    pub fn new(a: S, b: S) -> Self {
        let journal = [0xff; JOURNAL_BYTES];
        Self { regions: [a, b], running: Slot::A, next: None, kept: Slot::A, writes: 0, journal, journal_len: 0 }
    }

    pub fn region(&self, slot: Slot) -> &[u8] {
        self.regions[slot.index()].as_ref()
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> Board for SimulatedFlash<S> {
    type Error = PastTheRegion;

    fn region_size(&self) -> u64 {
        self.regions[0].as_ref().len() as u64
    }

    fn erase(&mut self, slot: Slot) -> Result<(), PastTheRegion> {
        self.regions[slot.index()].as_mut().fill(0xff);
        Ok(())
    }

    fn write(&mut self, slot: Slot, offset: u64, data: &[u8]) -> Result<(), PastTheRegion> {
        let at = usize::try_from(offset).map_err(|_| PastTheRegion)?;
        let end = at.checked_add(data.len()).ok_or(PastTheRegion)?;
        let target = self.regions[slot.index()].as_mut().get_mut(at..end).ok_or(PastTheRegion)?;
        target.copy_from_slice(data);
        self.writes += 1;
        Ok(())
    }

    fn booted(&self) -> Slot {
        self.running
    }

    fn try_next(&mut self, slot: Slot) -> Result<(), PastTheRegion> {
        self.next = Some(slot);
        Ok(())
    }

    fn confirm(&mut self) -> Result<(), PastTheRegion> {
        self.kept = self.running;
        Ok(())
    }

    fn kept(&self) -> Slot {
        self.kept
    }

    fn reset(&mut self) {
        self.running = self.next.take().unwrap_or(self.kept);
    }

    fn store(&mut self, journal: &[u8]) -> Result<(), PastTheRegion> {
        self.journal.get_mut(..journal.len()).ok_or(PastTheRegion)?.copy_from_slice(journal);
        self.journal_len = journal.len();
        Ok(())
    }

    fn load(&self, into: &mut [u8]) -> Option<usize> {
        let stored = self.journal.get(..self.journal_len).filter(|j| !j.is_empty())?;
        into.get_mut(..stored.len())?.copy_from_slice(stored);
        Some(stored.len())
    }
}
