//! MQTT topics (CONTRACT §4). The only place a topic string is formatted or parsed.
//!
//! `{root}/devices/{device_id}/commands|status|presence`, root `fleet` by default;
//! `{root}/trust` (CONTRACT §11); the event topics `{root}/events/rollouts/{id}` and
//! `{root}/events/devices/{id}`, the Home Assistant topics (`{root}/ha/{id}/state|install`
//! and, with a discovery prefix, `{prefix}/update/{object_id}/config`) and what an operator
//! account may reach (CONTRACT §10).

use crate::DeviceId;

/// The default topic root.
pub const DEFAULT_ROOT: &str = "fleet";

/// The three per-device channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Commands,
    Status,
    Presence,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Commands => "commands",
            Self::Status => "status",
            Self::Presence => "presence",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "commands" => Some(Self::Commands),
            "status" => Some(Self::Status),
            "presence" => Some(Self::Presence),
            _ => None,
        }
    }
}

/// Builds and parses topics under one root (and Home Assistant's discovery prefix, when
/// discovery is on: a second root the server writes and operator accounts read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    root: String,
    ha_prefix: Option<String>,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT)
    }
}

impl Topics {
    /// A root made of plain topic levels (no wildcards, no leading or trailing `/`).
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into(), ha_prefix: None }
    }

    /// The same topics with Home Assistant discovery under `prefix` (`None`: off).
    pub fn with_ha_prefix(self, prefix: Option<String>) -> Self {
        Self { ha_prefix: prefix, ..self }
    }

    /// Home Assistant's discovery prefix, when discovery is on.
    pub fn ha_prefix(&self) -> Option<&str> {
        self.ha_prefix.as_deref()
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn device(&self, id: &DeviceId, channel: Channel) -> String {
        self.device_pattern(id.as_str(), channel)
    }

    /// A device's topic with a placeholder for its id, e.g. Mosquitto's `%u`.
    pub fn device_pattern(&self, placeholder: &str, channel: Channel) -> String {
        format!("{}/devices/{}/{}", self.root, placeholder, channel.as_str())
    }

    pub fn commands(&self, id: &DeviceId) -> String {
        self.device(id, Channel::Commands)
    }

    pub fn status(&self, id: &DeviceId) -> String {
        self.device(id, Channel::Status)
    }

    pub fn presence(&self, id: &DeviceId) -> String {
        self.device(id, Channel::Presence)
    }

    /// `{root}/trust`: the latest trust document, retained; devices read it, only the
    /// server writes it (CONTRACT §11).
    pub fn trust(&self) -> String {
        format!("{}/trust", self.root)
    }

    /// The filter matching one channel of every device.
    pub fn all(&self, channel: Channel) -> String {
        format!("{}/devices/+/{}", self.root, channel.as_str())
    }

    /// The same filter in a shared-subscription group: `$share/{group}/…`.
    pub fn shared(&self, group: &str, channel: Channel) -> String {
        format!("$share/{group}/{}", self.all(channel))
    }

    /// The isolation rule every broker enforces: a device subscribes only to its own
    /// commands and to the trust announcement (the exact topics, no wildcards).
    pub fn device_may_subscribe(&self, device: &DeviceId, filter: &str) -> bool {
        filter == self.device(device, Channel::Commands) || filter == self.trust()
    }

    /// The isolation rule every broker enforces: a device publishes only its own status and
    /// presence.
    pub fn device_may_publish(&self, device: &DeviceId, topic: &str) -> bool {
        self.parse(topic).is_some_and(|(d, ch)| &d == device && matches!(ch, Channel::Status | Channel::Presence))
    }

    /// Splits a concrete topic into its device and channel; `None` for anything else.
    pub fn parse(&self, topic: &str) -> Option<(DeviceId, Channel)> {
        let rest = topic.strip_prefix(&self.root)?.strip_prefix("/devices/")?;
        let (id, channel) = rest.split_once('/')?;
        Some((DeviceId::parse(id).ok()?, Channel::parse(channel)?))
    }
}

/// The username prefix of operator MQTT accounts: `op:{token name}` (CONTRACT §10).
pub const OPERATOR_USER_PREFIX: &str = "op:";

/// The event topics and the operator account's rules (CONTRACT §10).
impl Topics {
    /// `{root}/events/rollouts/{id}`: the rollout's body, retained.
    pub fn rollout_events(&self, rollout_id: &str) -> String {
        format!("{}/events/rollouts/{rollout_id}", self.root)
    }

    /// `{root}/events/devices/{id}`: the device's event body, retained.
    pub fn device_events(&self, id: &DeviceId) -> String {
        format!("{}/events/devices/{id}", self.root)
    }

    /// `{root}/ha/{id}/install`: Home Assistant's install command for one device (`+`: the
    /// filter matching every device's).
    pub fn ha_install(&self, id: &str) -> String {
        format!("{}/ha/{id}/install", self.root)
    }

