//! What an operator may do to one device of a rollout (CONTRACT §7): cancel it, retry it
//! after a failure, or skip it before it was sent anything. [`apply`] is the rule (pure,
//! one test per device state and action); [`control_device`] loads, applies, stores the
//! change as a compare-and-set and wakes the engine, which sends `cancel` to a device
//! cancelled in flight.

use fleet_protocol::DeviceId;
use fleet_protocol::state::{DeviceState, Reason};

use super::error::RolloutError;
use super::model::CONTROL_TRIES;
use super::model::{EntryChange, EntryRecord, RolloutRecord, RolloutState};
use super::rules::change;
use crate::state::AppState;
use crate::store::StoreError;

/// An operator's request to one device of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAction {
    /// Pending: `cancelled` at once. In flight: `cancelled`, and the device is sent `cancel`.
    Cancel,
    /// `failed` or `timed_out`: back to `pending` for one more attempt, even with no
    /// attempts left (the operator's decision; it does not use the retry budget).
    Retry,
    /// Pending: `cancelled` with reason `skipped`.
    Skip,
}

impl DeviceAction {
    /// Every action.
    pub const ALL: [Self; 3] = [Self::Cancel, Self::Retry, Self::Skip];

    /// Its path segment (`/rollouts/{id}/devices/{device_id}/cancel`) and name in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Retry => "retry",
            Self::Skip => "skip",
        }
    }

    /// Its name in the audit trail.
    pub fn audit_name(self) -> &'static str {
        match self {
            Self::Cancel => "rollout.device_cancelled",
            Self::Retry => "rollout.device_retried",
            Self::Skip => "rollout.device_skipped",
        }
    }
}

/// What an allowed action writes: the entry's change, and whether the device must be sent
/// `cancel` (it was in flight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChange {
    pub change: EntryChange,
    pub cancel_due: bool,
}

/// The change `action` makes to entry `e` of a rollout in state `rollout`. Only an active
/// (scheduled, running or paused) rollout's devices can be steered (a completed one is
/// over; a cancelled one cancels them all); any other move is
/// [`RolloutError::DeviceNotAllowed`].
pub fn apply(rollout: RolloutState, e: &EntryRecord, action: DeviceAction) -> Result<DeviceChange, RolloutError> {
    let refused = || RolloutError::DeviceNotAllowed {
        id: e.rollout_id.clone(),
        device: e.device_id.clone(),
        action: action.as_str(),
        why: if rollout.is_active() {
            format!("the device is {}", e.state.as_str())
        } else {
            format!("the rollout is {}", rollout.as_str())
        },
    };
    if !rollout.is_active() {
        return Err(refused());
    }
    let to = |state, reason| change(e, state, reason);
    match (action, e.state) {
        (DeviceAction::Cancel, DeviceState::Pending) => {
            Ok(DeviceChange { change: to(DeviceState::Cancelled, None), cancel_due: false })
        }
        (DeviceAction::Cancel, s) if s.is_in_flight() => {
            Ok(DeviceChange { change: to(DeviceState::Cancelled, None), cancel_due: true })
        }
        (DeviceAction::Retry, DeviceState::Failed | DeviceState::TimedOut) => {
            let mut c = to(DeviceState::Pending, None);
            // A device found unhealthy in its health window starts afresh.
            (c.retry_at, c.health, c.watch_until) = (None, None, None);
            Ok(DeviceChange { change: c, cancel_due: false })
        }
        (DeviceAction::Skip, DeviceState::Pending) => {
            Ok(DeviceChange { change: to(DeviceState::Cancelled, Some(Reason::Skipped)), cancel_due: false })
        }
        _ => Err(refused()),
    }
}

