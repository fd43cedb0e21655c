//! REST paths (CONTRACT §3). The only place the `/api/v1` prefix and the path of a
//! resource are formatted: the server mounts its routes under [`API_PREFIX`] and names blob
//! URLs with these builders; the agent, `fleetctl` and the tests call the same paths.
//!
//! Builders return paths relative to the prefix (`/devices/dev-1`); [`api_path`] puts the
//! prefix in front and [`api_url`] joins a server's base URL and a path.

use crate::ArtifactKind;

/// Every REST route but health, readiness and metrics lives under this prefix.
pub const API_PREFIX: &str = "/api/v1";

/// `/healthz`: liveness, outside the prefix.
pub const HEALTHZ: &str = "/healthz";

/// `/keys`: release keys.
pub const KEYS: &str = "/keys";
/// `/devices`: the inventory.
pub const DEVICES: &str = "/devices";
/// `/rollouts`.
pub const ROLLOUTS: &str = "/rollouts";
/// `/trust`: trust documents (the latest on GET).
pub const TRUST: &str = "/trust";
/// `/tokens`: operator tokens.
pub const TOKENS: &str = "/tokens";
/// `/webhooks`: event deliveries over HTTP (CONTRACT §10).
pub const WEBHOOKS: &str = "/webhooks";
/// `/audit`: the audit trail.
pub const AUDIT: &str = "/audit";
/// `/openapi.json`: the OpenAPI document.
pub const OPENAPI: &str = "/openapi.json";
/// `/broker/mosquitto/passwords`: the password file of a Mosquitto on another host.
pub const MOSQUITTO_PASSWORDS: &str = "/broker/mosquitto/passwords";
/// `/broker/mosquitto/acl`: the ACL file of a Mosquitto on another host.
pub const MOSQUITTO_ACL: &str = "/broker/mosquitto/acl";

/// The path segment of an artifact kind: `firmware` or `configs`.
pub fn kind_segment(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::Firmware => "firmware",
        ArtifactKind::Config => "configs",
    }
}

/// `/firmware` or `/configs`.
pub fn artifacts(kind: ArtifactKind) -> String {
    format!("/{}", kind_segment(kind))
}

/// `/firmware/{id}` or `/configs/{id}`.
pub fn artifact(kind: ArtifactKind, id: &str) -> String {
    format!("{}/{id}", artifacts(kind))
}

/// `/firmware/{id}/blob` or `/configs/{id}/blob`: the artifact's bytes.
pub fn artifact_blob(kind: ArtifactKind, id: &str) -> String {
    format!("{}/blob", artifact(kind, id))
}

/// `/keys/{keyid}`.
pub fn key(keyid: &str) -> String {
    format!("{KEYS}/{keyid}")
}

/// `/trust/{version}`: one trust document.
pub fn trust_version(version: u64) -> String {
    format!("{TRUST}/{version}")
}

/// `/devices/{id}`.
pub fn device(id: &str) -> String {
    format!("{DEVICES}/{id}")
}

/// `/devices/{id}/token`: rotating a device's token.
pub fn device_token(id: &str) -> String {
    format!("{}/token", device(id))
}

/// `/devices/{id}/command`: a device's current command.
pub fn device_command(id: &str) -> String {
    format!("{}/command", device(id))
}

/// `/rollouts/{id}`.
pub fn rollout(id: &str) -> String {
    format!("{ROLLOUTS}/{id}")
}

/// `/rollouts/{id}/devices`: the rollout's per-device entries.
pub fn rollout_devices(id: &str) -> String {
    format!("{}/devices", rollout(id))
}

/// `/rollouts/{id}/events`: the rollout's Server-Sent Events.
pub fn rollout_events(id: &str) -> String {
    format!("{}/events", rollout(id))
}

/// What an operator can do to a running or paused rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RolloutAction {
    Pause,
    Resume,
    Cancel,
}

impl RolloutAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }
}

/// `/rollouts/{id}/pause`, `/resume` or `/cancel`.
pub fn rollout_action(id: &str, action: RolloutAction) -> String {
    format!("{}/{}", rollout(id), action.as_str())
}

/// What an operator can do to one device of a running or paused rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RolloutDeviceAction {
    Cancel,
    Retry,
    Skip,
}

impl RolloutDeviceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Retry => "retry",
            Self::Skip => "skip",
        }
    }
}

/// `/rollouts/{id}/devices/{device_id}/cancel`, `/retry` or `/skip`.
pub fn rollout_device_action(id: &str, device_id: &str, action: RolloutDeviceAction) -> String {
    format!("{}/{device_id}/{}", rollout_devices(id), action.as_str())
}

/// `/tokens/{name}`.
pub fn token(name: &str) -> String {
    format!("{TOKENS}/{name}")
}

/// `/webhooks/{id}`.
pub fn webhook(id: &str) -> String {
    format!("{WEBHOOKS}/{id}")
}

/// `/webhooks/{id}/deliveries`.
pub fn webhook_deliveries(id: &str) -> String {
    format!("{}/deliveries", webhook(id))
}

/// `/api/v1{path}`: a path as the server serves it.
pub fn api_path(path: &str) -> String {
    format!("{API_PREFIX}{path}")
}

/// `{base}/api/v1{path}`; a trailing `/` on `base` is ignored.
pub fn api_url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), api_path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_use_the_kind_segment() {
        assert_eq!(artifacts(ArtifactKind::Firmware), "/firmware");
        assert_eq!(artifacts(ArtifactKind::Config), "/configs");
        assert_eq!(artifact(ArtifactKind::Config, "c1"), "/configs/c1");
        assert_eq!(artifact_blob(ArtifactKind::Firmware, "f1"), "/firmware/f1/blob");
    }

    #[test]
    fn resource_paths() {
        assert_eq!(key("ab12"), "/keys/ab12");
        assert_eq!(device("dev-1"), "/devices/dev-1");
        assert_eq!(device_token("dev-1"), "/devices/dev-1/token");
        assert_eq!(device_command("dev-1"), "/devices/dev-1/command");
        assert_eq!(rollout("r1"), "/rollouts/r1");
        assert_eq!(rollout_devices("r1"), "/rollouts/r1/devices");
        assert_eq!(rollout_events("r1"), "/rollouts/r1/events");
        assert_eq!(token("ci"), "/tokens/ci");
    }

    #[test]
    fn rollout_actions() {
        assert_eq!(rollout_action("r1", RolloutAction::Pause), "/rollouts/r1/pause");
        assert_eq!(rollout_action("r1", RolloutAction::Resume), "/rollouts/r1/resume");
        assert_eq!(rollout_action("r1", RolloutAction::Cancel), "/rollouts/r1/cancel");
        let device = |action| rollout_device_action("r1", "d1", action);
        assert_eq!(device(RolloutDeviceAction::Cancel), "/rollouts/r1/devices/d1/cancel");
        assert_eq!(device(RolloutDeviceAction::Retry), "/rollouts/r1/devices/d1/retry");
        assert_eq!(device(RolloutDeviceAction::Skip), "/rollouts/r1/devices/d1/skip");
    }

    #[test]
    fn urls_join_base_prefix_and_path() {
        assert_eq!(api_path(DEVICES), "/api/v1/devices");
        assert_eq!(api_url("http://h:8080", "/devices"), "http://h:8080/api/v1/devices");
        assert_eq!(api_url("https://h/", &device("d")), "https://h/api/v1/devices/d");
        assert_eq!(api_url("https://h//", AUDIT), "https://h/api/v1/audit");
    }
}
