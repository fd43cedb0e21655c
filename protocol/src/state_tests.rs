//! The shared states' and reasons' rules, checked with serde_json.

use crate::state::*;
use DeviceState::*;

#[test]
fn names_round_trip() {
    for s in ALL_STATES {
        assert_eq!(DeviceState::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
    }
}

#[test]
fn finals_match_contract() {
    let finals: Vec<_> = ALL_STATES.into_iter().filter(|s| s.is_final()).collect();
    assert_eq!(finals, [Succeeded, Failed, Rejected, RolledBack, TimedOut, Cancelled]);
}

#[test]
fn reports_move_forward_and_may_skip() {
    assert!(can_transition(Sent, Downloading, Actor::Device));
    assert!(can_transition(Downloading, Downloading, Actor::Device));
    assert!(can_transition(Sent, Succeeded, Actor::Device));
    assert!(can_transition(Installing, RolledBack, Actor::Device));
    assert!(!can_transition(Installing, Downloading, Actor::Device));
    assert!(!can_transition(Pending, Downloading, Actor::Device));
    assert!(!can_transition(Succeeded, Failed, Actor::Device));
    assert!(!can_transition(Sent, TimedOut, Actor::Device));
    assert!(!can_transition(Sent, Idle, Actor::Device));
}

#[test]
fn late_success_replaces_timeout_only() {
    assert!(can_transition(TimedOut, Succeeded, Actor::Device));
    assert!(can_transition(TimedOut, RolledBack, Actor::Device));
    assert!(!can_transition(TimedOut, Downloading, Actor::Device));
    assert!(!can_transition(Cancelled, Succeeded, Actor::Device));
}

#[test]
fn server_moves() {
    assert!(can_transition(Pending, Sent, Actor::Server));
    assert!(can_transition(Pending, Cancelled, Actor::Server));
    assert!(can_transition(Downloading, TimedOut, Actor::Server));
    assert!(can_transition(Failed, Pending, Actor::Server));
    assert!(!can_transition(Succeeded, Pending, Actor::Server));
    assert!(!can_transition(Sent, Downloading, Actor::Server));
}

#[test]
fn reason_names_match_serde() {
    for r in ALL_REASONS {
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        assert_eq!(Reason::parse(r.as_str()), Some(r));
    }
}

#[test]
fn every_reason_has_a_final_state() {
    for r in [
        Reason::Busy,
        Reason::InstallFailed,
        Reason::BootFailed,
        Reason::AlreadyInstalled,
        Reason::Unreachable,
        Reason::Skipped,
    ] {
        assert!(r.state().is_final());
    }
}
