//! The updater over a simulated flash: whole updates, fallbacks and refusals.

use std::vec::Vec;

use sha2::{Digest as _, Sha256};

use super::*;
use crate::flash::SimulatedFlash;
use crate::signed::{envelope, hex_of, key, trusted};
use crate::verify::TrustedKey;

const REGION: usize = 16 * 1024;

type RamBoard = SimulatedFlash<[u8; REGION]>;

fn image() -> Vec<u8> {
    (0..10_000u32).map(|i| (i % 251) as u8).collect()
}

fn command(image: &[u8], hardware: &str) -> std::string::String {
    command_for(image, hardware, "1.1.0")
}

fn command_for(image: &[u8], hardware: &str, version: &str) -> std::string::String {
    let sha = hex_of(&Sha256::digest(image));
    let manifest = std::format!(
        r#"{{"schema":1,"kind":"firmware","name":"sensor-fw","version":"{version}","hardware":["{hardware}"],"size":{},"sha256":"{sha}","created_at":"2026-12-01T00:00:00Z"}}"#,
        image.len()
    );
    let envelope = envelope(manifest.as_bytes(), &[&key(1)]);
    std::format!(
        r#"{{"type":"update","device_id":"mcu-1","rollout_id":"r1","kind":"firmware","url":"http://s/b","envelope":{envelope}}}"#
    )
}

fn updater(keys: &[TrustedKey]) -> Updater<'_, RamBoard> {
    let identity = Identity { device_id: "mcu-1", hardware: "esp32c3", keys: Keys::new(keys, 1) };
    let firmware = Firmware::new("sensor-fw", "1.0.0", [0; 32]).unwrap();
    Updater::open(SimulatedFlash::new([0xff; REGION], [0xff; REGION]), identity, Some(firmware), 0)
}

fn reported(todo: &Todo) -> Vec<DeviceState> {
    todo.iter().filter_map(|e| if let Effect::Report { state, .. } = e { Some(*state) } else { None }).collect()
}

/// Admits the command and streams `image` in 4 KiB chunks; what the end returned.
fn download(u: &mut Updater<'_, RamBoard>, json: &str, image: &[u8]) -> Todo {
    let Screened::Confirm(command) = u.screen(json.as_bytes()) else { panic!("not to confirm") };
    let todo = u.admit(&command, true, 1_800_000_000);
    assert_eq!(todo.last(), Some(&Effect::Download), "{todo:?}");
    for chunk in image.chunks(4096) {
        let todo = u.chunk(chunk);
        if !todo.is_empty() {
            return todo;
        }
    }
    u.downloaded()
}

