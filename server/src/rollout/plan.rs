//! Pure rollout rules (CONTRACT §3, §5): the request, wave sizes, the failure gate and
//! retry backoff. No I/O here.

use fleet_protocol::api::{MAX_LABELS, MaintenanceWindow};
use serde::Deserialize;

pub use super::model::WaveGate;
use super::schedule::ScheduleError;

/// How devices are chosen: the wire type, also what the rollout records.
pub use fleet_protocol::api::RolloutTarget as Target;

/// `POST /rollouts`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    #[serde(default)]
    pub firmware: Option<String>,
    #[serde(default)]
    pub config: Option<String>,
    pub target: Target,
    #[serde(default = "default_waves")]
    pub waves: Vec<f64>,
    #[serde(default)]
    pub wave_soak_s: u64,
    #[serde(default)]
    pub wave_gate: WaveGate,
    #[serde(default = "default_ratio")]
    pub max_failure_ratio: f64,
    #[serde(default = "default_min_finished")]
    pub min_finished: u64,
    #[serde(default)]
    pub max_per_minute: Option<u64>,
    #[serde(default)]
    pub max_in_flight: Option<u64>,
    #[serde(default = "default_attempts")]
    pub max_attempts: u64,
    #[serde(default = "default_timeout")]
    pub device_timeout_s: u64,
    /// Retries across the whole rollout; once used up, failures are final. `null` (the
    /// default): unlimited, only `max_attempts` per device bounds them.
    #[serde(default)]
    pub max_retries_total: Option<u64>,
    /// Watch each succeeded device this long before it counts as healthy (0: off).
    #[serde(default)]
    pub health_window_s: u64,
    /// Of the current wave's succeeded devices, the share that may be offline while
    /// watched (`null`: none may).
    #[serde(default)]
    pub max_offline_ratio: Option<f64>,
    // Scheduling and dynamic targets (CONTRACT §7; `rollout::schedule`, `rollout::dynamic`).
    /// RFC 3339: the rollout waits in state `scheduled` until then; a time past starts now.
    #[serde(default)]
    pub start_at: Option<String>,
    /// Outside this weekly window no new device is dispatched; devices in flight finish.
    #[serde(default)]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// With a hardware/labels target: devices registered or relabelled later that match
    /// join the last wave while the rollout is scheduled, running or paused.
    #[serde(default)]
    pub dynamic: bool,
}

/// The longest health window: a week.
pub const MAX_HEALTH_WINDOW_S: u64 = 604_800;

/// The largest `max_retries_total`: a hundred retries for each of ten thousand devices.
pub const MAX_RETRIES_TOTAL: u64 = 1_000_000;

fn default_waves() -> Vec<f64> {
    vec![100.0]
}
fn default_ratio() -> f64 {
    0.1
}
fn default_min_finished() -> u64 {
    10
}
fn default_attempts() -> u64 {
    1
}
fn default_timeout() -> u64 {
    3600
}

/// Why a request is not acceptable (400 `bad_request`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("give exactly one of `firmware` and `config`")]
    Artifact,
    #[error("waves must be increasing percentages in (0, 100] ending at 100")]
    Waves,
    #[error("max_failure_ratio must be between 0 and 1")]
    Ratio,
    #[error("max_attempts must be between 1 and 100")]
    Attempts,
    #[error("device_timeout_s must be between 1 and 604800")]
    Timeout,
    #[error("max_retries_total must be between 0 and {MAX_RETRIES_TOTAL}")]
    RetryBudget,
    #[error("health_window_s must be between 0 and {MAX_HEALTH_WINDOW_S}")]
    HealthWindow,
    #[error("max_offline_ratio must be between 0 and 1")]
    OfflineRatio,
    #[error("max_per_minute and max_in_flight must be at least 1")]
    Limits,
    #[error("the target selects no devices")]
    NoTargets,
    #[error("target.devices lists {0} more than once")]
    Duplicate(String),
    #[error("target.labels has {0} labels; at most {MAX_LABELS}")]
    TooManyLabels(usize),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("dynamic needs a hardware/labels target, not a list of devices")]
    DynamicList,
}

impl RolloutRequest {
    /// Checks everything the request says by itself (not which devices it selects).
    pub fn check(&self) -> Result<(), PlanError> {
        if self.firmware.is_some() == self.config.is_some() {
            return Err(PlanError::Artifact);
        }
        let increasing = self.waves.windows(2).all(|w| w[0] < w[1]);
        if self.waves.is_empty() || !increasing || self.waves.iter().any(|p| !(*p > 0.0 && *p <= 100.0)) {
            return Err(PlanError::Waves);
        }
        if self.waves.last() != Some(&100.0) {
            return Err(PlanError::Waves);
        }
        if !(0.0..=1.0).contains(&self.max_failure_ratio) {
            return Err(PlanError::Ratio);
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(PlanError::Attempts);
        }
        if self.max_retries_total.is_some_and(|n| n > MAX_RETRIES_TOTAL) {
            return Err(PlanError::RetryBudget);
        }
        if !(1..=604_800).contains(&self.device_timeout_s) {
            return Err(PlanError::Timeout);
        }
        if self.max_per_minute == Some(0) || self.max_in_flight == Some(0) {
            return Err(PlanError::Limits);
        }
        self.check_health()?;
        if self.dynamic && matches!(self.target, Target::Devices { .. }) {
            return Err(PlanError::DynamicList);
        }
        match &self.target {
            Target::Query { labels, .. } if labels.len() > MAX_LABELS => Err(PlanError::TooManyLabels(labels.len())),
            _ => Ok(()),
        }
    }
}

