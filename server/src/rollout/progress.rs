//! Where a running rollout stands at one step of the engine (pure): the failure gate, the
//! end of its current wave, the manual gate, the soak before the next wave, the end of the
//! rollout. The engine reads the counts, asks [`wave_progress`], stores what
//! [`WaveProgress::apply`] changed and dispatches when [`WaveProgress::dispatches`].

use fleet_protocol::state::Health;

use super::model::{Count, PauseReason, RolloutRecord, RolloutState, WaveGate};
use super::plan::gate_trips;

/// What one step of a running rollout finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveProgress {
    /// Too many failures among the results since the gate was armed: pause. Of the
    /// failures, `unhealthy` were found in the health window (the pause is then the
    /// health gate's).
    GateTripped { finished: u64, failures: u64, unhealthy: u64 },
    /// Devices of the waves reached are still pending or in flight: dispatch.
    Underway,
    /// Every wave is final: the rollout is complete.
    Completed,
    /// The wave is final and the wave gate is manual: pause before the next wave.
    AtManualGate,
    /// The wave is final and soaks from `since` (now, if it just ended).
    Soaking { since: i64 },
    /// The wave is final and soaked: the next wave starts and is dispatched.
    Soaked,
}

/// Judges the current wave from the counts (`since` counted from `r.gate_since`).
pub fn wave_progress(r: &RolloutRecord, tallies: &[Count], now: i64) -> WaveProgress {
    let wave = r.current_wave;
    let current = tallies.iter().filter(|t| t.wave == wave);
    let wave_size: i64 = current.clone().map(|t| t.n).sum();
    let (mut finished, mut failures, mut unhealthy) = (0u64, 0u64, 0u64);
    for t in current.filter(|t| t.is_settled()) {
        finished += t.since as u64;
        failures += t.since as u64 * u64::from(t.is_failure());
        unhealthy += t.since as u64 * u64::from(t.health == Some(Health::Unhealthy));
    }
    if gate_trips(finished, failures, wave_size as u64, r.min_finished as u64, r.max_failure_ratio) {
        return WaveProgress::GateTripped { finished, failures, unhealthy };
    }
    if !tallies.iter().filter(|t| t.wave <= wave).all(Count::is_settled) {
        return WaveProgress::Underway;
    }
    if wave >= r.waves.len() as i64 - 1 {
        return WaveProgress::Completed;
    }
    if r.wave_gate == WaveGate::Manual {
        return WaveProgress::AtManualGate;
    }
    let since = r.wave_done_at.unwrap_or(now);
    if now < since + r.wave_soak_s * 1000 { WaveProgress::Soaking { since } } else { WaveProgress::Soaked }
}

impl WaveProgress {
    /// The rollout after this step, if it changes.
    pub fn apply(self, r: &RolloutRecord, now: i64) -> Option<RolloutRecord> {
        let mut next = r.clone();
        match self {
            Self::Underway => return None,
            Self::Soaking { since } if r.wave_done_at == Some(since) => return None,
            Self::Soaking { since } => next.wave_done_at = Some(since),
            Self::GateTripped { finished, failures, unhealthy } => {
                let reason = if unhealthy > 0 { PauseReason::HealthGate } else { PauseReason::FailureThreshold };
                pause(&mut next, reason);
                next.pause_detail = Some(format!(
                    "{failures} of {finished} results in wave {} since the gate was armed are failures \
                     ({unhealthy} unhealthy), above max_failure_ratio {}",
                    r.current_wave, r.max_failure_ratio
                ));
            }
            Self::Completed => {
                next.state = RolloutState::Completed;
                next.reason = None;
            }
            Self::AtManualGate => {
                pause(&mut next, PauseReason::WaveGate);
                next.current_wave += 1;
            }
            Self::Soaked => {
                next.current_wave += 1;
                next.wave_done_at = None;
            }
        }
        next.updated_at = now;
        Some(next)
    }

    /// Whether devices are dispatched at this step.
    pub fn dispatches(self) -> bool {
        matches!(self, Self::Underway | Self::Soaked)
    }
}

fn pause(r: &mut RolloutRecord, reason: PauseReason) {
    r.state = RolloutState::Paused;
    r.reason = Some(reason);
}

#[cfg(test)]
mod tests {
    use fleet_protocol::state::DeviceState;

    use super::*;
    use crate::rollout::model::tests::record;

    fn rollout(waves: Vec<f64>, gate: WaveGate, soak_s: i64) -> RolloutRecord {
        RolloutRecord {
            waves,
            wave_soak_s: soak_s,
            wave_gate: gate,
            max_failure_ratio: 0.2,
            min_finished: 2,
            gate_since: 0,
            created_at: 0,
            updated_at: 0,
            ..record(RolloutState::Running)
        }
    }

    fn count(wave: i64, state: DeviceState, n: i64) -> Count {
        Count { wave, state, reason: None, health: None, n, since: n, sent_recently: 0 }
    }

