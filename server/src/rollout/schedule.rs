//! When a rollout dispatches (pure, CONTRACT §7): `start_at` (the rollout waits in
//! `scheduled` until then) and the maintenance window (outside it a running rollout
//! dispatches no new device; devices in flight finish). The engine asks [`start_due`] at
//! each step of a scheduled rollout and [`Schedule::may_dispatch`] before it claims
//! devices; the rollout body shows [`Schedule::window_state`].

use fleet_protocol::api::{MaintenanceWindow, WindowState};
use jiff::Timestamp;

use super::model::{RolloutRecord, RolloutState, Schedule};
use super::window::{Window, WindowError};

/// Why `start_at` or `maintenance_window` is not acceptable (400 `bad_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("start_at: `{0}` is not an RFC 3339 time with an offset, e.g. 2026-01-01T02:00:00Z")]
    StartAt(String),
    #[error(transparent)]
    Window(#[from] WindowError),
}

impl Schedule {
    /// Parses the request's fields.
    pub fn parse(start_at: Option<&str>, window: Option<&MaintenanceWindow>) -> Result<Self, ScheduleError> {
        let start_at = start_at
            .map(|s| s.parse::<Timestamp>().map(|t| t.as_millisecond()).map_err(|_| ScheduleError::StartAt(s.into())))
            .transpose()?;
        Ok(Self { start_at, window: window.map(Window::parse).transpose()? })
    }

    /// A new rollout's state: `scheduled` until `start_at`; one whose `start_at` has passed
    /// starts at once.
    pub fn initial_state(&self, now: i64) -> RolloutState {
        if self.waits(now) { RolloutState::Scheduled } else { RolloutState::Running }
    }

    /// Whether `start_at` is still ahead.
    pub fn waits(&self, now: i64) -> bool {
        self.start_at.is_some_and(|t| t > now)
    }

    /// Whether new devices may be dispatched at `now`: no window, or an open one.
    pub fn may_dispatch(&self, now: i64) -> bool {
        self.window.as_ref().is_none_or(|w| w.is_open_at_ms(now))
    }

    /// `open` or `closed` with a window; `None` without one.
    pub fn window_state(&self, now: i64) -> Option<WindowState> {
        self.window.as_ref().map(|_| if self.may_dispatch(now) { WindowState::Open } else { WindowState::Closed })
    }
}

/// A scheduled rollout whose `start_at` has come, as it starts running: the failure gate
/// is armed from now. `None` for any other rollout, or before its time.
pub fn start_due(r: &RolloutRecord, now: i64) -> Option<RolloutRecord> {
    if r.state != RolloutState::Scheduled || r.schedule.waits(now) {
        return None;
    }
    let mut next = r.clone();
    next.state = RolloutState::Running;
    next.gate_since = now;
    next.updated_at = now;
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin_nights() -> MaintenanceWindow {
        MaintenanceWindow {
            days: "Mon-Fri".into(),
            start: "01:00".into(),
            end: "04:00".into(),
            time_zone: "Europe/Berlin".into(),
        }
    }

    #[test]
    fn start_at_is_rfc3339_with_an_offset() {
        let s = Schedule::parse(Some("2026-01-05T01:00:00+01:00"), None).unwrap();
        assert_eq!(s.start_at, Some(1_767_571_200_000));
        assert_eq!(Schedule::parse(None, None).unwrap(), Schedule::default());
        for bad in ["tomorrow", "2026-01-05T01:00:00", "2026-13-01T00:00:00Z"] {
            assert_eq!(Schedule::parse(Some(bad), None), Err(ScheduleError::StartAt(bad.into())), "{bad}");
        }
        let mut wrong = berlin_nights();
        wrong.days = "Mon-Fry".into();
        assert!(matches!(Schedule::parse(None, Some(&wrong)), Err(ScheduleError::Window(WindowError::Day(_)))));
    }

    #[test]
    fn a_future_start_waits_and_a_past_one_starts_now() {
        let s = Schedule { start_at: Some(1000), window: None };
        assert_eq!(s.initial_state(999), RolloutState::Scheduled);
        assert_eq!(s.initial_state(1000), RolloutState::Running);
        assert_eq!(Schedule::default().initial_state(5), RolloutState::Running);
    }

    #[test]
    fn the_window_decides_dispatch() {
        let s = Schedule::parse(None, Some(&berlin_nights())).unwrap();
        let ms = |t: &str| t.parse::<Timestamp>().unwrap().as_millisecond();
        let (inside, outside) = (ms("2026-01-05T01:00:00Z"), ms("2026-01-05T12:00:00Z"));
        assert!(s.may_dispatch(inside) && !s.may_dispatch(outside));
        assert_eq!(
            (s.window_state(inside), s.window_state(outside)),
            (Some(WindowState::Open), Some(WindowState::Closed))
        );
        assert!(Schedule::default().may_dispatch(outside));
        assert_eq!(Schedule::default().window_state(outside), None);
    }

    #[test]
    fn a_scheduled_rollout_starts_at_its_time() {
        let mut r = crate::rollout::model::tests::record(RolloutState::Scheduled);
        r.schedule.start_at = Some(1000);
        assert_eq!(start_due(&r, 999), None);
        let started = start_due(&r, 1000).unwrap();
        assert_eq!((started.state, started.gate_since, started.updated_at), (RolloutState::Running, 1000, 1000));
        r.state = RolloutState::Paused;
        assert_eq!(start_due(&r, 2000), None, "a paused rollout waits for resume");
    }
}
