//! Pure per-device rules: what a report does to an entry, when an entry times out, and
//! when a failure is retried (CONTRACT §4, §5).

use fleet_protocol::state::{Actor, DeviceState, Reason, can_transition};

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

/// A report naming this entry's rollout.
pub fn on_report(
    entry: &EntryRecord,
    rollout: RolloutState,
    max_attempts: i64,
    state: DeviceState,
    reason: Option<Reason>,
    connect: bool,
    now: i64,
) -> Verdict {
    if can_transition(entry.state, state, Actor::Device) {
        if reason.is_some_and(|r| r.state() != state) {
            return Verdict::Ignore("reason_mismatch");
        }
        let mut c = change(entry, state, reason);
        c.reported = true;
        return Verdict::Change(with_retry(c, max_attempts, now));
    }
    if connect && entry.state.is_in_flight() && rollout != RolloutState::Completed {
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
        }
    }

    #[test]
    fn progress_reports_apply_and_mark_reported() {
        let v =
            on_report(&entry(DeviceState::Sent), RolloutState::Running, 1, DeviceState::Downloading, None, false, 5);
        let Verdict::Change(c) = v else { panic!("{v:?}") };
        assert_eq!((c.state, c.reported), (DeviceState::Downloading, true));
    }

    #[test]
    fn failures_with_attempts_left_go_back_to_pending() {
        let v = on_report(
            &entry(DeviceState::Downloading),
            RolloutState::Running,
            3,
            DeviceState::Failed,
            Some(Reason::DigestMismatch),
            false,
            5000,
        );
        let Verdict::Change(c) = v else { panic!("{v:?}") };
        assert_eq!((c.state, c.reason, c.retry_at), (DeviceState::Pending, Some(Reason::DigestMismatch), Some(6000)));
        assert_eq!(c.retry_of, Some(DeviceState::Failed), "the store grants it from the budget, or writes failed");
        let last = on_report(&entry(DeviceState::Sent), RolloutState::Running, 1, DeviceState::Failed, None, false, 5);
        assert!(matches!(last, Verdict::Change(c) if c.state == DeviceState::Failed && c.retry_of.is_none()));
    }

    #[test]
    fn stale_and_illegal_reports_are_ignored() {
        let done = entry(DeviceState::Succeeded);
        let v = on_report(&done, RolloutState::Running, 1, DeviceState::Downloading, None, false, 5);
        assert_eq!(v, Verdict::Ignore("illegal_transition"));
        let v = on_report(&done, RolloutState::Running, 1, DeviceState::Succeeded, None, false, 5);
        assert_eq!(v, Verdict::Ignore("duplicate"));
        let v = on_report(
            &entry(DeviceState::Sent),
            RolloutState::Running,
            1,
            DeviceState::Failed,
            Some(Reason::Busy),
            false,
            5,
        );
        assert_eq!(v, Verdict::Ignore("reason_mismatch"));
    }

    #[test]
    fn connect_reports_of_devices_in_flight_resend() {
        let v = on_report(
            &entry(DeviceState::Installing),
            RolloutState::Running,
            1,
            DeviceState::Downloading,
            None,
            true,
            5,
        );
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
        let v =
            on_report(&entry(DeviceState::TimedOut), RolloutState::Running, 1, DeviceState::Succeeded, None, false, 5);
        assert!(matches!(v, Verdict::Change(c) if c.state == DeviceState::Succeeded));
    }

    #[test]
    fn dispatch_counts_an_attempt() {
        let mut p = entry(DeviceState::Pending);
        p.attempts = 0;
        let c = dispatch(&p, 42);
        assert_eq!((c.state, c.attempts, c.sent_at, c.reported), (DeviceState::Sent, 1, Some(42), false));
    }
}
