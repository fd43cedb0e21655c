//! How long a device's presence is believed: the agent's MQTT keep-alive, how often a
//! connected agent says `online` again, and the silence after which the server takes a
//! retained `online` for stale (docs/decisions.md, "Presence").
//!
//! The broker publishes a device's last will (`offline`) within 1.5 keep-alives of losing
//! it, and the agent says `offline` itself before a clean stop. What neither covers — an
//! `online` retained by a broker that outlived a server's restart while the device went
//! away, or an agent that stopped without saying so — the server ends by the silence bound.

use std::time::Duration;

/// The agent's MQTT keep-alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// How often a connected agent publishes its retained `online` again: four keep-alives.
pub const REFRESH: Duration = Duration::from_secs(4 * 30);

/// How long the server believes `online` without hearing from the device (a report or a
/// presence message): two refreshes, so one lost message is no false alarm, plus the 1.5
/// keep-alives a broker waits before it gives up on a connection.
pub const SILENCE_BOUND: Duration = Duration::from_secs(2 * 4 * 30 + 45);

/// The payloads of the retained `presence` topic.
pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_follows_the_keep_alive() {
        assert_eq!(REFRESH, KEEP_ALIVE * 4);
        assert_eq!(SILENCE_BOUND, REFRESH * 2 + KEEP_ALIVE * 3 / 2);
    }
}
