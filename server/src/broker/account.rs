//! Who a broker login is, and what it may reach: one rule for every broker (the embedded
//! one's hooks, Mosquitto's files, EMQX's HTTP hooks).
//!
//! - A device: username = client id = device id, password = its token; its own topics only.
//! - An operator account (CONTRACT §10): username = client id = `op:{token name}`,
//!   password = an operator token created with `"mqtt": true`; it reads events, presence
//!   and the Home Assistant topics (with `--ha-discovery`, also the discovery prefix that
//!   [`Topics::ha_prefix`] carries), and publishes only Home Assistant install commands.

use fleet_protocol::DeviceId;
use fleet_protocol::topic::{OPERATOR_USER_PREFIX, Topics};

use crate::store::TokenOwner;

/// A broker login other than the server's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    Device(DeviceId),
    /// The operator token's name.
    Operator(String),
}

impl Account {
    /// The account a username names; `None` for anything else.
    pub fn parse(username: &str) -> Option<Self> {
        match username.strip_prefix(OPERATOR_USER_PREFIX) {
            Some(name) if !name.is_empty() => Some(Self::Operator(name.to_owned())),
            Some(_) => None,
            None => DeviceId::parse(username).ok().map(Self::Device),
        }
    }

    /// The client id this account must connect with: its username.
    pub fn client_id(&self) -> String {
        match self {
            Self::Device(d) => d.to_string(),
            Self::Operator(name) => format!("{OPERATOR_USER_PREFIX}{name}"),
        }
    }

    /// Whether the token's owner is this account: the device itself, or the operator token
    /// of this name created for MQTT.
    pub fn owns(&self, owner: Option<&TokenOwner>) -> bool {
        match (self, owner) {
            (Self::Device(d), Some(TokenOwner::Device(owner))) => owner == d,
            (Self::Operator(name), Some(TokenOwner::Operator(t))) => &t.name == name && t.mqtt,
            _ => false,
        }
    }

    pub fn may_subscribe(&self, topics: &Topics, filter: &str) -> bool {
        match self {
            Self::Device(d) => topics.device_may_subscribe(d, filter),
            Self::Operator(_) => topics.operator_may_subscribe(filter),
        }
    }

    pub fn may_publish(&self, topics: &Topics, topic: &str) -> bool {
        match self {
            Self::Device(d) => topics.device_may_publish(d, topic),
            Self::Operator(_) => topics.operator_may_publish(topic),
        }
    }
}
