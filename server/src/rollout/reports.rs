//! Judging a batch of status reports (pure): the `seq` check, what each report does to the
//! entry it names, and what the batch leaves to write. The store loads what the reports
//! name ([`Loaded`]), [`judge`] decides, the store writes the result ([`Judged`]) in the
//! same transaction.
//!
//! Reports are judged one by one in arrival order, each seeing what the earlier ones of
//! the batch did (a device's later report sees its earlier one).

use std::collections::{HashMap, HashSet};

use fleet_protocol::message::Installed;

use super::model::{EntryChange, EntryRecord, IncomingReport, ReportOutcome};
use super::rules::{RolloutRules, Verdict, on_connect_elsewhere, on_report};

/// (rollout id, device id).
pub type EntryKey = (String, String);

/// An entry as loaded, with what judging it needs of its rollout.
#[derive(Debug, Clone)]
pub struct LoadedEntry {
    pub entry: EntryRecord,
    pub rules: RolloutRules,
}

/// What the store loads for a batch.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every known device's last accepted `seq` (a device absent here is unknown).
    pub last_seq: HashMap<String, Option<i64>>,
    /// The entries the reports name, and the outstanding ones of devices that connected.
    pub entries: HashMap<EntryKey, LoadedEntry>,
    /// For each device that sent a connect report: its newest in-flight entry.
    pub outstanding: HashMap<String, EntryKey>,
}

/// A device's row after the batch: its last accepted report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUpdate {
    pub id: String,
    pub seq: i64,
    pub firmware: Option<Installed>,
    pub config: Option<Installed>,
    pub trust_version: Option<i64>,
}

/// What a batch decided.
#[derive(Debug, Default)]
pub struct Judged {
    /// One per report, in order.
    pub outcomes: Vec<ReportOutcome>,
    /// Devices to write, in first-seen order.
    pub devices: Vec<DeviceUpdate>,
    /// Entry changes to write: per entry, the first change's expectations with the last
    /// change's values.
    pub changes: Vec<EntryChange>,
}

/// The (rollout, device) pairs the reports name, each once, sorted.
pub fn named_entries(reports: &[IncomingReport]) -> Vec<(&str, &str)> {
    let mut named: Vec<(&str, &str)> =
        reports.iter().filter_map(|r| Some((r.report.rollout_id.as_ref()?.as_str(), r.device.as_str()))).collect();
    named.sort_unstable();
    named.dedup();
    named
}

/// The devices that report, each once, sorted; and those of them that sent a connect report.
pub fn reporting_devices(reports: &[IncomingReport]) -> (Vec<&str>, Vec<&str>) {
    fn sorted<'a>(reports: impl Iterator<Item = &'a IncomingReport>) -> Vec<&'a str> {
        let mut ids: Vec<&str> = reports.map(|r| r.device.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
    (sorted(reports.iter()), sorted(reports.iter().filter(|r| r.report.connect)))
}

/// Judges the batch in arrival order.
pub fn judge(loaded: Loaded, reports: &[IncomingReport], now: i64) -> Judged {
    let mut batch =
        Batch { loaded, judged: Judged::default(), device_index: HashMap::new(), change_index: HashMap::new() };
    for incoming in reports {
        let outcome = match batch.accept_seq(incoming) {
            Err(why) => ReportOutcome::Ignored(why),
            Ok(()) => batch.judge(incoming, now).unwrap_or_else(|| batch.connect_elsewhere(incoming)),
        };
        batch.judged.outcomes.push(outcome);
    }
    batch.judged
}

/// After the write: a change that lost its compare-and-set to a concurrent writer applied
/// nothing, so its report is `raced`.
pub fn mark_raced(outcomes: &mut [ReportOutcome], reports: &[IncomingReport], applied: &HashSet<EntryKey>) {
    for (incoming, outcome) in reports.iter().zip(outcomes.iter_mut()) {
        if let ReportOutcome::Applied { rollout_id: Some(r) } = outcome {
            if !applied.contains(&(r.clone(), incoming.device.as_str().to_owned())) {
                *outcome = ReportOutcome::Ignored("raced");
            }
        }
    }
}

