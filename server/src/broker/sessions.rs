//! Session limits of the embedded broker, per connection (an rmqtt "fitter"): a device gets
//! a clean session whatever it asks for (its session ends when it disconnects, so nothing
//! queues for it while it is away) and a small queue and in-flight window while it is
//! connected. The server's own client keeps the listener's large limits.
//!
//! Devices lose nothing by this: a command published while a device is away is sent again
//! when it reports `connect: true` (CONTRACT §4), so a device needs no stored session, and
//! a hostile one cannot make the broker hoard commands for it (issue: 100,000 queued
//! commands from one device that asked for a two-hour session and went offline).

use std::num::{NonZeroU16, NonZeroU32};
use std::sync::Arc;
use std::time::Duration;

use rmqtt::codec::types::Publish;
use rmqtt::fitter::{DefaultFitter, Fitter, FitterManager};
use rmqtt::types::{ConnectInfo, Disconnect, FitterType, Id, ListenerConfig};

/// Messages queued for a connected device beyond its in-flight window. A device has at
/// most one command and one cancel outstanding; the rest are re-sends it can do without.
pub const DEVICE_QUEUE_LEN: usize = 16;
/// Unacknowledged QoS 1 messages at a time, in both directions: rmqtt also announces it
/// as an MQTT 5 device's receive maximum, the window for the device's own reports. A few
/// commands need far less; a device's burst of reports needs more: at 8, 2,000 devices
/// sending reports as fast as they could got through a third fewer per second (fleet-bench
/// ingest, BENCHMARKS.md). A device that never acknowledges holds at most this many
/// commands plus [`DEVICE_QUEUE_LEN`].
pub const DEVICE_INFLIGHT: u16 = 64;

/// Creates each connection's [`SessionLimits`].
#[derive(Debug)]
pub struct SessionLimitsManager {
    pub server_username: String,
}

impl FitterManager for SessionLimitsManager {
    fn create(&self, conn_info: Arc<ConnectInfo>, id: Id, cfg: ListenerConfig) -> FitterType {
        let is_device = conn_info.username().is_none_or(|u| **u != *self.server_username);
        Arc::new(SessionLimits { is_device, default: DefaultFitter::new(conn_info, id, cfg) })
    }
}

/// The listener's limits, narrowed for devices.
struct SessionLimits {
    is_device: bool,
    default: DefaultFitter,
}

#[async_trait::async_trait]
impl Fitter for SessionLimits {
    fn keep_alive(&self, keep_alive: &mut u16) -> rmqtt::Result<u16> {
        self.default.keep_alive(keep_alive)
    }

    fn max_mqueue_len(&self) -> usize {
        if self.is_device { DEVICE_QUEUE_LEN } else { self.default.max_mqueue_len() }
    }

    fn mqueue_rate_limit(&self) -> (NonZeroU32, Duration) {
        self.default.mqueue_rate_limit()
    }

    fn max_inflight(&self) -> NonZeroU16 {
        let default = self.default.max_inflight();
        if self.is_device { default.min(NonZeroU16::new(DEVICE_INFLIGHT).expect("non-zero")) } else { default }
    }

    fn session_expiry_interval(&self, d: Option<&Disconnect>) -> Duration {
        if self.is_device { Duration::ZERO } else { self.default.session_expiry_interval(d) }
    }

    fn message_expiry_interval(&self, publish: &Publish) -> Duration {
        self.default.message_expiry_interval(publish)
    }

    fn max_client_topic_aliases(&self) -> u16 {
        self.default.max_client_topic_aliases()
    }

    fn max_server_topic_aliases(&self) -> u16 {
        self.default.max_server_topic_aliases()
    }
}
