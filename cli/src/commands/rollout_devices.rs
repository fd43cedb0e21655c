//! `fleetctl rollouts device cancel|retry|skip ROLLOUT DEVICE`: one device of a rollout.

use fleet_protocol::paths::RolloutDeviceAction;

use super::say;
use crate::ApiClient;
use crate::output::Format;

/// What to do to one device of a running or paused rollout.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Cancel the device: a pending one is not sent anything; one in flight is told to stop.
    Cancel {
        /// The rollout's id.
        rollout: String,
        /// The device's id.
        device: String,
    },
    /// Retry a failed or timed-out device: one more attempt, even with no attempts left.
    Retry {
        /// The rollout's id.
        rollout: String,
        /// The device's id.
        device: String,
    },
    /// Skip a pending device: it is cancelled with reason `skipped`.
    Skip {
        /// The rollout's id.
        rollout: String,
        /// The device's id.
        device: String,
    },
}

/// Acts and prints `device D in rollout R: cancelled (skipped)`, or the entry with `-o json`.
pub async fn run(client: &ApiClient, out: Format, cmd: &Command) -> anyhow::Result<()> {
    let (action, rollout, device) = match cmd {
        Command::Cancel { rollout, device } => (RolloutDeviceAction::Cancel, rollout, device),
        Command::Retry { rollout, device } => (RolloutDeviceAction::Retry, rollout, device),
        Command::Skip { rollout, device } => (RolloutDeviceAction::Skip, rollout, device),
    };
    let entry = client.control_rollout_device(rollout, device, action).await?;
    let reason = entry.reason.map(|r| format!(" ({})", r.as_str())).unwrap_or_default();
    say(out, format_args!("device {} in rollout {rollout}: {}{reason}", entry.device_id, entry.state), &entry)
}
