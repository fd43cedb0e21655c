//! `wave_soak_s`, measured: the next wave is sent no earlier than the soak after the
//! previous wave's last result, and not much later. Both ends are the database's
//! timestamps (the entries' `updated_at` and `sent_at`), the clock the engine judges by,
//! so the figure does not depend on how fast this test polls. The pure rule is also
//! tested at its exact millisecond boundaries (`rollout::progress` in the server).

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::rollouts::{create, firmware, get, simulate_with, wait_for};
use fleet_tests::TestApp;

const SOAK_MS: i128 = 2_000;
/// The engine notices a finished wave at its next step (every 250 ms, or when a report
/// wakes it) and dispatches at the first step after the soak: allow a few steps.
const SLACK_MS: i128 = 1_500;

fn ms(entry: &Value, field: &str) -> i128 {
    let text = entry[field].as_str().unwrap_or_else(|| panic!("{field} of {entry}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap().unix_timestamp_nanos() / 1_000_000
}

#[tokio::test]
async fn the_next_wave_starts_after_the_soak_and_not_much_later() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), 6, 0.0, "soak-", 0).await;
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "waves": [50, 100], "wave_soak_s": SOAK_MS / 1000}),
    )
    .await;
    wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;

    let entries = get(&app, &format!("/rollouts/{id}/devices")).await;
    let items = entries["items"].as_array().unwrap();
    let wave = |w: u64| items.iter().filter(move |e| e["wave"] == w);
    let first_done = wave(0).map(|e| ms(e, "updated_at")).max().unwrap();
    let second_sent = wave(1).map(|e| ms(e, "sent_at")).min().unwrap();
    let waited = second_sent - first_done;
    println!("wave_soak_s {}: the second wave was sent {waited} ms after the first finished", SOAK_MS / 1000);
    assert!(waited >= SOAK_MS, "sent {waited} ms after the first wave finished, before the soak");
    assert!(waited < SOAK_MS + SLACK_MS, "sent {waited} ms after the first wave finished");
    sim.stop().await;
}