impl RolloutRequest {
    /// The health window's options.
    fn check_health(&self) -> Result<(), PlanError> {
        if self.health_window_s > MAX_HEALTH_WINDOW_S {
            return Err(PlanError::HealthWindow);
        }
        if self.max_offline_ratio.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            return Err(PlanError::OfflineRatio);
        }
        Ok(())
    }
}

/// Cumulative device counts per wave: wave k holds the first ceil(p_k·N/100) targets, at
/// least one.
pub fn wave_ends(waves: &[f64], n: usize) -> Vec<usize> {
    waves.iter().map(|p| ((p * n as f64 / 100.0).ceil() as usize).clamp(1.min(n), n)).collect()
}

/// The wave (index) of the target at `position` (0-based, in device-id order).
pub fn wave_of(ends: &[usize], position: usize) -> usize {
    ends.iter().position(|end| position < *end).unwrap_or(ends.len().saturating_sub(1))
}

/// Whether the gate trips: once `min_finished` results (or the whole wave, if smaller)
/// are in, a failure ratio above `max_ratio`.
pub fn gate_trips(finished: u64, failures: u64, wave_size: u64, min_finished: u64, max_ratio: f64) -> bool {
    let needed = min_finished.min(wave_size).max(1);
    finished >= needed && (failures as f64 / finished as f64) > max_ratio
}

/// Backoff before retry `attempt` (the attempt that failed): 2^(attempt-1) s, capped at 5 min.
pub fn retry_backoff_ms(attempt: u64) -> i64 {
    1000i64 << (attempt.saturating_sub(1)).min(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wave_sizes_follow_the_contract() {
        assert_eq!(wave_ends(&[1.0, 10.0, 50.0, 100.0], 1000), [10, 100, 500, 1000]);
        assert_eq!(wave_ends(&[1.0, 100.0], 20), [1, 20], "at least one");
        assert_eq!(wave_ends(&[20.0, 100.0], 50), [10, 50]);
        assert_eq!(wave_ends(&[33.0, 100.0], 10), [4, 10], "ceil");
        let ends = wave_ends(&[20.0, 100.0], 50);
        assert_eq!(wave_of(&ends, 0), 0);
        assert_eq!(wave_of(&ends, 9), 0);
        assert_eq!(wave_of(&ends, 10), 1);
        assert_eq!(wave_of(&ends, 49), 1);
    }

    #[test]
    fn gate_waits_for_min_finished_or_the_whole_wave() {
        assert!(!gate_trips(4, 4, 10, 5, 0.2), "not enough results yet");
        assert!(gate_trips(5, 2, 10, 5, 0.2));
        assert!(!gate_trips(5, 1, 10, 5, 0.2), "ratio 0.2 is not above 0.2");
        assert!(gate_trips(2, 1, 2, 10, 0.2), "a wave smaller than min_finished");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(retry_backoff_ms(1), 1000);
        assert_eq!(retry_backoff_ms(2), 2000);
        assert_eq!(retry_backoff_ms(50), 256_000);
    }

    #[test]
    fn requests_are_checked() {
        let parse = |json: &str| serde_json::from_str::<RolloutRequest>(json).unwrap().check();
        assert_eq!(parse(r#"{"firmware": "f", "target": {"devices": ["a"]}}"#), Ok(()));
        assert_eq!(parse(r#"{"target": {"devices": ["a"]}}"#), Err(PlanError::Artifact));
        assert_eq!(parse(r#"{"firmware": "f", "config": "c", "target": {"devices": []}}"#), Err(PlanError::Artifact));
        assert_eq!(
            parse(r#"{"firmware": "f", "target": {"devices": []}, "waves": [50, 20, 100]}"#),
            Err(PlanError::Waves)
        );
        assert_eq!(parse(r#"{"firmware": "f", "target": {"devices": []}, "waves": [50]}"#), Err(PlanError::Waves));
        assert_eq!(
            parse(r#"{"firmware": "f", "target": {"devices": []}, "max_failure_ratio": 2}"#),
            Err(PlanError::Ratio)
        );
        assert_eq!(
            parse(r#"{"firmware": "f", "target": {"hardware": "rpi4"}, "max_in_flight": 0}"#),
            Err(PlanError::Limits)
        );
        assert!(serde_json::from_str::<RolloutRequest>(r#"{"firmware": "f", "target": {}, "colour": 1}"#).is_err());
        let budget = |n: u64| format!(r#"{{"firmware": "f", "target": {{"devices": []}}, "max_retries_total": {n}}}"#);
        assert_eq!(parse(&budget(0)), Ok(()), "no retries at all");
        assert_eq!(parse(&budget(MAX_RETRIES_TOTAL)), Ok(()));
        assert_eq!(parse(&budget(MAX_RETRIES_TOTAL + 1)), Err(PlanError::RetryBudget));
        assert_eq!(parse(r#"{"firmware": "f", "target": {"hardware": "rpi4"}, "dynamic": true}"#), Ok(()));
        assert_eq!(
            parse(r#"{"firmware": "f", "target": {"devices": ["a"]}, "dynamic": true}"#),
            Err(PlanError::DynamicList)
        );
    }
}
