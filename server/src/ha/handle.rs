//! What the rest of the server holds of the Home Assistant task: a handle to say what
//! changed, and the receiving ends the task is made from. Apart from the task, so that the
//! shared state can hold the handle without depending on the task.

use std::sync::Arc;

use fleet_protocol::DeviceId;
use tokio::sync::{Notify, mpsc};

/// How the rest of the server tells the task what changed.
#[derive(Debug, Clone)]
pub struct HaHandle {
    /// A device that may have changed (or was removed).
    pub devices: mpsc::UnboundedSender<DeviceId>,
    /// Firmware was uploaded or deleted: look at every device.
    pub sweep: Arc<Notify>,
}

impl HaHandle {
    pub fn device_changed(&self, id: &DeviceId) {
        let _ = self.devices.send(id.clone());
    }

    pub fn firmware_changed(&self) {
        self.sweep.notify_one();
    }
}

/// The receiving ends, until the shared state exists to make the task.
#[derive(Debug)]
pub struct HaInputs {
    pub(super) devices: mpsc::UnboundedReceiver<DeviceId>,
    pub(super) sweep: Arc<Notify>,
    pub(super) allow_install: bool,
}

/// A handle and its inputs; `allow_install`: `--ha-allow-install`.
pub fn channels(allow_install: bool) -> (HaHandle, HaInputs) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sweep = Arc::new(Notify::new());
    (HaHandle { devices: tx, sweep: sweep.clone() }, HaInputs { devices: rx, sweep, allow_install })
}
