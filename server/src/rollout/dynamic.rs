//! Dynamic rollouts (pure, CONTRACT §7): a rollout that targets a hardware model and labels
//! with `dynamic: true` takes in devices registered or relabelled later that match its
//! target, as `pending` entries of its last wave, until it is finished.
//!
//! The store calls [`rollout_to_join`] in the transaction that registers or relabels a
//! device, with the active dynamic rollouts in creation order, only for a device that is
//! in no active rollout (a device is in at most one, as at creation: the same `device_busy`
//! rule). So a device that matches two dynamic rollouts joins the older one; it joins the
//! other only if it is relabelled again after the first finished.

use std::collections::BTreeMap;

use fleet_protocol::HardwareModel;

use super::model::{EntryRecord, RolloutRecord};
use super::plan::Target;

/// The device being registered or relabelled, as the target sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub hardware: &'a HardwareModel,
    pub labels: &'a BTreeMap<String, String>,
}

/// Whether a hardware/labels target selects the device: the same hardware (when the target
/// names one) and every label of the target with the same value. A list of devices selects
/// no newcomer.
pub fn selects(target: &Target, device: Candidate<'_>) -> bool {
    match target {
        Target::Devices { .. } => false,
        Target::Query { hardware, labels } => {
            hardware.as_deref().is_none_or(|h| h == device.hardware.as_str())
                && labels.iter().all(|(k, v)| device.labels.get(k) == Some(v))
        }
    }
}

/// The first of `rollouts` (active dynamic rollouts, oldest first) whose target selects
/// the device.
pub fn rollout_to_join<'r>(rollouts: &'r [RolloutRecord], device: Candidate<'_>) -> Option<&'r RolloutRecord> {
    rollouts
        .iter()
        .filter(|r| r.dynamic && r.state.is_active())
        .find(|r| serde_json::from_str::<Target>(&r.target).is_ok_and(|target| selects(&target, device)))
}

/// The device's entry in `r`: pending, in the last wave, after every device already in it
/// (`position`). Its inventory is not compared with the artifact: a device already on it
/// answers `succeeded`/`already_installed` itself when it is sent the update.
pub fn joining_entry(r: &RolloutRecord, device_id: &str, position: i64, now: i64) -> EntryRecord {
    EntryRecord::pending(&r.id, device_id, position, r.waves.len().saturating_sub(1) as i64, now)
}

#[cfg(test)]
mod tests {
    use fleet_protocol::state::DeviceState;

    use super::*;
    use crate::rollout::model::RolloutState;
    use crate::rollout::model::tests::record;

    fn dynamic(id: &str, target: &str, state: RolloutState) -> RolloutRecord {
        RolloutRecord { id: id.into(), target: target.into(), dynamic: true, ..record(state) }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_target_selects_by_hardware_and_every_label() {
        let rpi4 = HardwareModel::parse("rpi4").unwrap();
        let berlin = labels(&[("site", "berlin"), ("ring", "beta")]);
        let device = Candidate { hardware: &rpi4, labels: &berlin };
        let query = |json: &str| serde_json::from_str::<Target>(json).unwrap();
        assert!(selects(&query(r#"{"hardware": "rpi4", "labels": {"site": "berlin"}}"#), device));
        assert!(selects(&query(r#"{"labels": {"ring": "beta"}}"#), device), "any hardware");
        assert!(selects(&query(r#"{"hardware": "rpi4"}"#), device));
        assert!(!selects(&query(r#"{"hardware": "rpi5"}"#), device));
        assert!(!selects(&query(r#"{"hardware": "rpi4", "labels": {"site": "paris"}}"#), device));
        assert!(!selects(&query(r#"{"labels": {"site": "berlin", "floor": "2"}}"#), device));
        assert!(!selects(&query(r#"{"devices": ["dev-1"]}"#), device), "a list takes no newcomer");
    }

    #[test]
    fn the_oldest_active_dynamic_rollout_that_selects_the_device_is_joined() {
        let rpi4 = HardwareModel::parse("rpi4").unwrap();
        let none = BTreeMap::new();
        let device = Candidate { hardware: &rpi4, labels: &none };
        let rollouts = [
            dynamic("done", r#"{"hardware": "rpi4"}"#, RolloutState::Completed),
            RolloutRecord { dynamic: false, ..dynamic("static", r#"{"hardware": "rpi4"}"#, RolloutState::Running) },
            dynamic("other", r#"{"hardware": "rpi5"}"#, RolloutState::Running),
            dynamic("older", r#"{"hardware": "rpi4"}"#, RolloutState::Scheduled),
            dynamic("newer", r#"{"hardware": "rpi4"}"#, RolloutState::Paused),
        ];
        assert_eq!(rollout_to_join(&rollouts, device).map(|r| r.id.as_str()), Some("older"));
        assert_eq!(rollout_to_join(&rollouts[..3], device), None);
    }

    #[test]
    fn a_newcomer_is_pending_in_the_last_wave() {
        let r = RolloutRecord { waves: vec![10.0, 50.0, 100.0], ..dynamic("r", "{}", RolloutState::Running) };
        let e = joining_entry(&r, "dev-9", 7, 50);
        assert_eq!((e.wave, e.position, e.state, e.attempts, e.updated_at), (2, 7, DeviceState::Pending, 0, 50));
    }
}
