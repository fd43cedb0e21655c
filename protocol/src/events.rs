//! Events and integrations (CONTRACT §10): the event types webhooks subscribe to, the
//! patterns that select them, the bodies of the device event topic and of a webhook
//! delivery, and the webhook resources of the REST API.

use serde::{Deserialize, Serialize};

/// Every event type, in the contract's order.
pub const EVENT_TYPES: [&str; 11] = [
    "rollout.created",
    "rollout.paused",
    "rollout.resumed",
    "rollout.completed",
    "rollout.cancelled",
    "rollout.progress",
    "device.updated",
    "device.rolled_back",
    "device.failed",
    "device.online",
    "device.offline",
];

/// Why an event pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an event type or a `group.*` / `*` pattern")]
pub struct PatternError(pub String);

/// Checks a pattern: an event type, `{group}.*` for a group that exists, or `*`.
pub fn parse_pattern(pattern: &str) -> Result<String, PatternError> {
    let known = pattern == "*"
        || EVENT_TYPES.contains(&pattern)
        || pattern
            .strip_suffix(".*")
            .is_some_and(|group| EVENT_TYPES.iter().any(|t| t.split_once('.').is_some_and(|(g, _)| g == group)));
    if known { Ok(pattern.to_owned()) } else { Err(PatternError(pattern.to_owned())) }
}

/// Whether `pattern` selects `event`: equal, or `*` after a dot (or alone) matching any
/// rest.
pub fn pattern_matches(pattern: &str, event: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) if prefix.ends_with('.') => event.starts_with(prefix),
        _ => pattern == event,
    }
}

/// The body published on `{root}/events/devices/{id}`, and the `data` of `device.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceEvent {
    pub device_id: String,
    pub firmware: Option<crate::message::Installed>,
    pub config: Option<crate::message::Installed>,
    pub online: bool,
    /// `{"id", "state"}` of the device's active rollout (its state there), or null.
    pub rollout: Option<serde_json::Value>,
}

/// A webhook delivery's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339, when the event was recorded.
    pub timestamp: String,
    pub data: serde_json::Value,
}

/// `POST /webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://…`, or `http://` to a loopback host.
    pub url: String,
    /// Event types or patterns (`rollout.*`, `*`).
    pub events: Vec<String>,
}

/// A webhook just registered: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookCreated {
    pub id: String,
    /// `whsec_` + base64 of 32 random bytes: the HMAC key of its signatures.
    pub secret: String,
}

/// Deliveries of one webhook, counted by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryCounts {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// A registered webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookInfo {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// False once the endpoint answered 410 Gone.
    pub enabled: bool,
    pub counts: DeliveryCounts,
    /// The HTTP status of the last attempt (null: none, or no answer).
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    pub created_at: String,
}

/// One event's delivery to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// The `webhook-id` header, the same on every attempt.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `failed` (gave up, or the webhook was disabled).
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "device.failed"));
        assert!(pattern_matches("rollout.*", "rollout.created"));
        assert!(!pattern_matches("rollout.*", "device.failed"));
        assert!(pattern_matches("device.failed", "device.failed"));
        assert!(!pattern_matches("device.fail*", "device.failed"));
        assert!(parse_pattern("rollout.*").is_ok());
        assert!(parse_pattern("device.online").is_ok());
        assert!(parse_pattern("nope.*").is_err());
        assert!(parse_pattern("rollout.finished").is_err());
    }
}
