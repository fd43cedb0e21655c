//! Keeping the trust document current (CONTRACT §11): an announcement on `{root}/trust`
//! (or the server's `GET /trust`, asked before an update is judged) that claims a higher
//! version makes the agent fetch every version after its own, in order, with its device
//! token, and apply each by TUF's rule ([`Trust::apply`]). A claimed version below its own
//! is refused as `trust_rollback`. A refusal is reported as `rejected` with the reason and
//! no rollout (`rollout_id: null`); the document in force stays.

use fleet_protocol::Envelope;
use fleet_protocol::state::DeviceState;

use crate::device::Device;
use crate::http::{Http, with_causes};
use crate::install::Installer;
use crate::runner::Runner;
use crate::trust::{self, ApplyError, Trust};

/// Why a version could not be fetched (logged; tried again at the next announcement).
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Transport(String),
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error("not an envelope: {0}")]
    Envelope(String),
}

impl<I: Installer> Runner<I> {
    /// A trust announcement: its claimed version decides what happens.
    pub(crate) async fn on_trust_announced(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let Some(own) = self.trust.as_ref().map(Trust::version) else {
            return Ok(());
        };
        match trust::announced_version(bytes) {
            None => tracing::warn!("ignoring a malformed trust announcement"),
            Some(v) if v < own => {
                tracing::warn!(announced = v, own, "refusing an older trust document");
                self.report_trust_refusal(fleet_protocol::state::Reason::TrustRollback).await?;
            }
            Some(v) if v == own => {}
            Some(v) => self.catch_up(v).await?,
        }
        Ok(())
    }

    /// Asks the server for its latest version and catches up with it (before an update).
    pub(crate) async fn catch_up_with_server(&mut self) -> anyhow::Result<()> {
        let Some(own) = self.trust.as_ref().map(Trust::version) else {
            return Ok(());
        };
        match fetch(&self.device, &self.http, fleet_protocol::paths::TRUST).await {
            Ok(latest) => match fleet_protocol::trust::claimed_version(&latest) {
                Some(v) if v > own => self.catch_up(v).await,
                _ => Ok(()),
            },
            Err(FetchError::Status(reqwest::StatusCode::NOT_FOUND)) => Ok(()),
            Err(e) => {
                tracing::warn!("asking for the latest trust document: {e}");
                Ok(())
            }
        }
    }

    /// Fetches and applies every version after its own up to `target`, in order; stops at
    /// the first that cannot be fetched or is refused.
    async fn catch_up(&mut self, target: u64) -> anyhow::Result<()> {
        while let Some(next) = self.trust.as_ref().map(|t| t.version() + 1).filter(|n| *n <= target) {
            let envelope = match fetch(&self.device, &self.http, &fleet_protocol::paths::trust_version(next)).await {
                Ok(envelope) => envelope,
                Err(e) => {
                    tracing::warn!(version = next, "fetching a trust document: {e}");
                    return Ok(());
                }
            };
            let now = self.trust_clock();
            let Some(trust) = self.trust.as_mut() else {
                return Ok(());
            };
            match trust.apply(&envelope, now) {
                Ok(version) => tracing::info!(version, "trust document applied"),
                Err(ApplyError::Refused(e)) => {
                    tracing::warn!(version = next, "refusing a trust document: {e}");
                    return self.report_trust_refusal(trust::reason_of(&e)).await;
                }
                Err(e @ ApplyError::Io(_)) => return Err(e.into()),
            }
        }
        // The new version goes to the server with the next report.
        self.report_journal(false).await
    }

    /// The later of the clock and the newest `created_at` verified.
    fn trust_clock(&self) -> time::OffsetDateTime {
        let floor = self.journal.time_floor.max(self.device.now());
        time::OffsetDateTime::from_unix_timestamp(floor).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    async fn report_trust_refusal(&mut self, reason: fleet_protocol::state::Reason) -> anyhow::Result<()> {
        self.report(None, DeviceState::Rejected, Some(reason), None, false).await
    }
}

/// One envelope from the server, with the device token.
async fn fetch(device: &Device, http: &Http, path: &str) -> Result<Envelope, FetchError> {
    let url = device.api(path);
    let _turn = http.turn().await;
    let response = http
        .client()
        .get(url)
        .bearer_auth(&device.token)
        .send()
        .await
        .map_err(|e| FetchError::Transport(with_causes(&e)))?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    let bytes = response.bytes().await.map_err(|e| FetchError::Transport(with_causes(&e)))?;
    Envelope::from_json(&bytes).map_err(|e| FetchError::Envelope(e.to_string()))
}
