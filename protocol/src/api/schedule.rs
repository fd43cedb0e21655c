//! When a rollout may dispatch (CONTRACT §7): the maintenance window as the request gives
//! it and the rollout body shows it, and whether that window is open now. The server
//! parses and judges windows (`fleet-server`'s `rollout::window`); here they are only text.

use serde::{Deserialize, Serialize};

/// A weekly time range in a time zone: `{"days": "Mon-Fri", "start": "01:00", "end":
/// "04:00", "time_zone": "Europe/Berlin"}`. Outside it a running rollout dispatches no new
/// device; devices in flight finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Days the window starts on: names (`Mon` … `Sun`), ranges and lists, e.g. `Mon-Fri`,
    /// `Sat,Sun`, `Mon,Wed-Fri`.
    pub days: String,
    /// Local start time, `HH:MM`.
    pub start: String,
    /// Local end time, `HH:MM`; at or before `start`, the window ends the next day.
    pub end: String,
    /// An IANA time zone name, e.g. `Europe/Berlin` or `UTC`.
    pub time_zone: String,
}

/// Whether a rollout's maintenance window is open now (`GET /rollouts/{id}` `window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    Open,
    Closed,
}

impl WindowState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_window_round_trips_and_refuses_unknown_fields() {
        let body = json!({"days": "Mon-Fri", "start": "01:00", "end": "04:00", "time_zone": "Europe/Berlin"});
        let window: MaintenanceWindow = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(serde_json::to_value(&window).unwrap(), body);
        let extra = json!({"days": "Mon", "start": "01:00", "end": "02:00", "time_zone": "UTC", "colour": 1});
        assert!(serde_json::from_value::<MaintenanceWindow>(extra).is_err());
    }

    #[test]
    fn window_states_have_stable_names() {
        for state in [WindowState::Open, WindowState::Closed] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }
}
