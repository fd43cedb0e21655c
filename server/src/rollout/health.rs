//! The health window (pure, CONTRACT §7): a device that succeeded in a rollout with
//! `health_window_s` is watched that long. A report of `rolled_back` or `failed` meanwhile
//! makes it unhealthy at once (see [`super::rules::on_report`]); this module judges the
//! rest at each engine step from whether the watched devices are online:
//! - while more of a wave's succeeded devices are offline than `max_offline_ratio` allows
//!   (none, without it), those offline are unhealthy at once;
//! - when its window ends, a device online is healthy, one offline is unhealthy.
//!
//! An unhealthy device is final and a failure for the rollout's gate; a wave is done only
//! when none of its devices is watched any more.

use std::collections::HashMap;

use fleet_protocol::state::{DeviceState, Health};

use super::model::{Count, EntryChange, EntryRecord, RolloutRecord};
use super::rules::change;

/// The changes one step makes to the watched entries `watched` (each with whether its
/// device is online now), given the rollout's counts.
pub fn judge_watches(
    r: &RolloutRecord,
    watched: &[(EntryRecord, bool)],
    counts: &[Count],
    now: i64,
) -> Vec<EntryChange> {
    let over_ratio = waves_over_offline_ratio(r, watched, counts);
    watched
        .iter()
        .filter_map(|(e, online)| {
            let health = match (online, over_ratio.get(&e.wave).copied().unwrap_or(false)) {
                (false, true) => Health::Unhealthy,
                _ if e.watch_until.is_some_and(|until| now < until) => return None,
                (true, _) => Health::Healthy,
                (false, false) => Health::Unhealthy,
            };
            let mut c = change(e, e.state, e.reason);
            c.health = Some(health);
            Some(c)
        })
        .collect()
}

/// Per wave with watched devices: whether its offline share of succeeded devices is above
/// the rollout's `max_offline_ratio` (0 without one).
fn waves_over_offline_ratio(
    r: &RolloutRecord,
    watched: &[(EntryRecord, bool)],
    counts: &[Count],
) -> HashMap<i64, bool> {
    let tolerated = r.max_offline_ratio.unwrap_or(0.0);
    let mut offline: HashMap<i64, u64> = HashMap::new();
    for (e, online) in watched {
        *offline.entry(e.wave).or_default() += u64::from(!online);
    }
    offline
        .into_iter()
        .map(|(wave, off)| {
            let succeeded: i64 =
                counts.iter().filter(|c| c.wave == wave && c.state == DeviceState::Succeeded).map(|c| c.n).sum();
            (wave, off > 0 && off as f64 / succeeded.max(1) as f64 > tolerated)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::model::RolloutState;
    use crate::rollout::model::tests::record;

    fn rollout(max_offline_ratio: Option<f64>) -> RolloutRecord {
        RolloutRecord { health_window_s: 10, max_offline_ratio, ..record(RolloutState::Running) }
    }

    fn watched(id: &str, until: i64, online: bool) -> (EntryRecord, bool) {
        let e = EntryRecord {
            rollout_id: "r".into(),
            device_id: id.into(),
            position: 0,
            wave: 0,
            state: DeviceState::Succeeded,
            reason: None,
            attempts: 1,
            reported: true,
            sent_at: Some(0),
            retry_at: None,
            last_heard_at: None,
            updated_at: 0,
            health: Some(Health::Watching),
            watch_until: Some(until),
        };
        (e, online)
    }

    fn succeeded(n: i64) -> Vec<Count> {
        let c =
            Count { wave: 0, state: DeviceState::Succeeded, reason: None, health: None, n, since: n, sent_recently: 0 };
        vec![c]
    }

    fn judged(changes: &[EntryChange]) -> Vec<(&str, Option<Health>)> {
        changes.iter().map(|c| (c.device_id.as_str(), c.health)).collect()
    }

    #[test]
    fn at_the_end_of_its_window_a_device_online_is_healthy_and_one_offline_unhealthy() {
        let watches = [watched("a", 100, true), watched("b", 100, false), watched("c", 200, true)];
        let tolerant = rollout(Some(0.5));
        assert!(judge_watches(&tolerant, &watches, &succeeded(10), 99).is_empty(), "windows still open");
        let changes = judge_watches(&tolerant, &watches, &succeeded(10), 100);
        assert_eq!(judged(&changes), [("a", Some(Health::Healthy)), ("b", Some(Health::Unhealthy))]);
        assert_eq!(changes[0].state, DeviceState::Succeeded, "the state stays; only the health is judged");
    }

    #[test]
    fn offline_devices_beyond_the_ratio_are_unhealthy_at_once() {
        let watches = [watched("a", 100, false), watched("b", 100, true), watched("c", 100, true)];
        // One of ten succeeded offline: within 0.1, the device's window goes on.
        assert!(judge_watches(&rollout(Some(0.1)), &watches, &succeeded(10), 50).is_empty());
        // One of four: above 0.1.
        let changes = judge_watches(&rollout(Some(0.1)), &watches, &succeeded(4), 50);
        assert_eq!(judged(&changes), [("a", Some(Health::Unhealthy))]);
        // Without a ratio none may be offline.
        let changes = judge_watches(&rollout(None), &watches, &succeeded(10), 50);
        assert_eq!(judged(&changes), [("a", Some(Health::Unhealthy))]);
    }
}
