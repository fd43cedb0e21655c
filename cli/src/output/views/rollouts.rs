//! Rollouts: `show`, `list`, `devices`, the dry run's plan, and the counts line that
//! `watch` prints, with the reasons of failures.

use std::collections::BTreeMap;

use fleet_protocol::api::{Rollout, RolloutDevice, RolloutPlan, RolloutTarget, WindowState};
use fleet_protocol::state::{DeviceState, Health, Reason};

use super::{detail, plural};
use crate::output::Table;

/// Per state, how many devices carry each reason: `{"rejected": {"untrusted_key": 1}}`.
pub type Reasons = BTreeMap<String, BTreeMap<String, u64>>;

/// `succeeded 12, rejected 1 (untrusted_key)`; several reasons of one state are
/// `failed 3 (download_failed 2, install_failed 1)`.
pub fn counts(counts: &BTreeMap<String, u64>, reasons: &Reasons) -> String {
    if counts.is_empty() {
        return "no devices".to_owned();
    }
    counts
        .iter()
        .map(|(state, n)| match reasons.get(state).filter(|r| !r.is_empty()) {
            Some(r) if r.len() == 1 => format!("{state} {n} ({})", r.keys().next().map_or("", String::as_str)),
            Some(r) => {
                let each: Vec<String> = r.iter().map(|(reason, k)| format!("{reason} {k}")).collect();
                format!("{state} {n} ({})", each.join(", "))
            }
            None => format!("{state} {n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Devices in a final state.
pub fn finished(counts: &BTreeMap<String, u64>) -> u64 {
    counts
        .iter()
        .filter(|(state, _)| DeviceState::parse(state).is_some_and(DeviceState::is_final))
        .map(|(_, n)| n)
        .sum()
}

/// The states whose reasons are worth showing: failures of every kind.
pub fn is_failure(state: &str) -> bool {
    matches!(state, "failed" | "rejected" | "rolled_back" | "timed_out")
}

/// `paused (wave_gate)`, `running`, or `running (window closed)` outside its maintenance
/// window.
pub fn state(r: &Rollout) -> String {
    match (&r.reason, r.window) {
        (Some(reason), _) => format!("{} ({reason})", r.state),
        (None, Some(WindowState::Closed)) if r.state == "running" => format!("{} (window closed)", r.state),
        (None, _) => r.state.clone(),
    }
}

fn target(t: Option<&RolloutTarget>) -> String {
    match t {
        Some(RolloutTarget::Devices { devices }) => format!("devices {}", devices.join(", ")),
        Some(RolloutTarget::Query { hardware, labels }) => {
            let mut parts: Vec<String> = hardware.iter().map(|h| format!("hardware {h}")).collect();
            parts.extend(labels.iter().map(|(k, v)| format!("label {k}={v}")));
            if parts.is_empty() { "every device".to_owned() } else { parts.join(", ") }
        }
        None => String::new(),
    }
}

fn artifact(r: &Rollout) -> String {
    match &r.artifact {
        Some(a) => format!("{} {} {} ({})", a.kind, a.name, a.version, a.id),
        None => deleted_artifact(r),
    }
}

/// A finished rollout whose artifact was deleted still names it.
fn deleted_artifact(r: &Rollout) -> String {
    if r.artifact_id.is_empty() { String::new() } else { format!("{} (deleted)", r.artifact_id) }
}

/// `starts 2026-01-05T01:00:00Z, window Mon-Fri 01:00-04:00 Europe/Berlin (closed),
/// dynamic`; `None` for a rollout with none of these.
fn schedule(r: &Rollout) -> Option<String> {
    let o = &r.options;
    let mut parts: Vec<String> = o.start_at.iter().map(|t| format!("starts {t}")).collect();
    if let Some(w) = &o.maintenance_window {
        let open = r.window.map(|s| format!(" ({})", s.as_str())).unwrap_or_default();
        parts.push(format!("window {} {}-{} {}{open}", w.days, w.start, w.end, w.time_zone));
    }
    if o.dynamic {
        parts.push("dynamic".to_owned());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `rollouts show`: the rollout, its counts and a table of its waves.
pub fn summary(r: &Rollout, reasons: &Reasons) -> String {
    let mut rows = vec![
        ("rollout", r.id.clone()),
        ("state", state(r)),
        ("artifact", artifact(r)),
        ("target", target(r.target.as_ref())),
    ];
    rows.extend(schedule(r).map(|s| ("schedule", s)));
    rows.extend([(
        "devices",
        format!("{} finished of {}: {}", finished(&r.counts), r.total, counts(&r.counts, reasons)),
    )]);
    if !r.health.is_empty() {
        rows.push(("health", counts(&r.health, &Reasons::new())));
    }
    if let Some(why) = &r.pause_detail {
        rows.push(("paused by", why.clone()));
    }
    rows.extend([("created", r.created_at.clone()), ("updated", r.updated_at.clone())]);
    let mut text = detail(&rows);
    let mut waves = Table::new(["WAVE", "PERCENT", "SIZE", "STATE", "COUNTS"]);
    for (i, w) in r.waves.iter().enumerate() {
        waves.row([
            (i + 1).to_string(),
            format!("{}%", w.percent),
            w.size.to_string(),
            w.state.as_str().to_owned(),
            counts(&w.counts, &Reasons::new()),
        ]);
    }
    text.push('\n');
    text.push_str(&waves.render());
    text
}

/// `rollouts list`.
pub fn table(rollouts: &[Rollout]) -> Table {
    let mut t = Table::new(["ID", "STATE", "ARTIFACT", "DONE", "COUNTS", "CREATED"]);
    for r in rollouts {
        let artifact = match &r.artifact {
            Some(a) => format!("{} {}", a.name, a.version),
            None => deleted_artifact(r),
        };
        t.row([
            r.id.clone(),
            state(r),
            artifact,
            format!("{}/{}", finished(&r.counts), r.total),
            counts(&r.counts, &Reasons::new()),
            r.created_at.clone(),
        ]);
    }
    t
}

/// `rollouts devices`.
pub fn devices_table(entries: &[RolloutDevice]) -> Table {
    let mut t = Table::new(["DEVICE", "STATE", "REASON", "HEALTH", "ATTEMPTS", "WAVE", "UPDATED"]);
    for e in entries {
        t.row([
            e.device_id.clone(),
            e.state.as_str().to_owned(),
            e.reason.map_or("", Reason::as_str).to_owned(),
            e.health.map_or("", Health::as_str).to_owned(),
            e.attempts.to_string(),
            (e.wave + 1).to_string(),
            e.updated_at.clone(),
        ]);
    }
    t
}

/// At most this many device ids are named in a summary line.
const NAMED: usize = 10;

/// `gw-1, gw-2, … and 40 more`.
pub fn some_ids(ids: &[String]) -> String {
    let mut text = ids.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > NAMED {
        text.push_str(&format!(" and {} more", ids.len() - NAMED));
    }
    text
}

/// `rollouts create --dry-run`: who would get what, wave by wave.
pub fn plan(p: &RolloutPlan) -> String {
    let mut text = format!("would target {}", plural(p.targets.len(), "device"));
    if !p.already_installed.is_empty() {
        text.push_str(&format!(" ({} already installed)", p.already_installed.len()));
    }
    text.push_str("; nothing was created\n\n");
    let mut waves = Table::new(["WAVE", "PERCENT", "DEVICES"]);
    for (i, w) in p.waves.iter().enumerate() {
        waves.row([(i + 1).to_string(), format!("{}%", w.percent), w.size.to_string()]);
    }
    text.push_str(&waves.render());
    if !p.targets.is_empty() {
        text.push_str(&format!("\ntargets: {}\n", some_ids(&p.targets)));
    }
    if !p.already_installed.is_empty() {
        text.push_str(&format!("already installed: {}\n", some_ids(&p.already_installed)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout() -> Rollout {
        serde_json::from_value(serde_json::json!({
            "id": "r-123", "state": "paused", "reason": "failure_threshold",
            "artifact": {"id": "fw-1", "kind": "firmware", "name": "gateway-os", "version": "1.1.0"},
            "target": {"hardware": "rpi4", "labels": {"site": "berlin"}},
            "total": 4, "counts": {"pending": 1, "rejected": 1, "succeeded": 2},
            "waves": [
                {"percent": 50.0, "size": 2, "state": "completed", "counts": {"succeeded": 2}},
                {"percent": 100.0, "size": 2, "state": "paused", "counts": {"pending": 1, "rejected": 1}}
            ],
            "current_wave": 1,
            "options": {"waves": [50.0, 100.0], "wave_soak_s": 0, "wave_gate": "auto",
                        "max_failure_ratio": 0.0, "min_finished": 1, "max_per_minute": null,
                        "max_in_flight": null, "max_attempts": 1, "device_timeout_s": 3600},
            "created_at": "2026-12-06T12:00:00Z", "updated_at": "2026-12-06T12:01:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn counts_name_the_reasons_of_failures() {
        let c = BTreeMap::from([("rejected".to_owned(), 1), ("succeeded".to_owned(), 5)]);
        let mut reasons = Reasons::new();
        assert_eq!(counts(&c, &reasons), "rejected 1, succeeded 5");
        reasons.entry("rejected".into()).or_default().insert("untrusted_key".into(), 1);
        assert_eq!(counts(&c, &reasons), "rejected 1 (untrusted_key), succeeded 5");
        let c = BTreeMap::from([("failed".to_owned(), 3)]);
        let reasons = Reasons::from([(
            "failed".to_owned(),
            BTreeMap::from([("download_failed".to_owned(), 2), ("install_failed".to_owned(), 1)]),
        )]);
        assert_eq!(counts(&c, &reasons), "failed 3 (download_failed 2, install_failed 1)");
        assert_eq!(counts(&BTreeMap::new(), &Reasons::new()), "no devices");
    }

    #[test]
    fn show_summarises_and_tabulates_the_waves() {
        let text = summary(&rollout(), &Reasons::new());
        assert!(text.starts_with("rollout   r-123\nstate     paused (failure_threshold)\n"), "{text}");
        assert!(text.contains("artifact  firmware gateway-os 1.1.0 (fw-1)\n"), "{text}");
        assert!(text.contains("target    hardware rpi4, label site=berlin\n"), "{text}");
        assert!(text.contains("devices   3 finished of 4: pending 1, rejected 1, succeeded 2\n"), "{text}");
        assert!(text.contains("WAVE  PERCENT  SIZE  STATE      COUNTS\n"), "{text}");
        assert!(text.contains("1     50%      2     completed  succeeded 2\n"), "{text}");
        assert!(text.contains("2     100%     2     paused     pending 1, rejected 1\n"), "{text}");
    }

    #[test]
    fn a_running_rollout_outside_its_window_says_so() {
        let mut r = rollout();
        (r.state, r.reason, r.window) = ("running".into(), None, Some(WindowState::Closed));
        assert_eq!(state(&r), "running (window closed)");
        r.window = Some(WindowState::Open);
        assert_eq!(state(&r), "running");
        (r.state, r.window) = ("scheduled".into(), Some(WindowState::Closed));
        assert_eq!(state(&r), "scheduled");
    }

    #[test]
    fn show_names_the_schedule_only_when_there_is_one() {
        let mut r = rollout();
        assert!(!summary(&r, &Reasons::new()).contains("schedule"));
        r.options.start_at = Some("2026-01-05T00:00:00Z".into());
        r.options.maintenance_window = Some(fleet_protocol::api::MaintenanceWindow {
            days: "Mon-Fri".into(),
            start: "01:00".into(),
            end: "04:00".into(),
            time_zone: "Europe/Berlin".into(),
        });
        (r.window, r.options.dynamic) = (Some(WindowState::Closed), true);
        let text = summary(&r, &Reasons::new());
        let line =
            "schedule  starts 2026-01-05T00:00:00Z, window Mon-Fri 01:00-04:00 Europe/Berlin (closed), dynamic\n";
        assert!(text.contains(line), "{text}");
    }

    #[test]
    fn the_list_has_a_header_and_progress() {
        let text = table(&[rollout()]).render();
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("ID     STATE"), "{text}");
        let row = lines.next().unwrap();
        assert!(row.contains("paused (failure_threshold)") && row.contains("gateway-os 1.1.0") && row.contains("3/4"));
    }

    #[test]
    fn a_plan_names_its_waves_and_a_few_targets() {
        let p = RolloutPlan {
            targets: (0..12).map(|i| format!("sim-{i}")).collect(),
            waves: vec![
                fleet_protocol::api::PlannedWave { percent: 10.0, size: 2 },
                fleet_protocol::api::PlannedWave { percent: 100.0, size: 12 },
            ],
            already_installed: vec!["sim-3".into()],
        };
        let text = plan(&p);
        assert!(text.starts_with("would target 12 devices (1 already installed); nothing was created\n"), "{text}");
        assert!(text.contains("1     10%      2\n2     100%     12\n"), "{text}");
        assert!(
            text.contains("targets: sim-0, sim-1, sim-2, sim-3, sim-4, sim-5, sim-6, sim-7, sim-8, sim-9 and 2 more\n")
        );
        assert!(text.contains("already installed: sim-3\n"));
    }
}
