//! What the runner does with an MQTT command, in the order of CONTRACT §6: parse, screen,
//! confirm with the server, admit or refuse.

use fleet_protocol::RolloutId;
use fleet_protocol::message::Command;
use fleet_protocol::state::{DeviceState, Reason};

use crate::install::Installer;
use crate::runner::Runner;
use crate::update::admission::{self, Decision, Screened};
use crate::update::journal::Final;
use crate::update::machine::Event;
use crate::update::{checks, confirmation};

impl<I: Installer> Runner<I> {
    /// An MQTT command, in the order of CONTRACT §6.
    pub(crate) async fn on_command(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let command: Command = match serde_json::from_slice(bytes) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("dropping a malformed command: {e}");
                return Ok(());
            }
        };
        let rollout = command.rollout_id().clone();
        match admission::screen(&command, &self.device.id, &self.journal) {
            Screened::Ignore => return Ok(()),
            Screened::NotMine => {
                tracing::warn!(device = %command.device_id(), "dropping a command for another device");
                return Ok(());
            }
            Screened::Cancel(rollout) => {
                self.queue.push_back(Event::Cancel(rollout));
                return Ok(());
            }
            Screened::Repeat { state, reason } => return self.report(Some(rollout), state, reason, None, false).await,
            Screened::Confirm => {}
        }
        // Only updates reach this point.
        let Command::Update { kind, url, envelope, .. } = &command else {
            return Ok(());
        };
        // Step 2: the server must confirm it over HTTP.
        if !confirmation::confirm(&self.device, &self.http, &command).await {
            tracing::warn!(%rollout, "dropping a command the server does not confirm");
            return Ok(());
        }
        // A newer trust document (a revoked key) counts before the update is judged.
        self.catch_up_with_server().await?;
        let floor = self.journal.time_floor.max(self.device.now());
        let time_floor = time::OffsetDateTime::from_unix_timestamp(floor).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        if let Some(reason) = self.trust.as_ref().and_then(|t| t.refusal(time_floor)) {
            return self.refuse(rollout, DeviceState::Rejected, reason).await;
        }
        let verifier = match &self.trust {
            Some(trust) => trust.verifier(*kind),
            None => self.device.verifier.clone(),
        };
        let ctx = checks::Context {
            verifier: &verifier,
            hardware: &self.device.hardware,
            firmware: self.journal.firmware.as_ref(),
            config: self.journal.config.as_ref(),
            time_floor,
            server: &self.device.server,
        };
        let busy = self.journal.current.is_some();
        match admission::decide(busy, &ctx, rollout.clone(), *kind, envelope, url) {
            Decision::Refuse { state, reason } => self.refuse(rollout, state, reason).await,
            Decision::Accept(job) => {
                self.journal.raise_time_floor(job.artifact.created_at.unix_timestamp());
                self.queue.push_back(Event::Accepted(job));
                Ok(())
            }
        }
    }

    /// A final answer without an update in progress (refusals, already installed, busy).
    pub(crate) async fn refuse(
        &mut self,
        rollout: RolloutId,
        state: DeviceState,
        reason: Reason,
    ) -> anyhow::Result<()> {
        tracing::info!(%rollout, ?reason, "refused");
        if reason != Reason::Busy {
            self.journal.record_final(Final { rollout_id: rollout.clone(), state, reason: Some(reason) });
        }
        self.report(Some(rollout), state, Some(reason), None, false).await
    }
}
