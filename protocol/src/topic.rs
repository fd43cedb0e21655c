//! MQTT topics (CONTRACT §4). The only place a topic string is formatted or parsed.
//!
//! `{root}/devices/{device_id}/commands|status|presence`, root `fleet` by default.

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

/// Builds and parses topics under one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    root: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT)
    }
}

impl Topics {
    /// A root made of plain topic levels (no wildcards, no leading or trailing `/`).
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn device(&self, id: &DeviceId, channel: Channel) -> String {
        format!("{}/devices/{}/{}", self.root, id, channel.as_str())
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

    /// The filter matching one channel of every device.
    pub fn all(&self, channel: Channel) -> String {
        format!("{}/devices/+/{}", self.root, channel.as_str())
    }

    /// The same filter in a shared-subscription group: `$share/{group}/…`.
    pub fn shared(&self, group: &str, channel: Channel) -> String {
        format!("$share/{group}/{}", self.all(channel))
    }

    /// Splits a concrete topic into its device and channel; `None` for anything else.
    pub fn parse(&self, topic: &str) -> Option<(DeviceId, Channel)> {
        let rest = topic.strip_prefix(&self.root)?.strip_prefix("/devices/")?;
        let (id, channel) = rest.split_once('/')?;
        Some((DeviceId::parse(id).ok()?, Channel::parse(channel)?))
    }
}

/// Why a broker URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    #[error("{0}: expected mqtt://HOST[:PORT]")]
    Shape(String),
    #[error("{0}: bad port")]
    Port(String),
    #[error("{0}: mqtts:// (TLS) is not built yet in this release")]
    Tls(String),
}

/// Parses `mqtt://HOST[:PORT]` (port 1883 when left out) into host and port.
pub fn parse_broker_url(url: &str) -> Result<(String, u16), BrokerUrlError> {
    if url.starts_with("mqtts://") {
        return Err(BrokerUrlError::Tls(url.into()));
    }
    let rest = url.strip_prefix("mqtt://").ok_or_else(|| BrokerUrlError::Shape(url.into()))?.trim_end_matches('/');
    if rest.is_empty() {
        return Err(BrokerUrlError::Shape(url.into()));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), port.parse().map_err(|_| BrokerUrlError::Port(url.into()))?)),
        None => Ok((rest.to_owned(), 1883)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn broker_urls() {
        assert_eq!(parse_broker_url("mqtt://127.0.0.1:1884"), Ok(("127.0.0.1".into(), 1884)));
        assert_eq!(parse_broker_url("mqtt://broker/"), Ok(("broker".into(), 1883)));
        assert!(matches!(parse_broker_url("http://x"), Err(BrokerUrlError::Shape(_))));
        assert!(matches!(parse_broker_url("mqtt://x:port"), Err(BrokerUrlError::Port(_))));
        assert!(matches!(parse_broker_url("mqtts://x"), Err(BrokerUrlError::Tls(_))));
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