struct Batch {
    loaded: Loaded,
    judged: Judged,
    device_index: HashMap<String, usize>,
    change_index: HashMap<EntryKey, usize>,
}

impl Batch {
    /// Checks the device and the report's `seq`, and records the device's new state.
    fn accept_seq(&mut self, incoming: &IncomingReport) -> Result<(), &'static str> {
        let id = incoming.device.as_str();
        let Some(last) = self.loaded.last_seq.get_mut(id) else {
            return Err("unknown_device");
        };
        let Ok(seq) = i64::try_from(incoming.report.seq) else {
            return Err("bad_seq");
        };
        if last.is_some_and(|s| seq <= s) {
            return Err("stale_seq");
        }
        *last = Some(seq);
        let report = &incoming.report;
        let row = DeviceUpdate {
            id: id.to_owned(),
            seq,
            firmware: report.firmware.clone(),
            config: report.config.clone(),
            trust_version: report.trust_version.and_then(|v| i64::try_from(v).ok()),
        };
        match self.device_index.get(id) {
            Some(&i) => self.judged.devices[i] = row,
            None => {
                self.device_index.insert(id.to_owned(), self.judged.devices.len());
                self.judged.devices.push(row);
            }
        }
        Ok(())
    }

    /// The report's effect on the entry it names; `None` for a connect report naming no
    /// entry of the device (see [`Self::connect_elsewhere`]).
    fn judge(&mut self, incoming: &IncomingReport, now: i64) -> Option<ReportOutcome> {
        let r = &incoming.report;
        let named =
            r.rollout_id.as_ref().map(|rollout| (rollout.as_str().to_owned(), incoming.device.as_str().to_owned()));
        let Some(loaded) = named.as_ref().and_then(|k| self.loaded.entries.get_mut(k)) else {
            if r.connect {
                return None;
            }
            return Some(ReportOutcome::Ignored(if r.rollout_id.is_some() { "unknown_rollout" } else { "idle" }));
        };
        let entry = &mut loaded.entry;
        Some(match on_report(entry, loaded.rules, r.state, r.reason, r.connect, now) {
            Verdict::Change(c) => {
                entry.apply(&c, now);
                let rollout_id = Some(c.rollout_id.clone());
                self.merge(c);
                ReportOutcome::Applied { rollout_id }
            }
            Verdict::Resend => ReportOutcome::Resend { rollout_id: entry.rollout_id.clone() },
            Verdict::Ignore(why) => ReportOutcome::Ignored(why),
        })
    }

    /// A connect report naming no rollout it is in: re-send the device's outstanding
    /// command, as it stands after the batch's earlier reports, if any.
    fn connect_elsewhere(&self, incoming: &IncomingReport) -> ReportOutcome {
        let outstanding =
            self.loaded.outstanding.get(incoming.device.as_str()).and_then(|k| self.loaded.entries.get(k));
        match outstanding {
            Some(e) if on_connect_elsewhere(&e.entry) == Verdict::Resend => {
                ReportOutcome::Resend { rollout_id: e.entry.rollout_id.clone() }
            }
            _ => ReportOutcome::Applied { rollout_id: None },
        }
    }

    fn merge(&mut self, c: EntryChange) {
        let key = (c.rollout_id.clone(), c.device_id.clone());
        match self.change_index.get(&key) {
            Some(&i) => {
                let first = &self.judged.changes[i];
                self.judged.changes[i] =
                    EntryChange { expect_state: first.expect_state, expect_attempts: first.expect_attempts, ..c };
            }
            None => {
                self.change_index.insert(key, self.judged.changes.len());
                self.judged.changes.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_protocol::DeviceId;
    use fleet_protocol::message::StatusReport;
    use fleet_protocol::state::DeviceState;

    use super::*;
    use crate::rollout::model::RolloutState;

    fn report(device: &str, rollout: Option<&str>, state: DeviceState, seq: u64, connect: bool) -> IncomingReport {
        let json = serde_json::json!({"rollout_id": rollout, "state": state, "seq": seq, "connect": connect});
        let report: StatusReport = serde_json::from_value(json).unwrap();
        IncomingReport { device: DeviceId::parse(device).unwrap(), report }
    }

    fn loaded(state: DeviceState) -> Loaded {
        let entry = EntryRecord {
            rollout_id: "r1".into(),
            device_id: "d1".into(),
            position: 0,
            wave: 0,
            state,
            reason: None,
            attempts: 1,
            reported: false,
            sent_at: Some(0),
            retry_at: None,
            last_heard_at: None,
            updated_at: 0,
            health: None,
            watch_until: None,
        };
        let key = ("r1".to_owned(), "d1".to_owned());
        let rules = RolloutRules { state: RolloutState::Running, max_attempts: 1, health_window_ms: 0 };
        Loaded {
            last_seq: HashMap::from([("d1".to_owned(), Some(5))]),
            entries: HashMap::from([(key, LoadedEntry { entry, rules })]),
            outstanding: HashMap::new(),
        }
    }

    #[test]
    fn seq_must_grow_and_the_device_must_be_known() {
        let reports = [
            report("d1", Some("r1"), DeviceState::Downloading, 5, false),
            report("d2", Some("r1"), DeviceState::Downloading, 9, false),
            report("d1", Some("r1"), DeviceState::Downloading, 6, false),
        ];
        let judged = judge(loaded(DeviceState::Sent), &reports, 10);
        assert_eq!(judged.outcomes[0], ReportOutcome::Ignored("stale_seq"));
        assert_eq!(judged.outcomes[1], ReportOutcome::Ignored("unknown_device"));
        assert_eq!(judged.outcomes[2], ReportOutcome::Applied { rollout_id: Some("r1".into()) });
        assert_eq!(judged.devices.iter().map(|d| d.seq).collect::<Vec<_>>(), [6]);
    }

    #[test]
    fn a_later_report_sees_an_earlier_one_and_one_change_per_entry_is_written() {
        let reports = [
            report("d1", Some("r1"), DeviceState::Downloading, 6, false),
            report("d1", Some("r1"), DeviceState::Installing, 7, false),
            report("d1", Some("r1"), DeviceState::Downloading, 8, false),
        ];
        let judged = judge(loaded(DeviceState::Sent), &reports, 10);
        assert_eq!(judged.outcomes[2], ReportOutcome::Ignored("illegal_transition"));
        assert_eq!(judged.changes.len(), 1);
        let c = &judged.changes[0];
        assert_eq!((c.expect_state, c.state), (DeviceState::Sent, DeviceState::Installing));
        assert_eq!(judged.devices.len(), 1, "the device's last accepted report only");
        assert_eq!(judged.devices[0].seq, 8);
    }

    #[test]
    fn a_connect_report_elsewhere_resends_the_outstanding_command_as_the_batch_left_it() {
        let mut batch = loaded(DeviceState::Sent);
        batch.outstanding.insert("d1".into(), ("r1".into(), "d1".into()));
        let reports = [report("d1", None, DeviceState::Idle, 6, true)];
        let judged = judge(batch, &reports, 10);
        assert_eq!(judged.outcomes[0], ReportOutcome::Resend { rollout_id: "r1".into() });

        let mut batch = loaded(DeviceState::Sent);
        batch.outstanding.insert("d1".into(), ("r1".into(), "d1".into()));
        let reports = [
            report("d1", Some("r1"), DeviceState::Succeeded, 6, false),
            report("d1", None, DeviceState::Idle, 7, true),
        ];
        let judged = judge(batch, &reports, 10);
        assert_eq!(judged.outcomes[1], ReportOutcome::Applied { rollout_id: None }, "no longer in flight");
    }

    #[test]
    fn a_change_that_lost_its_compare_and_set_is_raced() {
        let reports = [report("d1", Some("r1"), DeviceState::Downloading, 6, false)];
        let mut judged = judge(loaded(DeviceState::Sent), &reports, 10);
        mark_raced(&mut judged.outcomes, &reports, &HashSet::new());
        assert_eq!(judged.outcomes[0], ReportOutcome::Ignored("raced"));
    }
}
