//! Whether a command starts an update (CONTRACT §6), in the contract's order, as pure
//! functions; the runner performs what they decide. Between [`screen`] and [`decide`] the
//! runner asks the server to confirm the command over HTTP (step 2, the one step with I/O).

use fleet_protocol::message::Command;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId, Envelope, RolloutId};

use super::Job;
use super::checks::{self, Context, Verdict};
use super::journal::Journal;

/// What to do with a command before the server confirms it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screened {
    /// Nothing: a cancel for another device, or for a rollout this device never started.
    Ignore,
    /// An update for another device (logged and dropped).
    NotMine,
    /// Cancel this device's update in progress.
    Cancel(RolloutId),
    /// A rollout the journal knows: its state is reported again, it is never run twice.
    Repeat { state: DeviceState, reason: Option<Reason> },
    /// An update for this device: have the server confirm it, then [`decide`].
    Confirm,
}

/// Steps 0 and 1: cancels, rollouts already known, commands for other devices.
pub fn screen(command: &Command, own: &DeviceId, journal: &Journal) -> Screened {
    let rollout = command.rollout_id();
    let current = journal.current.as_ref().filter(|c| &c.job.rollout_id == rollout);
    if let Command::Cancel { device_id, .. } = command {
        // A cancel concerns only this device's own update in progress; for a rollout
        // already final, the final state is reported again.
        return match journal.final_of(rollout) {
            _ if device_id != own => Screened::Ignore,
            _ if current.is_some() => Screened::Cancel(rollout.clone()),
            Some(f) => Screened::Repeat { state: f.state, reason: f.reason },
            None => Screened::Ignore,
        };
    }
    // Step 0: a failed rollout may be retried (the server re-dispatches it only while
    // attempts remain); any other known one is re-reported.
    if let Some(c) = current {
        return Screened::Repeat { state: c.phase.reported(), reason: None };
    }
    if let Some(f) = journal.final_of(rollout).filter(|f| f.state != DeviceState::Failed) {
        return Screened::Repeat { state: f.state, reason: f.reason };
    }
    // Step 1: someone else's command.
    if command.device_id() != own {
        return Screened::NotMine;
    }
    Screened::Confirm
}

/// The verdict on a confirmed update.
// One value lives per command, briefly; boxing the job would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it.
    Accept(Job),
    /// Report this final answer without starting anything.
    Refuse { state: DeviceState, reason: Reason },
}

/// A confirmed update, by steps 3 and 4: refused while another update runs (`busy`), else
/// judged by [`checks::judge`].
pub fn decide(
    busy: bool,
    ctx: &Context<'_>,
    rollout: RolloutId,
    kind: ArtifactKind,
    envelope: &Envelope,
    url: &str,
) -> Decision {
    if busy {
        return Decision::Refuse { state: DeviceState::Rejected, reason: Reason::Busy };
    }
    match checks::judge(ctx, kind, envelope, url) {
        Verdict::Reject(reason) => Decision::Refuse { state: DeviceState::Rejected, reason },
        Verdict::AlreadyInstalled(_) => {
            Decision::Refuse { state: DeviceState::Succeeded, reason: Reason::AlreadyInstalled }
        }
        Verdict::Accept(artifact) => Decision::Accept(Job { rollout_id: rollout, kind, url: url.to_owned(), artifact }),
    }
}

#[cfg(test)]
mod tests {
    use fleet_protocol::manifest::SCHEMA;
    use fleet_protocol::message::Installed;
    use fleet_protocol::sign::{SigningKey, sign_payload};
    use fleet_protocol::{HardwareModel, Manifest, ProductName, PublicKey, Sha256Digest, Verifier};
    use semver::Version;
    use time::OffsetDateTime;

    use super::*;
    use crate::update::journal::{Current, Final};
    use crate::update::machine::Phase;

    const URL: &str = "http://127.0.0.1:8080/api/v1/firmware/x/blob";

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn device(id: &str) -> DeviceId {
        DeviceId::parse(id.to_owned()).unwrap()
    }

    fn rollout(id: &str) -> RolloutId {
        RolloutId::parse(id.to_owned()).unwrap()
    }

    fn manifest(version: &str) -> Manifest {
        Manifest {
            schema: SCHEMA,
            kind: ArtifactKind::Firmware,
            name: ProductName::parse("gateway-os").unwrap(),
            version: Version::parse(version).unwrap(),
            hardware: vec![HardwareModel::parse("rpi4").unwrap()],
            size: 3,
            sha256: Sha256Digest::of(b"abc"),
            created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            expires_at: None,
            requires_firmware: None,
            allow_downgrade_from: None,
        }
    }

    fn update(to: &str, r: &str) -> Command {
        let envelope = sign_payload(&manifest("1.1.0").to_bytes(), &[&key()]);
        Command::Update {
            device_id: device(to),
            rollout_id: rollout(r),
            kind: ArtifactKind::Firmware,
            url: URL.into(),
            envelope,
        }
    }

    fn cancel(to: &str, r: &str) -> Command {
        Command::Cancel { device_id: device(to), rollout_id: rollout(r) }
    }