    /// `{root}/ha/{id}/state`: the device's Home Assistant update state (JSON, retained).
    pub fn ha_state(&self, id: &DeviceId) -> String {
        format!("{}/ha/{id}/state", self.root)
    }

    /// The device an install command topic names; `None` for anything else.
    pub fn parse_ha_install(&self, topic: &str) -> Option<DeviceId> {
        let rest = topic.strip_prefix(&self.root)?.strip_prefix("/ha/")?;
        DeviceId::parse(rest.strip_suffix("/install")?).ok()
    }

    /// `{prefix}/update/{object_id}/config`: a device's discovery config, when discovery is on.
    pub fn ha_config(&self, device: &DeviceId) -> Option<String> {
        Some(format!("{}/update/{}/config", self.ha_prefix.as_deref()?, ha_object_id(device)))
    }

    /// The filters an operator account may subscribe within: every event, every device's
    /// presence, the Home Assistant topics and, when discovery is on, its prefix.
    pub fn operator_filters(&self) -> Vec<String> {
        let mut filters =
            vec![format!("{}/events/#", self.root), self.all(Channel::Presence), format!("{}/ha/#", self.root)];
        filters.extend(self.ha_prefix.as_deref().map(|p| format!("{p}/#")));
        filters
    }

    /// Whether an operator account may subscribe to `filter`: it must lie within one of
    /// [`Topics::operator_filters`] (a narrower filter is fine, a wider one is not).
    pub fn operator_may_subscribe(&self, filter: &str) -> bool {
        self.operator_filters().iter().any(|allowed| filter_within(filter, allowed))
    }

    /// Whether an operator account may publish to `topic`: only `{root}/ha/{device}/install`.
    pub fn operator_may_publish(&self, topic: &str) -> bool {
        self.parse_ha_install(topic).is_some()
    }
}

/// The Home Assistant `object_id` and `unique_id` of a device's firmware entity:
/// `fleet_{id}_firmware`, every character of the id outside `[A-Za-z0-9_-]` replaced by `_`
/// (Home Assistant's discovery topics allow only those).
pub fn ha_object_id(device: &DeviceId) -> String {
    let safe = |c: char| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' };
    format!("fleet_{}_firmware", device.as_str().chars().map(safe).collect::<String>())
}

/// Whether every topic `filter` matches is also matched by `allowed` (both MQTT filters).
pub fn filter_within(filter: &str, allowed: &str) -> bool {
    let (mut f, mut a) = (filter.split('/'), allowed.split('/'));
    loop {
        match (f.next(), a.next()) {
            (_, Some("#")) => return true,
            (None, None) => return true,
            (Some(fl), Some("+")) if fl != "#" => {}
            (Some(fl), Some(al)) if fl == al && fl != "+" && fl != "#" => {}
            _ => return false,
        }
    }
}

/// Why a broker URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    #[error("{0}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")]
    Shape(String),
    #[error("{0}: bad port")]
    Port(String),
}

/// A parsed `mqtt://` or `mqtts://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: MQTT over TLS.
    pub tls: bool,
}