#[test]
fn an_update_streams_into_the_other_slot_boots_a_trial_and_is_kept() {
    let keys = [trusted(1)];
    let mut u = updater(&keys);
    let todo = download(&mut u, &command(&image(), "esp32c3"), &image());
    let states = [DeviceState::Verifying, DeviceState::Installing, DeviceState::Rebooting];
    assert_eq!(reported(&todo), states);
    assert_eq!(todo.last(), Some(&Effect::SwitchAndReboot));
    assert_eq!(&u.board().region(Slot::B)[..10_000], image().as_slice(), "slot B holds the image");
    u.switch_and_reset();
    assert_eq!(u.started().as_slice(), &[Effect::HealthCheck]);
    assert_eq!(reported(&u.health(true)), [DeviceState::Succeeded]);
    assert_eq!((u.board().kept, u.firmware().unwrap().version.as_str()), (Slot::B, "1.1.0"));
    let mut out = [0u8; 512];
    let len = u.connect_report(&mut out).unwrap();
    let report = core::str::from_utf8(&out[..len]).unwrap();
    assert!(report.starts_with(r#"{"rollout_id":"r1","state":"succeeded""#), "{report}");
    assert_eq!(
        u.screen(command(&image(), "esp32c3").as_bytes()),
        Screened::Repeat { rollout: "r1", state: DeviceState::Succeeded, reason: None }
    );
}

#[test]
fn a_failed_trial_goes_back_to_the_old_slot() {
    let keys = [trusted(1)];
    let mut u = updater(&keys);
    download(&mut u, &command(&image(), "esp32c3"), &image());
    u.switch_and_reset();
    u.started();
    let todo = u.health(false);
    assert_eq!((reported(&todo), todo.last()), (std::vec![DeviceState::RolledBack], Some(&Effect::Rollback)));
    u.roll_back();
    assert_eq!((u.board().booted(), u.firmware().unwrap().version.as_str()), (Slot::A, "1.0.0"));
}

#[test]
fn refusals_and_bad_images_change_no_slot_that_boots() {
    let keys = [trusted(1)];
    let mut u = updater(&keys);
    let other_hardware = command(&image(), "rpi4");
    let Screened::Confirm(c) = u.screen(other_hardware.as_bytes()) else { panic!() };
    let todo = u.admit(&c, true, 1_800_000_000);
    assert_eq!(
        todo.as_slice(),
        &[Effect::Report { state: DeviceState::Rejected, reason: Some(Reason::HardwareMismatch), progress: None }]
    );
    let mut longer = image();
    longer.push(0);
    let todo = download(&mut u, &command(&image(), "esp32c3").replace("r1", "r2"), &longer);
    let failed = Effect::Report { state: DeviceState::Failed, reason: Some(Reason::SizeExceeded), progress: None };
    assert_eq!(todo.as_slice(), &[failed]);
    let mut changed = image();
    changed[0] ^= 1;
    let todo = download(&mut u, &command(&image(), "esp32c3").replace("r1", "r3"), &changed);
    assert_eq!(reported(&todo), [DeviceState::Failed]);
    assert_eq!(u.board().booted(), Slot::A);
    assert_eq!(u.screen(br#"{"type":"cancel","device_id":"mcu-2","rollout_id":"r3"}"#), Screened::Ignore);
}

/// The updater after a real reset: nothing but the board (its regions and journal).
fn reopened<'k>(u: Updater<'k, RamBoard>, keys: &'k [TrustedKey]) -> Updater<'k, RamBoard> {
    let identity = Identity { device_id: "mcu-1", hardware: "esp32c3", keys: Keys::new(keys, 1) };
    Updater::open(u.into_board(), identity, None, 0)
}

#[test]
fn a_reset_anywhere_resumes_from_the_journal() {
    let keys = [trusted(1)];
    let final_state = |todo: &Todo| reported(todo).last().copied();

    // Mid-download: the update fails, the old region still runs.
    let mut u = updater(&keys);
    let json = command(&image(), "esp32c3");
    let Screened::Confirm(c) = u.screen(json.as_bytes()) else { panic!() };
    u.admit(&c, true, 1_800_000_000);
    assert!(u.chunk(&image()[..4096]).is_empty());
    let mut u = reopened(u, &keys);
    assert_eq!(final_state(&u.started()), Some(DeviceState::Failed));
    assert_eq!(u.board().booted(), Slot::A);

    // In the trial, before the health check, power is cut: the bootloader goes back.
    let json = command(&image(), "esp32c3").replace("r1", "r2");
    download(&mut u, &json, &image());
    u.switch_and_reset();
    assert_eq!(u.board().booted(), Slot::B);
    let mut board = u.into_board();
    board.reset();
    let identity = Identity { device_id: "mcu-1", hardware: "esp32c3", keys: Keys::new(&keys, 1) };
    let mut u = Updater::open(board, identity, None, 0);
    let todo = u.started();
    assert_eq!(
        todo.as_slice(),
        &[Effect::Report { state: DeviceState::RolledBack, reason: Some(Reason::BootFailed), progress: None }]
    );
    assert_eq!((u.board().booted(), u.firmware().unwrap().version.as_str()), (Slot::A, "1.0.0"));

    // A kept update survives the reset with its `seq`, and is not run again.
    let json = command(&image(), "esp32c3").replace("r1", "r3");
    download(&mut u, &json, &image());
    u.switch_and_reset();
    u.started();
    u.health(true);
    let mut out = [0u8; 512];
    let before = u.connect_report(&mut out).unwrap();
    let seq_before = core::str::from_utf8(&out[..before])
        .unwrap()
        .split("\"seq\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let mut u = reopened(u, &keys);
    let len = u.connect_report(&mut out).unwrap();
    let text = core::str::from_utf8(&out[..len]).unwrap();
    assert!(text.contains(&std::format!("\"seq\":{}", seq_before + 1)), "{text}");
    assert!(
        text.contains(r#""rollout_id":"r3","state":"succeeded""#) && text.contains(r#""version":"1.1.0""#),
        "{text}"
    );
    assert_eq!(
        u.screen(json.as_bytes()),
        Screened::Repeat { rollout: "r3", state: DeviceState::Succeeded, reason: None }
    );
}

/// A board whose confirm fails (its boot flag cannot be written).
#[derive(Debug)]
struct Unkeepable(RamBoard);

impl Board for Unkeepable {
    type Error = crate::flash::PastTheRegion;

    fn region_size(&self) -> u64 {
        self.0.region_size()
    }

    fn erase(&mut self, slot: Slot) -> Result<(), Self::Error> {
        self.0.erase(slot)
    }

    fn write(&mut self, slot: Slot, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        self.0.write(slot, offset, data)
    }

    fn booted(&self) -> Slot {
        self.0.booted()
    }

    fn try_next(&mut self, slot: Slot) -> Result<(), Self::Error> {
        self.0.try_next(slot)
    }

    fn confirm(&mut self) -> Result<(), Self::Error> {
        Err(crate::flash::PastTheRegion)
    }

    fn kept(&self) -> Slot {
        self.0.kept()
    }

    fn reset(&mut self) {
        self.0.reset()
    }

    fn store(&mut self, journal: &[u8]) -> Result<(), Self::Error> {
        self.0.store(journal)
    }

    fn load(&self, into: &mut [u8]) -> Option<usize> {
        self.0.load(into)
    }
}

#[test]
fn a_trial_the_board_cannot_keep_goes_back_and_no_update_starts_from_an_unkept_slot() {
    let keys = [trusted(1)];
    let identity = Identity { device_id: "mcu-1", hardware: "esp32c3", keys: Keys::new(&keys, 1) };
    let board = Unkeepable(SimulatedFlash::new([0xff; REGION], [0xff; REGION]));
    let mut u = Updater::open(board, identity, Firmware::new("sensor-fw", "1.0.0", [0; 32]), 1_000);
    let json = command(&image(), "esp32c3");
    let Screened::Confirm(c) = u.screen(json.as_bytes()) else { panic!() };
    u.admit(&c, true, 1_800_000_000);
    image().chunks(4096).for_each(|chunk| assert!(u.chunk(chunk).is_empty()));
    u.downloaded();
    u.switch_and_reset();
    u.started();
    let todo = u.health(true);
    let failed = Effect::Report { state: DeviceState::Failed, reason: Some(Reason::InstallFailed), progress: None };
    assert_eq!(todo.as_slice(), &[failed, Effect::Rollback]);
    u.roll_back();
    assert_eq!(u.board().booted(), Slot::A, "back on the slot it kept");

    // A device left on an unkept slot refuses updates: they would erase its fallback.
    let mut board = u.into_board();
    board.0.running = Slot::B;
    let mut u = Updater::open(board, identity, None, 0);
    let again = command(&image(), "esp32c3").replace("r1", "r2");
    let Screened::Confirm(c) = u.screen(again.as_bytes()) else { panic!() };
    let busy = Effect::Report { state: DeviceState::Rejected, reason: Some(Reason::Busy), progress: None };
    assert_eq!(u.admit(&c, true, 1_800_000_000).as_slice(), &[busy]);
}

#[test]
fn a_version_too_long_to_keep_is_refused_and_reports_number_from_the_clock() {
    let keys = [trusted(1)];
    let identity = Identity { device_id: "mcu-1", hardware: "esp32c3", keys: Keys::new(&keys, 1) };
    let flash = SimulatedFlash::new([0xff; REGION], [0xff; REGION]);
    let mut u = Updater::open(flash, identity, Firmware::new("sensor-fw", "1.0.0", [0; 32]), 1_765_000_000_000);
    let long = std::format!("1.4.2-rc.1+build.20261128.{}", "a".repeat(40));
    let json = command_for(&image(), "esp32c3", &long);
    let Screened::Confirm(c) = u.screen(json.as_bytes()) else { panic!() };
    let todo = u.admit(&c, true, 1_800_000_000);
    assert_eq!(reported(&todo), [DeviceState::Rejected]);
    assert_eq!(u.firmware().unwrap().version.as_str(), "1.0.0");
    let mut out = [0u8; 512];
    let len = u.report(&todo[0], &mut out).unwrap();
    let text = core::str::from_utf8(&out[..len]).unwrap();
    assert!(text.contains("\"seq\":1765000000001") && text.contains("\"connect\":false"), "{text}");
}
