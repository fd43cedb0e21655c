//! Home Assistant MQTT discovery (CONTRACT §10, `--ha-discovery`): every device appears in
//! Home Assistant as a firmware `update` entity.
//!
//! - [`payload`]: the discovery config and the update state (pure).
//! - [`newest`]: the newest firmware for a product and hardware, which the entity offers.
//! - [`publish`]: publishing configs and states retained, only what changed; clearing the
//!   entity of a removed device.
//! - [`handle`]: how the rest of the server tells the task what changed.
//! - [`install`]: the Install button, a one-device rollout with `--ha-allow-install`.
//!
//! Which devices to look at comes from the same change detection as the device events: the
//! announcer passes on every device it looks at ([`HaHandle::devices`]), at most once a
//! second each, and the task looks at it at once; registering and removing a device say so
//! directly. Firmware uploads and deletions change what every
//! device is offered, so they ask for a sweep over all devices ([`HaHandle::sweep`]); a
//! sweep also runs at start and every [`SWEEP_EVERY`], which covers other replicas' changes.

pub mod handle;
pub mod install;
pub mod newest;
pub mod payload;
pub mod publish;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::handle::{HaHandle, HaInputs, channels};
use crate::mqtt::HaCommand;
use crate::state::AppState;

/// How often every device is looked at regardless.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl HaInputs {
    /// The task, with the server's state and the install commands from the MQTT client.
    pub fn task(self, app: AppState, commands: mpsc::UnboundedReceiver<HaCommand>) -> HaTask {
        let publisher = publish::Publisher::new(app.store.clone(), app.mqtt.clone(), app.topics.clone());
        HaTask { app, publisher, inputs: self, commands }
    }
}

/// The Home Assistant task.
#[derive(Debug)]
pub struct HaTask {
    app: AppState,
    publisher: publish::Publisher,
    inputs: HaInputs,
    commands: mpsc::UnboundedReceiver<HaCommand>,
}

impl HaTask {
    pub async fn run(mut self, stop: CancellationToken) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        let wake = self.inputs.sweep.clone();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = sweep.tick() => self.sweep().await,
                () = wake.notified() => self.sweep().await,
                Some(id) = self.inputs.devices.recv() => {
                    if let Err(e) = self.publisher.device(&id).await {
                        tracing::warn!(device = %id, "Home Assistant state: {e}");
                    }
                }
                Some(command) = self.commands.recv() => {
                    install::handle_and_log(&self.app, self.inputs.allow_install, &command).await;
                    self.app.mqtt.ack(&command.publish).await;
                }
            }
        }
    }

    async fn sweep(&mut self) {
        if let Err(e) = self.publisher.sweep().await {
            tracing::warn!("Home Assistant discovery sweep: {e}");
        }
    }
}
