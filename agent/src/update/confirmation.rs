//! Confirming a command over HTTP before acting on it: `GET /devices/{id}/command` must
//! return this very command (CONTRACT §6).

use fleet_protocol::message::Command;

use crate::device::Device;
use crate::http::{Http, LOCAL_PAUSE, LocalError, with_causes};

/// How often a confirmation is asked again when this process could not send it.
const LOCAL_RETRIES: u32 = 30;

/// Whether the server confirms `command`. When this process is out of descriptors (a
/// simulator's own limit), it asks again after [`LOCAL_PAUSE`], up to [`LOCAL_RETRIES`]
/// times: that is not the server refusing.
pub async fn confirm(device: &Device, http: &Http, command: &Command) -> bool {
    for _ in 0..LOCAL_RETRIES {
        match ask(device, http, command).await {
            Ok(confirmed) => return confirmed,
            Err(local) => {
                tracing::warn!("confirmation not sent: {local}; trying again in {LOCAL_PAUSE:?}");
                tokio::time::sleep(LOCAL_PAUSE).await;
            }
        }
    }
    false
}

/// One confirmation request, at the HTTP gate's turn: whether the server returned this very
/// command, or `Err` when this process could not send it for want of descriptors.
async fn ask(device: &Device, http: &Http, command: &Command) -> Result<bool, LocalError> {
    let url = device.api(&fleet_protocol::paths::device_command(device.id.as_str()));
    let _turn = http.turn().await;
    let response = http.client().get(url).bearer_auth(&device.token).send().await;
    match response {
        Ok(r) if r.status() == reqwest::StatusCode::OK => Ok(r.json::<Command>().await.is_ok_and(|c| &c == command)),
        Ok(r) => {
            tracing::debug!(status = %r.status(), "confirmation refused");
            Ok(false)
        }
        Err(e) => match LocalError::of(&e) {
            Some(local) => Err(local),
            None => {
                tracing::warn!("confirmation failed: {}", with_causes(&e));
                Ok(false)
            }
        },
    }
}