/// Applies `action` to `device` of rollout `id`; returns the entry as stored. It reads
/// again (up to [`CONTROL_TRIES`] times) when a report or the engine changed the entry or
/// the rollout between its read and its write. The write is a
/// compare-and-set on the entry and the rollout's state, and raises the rollout's version,
/// so an engine step judging the rollout meanwhile judges again (a retried device must not
/// be left pending in a rollout the step completes).
pub async fn control_device(
    app: &AppState,
    id: &str,
    device: &DeviceId,
    action: DeviceAction,
) -> Result<EntryRecord, RolloutError> {
    for _ in 0..CONTROL_TRIES {
        let r: RolloutRecord = app.store.get_rollout(id).await.map_err(|e| match e {
            StoreError::NotFound => RolloutError::UnknownRollout(id.to_owned()),
            e => e.into(),
        })?;
        let entry = app.store.entry(id, device).await.map_err(|e| match e {
            StoreError::NotFound => RolloutError::UnknownEntry { id: id.to_owned(), device: device.to_string() },
            e => e.into(),
        })?;
        let decided = apply(r.state, &entry, action)?;
        let now = app.store.now_ms().await?;
        if app.store.control_entry(&decided.change, decided.cancel_due, now).await? {
            app.wake_engine();
            if let Some(engine) = &app.engine {
                let _ = engine.changes.send(id.to_owned());
            }
            return Ok(app.store.entry(id, device).await?);
        }
    }
    Err(RolloutError::Contended(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use fleet_protocol::state::ALL_STATES;

    use super::*;

    fn entry(state: DeviceState, attempts: i64) -> EntryRecord {
        EntryRecord {
            rollout_id: "r".into(),
            device_id: "d".into(),
            position: 0,
            wave: 0,
            state,
            reason: None,
            attempts,
            reported: true,
            sent_at: Some(5),
            retry_at: Some(9),
            last_heard_at: None,
            updated_at: 5,
            health: None,
            watch_until: None,
        }
    }

    /// (entry state, action) -> (state reached, reason, cancel sent), or None when refused.
    fn outcome(from: DeviceState, action: DeviceAction) -> Option<(DeviceState, Option<Reason>, bool)> {
        use DeviceState::*;
        match (action, from) {
            (DeviceAction::Cancel, Pending) => Some((Cancelled, None, false)),
            (DeviceAction::Cancel, Sent | Downloading | Verifying | Installing | Rebooting) => {
                Some((Cancelled, None, true))
            }
            (DeviceAction::Retry, Failed | TimedOut) => Some((Pending, None, false)),
            (DeviceAction::Skip, Pending) => Some((Cancelled, Some(Reason::Skipped), false)),
            _ => None,
        }
    }

    #[test]
    fn every_device_state_and_action_in_an_active_rollout() {
        for rollout in [RolloutState::Running, RolloutState::Paused] {
            for from in ALL_STATES.into_iter().filter(|s| *s != DeviceState::Idle) {
                for action in DeviceAction::ALL {
                    let result = apply(rollout, &entry(from, 2), action);
                    match outcome(from, action) {
                        Some((state, reason, cancel_due)) => {
                            let done = result.unwrap();
                            let c = &done.change;
                            assert_eq!((c.state, c.reason, done.cancel_due), (state, reason, cancel_due));
                            assert_eq!((c.expect_state, c.expect_attempts), (from, 2), "compare-and-set");
                        }
                        None => assert!(
                            matches!(&result, Err(RolloutError::DeviceNotAllowed { why, .. })
                                if *why == format!("the device is {}", from.as_str())),
                            "{rollout:?} {from:?} {action:?}: {result:?}"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn a_finished_rollout_refuses_every_action() {
        for rollout in [RolloutState::Completed, RolloutState::Cancelled] {
            for action in DeviceAction::ALL {
                let e = apply(rollout, &entry(DeviceState::Pending, 0), action).unwrap_err();
                assert_eq!(
                    e.to_string(),
                    format!("cannot {} device d of rollout r: the rollout is {}", action.as_str(), rollout.as_str())
                );
            }
        }
    }

    #[test]
    fn retry_keeps_the_attempts_so_a_failure_after_it_is_final() {
        let retried = apply(RolloutState::Running, &entry(DeviceState::Failed, 3), DeviceAction::Retry).unwrap();
        assert_eq!((retried.change.attempts, retried.change.retry_at), (3, None), "due at once");
    }
}
