//! Pure per-device rules: what a report does to an entry, when an entry times out, and
//! when a failure is retried (CONTRACT §4, §5).

use fleet_protocol::state::{Actor, DeviceState, Health, Reason, can_transition};

use super::model::{EntryChange, EntryRecord, RolloutState};
use super::plan::retry_backoff_ms;

/// What a report means for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Change(EntryChange),
    /// The device has its command outstanding: send it again.
    Resend,
    Ignore(&'static str),
}

/// What judging a report needs of the entry's rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutRules {
    pub state: RolloutState,
    pub max_attempts: i64,
    /// How long a device that succeeds is watched (0: not at all).
    pub health_window_ms: i64,
}

/// A compare-and-set change of `entry` to `state` with `reason`, the rest kept.
pub(super) fn change(entry: &EntryRecord, state: DeviceState, reason: Option<Reason>) -> EntryChange {
    EntryChange {
        rollout_id: entry.rollout_id.clone(),
        device_id: entry.device_id.clone(),
        expect_state: entry.state,
        expect_attempts: entry.attempts,
        state,
        reason,
        attempts: entry.attempts,
        reported: entry.reported,
        sent_at: entry.sent_at,
        retry_at: entry.retry_at,
        retry_of: None,
        health: entry.health,
        watch_until: entry.watch_until,
    }
}

/// A final `failed` or `timed_out` with attempts left goes back to `pending` after a backoff
/// (if the rollout's retry budget allows: the store decides that as it writes).
fn with_retry(mut c: EntryChange, max_attempts: i64, now: i64) -> EntryChange {
    if matches!(c.state, DeviceState::Failed | DeviceState::TimedOut) && c.attempts < max_attempts {
        c.retry_of = Some(c.state);
        c.state = DeviceState::Pending;
        c.retry_at = Some(now + retry_backoff_ms(c.attempts as u64));
    }
    c
}

/// A success in a rollout with a health window starts the device's watch.
fn with_watch(mut c: EntryChange, health_window_ms: i64, now: i64) -> EntryChange {
    if c.state == DeviceState::Succeeded && health_window_ms > 0 {
        c.health = Some(Health::Watching);
        c.watch_until = Some(now + health_window_ms);
    }
    c
}

/// A report naming this entry's rollout.
pub fn on_report(
    entry: &EntryRecord,
    rollout: RolloutRules,
    state: DeviceState,
    reason: Option<Reason>,
    connect: bool,
    now: i64,
) -> Verdict {
    // A watched device gone bad after its success: final, and a failure for the gate.
    let gone_bad =
        entry.health == Some(Health::Watching) && matches!(state, DeviceState::RolledBack | DeviceState::Failed);
    if gone_bad || can_transition(entry.state, state, Actor::Device) {
        if reason.is_some_and(|r| r.state() != state) {
            return Verdict::Ignore("reason_mismatch");
        }
        let mut c = change(entry, state, reason);
        c.reported = true;
        if gone_bad {
            c.health = Some(Health::Unhealthy);
            return Verdict::Change(c);
        }
        let c = with_watch(with_retry(c, rollout.max_attempts, now), rollout.health_window_ms, now);
        return Verdict::Change(c);
    }
    if connect && entry.state == DeviceState::Cancelled && state.is_in_flight() {
        // Cancelled while it was away (the `cancel` went to no one): it is told again.
        return Verdict::Resend;
    }
    if connect && entry.state.is_in_flight() && rollout.state != RolloutState::Completed {
        return Verdict::Resend;
    }
    if entry.state == state {
        return Verdict::Ignore("duplicate");
    }
    Verdict::Ignore("illegal_transition")
}

/// A connect report that names no rollout, or another one: re-send an outstanding command.
pub fn on_connect_elsewhere(entry: &EntryRecord) -> Verdict {
    if entry.state.is_in_flight() { Verdict::Resend } else { Verdict::Ignore("not_in_flight") }
}

