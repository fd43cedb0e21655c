//! Performing the state machine's effects.

use std::path::PathBuf;

use fleet_protocol::ArtifactKind;
use fleet_protocol::state::DeviceState;
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;

use crate::device::HealthCheck;
use crate::http::LOCAL_PAUSE;
use crate::http::LocalError;
use crate::install::{Installer, run_hook};
use crate::runner::Runner;
use crate::update::Job;
use crate::update::download::{DownloadError, hash_file};
use crate::update::journal::Final;
use crate::update::machine::{Effect, Event};

impl<I: Installer> Runner<I> {
    pub(crate) async fn perform(&mut self, job: &Job, effect: Effect) -> anyhow::Result<()> {
        match effect {
            Effect::Report { state, reason, progress } => {
                self.report(Some(job.rollout_id.clone()), state, reason, progress, false).await?;
            }
            Effect::Download => self.start_download(job),
            Effect::StopDownload => {
                self.download_cancel.cancel();
                self.task = None;
                self.downloader.discard(job);
            }
            Effect::Install => self.start_install(job).await?,
            Effect::SwitchAndReboot => {
                self.installer.switch().await?;
                self.reboot().await?;
            }
            Effect::HealthCheck => self.start_health_check(),
            Effect::Commit => {
                self.installer.commit().await?;
                self.journal.set_installed(job.kind, Self::installed_of(job));
                self.save()?;
            }
            Effect::Rollback => {
                self.installer.rollback().await?;
                self.reboot().await?;
            }
            Effect::Finish { state, reason } => {
                // Whatever still runs for this job (an install being cancelled) stops here.
                self.task = None;
                if state == DeviceState::Succeeded && job.kind == ArtifactKind::Config {
                    self.journal.set_installed(ArtifactKind::Config, Self::installed_of(job));
                }
                self.journal.record_final(Final { rollout_id: job.rollout_id.clone(), state, reason });
                self.save()?;
                self.downloader.discard(job);
                self.report(Some(job.rollout_id.clone()), state, reason, None, false).await?;
            }
        }
        Ok(())
    }

    /// Where `job`'s download is written directly, if anywhere: firmware into the
    /// installer's inactive slot, when it offers one.
    fn stream_target(&self, job: &Job) -> Option<PathBuf> {
        (job.kind == ArtifactKind::Firmware).then(|| self.installer.stream_target()).flatten()
    }

    fn start_download(&mut self, job: &Job) {
        self.download_cancel = CancellationToken::new();
        self.streamed_and_verified = None;
        let (downloader, job, cancel) = (self.downloader.clone(), job.clone(), self.download_cancel.clone());
        let into = self.stream_target(&job);
        self.download_target = into.clone();
        let mut progress = self.progress_reporter();
        self.task = Some(Box::pin(async move {
            loop {
                match downloader.fetch(&job, into.as_deref(), &mut progress, &cancel).await {
                    Ok(_) => return Some(Event::Downloaded),
                    Err(DownloadError::Failed(reason)) => return Some(Event::DownloadFailed(reason)),
                    Err(DownloadError::Cancelled) => return None,
                    // This process's own shortage (a simulator's open-files limit) is no
                    // failure of the device: wait, then resume where it stopped.
                    Err(DownloadError::Local(local)) => {
                        tracing::warn!("download paused: {local}; resuming in {LOCAL_PAUSE:?}");
                        tokio::select! {
                            () = cancel.cancelled() => return None,
                            () = tokio::time::sleep(LOCAL_PAUSE) => {}
                        }
                    }
                }
            }
        }));
    }

    async fn start_install(&mut self, job: &Job) -> anyhow::Result<()> {
        let streamed = self.stream_target(job);
        let image = streamed.clone().unwrap_or_else(|| self.downloader.done_path(job));
        let verified_in_this_run = self
            .streamed_and_verified
            .take()
            .is_some_and(|(digest, slot)| digest == job.artifact.sha256 && Some(&slot) == streamed.as_ref());
        match job.kind {
            ArtifactKind::Firmware => {
                let read_back = streamed.is_some() && !verified_in_this_run;
                self.start_firmware_install(job, image, read_back).await?;
            }
            ArtifactKind::Config => self.start_config_apply(image),
        }
        Ok(())
    }

