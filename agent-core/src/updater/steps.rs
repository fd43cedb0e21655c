//! The updater's steps after admission: the state machine's events, with the flash and
//! boot effects done here and the rest returned to the host.

use super::*;

impl<B: Board> Updater<'_, B> {
    /// A final answer to `rollout` that starts nothing.
    pub(super) fn refuse(&mut self, rollout: &str, state: DeviceState, reason: Reason) -> Todo {
        self.subject = text(rollout).unwrap_or_default();
        let report = self.record_final(state, Some(reason));
        self.save();
        Todo::from_slice(&[report]).expect("room")
    }

    /// Keeps the subject's final state (what a repeated command is answered with) and
    /// returns its report.
    fn record_final(&mut self, state: DeviceState, reason: Option<Reason>) -> Effect {
        self.last_final = Some(Final { rollout_id: self.subject.clone(), state, reason });
        Effect::Report { state, reason, progress: None }
    }

    /// One event through the state machine; the flash and boot effects done, the rest
    /// returned with resets last.
    pub(super) fn event(&mut self, event: Event<Job>) -> Todo {
        let before = core::mem::replace(&mut self.state, State::Idle);
        let was = match &before {
            State::Busy { job, .. } => Some(job.clone()),
            State::Idle => None,
        };
        let (after, effects) = machine::step(before, event);
        self.state = after;
        let job = match &self.state {
            State::Busy { job, .. } => Some(job.clone()),
            State::Idle => was,
        };
        if let Some(job) = &job {
            self.subject = job.rollout_id.clone();
        }
        let (mut todo, resets) = self.apply(effects, job.as_ref());
        // Written before the host acts on any of it; a slot switch the journal does not
        // know of would be forgotten by the reset it needs, so it does not happen.
        if !self.save() && resets.contains(&Effect::SwitchAndReboot) {
            self.state = State::Idle;
            self.image = None;
            let rollout = self.subject.clone();
            return self.refuse(&rollout, DeviceState::Failed, Reason::InstallFailed);
        }
        todo.extend(resets);
        todo
    }

    /// Does the flash and boot effects of one step; what the host must do, and apart from
    /// it the resets (which come last).
    fn apply(&mut self, effects: machine::Effects, job: Option<&Job>) -> (Todo, Todo) {
        let (mut todo, mut resets) = (Todo::new(), Todo::new());
        let mut kept = true;
        for effect in effects {
            match effect {
                // The image went straight into its slot as it arrived.
                Effect::Install => todo.extend(self.event(Event::Installed)),
                Effect::Commit => kept = self.board.confirm().is_ok(),
                // A trial the board could not keep goes back now, to the slot it kept.
                Effect::Finish { state: DeviceState::Succeeded, .. } if !kept => {
                    let _ = todo.push(self.record_final(DeviceState::Failed, Some(Reason::InstallFailed)));
                    let _ = resets.push(Effect::Rollback);
                }
                Effect::Finish { state, reason } => {
                    if let (DeviceState::Succeeded, Some(job)) = (state, job) {
                        self.firmware = Some(job.firmware.clone());
                    }
                    self.image = None;
                    let _ = todo.push(self.record_final(state, reason));
                }
                Effect::SwitchAndReboot | Effect::Rollback => {
                    let _ = resets.push(effect);
                }
                other => {
                    let _ = todo.push(other);
                }
            }
        }
        (todo, resets)
    }

    /// The next chunk of the image: into the inactive slot, counted and hashed. A chunk past
    /// the signed size, or one the flash refuses, ends the download (`failed`).
    pub fn chunk(&mut self, data: &[u8]) -> Todo {
        let (State::Busy { job, phase: Phase::Downloading }, Some(image)) = (&self.state, &mut self.image) else {
            return Todo::new();
        };
        let offset = image.received();
        if let Err(reason) = image.push(data) {
            return self.event(Event::DownloadFailed(reason));
        }
        if self.board.write(job.target, offset, data).is_err() {
            return self.event(Event::DownloadFailed(Reason::InstallFailed));
        }
        Todo::new()
    }

    /// Where the image of the update being downloaded is.
    pub fn download_url(&self) -> Option<String<MAX_URL>> {
        match &self.state {
            State::Busy { job, phase: Phase::Downloading } => Some(job.url.clone()),
            _ => None,
        }
    }

    /// The download could not be completed.
    pub fn download_failed(&mut self) -> Todo {
        self.image = None;
        self.event(Event::DownloadFailed(Reason::DownloadFailed))
    }

    /// The download ended: the image is verified (size and SHA-256), then the slot switch.
    pub fn downloaded(&mut self) -> Todo {
        match self.image.take().map(ImageCheck::finish) {
            Some(Ok(())) => self.event(Event::Downloaded),
            Some(Err(reason)) => self.event(Event::DownloadFailed(reason)),
            None => Todo::new(),
        }
    }

    /// After the `Rebooting` report is out: the trial boot of the new slot.
    pub fn switch_and_reset(&mut self) {
        if let State::Busy { job, .. } = &self.state {
            let target = job.target;
            if self.board.try_next(target).is_ok() {
                self.board.reset();
                self.reload();
            }
        }
    }

    /// After a rollback's report is out: a reset without confirming goes back.
    pub fn roll_back(&mut self) {
        self.board.reset();
        self.reload();
    }

    /// After a reset: whether the boot system started the new slot; call it once the
    /// device is connected again.
    /// A download a reset broke is not resumed: the update fails and the server retries it
    /// while attempts remain.
    pub fn started(&mut self) -> Todo {
        let into_target = match &self.state {
            State::Busy { job, phase: Phase::Rebooting | Phase::Trial } => self.board.booted() == job.target,
            State::Busy { .. } if self.image.is_none() => {
                return self.event(Event::DownloadFailed(Reason::DownloadFailed));
            }
            _ => return Todo::new(),
        };
        self.event(Event::Booted { into_target })
    }

    /// The health check's verdict during a trial.
    pub fn health(&mut self, passed: bool) -> Todo {
        self.event(if passed { Event::HealthPassed } else { Event::HealthFailed })
    }
}
