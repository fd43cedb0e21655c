//! The delivery task: claims due deliveries from the outbox under a lease (no other
//! replica sends them meanwhile), sends each in its own task with a timeout, and records
//! how it went: 2xx delivered; 410 disables the webhook; anything else (or no answer) is
//! tried again after the next step of [`BACKOFF`], and given up after its last step.
//! Nothing here is on the path of a rollout: a slow or dead endpoint only holds its own
//! deliveries. Finished deliveries are kept [`KEEP_FINISHED`], then removed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::sign::signature;
use crate::store::Store;
use crate::store::events::{Attempt, DeliveryRecord};

/// Waits before the 2nd, 3rd, … attempt (Standard Webhooks' suggested schedule); after
/// the last attempt fails, the delivery is `failed`.
pub const BACKOFF: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// One attempt's limit, connecting and answering included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim holds a delivery from other replicas (longer than an attempt).
const LEASE: Duration = Duration::from_secs(30);
/// Attempts under way at once.
const PARALLEL: usize = 32;
const POLL: Duration = Duration::from_secs(1);
/// Finished deliveries are kept this long (to be shown), then removed.
pub const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often finished deliveries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The delivery task's state.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    /// This replica's name on its leases.
    pub owner: String,
    pub wake: Arc<Notify>,
}

/// An HTTP client for deliveries: the ring TLS provider with the system's roots, no
/// redirects (a signed body goes only where it was registered to).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    fleet_protocol::tls::install_default_provider();
    reqwest::Client::builder().timeout(TIMEOUT).redirect(reqwest::redirect::Policy::none()).build()
}

impl Deliverer {
    /// Delivers until `stop`; then gives up its claims (an attempt cut short is sent again:
    /// at least once).
    pub async fn run(self, stop: CancellationToken) {
        self.deliver(&stop).await;
        if let Err(e) = self.store.release_deliveries(&self.owner).await {
            tracing::warn!("releasing webhook deliveries: {e}");
        }
    }

    async fn deliver(&self, stop: &CancellationToken) {
        let slots = Arc::new(Semaphore::new(PARALLEL));
        let mut pruned: Option<tokio::time::Instant> = None;
        while !stop.is_cancelled() {
            if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned = Some(tokio::time::Instant::now());
                self.prune().await;
            }
            let claimed = match self.claim(slots.available_permits()).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("claiming webhook deliveries: {e}");
                    Vec::new()
                }
            };
            let full = !claimed.is_empty() && claimed.len() == slots.available_permits();
            for d in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let me = self.clone();
                tokio::spawn(async move {
                    me.attempt(d).await;
                    drop(permit);
                });
            }
            if !full {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    async fn prune(&self) {
        let before = crate::clock::now_ms() - KEEP_FINISHED.as_millis() as i64;
        match self.store.prune_deliveries(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "finished webhook deliveries older than 7 days removed"),
            Err(e) => tracing::warn!("pruning webhook deliveries: {e}"),
        }
    }

    async fn claim(&self, room: usize) -> crate::store::StoreResult<Vec<DeliveryRecord>> {
        if room == 0 {
            return Ok(Vec::new());
        }
        let now = self.store.now_ms().await?;
        let until = now + LEASE.as_millis() as i64;
        self.store.claim_deliveries(&self.owner, now, until, room as i64).await
    }

    /// Sends one delivery and records the outcome.
    async fn attempt(&self, d: DeliveryRecord) {
        let outcome = match self.store.get_webhook(&d.webhook_id).await {
            Ok(w) => self.send(&w.url, &w.secret, &d).await,
            Err(e) => Err(format!("webhook: {e}")),
        };
        let now = crate::clock::now_ms();
        let attempt = judge(outcome, d.attempts + 1, now);
        if let Err(e) = self.store.finish_delivery(&d.id, &self.owner, &attempt, now).await {
            tracing::warn!(delivery = %d.id, "recording a webhook delivery: {e}");
        }
    }

    /// The endpoint's status, or why there is none.
    async fn send(&self, url: &str, secret: &str, d: &DeliveryRecord) -> Result<u16, String> {
        let timestamp = crate::clock::now_ms() / 1000;
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature(secret, &d.id, timestamp, &d.body))
            .body(d.body.clone())
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status().as_u16())
    }
}

/// What an attempt (the `attempts`th) that ended with `outcome` leaves behind.
pub fn judge(outcome: Result<u16, String>, attempts: i64, now: i64) -> Attempt {
    let retry_at = BACKOFF.get(attempts as usize - 1).map(|d| now + d.as_millis() as i64);
    let (status, error) = match &outcome {
        Ok(s) => (Some(i64::from(*s)), (!(200..300).contains(s)).then(|| format!("HTTP {s}"))),
        Err(e) => (None, Some(e.clone())),
    };
    let (state, next) = match outcome {
        Ok(s) if (200..300).contains(&s) => ("delivered", now),
        Ok(410) => ("failed", now),
        _ => retry_at.map_or(("failed", now), |at| ("pending", at)),
    };
    Attempt { status, error, state, next_attempt_at_ms: next, disable: outcome == Ok(410) }
}

/// A short reason without the URL (which may carry a secret in its query).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {}s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(judge(Ok(204), 1, 0).state, "delivered");
        let retry = judge(Ok(500), 1, 0);
        assert_eq!((retry.state, retry.next_attempt_at_ms, retry.disable), ("pending", 5000, false));
        assert_eq!(judge(Err("could not connect".into()), 2, 0).next_attempt_at_ms, 300_000);
        assert_eq!(judge(Ok(500), 8, 0).state, "failed", "the last attempt gives up");
        let gone = judge(Ok(410), 1, 0);
        assert_eq!((gone.state, gone.disable), ("failed", true));
    }
}
