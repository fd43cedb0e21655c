//! What an operator may do to a rollout: pause a running or scheduled one, resume a paused
//! one (running again, or scheduled while its `start_at` is still ahead), cancel an active
//! one. [`apply`] is the rule (pure, one test per state and action); [`control`]
//! loads, applies, checks signers on resume, stores and wakes the engine.

use super::error::RolloutError;
use super::model::{CONTROL_TRIES, PauseReason, RolloutRecord, RolloutState};
use super::signers::check_signers;
use crate::state::AppState;
use crate::store::StoreError;

/// An operator's request to a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Cancel,
}

impl Action {
    /// Every action.
    pub const ALL: [Self; 3] = [Self::Pause, Self::Resume, Self::Cancel];

    /// The state the action moves a rollout to.
    pub fn target(self) -> RolloutState {
        match self {
            Self::Pause => RolloutState::Paused,
            Self::Resume => RolloutState::Running,
            Self::Cancel => RolloutState::Cancelled,
        }
    }

    /// Its name in the audit trail.
    pub fn audit_name(self) -> &'static str {
        match self {
            Self::Pause => "rollout.paused",
            Self::Resume => "rollout.resumed",
            Self::Cancel => "rollout.cancelled",
        }
    }

    fn allowed_from(self, state: RolloutState) -> bool {
        match self {
            Self::Pause => matches!(state, RolloutState::Running | RolloutState::Scheduled),
            Self::Resume => state == RolloutState::Paused,
            Self::Cancel => state.is_active(),
        }
    }
}

/// The rollout after `action` at `now` (the database's clock): paused by the operator,
/// resumed with the failure gate re-armed (only results after `now` count), or cancelled.
/// A resume before the rollout's `start_at` makes it scheduled again. Any other move is
/// [`RolloutError::NotAllowed`].
pub fn apply(r: &RolloutRecord, action: Action, now: i64) -> Result<RolloutRecord, RolloutError> {
    let to = action.target();
    if !action.allowed_from(r.state) {
        return Err(RolloutError::NotAllowed { id: r.id.clone(), from: r.state, to });
    }
    let mut next = r.clone();
    next.state = if action == Action::Resume { r.schedule.initial_state(now) } else { to };
    next.reason = (action == Action::Pause).then_some(PauseReason::Operator);
    next.pause_detail = None;
    if action == Action::Resume {
        next.gate_since = now;
    }
    next.updated_at = now;
    Ok(next)
}

/// Applies `action` to rollout `id` and stores it; a resume first checks that the artifact
/// still has enough non-revoked signers. The write is a compare-and-set on the version
/// read: when the engine wrote in between, the rule is applied again to what it wrote.
/// Wakes the engine and tells SSE streams.
pub async fn control(app: &AppState, id: &str, action: Action) -> Result<RolloutRecord, RolloutError> {
    for _ in 0..CONTROL_TRIES {
        let r = app.store.get_rollout(id).await.map_err(|e| match e {
            StoreError::NotFound => RolloutError::UnknownRollout(id.to_owned()),
            e => e.into(),
        })?;
        let now = app.store.now_ms().await?;
        let mut next = apply(&r, action, now)?;
        if action == Action::Resume {
            check_signers(app, r.kind, &r.artifact_id).await?;
        }
        if !app.store.update_rollout(&next).await? {
            continue;
        }
        next.version += 1;
        app.wake_engine();
        if let Some(engine) = &app.engine {
            let _ = engine.changes.send(next.id.clone());
        }
        return Ok(next);
    }
    Err(RolloutError::Contended(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::model::tests::record;

    fn rollout(state: RolloutState, reason: Option<PauseReason>) -> RolloutRecord {
        RolloutRecord { reason, ..record(state) }
    }

    /// (from, action) -> the state reached, or None when refused.
    fn outcome(from: RolloutState, action: Action) -> Option<RolloutState> {
        match (from, action) {
            (RolloutState::Running | RolloutState::Scheduled, Action::Pause | Action::Cancel) => Some(action.target()),
            (RolloutState::Paused, Action::Resume | Action::Cancel) => Some(action.target()),
            _ => None,
        }
    }

    #[test]
    fn every_state_and_action() {
        for from in RolloutState::ALL {
            for action in Action::ALL {
                let result = apply(&rollout(from, None), action, 50);
                match outcome(from, action) {
                    Some(to) => assert_eq!(result.unwrap().state, to, "{from:?} {action:?}"),
                    None => assert!(
                        matches!(result, Err(RolloutError::NotAllowed { from: f, to: t, .. })
                            if f == from && t == action.target()),
                        "{from:?} {action:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn pause_says_operator_and_keeps_the_gate() {
        let paused = apply(&rollout(RolloutState::Running, None), Action::Pause, 50).unwrap();
        assert_eq!((paused.reason, paused.gate_since, paused.updated_at), (Some(PauseReason::Operator), 1, 50));
    }

    #[test]
    fn resume_clears_the_reason_and_rearms_the_gate() {
        let gated = rollout(RolloutState::Paused, Some(PauseReason::FailureThreshold));
        let resumed = apply(&gated, Action::Resume, 50).unwrap();
        assert_eq!((resumed.reason, resumed.gate_since, resumed.updated_at), (None, 50, 50));
    }

    #[test]
    fn cancel_clears_the_reason() {
        let paused = rollout(RolloutState::Paused, Some(PauseReason::WaveGate));
        let cancelled = apply(&paused, Action::Cancel, 50).unwrap();
        assert_eq!((cancelled.state, cancelled.reason, cancelled.gate_since), (RolloutState::Cancelled, None, 1));
    }

    #[test]
    fn a_scheduled_rollout_pauses_and_resumes_to_scheduled_until_its_start() {
        let mut r = rollout(RolloutState::Scheduled, None);
        r.schedule.start_at = Some(100);
        let paused = apply(&r, Action::Pause, 50).unwrap();
        assert_eq!((paused.state, paused.reason), (RolloutState::Paused, Some(PauseReason::Operator)));
        assert_eq!(apply(&paused, Action::Resume, 60).unwrap().state, RolloutState::Scheduled);
        assert_eq!(apply(&paused, Action::Resume, 100).unwrap().state, RolloutState::Running, "its time has come");
    }

    #[test]
    fn refusals_name_both_states() {
        let done = rollout(RolloutState::Completed, None);
        let e = apply(&done, Action::Pause, 50).unwrap_err();
        assert_eq!(e.to_string(), "rollout r is completed; it cannot become paused");
    }
}