/// `device_timeout_s` after `sent`: `timed_out`, with reason `unreachable` when the
/// device never reported during this attempt; retried while attempts remain.
pub fn on_tick_timeout(entry: &EntryRecord, timeout_ms: i64, max_attempts: i64, now: i64) -> Option<EntryChange> {
    let sent = entry.sent_at?;
    if !entry.state.is_in_flight() || now < sent + timeout_ms {
        return None;
    }
    let reason = (!entry.reported).then_some(Reason::Unreachable);
    Some(with_retry(change(entry, DeviceState::TimedOut, reason), max_attempts, now))
}

/// Marks a pending entry sent.
pub fn dispatch(entry: &EntryRecord, now: i64) -> EntryChange {
    let mut c = change(entry, DeviceState::Sent, None);
    c.attempts = entry.attempts + 1;
    c.reported = false;
    c.sent_at = Some(now);
    c.retry_at = None;
    c
}

/// A pending entry of a cancelled rollout.
pub fn cancel_pending(entry: &EntryRecord) -> Option<EntryChange> {
    (entry.state == DeviceState::Pending).then(|| change(entry, DeviceState::Cancelled, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: DeviceState) -> EntryRecord {
        EntryRecord {
            rollout_id: "r".into(),
            device_id: "d".into(),
            position: 0,
            wave: 0,
            state,
            reason: None,
            attempts: 1,
            reported: false,
            sent_at: Some(1000),
            retry_at: None,
            last_heard_at: None,
            updated_at: 0,
            health: None,
            watch_until: None,
        }
    }

    fn rules(max_attempts: i64) -> RolloutRules {
        RolloutRules { state: RolloutState::Running, max_attempts, health_window_ms: 0 }
    }

    #[test]
    fn progress_reports_apply_and_mark_reported() {
        let v = on_report(&entry(DeviceState::Sent), rules(1), DeviceState::Downloading, None, false, 5);
        let Verdict::Change(c) = v else { panic!("{v:?}") };
        assert_eq!((c.state, c.reported), (DeviceState::Downloading, true));
    }

    #[test]
    fn failures_with_attempts_left_go_back_to_pending() {
        let v = on_report(
            &entry(DeviceState::Downloading),
            rules(3),
            DeviceState::Failed,
            Some(Reason::DigestMismatch),
            false,
            5000,
        );
        let Verdict::Change(c) = v else { panic!("{v:?}") };
        assert_eq!((c.state, c.reason, c.retry_at), (DeviceState::Pending, Some(Reason::DigestMismatch), Some(6000)));
        assert_eq!(c.retry_of, Some(DeviceState::Failed), "the store grants it from the budget, or writes failed");
        let last = on_report(&entry(DeviceState::Sent), rules(1), DeviceState::Failed, None, false, 5);
        assert!(matches!(last, Verdict::Change(c) if c.state == DeviceState::Failed && c.retry_of.is_none()));
    }

    #[test]
    fn stale_and_illegal_reports_are_ignored() {
        let done = entry(DeviceState::Succeeded);
        let v = on_report(&done, rules(1), DeviceState::Downloading, None, false, 5);
        assert_eq!(v, Verdict::Ignore("illegal_transition"));
        let v = on_report(&done, rules(1), DeviceState::Succeeded, None, false, 5);
        assert_eq!(v, Verdict::Ignore("duplicate"));
        let v = on_report(&entry(DeviceState::Sent), rules(1), DeviceState::Failed, Some(Reason::Busy), false, 5);
        assert_eq!(v, Verdict::Ignore("reason_mismatch"));
    }

    #[test]
    fn connect_reports_of_devices_in_flight_resend() {
        let v = on_report(&entry(DeviceState::Installing), rules(1), DeviceState::Downloading, None, true, 5);
        assert_eq!(v, Verdict::Resend);
        assert_eq!(on_connect_elsewhere(&entry(DeviceState::Sent)), Verdict::Resend);
        assert_eq!(on_connect_elsewhere(&entry(DeviceState::Pending)), Verdict::Ignore("not_in_flight"));
    }

    #[test]
    fn timeouts_say_whether_the_device_ever_reported() {
        assert_eq!(on_tick_timeout(&entry(DeviceState::Sent), 100, 1, 1099), None);
        let c = on_tick_timeout(&entry(DeviceState::Sent), 100, 1, 1100).unwrap();
        assert_eq!((c.state, c.reason), (DeviceState::TimedOut, Some(Reason::Unreachable)));
        let mut heard = entry(DeviceState::Downloading);
        heard.reported = true;
        let c = on_tick_timeout(&heard, 100, 1, 2000).unwrap();
        assert_eq!((c.state, c.reason), (DeviceState::TimedOut, None));
        let c = on_tick_timeout(&heard, 100, 2, 2000).unwrap();
        assert_eq!(c.state, DeviceState::Pending, "retried");
    }

    #[test]
    fn late_success_replaces_a_timeout() {
        let v = on_report(&entry(DeviceState::TimedOut), rules(1), DeviceState::Succeeded, None, false, 5);
        assert!(matches!(v, Verdict::Change(c) if c.state == DeviceState::Succeeded));
    }

    #[test]
    fn dispatch_counts_an_attempt() {
        let mut p = entry(DeviceState::Pending);
        p.attempts = 0;
        let c = dispatch(&p, 42);
        assert_eq!((c.state, c.attempts, c.sent_at, c.reported), (DeviceState::Sent, 1, Some(42), false));
    }

    #[test]
    fn a_success_under_a_health_window_is_watched_and_a_later_rollback_is_unhealthy() {
        let watching = RolloutRules { health_window_ms: 1000, ..rules(1) };
        let v = on_report(&entry(DeviceState::Installing), watching, DeviceState::Succeeded, None, false, 5);
        let Verdict::Change(c) = v else { panic!("{v:?}") };
        assert_eq!((c.state, c.health, c.watch_until), (DeviceState::Succeeded, Some(Health::Watching), Some(1005)));
        let mut watched = entry(DeviceState::Succeeded);
        (watched.health, watched.watch_until) = (c.health, c.watch_until);
        let v = on_report(&watched, watching, DeviceState::RolledBack, Some(Reason::HealthCheckFailed), false, 9);
        let Verdict::Change(c) = v else { panic!("{v:?}") };
        assert_eq!((c.state, c.health, c.retry_of), (DeviceState::RolledBack, Some(Health::Unhealthy), None));
        let v = on_report(&watched, watching, DeviceState::Succeeded, None, false, 9);
        assert_eq!(v, Verdict::Ignore("duplicate"));
        watched.health = Some(Health::Healthy);
        let v = on_report(&watched, watching, DeviceState::RolledBack, None, false, 9);
        assert_eq!(v, Verdict::Ignore("illegal_transition"), "a device judged healthy is final");
    }

    #[test]
    fn a_device_cancelled_while_away_is_told_again_when_it_comes_back_mid_update() {
        let cancelled = entry(DeviceState::Cancelled);
        let v = on_report(&cancelled, rules(1), DeviceState::Downloading, None, true, 5);
        assert_eq!(v, Verdict::Resend);
        let v = on_report(&cancelled, rules(1), DeviceState::Downloading, None, false, 5);
        assert_eq!(v, Verdict::Ignore("illegal_transition"), "only its connect report asks");
        let v = on_report(&cancelled, rules(1), DeviceState::Cancelled, None, true, 5);
        assert_eq!(v, Verdict::Ignore("duplicate"), "it has stopped");
    }

    #[test]
    fn without_a_health_window_a_success_is_not_watched() {
        let v = on_report(&entry(DeviceState::Installing), rules(1), DeviceState::Succeeded, None, false, 5);
        assert!(matches!(v, Verdict::Change(c) if c.health.is_none() && c.watch_until.is_none()));
    }
}