    fn job(r: &str) -> Job {
        Job {
            rollout_id: rollout(r),
            kind: ArtifactKind::Firmware,
            url: URL.into(),
            artifact: (&manifest("1.1.0")).into(),
        }
    }

    fn journal_with(current: Option<&str>, finals: &[(&str, DeviceState)]) -> Journal {
        let mut j = Journal::new(0);
        j.current = current.map(|r| Current { job: job(r), phase: Phase::Downloading, from_slot: None });
        for (r, state) in finals {
            j.record_final(Final { rollout_id: rollout(r), state: *state, reason: None });
        }
        j
    }

    #[test]
    fn screen_cancels() {
        let me = device("dev-1");
        let busy = journal_with(Some("r1"), &[("r0", DeviceState::Succeeded)]);
        assert_eq!(screen(&cancel("dev-1", "r1"), &me, &busy), Screened::Cancel(rollout("r1")));
        assert_eq!(screen(&cancel("dev-2", "r1"), &me, &busy), Screened::Ignore);
        let done = Screened::Repeat { state: DeviceState::Succeeded, reason: None };
        assert_eq!(screen(&cancel("dev-1", "r0"), &me, &busy), done);
        assert_eq!(screen(&cancel("dev-1", "r9"), &me, &busy), Screened::Ignore);
    }

    #[test]
    fn screen_updates() {
        let me = device("dev-1");
        let j = journal_with(Some("r1"), &[("r0", DeviceState::Succeeded), ("rf", DeviceState::Failed)]);
        let running = Screened::Repeat { state: DeviceState::Downloading, reason: None };
        assert_eq!(screen(&update("dev-1", "r1"), &me, &j), running, "in progress: re-reported");
        let done = Screened::Repeat { state: DeviceState::Succeeded, reason: None };
        assert_eq!(screen(&update("dev-1", "r0"), &me, &j), done, "final: re-reported");
        assert_eq!(screen(&update("dev-1", "rf"), &me, &j), Screened::Confirm, "failed: may be retried");
        assert_eq!(screen(&update("dev-2", "r2"), &me, &j), Screened::NotMine);
        assert_eq!(screen(&update("dev-1", "r2"), &me, &j), Screened::Confirm);
    }

    struct Fixture {
        verifier: Verifier,
        hardware: HardwareModel,
        firmware: Installed,
        server: reqwest::Url,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                verifier: Verifier::new([PublicKey::from_verifying_key(key().verifying_key())], 1),
                hardware: HardwareModel::parse("rpi4").unwrap(),
                firmware: Installed {
                    name: ProductName::parse("gateway-os").unwrap(),
                    version: Version::new(1, 0, 0),
                    sha256: Sha256Digest::of(b"old"),
                },
                server: reqwest::Url::parse("http://127.0.0.1:8080").unwrap(),
            }
        }

        fn decide(&self, busy: bool, m: &Manifest) -> Decision {
            let ctx = Context {
                verifier: &self.verifier,
                hardware: &self.hardware,
                firmware: Some(&self.firmware),
                config: None,
                time_floor: OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap(),
                server: &self.server,
            };
            let envelope = sign_payload(&m.to_bytes(), &[&key()]);
            decide(busy, &ctx, rollout("r1"), ArtifactKind::Firmware, &envelope, URL)
        }
    }

    #[test]
    fn decide_each_outcome() {
        let f = Fixture::new();
        let newer = manifest("1.1.0");
        assert_eq!(f.decide(false, &newer), Decision::Accept(job("r1")));
        let busy = Decision::Refuse { state: DeviceState::Rejected, reason: Reason::Busy };
        assert_eq!(f.decide(true, &newer), busy);
        let older = Decision::Refuse { state: DeviceState::Rejected, reason: Reason::Downgrade };
        assert_eq!(f.decide(false, &manifest("0.9.0")), older);
        let mut same = manifest("1.0.0");
        same.sha256 = f.firmware.sha256;
        let installed = Decision::Refuse { state: DeviceState::Succeeded, reason: Reason::AlreadyInstalled };
        assert_eq!(f.decide(false, &same), installed);
    }

    #[test]
    fn decide_a_downgrade_by_its_signed_permission() {
        let f = Fixture::new();
        let refused = Decision::Refuse { state: DeviceState::Rejected, reason: Reason::Downgrade };
        assert_eq!(f.decide(false, &manifest("0.9.0")), refused, "no permission: refused");
        let permitted = |req: &str| Manifest {
            allow_downgrade_from: Some(semver::VersionReq::parse(req).unwrap()),
            ..manifest("0.9.0")
        };
        let allowed = permitted(">=1.0.0, <2.0.0");
        let accepted = Decision::Accept(Job { artifact: (&allowed).into(), ..job("r1") });
        assert_eq!(f.decide(false, &allowed), accepted, "installed 1.0.0 matches: admitted");
        assert_eq!(f.decide(false, &permitted(">=1.2.0, <2.0.0")), refused, "installed 1.0.0 does not match");
    }
}
