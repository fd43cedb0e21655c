//! The microcontroller core (`fleet-agent-core`) against the real server and broker: a
//! device with a simulated 2 × 1 MiB flash and a 4 KiB receive buffer receives its command
//! over MQTT, confirms it over HTTP, verifies it, streams the image into the inactive
//! region, boots it in a trial and keeps it or goes back, reporting each state
//! (tests/src/mcu.rs says what is real and what stands in).

use std::time::Duration;

use fleet_agent_core::updater::{Firmware, Slot};
use fleet_agent_core::verify::TrustedKey;
use fleet_protocol::{ArtifactKind, HardwareModel};
use fleet_tests::mcu::{Flash, Microcontroller, flash_with};
use fleet_tests::{TestApp, manifest_for, other_key, release_key, sign};
use serde_json::{Value, json};

use crate::rollouts::{count, wait_for};

pub(crate) const OLD: &[u8] = b"the old image";

fn image() -> Vec<u8> {
    (0..600 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

pub(crate) fn microcontroller(id: &str, healthy: bool) -> Microcontroller {
    let firmware = Firmware::new("sensor-fw", "1.0.0", [0; 32]).unwrap();
    Microcontroller {
        device_id: id.to_owned(),
        hardware: "esp32c3".to_owned(),
        keys: vec![TrustedKey::new(release_key().verifying_key())],
        threshold: 1,
        flash: flash_with(OLD),
        firmware: Some(firmware),
        healthy,
    }
}

/// What an update left: the rollout once final, the device's entry, its flash and firmware.
struct Outcome {
    rollout: Value,
    entry: Value,
    flash: Flash,
    firmware: Option<Firmware>,
}

/// Rolls `file` out as sensor-fw 1.1.0 for `hardware`, signed by `signer`, to a running
/// `device`. The server trusts the release key and the other sample key.
async fn update(device: Microcontroller, file: Vec<u8>, hardware: &str, signer: &ed25519_dalek::SigningKey) -> Outcome {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let other = String::from_utf8(fleet_tests::sample("test-only-other.pub")).unwrap();
    app.client.add_key("other", &other).await.unwrap();
    let token = app.client.add_device(&device.device_id, "esp32c3", &Default::default()).await.unwrap().token;
    let id = device.device_id.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (base, mqtt_url) = (app.client.base_url().to_owned(), app.mqtt_url.clone());
    let running = tokio::spawn(async move { device.run(&base, &mqtt_url, &token, stopped).await });
    let mut m = manifest_for(ArtifactKind::Firmware, "sensor-fw", "1.1.0", &file);
    m.hardware = vec![HardwareModel::parse(hardware).unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[signer]), file).await.unwrap();
    let rollout = app.client.create_rollout(&json!({"firmware": fw.id, "target": {"devices": [id]}})).await.unwrap();
    let done = wait_for(&app, &rollout.id, Duration::from_secs(60), |b| {
        b["counts"]["pending"].is_null() && {
            ["succeeded", "rolled_back", "failed", "rejected"].iter().any(|s| count(b, s) == 1)
        }
    })
    .await;
    let _ = stop.send(());
    let (flash, firmware) = running.await.unwrap();
    let entries = app.client.request(reqwest::Method::GET, &format!("/rollouts/{}/devices", rollout.id)).send();
    let entries: Value = entries.await.unwrap().json().await.unwrap();
    Outcome { rollout: done, entry: entries["items"][0].clone(), flash, firmware }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microcontroller_streams_the_image_into_its_other_region_and_keeps_it() {
    let o = update(microcontroller("mcu-1", true), image(), "esp32c3", &release_key()).await;
    assert_eq!(count(&o.rollout, "succeeded"), 1, "{:#}", o.rollout);
    assert_eq!(&o.flash.region(Slot::B)[..image().len()], image().as_slice(), "region B holds the image");
    assert_eq!(&o.flash.region(Slot::A)[..OLD.len()], OLD, "region A is untouched");
    assert_eq!((o.flash.running, o.flash.kept), (Slot::B, Slot::B), "the trial was kept");
    assert!(o.flash.writes >= image().len() / fleet_tests::mcu::CHUNK, "{} writes: 4 KiB at a time", o.flash.writes);
    assert_eq!(o.firmware.unwrap().version.as_str(), "1.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_trial_goes_back_to_the_old_region() {
    let o = update(microcontroller("mcu-2", false), image(), "esp32c3", &release_key()).await;
    assert_eq!(
        (o.entry["state"].as_str(), o.entry["reason"].as_str()),
        (Some("rolled_back"), Some("health_check_failed"))
    );
    assert_eq!((o.flash.running, o.flash.kept), (Slot::A, Slot::A), "back on the old region");
    assert_eq!(o.firmware.unwrap().version.as_str(), "1.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microcontroller_refuses_other_hardware_and_keys_it_does_not_pin() {
    for (device, hardware, signer, reason) in
        [("mcu-3", "rpi4", release_key(), "hardware_mismatch"), ("mcu-4", "esp32c3", other_key(), "untrusted_key")]
    {
        let o = update(microcontroller(device, true), image(), hardware, &signer).await;
        assert_eq!(
            (o.entry["state"].as_str(), o.entry["reason"].as_str()),
            (Some("rejected"), Some(reason)),
            "{device}"
        );
        assert_eq!((o.flash.writes, o.flash.running), (0, Slot::A), "{device}: nothing written");
    }
}
