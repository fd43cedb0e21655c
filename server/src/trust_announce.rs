//! The trust announcement (CONTRACT §11): the latest trust document, retained on
//! `{root}/trust`, where devices read it. `POST /trust` only stores (and wakes this task);
//! this task publishes — at start, when woken, and when a periodic look finds a version it
//! has not announced (another replica stored it). Devices that see a higher version than
//! their own fetch every version after it over HTTP and verify each, so the announcement
//! itself needs no trust: it is a hint of what to fetch.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::mqtt::MqttLink;
use crate::store::Store;

/// How often the latest version is looked at without being woken.
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Announces the latest version whenever it changes, until `stop` is cancelled.
pub async fn run(store: Arc<dyn Store>, mqtt: Arc<MqttLink>, wake: Arc<Notify>, stop: CancellationToken) {
    let mut announced: Option<u64> = None;
    loop {
        match store.latest_trust().await {
            Ok(Some(latest)) if announced != Some(latest.version) => {
                mqtt.publish_trust(latest.envelope_json.into_bytes()).await;
                tracing::info!(version = latest.version, "trust document announced");
                announced = Some(latest.version);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("reading the latest trust document: {e}"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}
