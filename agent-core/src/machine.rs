//! The update state machine, pure: `step(state, event) -> (state, effects)`. The host
//! performs the effects and feeds their outcomes back as events. No I/O here. The job is
//! the host's own type ([`Job`]): the agent's owns strings, a microcontroller's may not.
//!
//! Firmware: downloading → verifying → installing (write the inactive slot) → rebooting
//! (switch, reboot into a trial) → trial (health check) → succeeded (commit) or
//! rolled_back. Configs: downloading → verifying → installing (write, reload) → succeeded.
//! A cancel is honoured until the slot switch.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::manifest::ArtifactKind;
use crate::{DeviceState, Reason};

/// Where an update in progress stands; persisted across reboots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Downloading,
    Installing,
    Rebooting,
    Trial,
}

impl Phase {
    /// The state reported for this phase.
    pub fn reported(self) -> DeviceState {
        match self {
            Self::Downloading => DeviceState::Downloading,
            Self::Installing => DeviceState::Installing,
            Self::Rebooting | Self::Trial => DeviceState::Rebooting,
        }
    }
}

/// What the machine needs of an accepted update.
pub trait Job {
    /// What names the rollout (a cancel names it too).
    type Rollout: Clone + PartialEq + Eq + core::fmt::Debug;

    fn kind(&self) -> ArtifactKind;

    fn rollout(&self) -> &Self::Rollout;
}

/// Idle, or one job in a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State<J> {
    Idle,
    Busy { job: J, phase: Phase },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<J: Job> {
    /// An update passed every check.
    Accepted(J),
    Progress(u8),
    /// Downloaded completely; size and SHA-256 match the manifest.
    Downloaded,
    DownloadFailed(Reason),
    /// The slot is written (firmware) or the configuration applied (config).
    Installed,
    InstallFailed,
    /// After a reboot: whether the boot system started the new slot in a trial.
    Booted {
        into_target: bool,
    },
    HealthPassed,
    HealthFailed,
    /// A cancel of this rollout.
    Cancel(J::Rollout),
}

/// What the host must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Report {
        state: DeviceState,
        reason: Option<Reason>,
        progress: Option<u8>,
    },
    Download,
    StopDownload,
    Install,
    SwitchAndReboot,
    HealthCheck,
    Commit,
    Rollback,
    /// Record the final state (and, on success, the installed artifact).
    Finish {
        state: DeviceState,
        reason: Option<Reason>,
    },
}

/// The most effects one step has.
pub const MAX_EFFECTS: usize = 3;

/// One step's effects.
pub type Effects = Vec<Effect, MAX_EFFECTS>;

fn effects<const N: usize>(list: [Effect; N]) -> Effects {
    list.into_iter().collect()
}

fn report(state: DeviceState) -> Effect {
    Effect::Report { state, reason: None, progress: None }
}

fn finish(state: DeviceState, reason: Option<Reason>) -> Effect {
    Effect::Finish { state, reason }
}