    /// Records the slot booted now (to roll back to), then installs `image`, reading it back
    /// first when `read_back`.
    async fn start_firmware_install(&mut self, job: &Job, image: PathBuf, read_back: bool) -> anyhow::Result<()> {
        // A boot system that cannot say which slot runs (an unreadable U-Boot environment,
        // a failing booted-slot command) fails this install, reported; it does not stop
        // the agent, and nothing is written.
        let from = match self.installer.booted_slot().await {
            Ok(from) => from,
            Err(e) => {
                tracing::warn!("install failed: the booted slot is unknown: {e}");
                self.task = Some(Box::pin(async { Some(Event::InstallFailed) }));
                return Ok(());
            }
        };
        if let Some(current) = self.journal.current.as_mut() {
            current.from_slot = Some(from);
        }
        self.save()?;
        let installer = self.installer.clone();
        let fails = self.device.injected.install_fails;
        let job = job.clone();
        self.task = Some(Box::pin(async move {
            if fails {
                return Some(Event::InstallFailed);
            }
            // A slot written while downloading counts as installed only if this run
            // hashed every byte of it as it wrote them, or once it is read back (after
            // a restart): nothing unverified is ever switched to.
            if read_back && !holds(&image, &job).await {
                tracing::warn!("install failed: {} does not hold the signed image", image.display());
                return Some(Event::InstallFailed);
            }
            match past_local_shortage("install", || installer.install(&image)).await {
                Ok(()) => Some(Event::Installed),
                Err(e) => {
                    tracing::warn!("install failed: {e}");
                    Some(Event::InstallFailed)
                }
            }
        }));
        Ok(())
    }

    fn start_config_apply(&mut self, image: PathBuf) {
        let target = self.device.config.clone();
        let fails = self.device.injected.install_fails;
        self.task = Some(Box::pin(async move {
            match past_local_shortage("config apply", || target.apply(&image)).await {
                Ok(()) if !fails => Some(Event::Installed),
                Ok(()) => Some(Event::InstallFailed),
                Err(e) => {
                    tracing::warn!("config not applied: {e}");
                    Some(Event::InstallFailed)
                }
            }
        }));
    }

    fn start_health_check(&mut self) {
        let device = self.device.clone();
        let up = self.link_up();
        let http = self.http.clone();
        self.task = Some(Box::pin(async move {
            if device.injected.health_fails {
                return Some(Event::HealthFailed);
            }
            let healthy = match &device.health {
                HealthCheck::Command { command, timeout } => match run_hook(command, *timeout).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!("health check failed: {e}");
                        false
                    }
                },
                HealthCheck::Reconnect { timeout } => {
                    let url = format!("{}/healthz", device.server.as_str().trim_end_matches('/'));
                    crate::health::reconnected(up, &http, &url, *timeout).await
                }
            };
            Some(if healthy { Event::HealthPassed } else { Event::HealthFailed })
        }));
    }

    /// Reboots through the installer. A real reboot ends this process; when it returns, the
    /// reboot is simulated in-process: drop the link, boot, reconnect.
    async fn reboot(&mut self) -> anyhow::Result<()> {
        self.installer.reboot().await?;
        if let Some(link) = self.link.take() {
            link.close().await;
        }
        self.installer.boot().await?;
        let booted = self.booted_event().await?;
        self.queue.push_back(booted);
        self.connect();
        Ok(())
    }
}

/// Runs `op` again after a pause while it fails for want of this process's descriptors (a
/// simulator's shortage is not the device's failure); any other outcome is returned.
async fn past_local_shortage<T, F>(what: &str, mut op: impl FnMut() -> F) -> std::io::Result<T>
where
    F: std::future::Future<Output = std::io::Result<T>>,
{
    loop {
        match op().await {
            Err(e) if LocalError::of_io(&e).is_some() => {
                tracing::warn!("{what} paused: {e}; trying again in {LOCAL_PAUSE:?}");
                tokio::time::sleep(LOCAL_PAUSE).await;
            }
            outcome => return outcome,
        }
    }
}

/// Whether `path` holds exactly `job`'s signed bytes (size and SHA-256).
async fn holds(path: &std::path::Path, job: &Job) -> bool {
    match past_local_shortage("reading the slot back", || hash_file(path)).await {
        Ok((hasher, len)) => {
            len == job.artifact.size && <[u8; 32]>::from(hasher.finalize()) == *job.artifact.sha256.as_bytes()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    #[tokio::test]
    async fn a_shortage_of_descriptors_is_waited_out_and_other_errors_are_not() {
        let mut calls = 0;
        let outcome = past_local_shortage("test", || {
            calls += 1;
            let emfile = Error::from_raw_os_error(24);
            std::future::ready(if calls == 1 { Err(emfile) } else { Ok(calls) })
        })
        .await;
        assert_eq!(outcome.unwrap(), 2, "tried again after the pause");

        let mut calls = 0;
        let outcome: std::io::Result<()> = past_local_shortage("test", || {
            calls += 1;
            std::future::ready(Err(Error::from(ErrorKind::PermissionDenied)))
        })
        .await;
        assert_eq!((outcome.unwrap_err().kind(), calls), (ErrorKind::PermissionDenied, 1), "returned at once");
    }
}
