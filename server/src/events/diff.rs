//! Which events a change makes (CONTRACT §10): pure functions of what was last announced
//! and what is true now.

use fleet_protocol::events::DeviceEvent;

/// The events of a rollout whose last announced state was `old` (`None`: never announced)
/// and whose body changed to one in state `new`.
pub fn rollout_events(old: Option<&str>, new: &str) -> Vec<&'static str> {
    let entered = match new {
        "paused" => Some("rollout.paused"),
        "completed" => Some("rollout.completed"),
        "cancelled" => Some("rollout.cancelled"),
        _ => None,
    };
    match old {
        None => std::iter::once("rollout.created").chain(entered).collect(),
        Some(old) if old == new => vec!["rollout.progress"],
        Some("paused") if new == "running" => vec!["rollout.resumed"],
        Some(_) => vec![entered.unwrap_or("rollout.progress")],
    }
}

/// The events of a device whose last announced body was `old` and is now `new`.
/// `device.updated`: its firmware or config is now another one than last announced (what
/// it had when first announced is not an update: see [`first_seen`]).
pub fn device_events(old: &DeviceEvent, new: &DeviceEvent) -> Vec<&'static str> {
    let mut events = Vec::new();
    if old.online != new.online {
        events.push(if new.online { "device.online" } else { "device.offline" });
    }
    let changed = |o: &Option<_>, n: &Option<_>| n.is_some() && o != n;
    if changed(&old.firmware, &new.firmware) || changed(&old.config, &new.config) {
        events.push("device.updated");
    }
    let state = |e: &DeviceEvent| e.rollout.as_ref().and_then(|r| r.get("state").cloned());
    if state(old) != state(new) {
        match state(new).as_ref().and_then(|s| s.as_str()) {
            Some("failed") => events.push("device.failed"),
            Some("rolled_back") => events.push("device.rolled_back"),
            _ => {}
        }
    }
    events
}

/// What a device was before its first announcement: offline and in no rollout, with what
/// it has installed now (so its first report is not an update).
pub fn first_seen(now: &DeviceEvent) -> DeviceEvent {
    DeviceEvent { online: false, rollout: None, ..now.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rollout_transitions() {
        assert_eq!(rollout_events(None, "running"), ["rollout.created"]);
        assert_eq!(rollout_events(Some("running"), "running"), ["rollout.progress"]);
        assert_eq!(rollout_events(Some("running"), "paused"), ["rollout.paused"]);
        assert_eq!(rollout_events(Some("paused"), "running"), ["rollout.resumed"]);
        assert_eq!(rollout_events(Some("scheduled"), "running"), ["rollout.progress"]);
        assert_eq!(rollout_events(Some("running"), "completed"), ["rollout.completed"]);
        assert_eq!(rollout_events(Some("paused"), "cancelled"), ["rollout.cancelled"]);
        assert_eq!(rollout_events(None, "completed"), ["rollout.created", "rollout.completed"]);
        assert_eq!(rollout_events(None, "scheduled"), ["rollout.created"]);
    }

    #[test]
    fn device_transitions() {
        let fw = |v: &str| {
            Some(fleet_protocol::message::Installed {
                name: fleet_protocol::ProductName::parse("os").unwrap(),
                version: v.parse().unwrap(),
                sha256: fleet_protocol::Sha256Digest::of(v.as_bytes()),
            })
        };
        let dev = |online, firmware, state: Option<&str>| DeviceEvent {
            device_id: "d".into(),
            firmware,
            config: None,
            online,
            rollout: state.map(|s| json!({"id": "r", "state": s})),
        };
        let a = dev(true, fw("1.0.0"), Some("installing"));
        assert_eq!(device_events(&first_seen(&a), &a), ["device.online"]);
        assert_eq!(device_events(&a, &dev(true, fw("1.1.0"), Some("succeeded"))), ["device.updated"]);
        assert_eq!(device_events(&a, &dev(false, fw("1.0.0"), Some("failed"))), ["device.offline", "device.failed"]);
        assert_eq!(device_events(&a, &dev(true, fw("1.0.0"), Some("rolled_back"))), ["device.rolled_back"]);
        assert_eq!(device_events(&dev(true, None, Some("installing")), &a), ["device.updated"]);
        assert!(device_events(&a, &dev(true, None, Some("installing"))).is_empty());
    }
}
