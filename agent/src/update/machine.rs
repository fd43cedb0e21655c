//! The update state machine, pure: `step(state, event) -> (state, effects)`. The runner
//! performs the effects and feeds their outcomes back as events. No I/O here.
//!
//! The transitions are the device core's ([`fleet_agent_core::machine`]), over the
//! agent's [`Job`]; this module's tests walk each of them with it.

use fleet_agent_core::machine as core;
pub use fleet_agent_core::machine::{Effect, Phase, step};
use fleet_protocol::{ArtifactKind, RolloutId};

use super::Job;

/// The machine's state: idle, or one job in a phase; persisted in the journal.
pub type State = core::State<Job>;

/// What happened.
pub type Event = core::Event<Job>;

impl core::Job for Job {
    type Rollout = RolloutId;

    fn kind(&self) -> ArtifactKind {
        self.kind
    }

    fn rollout(&self) -> &RolloutId {
        &self.rollout_id
    }
}

#[cfg(test)]
mod tests {
    use fleet_protocol::{ArtifactKind, ProductName, Sha256Digest};

    use fleet_protocol::state::{DeviceState, Reason};

    use super::*;
    use crate::update::artifact::Artifact;

    /// The core's step, its effects in a `Vec` for comparing.
    fn step(state: State, event: Event) -> (State, Vec<Effect>) {
        let (state, effects) = super::step(state, event);
        (state, effects.to_vec())
    }

    fn report(state: DeviceState) -> Effect {
        Effect::Report { state, reason: None, progress: None }
    }

    fn finish(state: DeviceState, reason: Option<Reason>) -> Effect {
        Effect::Finish { state, reason }
    }

    fn job(kind: ArtifactKind) -> Job {
        Job {
            rollout_id: RolloutId::parse("r1").unwrap(),
            kind,
            url: "http://s/blob".into(),
            artifact: Artifact {
                kind,
                name: ProductName::parse("p").unwrap(),
                version: semver::Version::new(1, 0, 0),
                size: 1,
                sha256: Sha256Digest::of(b"x"),
                created_at: time::OffsetDateTime::UNIX_EPOCH,
            },
        }
    }

    fn busy(phase: Phase) -> State {
        State::Busy { job: job(ArtifactKind::Firmware), phase }
    }

    fn r1() -> RolloutId {
        RolloutId::parse("r1").unwrap()
    }

    #[test]
    fn idle_accepts_and_starts_downloading() {
        let (s, fx) = step(State::Idle, Event::Accepted(job(ArtifactKind::Firmware)));
        assert_eq!(s, busy(Phase::Downloading));
        assert_eq!(fx.last(), Some(&Effect::Download));
    }

    #[test]
    fn idle_ignores_everything_else() {
        for e in [Event::Downloaded, Event::HealthPassed, Event::Cancel(r1()), Event::Progress(5)] {
            assert_eq!(step(State::Idle, e), (State::Idle, vec![]));
        }
    }

    #[test]
    fn progress_is_reported_and_capped() {
        let (s, fx) = step(busy(Phase::Downloading), Event::Progress(250));
        assert_eq!(s, busy(Phase::Downloading));
        assert_eq!(fx, vec![Effect::Report { state: DeviceState::Downloading, reason: None, progress: Some(100) }]);
    }

    #[test]
    fn downloaded_verifies_then_installs() {
        let (s, fx) = step(busy(Phase::Downloading), Event::Downloaded);
        assert_eq!(s, busy(Phase::Installing));
        assert_eq!(fx, vec![report(DeviceState::Verifying), report(DeviceState::Installing), Effect::Install]);
    }

    #[test]
    fn download_failure_is_final_with_reason() {
        let (s, fx) = step(busy(Phase::Downloading), Event::DownloadFailed(Reason::DigestMismatch));
        assert_eq!(s, State::Idle);
        assert_eq!(fx, vec![finish(DeviceState::Failed, Some(Reason::DigestMismatch))]);
    }

    #[test]
    fn firmware_installed_switches_and_reboots() {
        let (s, fx) = step(busy(Phase::Installing), Event::Installed);
        assert_eq!(s, busy(Phase::Rebooting));
        assert_eq!(fx, vec![report(DeviceState::Rebooting), Effect::SwitchAndReboot]);
    }

    #[test]
    fn config_installed_succeeds() {
        let state = State::Busy { job: job(ArtifactKind::Config), phase: Phase::Installing };
        let (s, fx) = step(state, Event::Installed);
        assert_eq!(s, State::Idle);
        assert_eq!(fx, vec![finish(DeviceState::Succeeded, None)]);
    }

    #[test]
    fn install_failure_is_failed() {
        let (s, fx) = step(busy(Phase::Installing), Event::InstallFailed);
        assert_eq!(s, State::Idle);
        assert_eq!(fx, vec![finish(DeviceState::Failed, Some(Reason::InstallFailed))]);
    }

    #[test]
    fn boot_into_target_starts_the_trial() {
        for phase in [Phase::Rebooting, Phase::Trial] {
            let (s, fx) = step(busy(phase), Event::Booted { into_target: true });
            assert_eq!(s, busy(Phase::Trial));
            assert_eq!(fx, vec![Effect::HealthCheck]);
        }
    }

    #[test]
    fn boot_fallback_is_boot_failed() {
        let (s, fx) = step(busy(Phase::Trial), Event::Booted { into_target: false });
        assert_eq!(s, State::Idle);
        assert_eq!(fx, vec![finish(DeviceState::RolledBack, Some(Reason::BootFailed))]);
    }

    #[test]
    fn healthy_trial_commits() {
        let (s, fx) = step(busy(Phase::Trial), Event::HealthPassed);
        assert_eq!(s, State::Idle);
        assert_eq!(fx, vec![Effect::Commit, finish(DeviceState::Succeeded, None)]);
    }

    #[test]
    fn unhealthy_trial_rolls_back() {
        let (s, fx) = step(busy(Phase::Trial), Event::HealthFailed);
        assert_eq!(s, State::Idle);
        assert_eq!(fx, vec![Effect::Rollback, finish(DeviceState::RolledBack, Some(Reason::HealthCheckFailed))]);
    }

    #[test]
    fn cancel_is_honoured_until_the_switch() {
        let (s, fx) = step(busy(Phase::Downloading), Event::Cancel(r1()));
        assert_eq!(s, State::Idle);
        assert_eq!(fx, vec![Effect::StopDownload, finish(DeviceState::Cancelled, None)]);
        let (s, fx) = step(busy(Phase::Installing), Event::Cancel(r1()));
        assert_eq!(s, State::Idle);
        assert_eq!(fx, vec![finish(DeviceState::Cancelled, None)]);
        for phase in [Phase::Rebooting, Phase::Trial] {
            assert_eq!(step(busy(phase), Event::Cancel(r1())), (busy(phase), vec![]));
        }
    }

    #[test]
    fn cancel_for_another_rollout_is_ignored() {
        let other = RolloutId::parse("r2").unwrap();
        assert_eq!(step(busy(Phase::Downloading), Event::Cancel(other)), (busy(Phase::Downloading), vec![]));
    }

    #[test]
    fn stale_outcomes_change_nothing() {
        assert_eq!(step(busy(Phase::Trial), Event::Downloaded), (busy(Phase::Trial), vec![]));
        assert_eq!(step(busy(Phase::Downloading), Event::HealthPassed), (busy(Phase::Downloading), vec![]));
    }
}