    #[test]
    fn failures_trip_the_gate_and_pause() {
        let r = rollout(vec![100.0], WaveGate::Auto, 0);
        let tallies = [count(0, DeviceState::Failed, 2), count(0, DeviceState::Pending, 8)];
        let p = wave_progress(&r, &tallies, 10);
        assert_eq!(p, WaveProgress::GateTripped { finished: 2, failures: 2, unhealthy: 0 });
        let next = p.apply(&r, 10).unwrap();
        assert_eq!((next.state, next.reason), (RolloutState::Paused, Some(PauseReason::FailureThreshold)));
        assert!(next.pause_detail.unwrap().starts_with("2 of 2 results in wave 0"));
        assert!(!p.dispatches());
    }

    fn watched(wave: i64, health: Health, n: i64) -> Count {
        Count { health: Some(health), ..count(wave, DeviceState::Succeeded, n) }
    }

    #[test]
    fn a_wave_is_done_only_when_its_watches_are() {
        let r = rollout(vec![50.0, 100.0], WaveGate::Auto, 0);
        let tallies =
            [watched(0, Health::Healthy, 3), watched(0, Health::Watching, 1), count(1, DeviceState::Pending, 4)];
        assert_eq!(wave_progress(&r, &tallies, 10), WaveProgress::Underway);
        let tallies = [watched(0, Health::Healthy, 4), count(1, DeviceState::Pending, 4)];
        assert_eq!(wave_progress(&r, &tallies, 10), WaveProgress::Soaked);
    }

    #[test]
    fn unhealthy_devices_trip_the_health_gate_before_the_next_wave() {
        let r = rollout(vec![50.0, 100.0], WaveGate::Auto, 0);
        let tallies = [
            watched(0, Health::Healthy, 3),
            Count { health: Some(Health::Unhealthy), ..count(0, DeviceState::RolledBack, 1) },
            watched(0, Health::Unhealthy, 1),
            count(1, DeviceState::Pending, 5),
        ];
        let p = wave_progress(&r, &tallies, 10);
        assert_eq!(p, WaveProgress::GateTripped { finished: 5, failures: 2, unhealthy: 2 });
        let next = p.apply(&r, 10).unwrap();
        assert_eq!(
            (next.state, next.reason, next.current_wave),
            (RolloutState::Paused, Some(PauseReason::HealthGate), 0)
        );
    }

    #[test]
    fn an_unfinished_wave_dispatches() {
        let r = rollout(vec![50.0, 100.0], WaveGate::Auto, 0);
        let tallies = [count(0, DeviceState::Sent, 1), count(1, DeviceState::Pending, 1)];
        let p = wave_progress(&r, &tallies, 10);
        assert_eq!((p, p.apply(&r, 10), p.dispatches()), (WaveProgress::Underway, None, true));
    }

    #[test]
    fn the_last_wave_completes() {
        let r = rollout(vec![100.0], WaveGate::Auto, 0);
        let p = wave_progress(&r, &[count(0, DeviceState::Succeeded, 3)], 10);
        assert_eq!(p, WaveProgress::Completed);
        assert_eq!(p.apply(&r, 10).unwrap().state, RolloutState::Completed);
    }

    #[test]
    fn a_manual_gate_pauses_at_the_next_wave() {
        let r = rollout(vec![50.0, 100.0], WaveGate::Manual, 0);
        let p = wave_progress(&r, &[count(0, DeviceState::Succeeded, 1), count(1, DeviceState::Pending, 1)], 10);
        let next = p.apply(&r, 10).unwrap();
        assert_eq!(
            (next.state, next.reason, next.current_wave),
            (RolloutState::Paused, Some(PauseReason::WaveGate), 1)
        );
    }

    #[test]
    fn a_wave_soaks_before_the_next_starts() {
        let mut r = rollout(vec![50.0, 100.0], WaveGate::Auto, 5);
        let tallies = [count(0, DeviceState::Succeeded, 1), count(1, DeviceState::Pending, 1)];
        let p = wave_progress(&r, &tallies, 1000);
        assert_eq!(p, WaveProgress::Soaking { since: 1000 });
        r = p.apply(&r, 1000).unwrap();
        assert_eq!(r.wave_done_at, Some(1000));
        let p = wave_progress(&r, &tallies, 5999);
        assert_eq!((p, p.apply(&r, 5999), p.dispatches()), (WaveProgress::Soaking { since: 1000 }, None, false));
        let p = wave_progress(&r, &tallies, 6000);
        let next = p.apply(&r, 6000).unwrap();
        assert_eq!((p, next.current_wave, next.wave_done_at, p.dispatches()), (WaveProgress::Soaked, 1, None, true));
    }

    #[test]
    fn without_a_soak_the_next_wave_starts_at_once() {
        let r = rollout(vec![50.0, 100.0], WaveGate::Auto, 0);
        let p = wave_progress(&r, &[count(0, DeviceState::Succeeded, 1), count(1, DeviceState::Pending, 1)], 10);
        assert_eq!((p, p.apply(&r, 10).unwrap().current_wave), (WaveProgress::Soaked, 1));
    }
}