/// The one transition function.
pub fn step<J: Job>(state: State<J>, event: Event<J>) -> (State<J>, Effects) {
    use Effect::*;
    use Phase::*;
    let State::Busy { job, phase } = state else {
        return match event {
            Event::Accepted(job) => (
                State::Busy { job, phase: Downloading },
                effects([Report { state: DeviceState::Downloading, reason: None, progress: Some(0) }, Download]),
            ),
            // Nothing in progress: late outcomes and cancels change nothing.
            _ => (State::Idle, Effects::new()),
        };
    };
    let kind = job.kind();
    let busy = |job: J, phase: Phase| State::Busy { job, phase };
    let done = |list: &[Effect]| (State::Idle, list.iter().copied().collect());
    match (phase, event) {
        (Downloading, Event::Progress(p)) => (
            busy(job, Downloading),
            effects([Report { state: DeviceState::Downloading, reason: None, progress: Some(p.min(100)) }]),
        ),
        (Downloading, Event::Downloaded) => {
            (busy(job, Installing), effects([report(DeviceState::Verifying), report(DeviceState::Installing), Install]))
        }
        (Downloading, Event::DownloadFailed(reason)) => done(&[finish(DeviceState::Failed, Some(reason))]),
        (Installing, Event::Installed) if kind == ArtifactKind::Config => done(&[finish(DeviceState::Succeeded, None)]),
        (Installing, Event::Installed) => {
            (busy(job, Rebooting), effects([report(DeviceState::Rebooting), SwitchAndReboot]))
        }
        (Installing, Event::InstallFailed) => done(&[finish(DeviceState::Failed, Some(Reason::InstallFailed))]),
        (Rebooting | Trial, Event::Booted { into_target: true }) => (busy(job, Trial), effects([HealthCheck])),
        (Rebooting | Trial, Event::Booted { into_target: false }) => {
            done(&[finish(DeviceState::RolledBack, Some(Reason::BootFailed))])
        }
        (Trial, Event::HealthPassed) => done(&[Commit, finish(DeviceState::Succeeded, None)]),
        (Trial, Event::HealthFailed) => {
            done(&[Rollback, finish(DeviceState::RolledBack, Some(Reason::HealthCheckFailed))])
        }
        (Downloading, Event::Cancel(id)) if &id == job.rollout() => {
            done(&[StopDownload, finish(DeviceState::Cancelled, None)])
        }
        (Installing, Event::Cancel(id)) if &id == job.rollout() => done(&[finish(DeviceState::Cancelled, None)]),
        // Anything else (a cancel after the switch or of another rollout, a stale outcome,
        // another update while busy) changes nothing.
        (phase, _) => (busy(job, phase), Effects::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job of a kind, for rollout `r`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Update(ArtifactKind, u8);

    impl Job for Update {
        type Rollout = u8;

        fn kind(&self) -> ArtifactKind {
            self.0
        }

        fn rollout(&self) -> &u8 {
            &self.1
        }
    }

    const FIRMWARE: Update = Update(ArtifactKind::Firmware, 1);

    /// Runs `events` from idle; the final state and every effect in order.
    fn run(events: &[Event<Update>]) -> (State<Update>, heapless::Vec<Effect, 16>) {
        let mut state = State::Idle;
        let mut all = heapless::Vec::new();
        for event in events {
            let (next, effects) = step(state, event.clone());
            state = next;
            all.extend(effects);
        }
        (state, all)
    }

    #[test]
    fn a_firmware_update_goes_through_a_trial_to_its_commit() {
        let (state, effects) = run(&[Event::Accepted(FIRMWARE), Event::Downloaded, Event::Installed]);
        assert_eq!(state, State::Busy { job: FIRMWARE, phase: Phase::Rebooting });
        assert_eq!(effects.last(), Some(&Effect::SwitchAndReboot));
        let (state, effects) = step(state, Event::Booted { into_target: true });
        assert_eq!(state, State::Busy { job: FIRMWARE, phase: Phase::Trial });
        assert_eq!(effects.as_slice(), &[Effect::HealthCheck]);
        let (state, effects) = step(state, Event::HealthPassed);
        assert_eq!(state, State::Idle);
        assert_eq!(effects.as_slice(), &[Effect::Commit, finish(DeviceState::Succeeded, None)]);
    }

    #[test]
    fn an_unhealthy_trial_rolls_back_and_a_config_needs_no_reboot() {
        let (_, effects) = step(State::Busy { job: FIRMWARE, phase: Phase::Trial }, Event::HealthFailed);
        let rolled_back = finish(DeviceState::RolledBack, Some(Reason::HealthCheckFailed));
        assert_eq!(effects.as_slice(), &[Effect::Rollback, rolled_back]);
        let config = Update(ArtifactKind::Config, 2);
        let (state, effects) = run(&[Event::Accepted(config), Event::Downloaded, Event::Installed]);
        assert_eq!((state, effects.last()), (State::Idle, Some(&finish(DeviceState::Succeeded, None))));
    }

    #[test]
    fn a_cancel_of_this_rollout_is_honoured_until_the_switch_only() {
        let (state, effects) = run(&[Event::Accepted(FIRMWARE), Event::Cancel(2)]);
        assert_eq!((&state, effects.len()), (&State::Busy { job: FIRMWARE, phase: Phase::Downloading }, 2));
        let (state, effects) = step(state, Event::Cancel(1));
        assert_eq!((state, effects.last()), (State::Idle, Some(&finish(DeviceState::Cancelled, None))));
        let rebooting = State::Busy { job: FIRMWARE, phase: Phase::Rebooting };
        assert_eq!(step(rebooting.clone(), Event::Cancel(1)), (rebooting, Effects::new()));
    }
}