impl BrokerUrl {
    /// Whether the broker is on this machine (so cleartext never leaves it).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

/// `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses `mqtt://HOST[:PORT]` (port 1883 when left out) or `mqtts://HOST[:PORT]` (8883).
pub fn parse_broker_url(url: &str) -> Result<BrokerUrl, BrokerUrlError> {
    let (rest, tls, default_port) = if let Some(rest) = url.strip_prefix("mqtts://") {
        (rest, true, 8883)
    } else if let Some(rest) = url.strip_prefix("mqtt://") {
        (rest, false, 1883)
    } else {
        return Err(BrokerUrlError::Shape(url.into()));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => {
            (host, port.parse().map_err(|_| BrokerUrlError::Port(url.into()))?)
        }
        _ => (rest, default_port),
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err(BrokerUrlError::Shape(url.into()));
    }
    Ok(BrokerUrl { host: host.to_owned(), port, tls })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn operator_accounts_reach_events_presence_and_ha_only() {
        let t = Topics::default();
        let ha = Topics::default().with_ha_prefix(Some("homeassistant".into()));
        for ok in [
            "fleet/events/#",
            "fleet/events/rollouts/+",
            "fleet/events/devices/d1",
            "fleet/devices/+/presence",
            "fleet/devices/d1/presence",
            "fleet/ha/#",
            "homeassistant/update/x/config",
        ] {
            assert!(ha.operator_may_subscribe(ok), "{ok}");
        }
        for no in [
            "#",
            "fleet/#",
            "fleet/+/rollouts/x",
            "fleet/devices/+/commands",
            "fleet/devices/#",
            "fleet/devices/d1/status",
            "homeassistant/#",
            "$SYS/#",
        ] {
            assert!(!t.operator_may_subscribe(no), "{no}");
        }
        assert!(ha.operator_may_subscribe("homeassistant/#"), "the whole prefix once discovery is on");
        assert!(t.operator_may_publish("fleet/ha/dev-1/install"));
        assert!(!t.operator_may_publish("fleet/ha/+/install"));
        assert!(!t.operator_may_publish("fleet/devices/dev-1/commands"));
        assert!(!t.device_may_subscribe(&DeviceId::parse("d1").unwrap(), "fleet/events/#"));
    }

    #[test]
    fn home_assistant_topics() {
        let t = Topics::new("acme").with_ha_prefix(Some("ha".into()));
        let id = DeviceId::parse("dev.1").unwrap();
        assert_eq!(t.ha_state(&id), "acme/ha/dev.1/state");
        assert_eq!(t.ha_config(&id).as_deref(), Some("ha/update/fleet_dev_1_firmware/config"));
        assert_eq!(t.parse_ha_install("acme/ha/dev.1/install"), Some(id.clone()));
        for not in ["acme/ha/dev.1/state", "acme/ha/+/install", "fleet/ha/dev.1/install"] {
            assert_eq!(t.parse_ha_install(not), None, "{not}");
        }
        assert_eq!(Topics::new("acme").ha_config(&id), None, "discovery off");
        assert_eq!(ha_object_id(&DeviceId::parse("Gw_1-a.b").unwrap()), "fleet_Gw_1-a_b_firmware");
    }

    #[test]
    fn broker_urls() {
        let url = |host: &str, port, tls| BrokerUrl { host: host.into(), port, tls };
        assert_eq!(parse_broker_url("mqtt://127.0.0.1:1884"), Ok(url("127.0.0.1", 1884, false)));
        assert_eq!(parse_broker_url("mqtt://broker/"), Ok(url("broker", 1883, false)));
        assert_eq!(parse_broker_url("mqtts://broker"), Ok(url("broker", 8883, true)));
        assert_eq!(parse_broker_url("mqtts://broker:18883"), Ok(url("broker", 18883, true)));
        assert!(matches!(parse_broker_url("http://x"), Err(BrokerUrlError::Shape(_))));
        assert!(matches!(parse_broker_url("mqtt://"), Err(BrokerUrlError::Shape(_))));
        assert!(matches!(parse_broker_url("mqtt://user@x"), Err(BrokerUrlError::Shape(_))));
        assert!(matches!(parse_broker_url("mqtt://x:port"), Err(BrokerUrlError::Port(_))));
        assert!(parse_broker_url("mqtt://127.0.0.1").unwrap().is_loopback());
        assert!(parse_broker_url("mqtt://localhost:1").unwrap().is_loopback());
        assert!(!parse_broker_url("mqtts://10.0.0.1").unwrap().is_loopback());
    }

    #[test]
    fn contract_topics() {
        let t = Topics::default();
        let id = DeviceId::parse("dev-1").unwrap();
        assert_eq!(t.commands(&id), "fleet/devices/dev-1/commands");
        assert_eq!(t.status(&id), "fleet/devices/dev-1/status");
        assert_eq!(t.presence(&id), "fleet/devices/dev-1/presence");
        assert_eq!(t.all(Channel::Status), "fleet/devices/+/status");
        assert_eq!(t.shared("g", Channel::Status), "$share/g/fleet/devices/+/status");
    }

    #[test]
    fn devices_stay_in_their_own_topics() {
        let t = Topics::default();
        let (a, b) = (DeviceId::parse("a").unwrap(), DeviceId::parse("b").unwrap());
        assert!(t.device_may_subscribe(&a, "fleet/devices/a/commands"));
        assert!(t.device_may_subscribe(&a, "fleet/trust"), "every device reads the trust announcement");
        for filter in [
            "fleet/devices/b/commands",
            "fleet/devices/+/commands",
            "fleet/#",
            "#",
            "fleet/devices/a/status",
            "fleet/+",
        ] {
            assert!(!t.device_may_subscribe(&a, filter), "{filter}");
        }
        assert!(t.device_may_publish(&a, "fleet/devices/a/status"));
        assert!(t.device_may_publish(&a, "fleet/devices/a/presence"));
        for topic in
            ["fleet/devices/b/status", "fleet/devices/a/commands", "fleet/devices/+/status", "other", "fleet/trust"]
        {
            assert!(!t.device_may_publish(&a, topic), "{topic}");
        }
        assert!(!t.device_may_publish(&b, "fleet/devices/a/presence"));
    }

    #[test]
    fn parse_refuses_foreign_shapes() {
        let t = Topics::default();
        for bad in [
            "fleet/devices/dev-1",
            "fleet/devices/dev-1/status/x",
            "fleet/devices/+/status",
            "other/devices/dev-1/status",
            "fleet/devices//status",
            "fleet/devices/dev-1/reboot",
        ] {
            assert_eq!(t.parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(id in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}", ch in 0..3usize) {
            let t = Topics::new("acme/fleet");
            let channel = [Channel::Commands, Channel::Status, Channel::Presence][ch];
            let id = DeviceId::parse(id).unwrap();
            prop_assert_eq!(t.parse(&t.device(&id, channel)), Some((id, channel)));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,100}") {
            let _ = Topics::default().parse(&s);
        }
    }
}
