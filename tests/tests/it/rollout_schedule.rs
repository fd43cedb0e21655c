//! Scheduling (CONTRACT §7): a rollout with `start_at` ahead is `scheduled` and sends
//! nothing until then; outside its maintenance window a running rollout dispatches nothing
//! while one inside its window runs; bad values are 400 `bad_request`; pause, resume and
//! cancel of a scheduled rollout; fleetctl's `--start-at`, `--window`, `--dynamic`.

use std::time::Duration;

use fleet_tests::TestApp;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::rollouts::{count, create, firmware, fleetctl, get, post, simulate_with, wait_for};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// `HH:MM` of `t` shifted by `minutes`, in India's time (UTC+05:30 all year, no DST).
fn kolkata_hh_mm(t: OffsetDateTime, minutes: i64) -> String {
    let local = (t + time::Duration::minutes(minutes)).to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
    format!("{:02}:{:02}", local.hour(), local.minute())
}

/// A window every day, from `from` to `to` minutes off now.
fn window(from: i64, to: i64) -> Value {
    let now = OffsetDateTime::now_utc();
    json!({"days": "Mon-Sun", "start": kolkata_hh_mm(now, from), "end": kolkata_hh_mm(now, to),
           "time_zone": "Asia/Kolkata"})
}

#[tokio::test]
async fn a_scheduled_rollout_waits_for_start_at_and_a_closed_window_dispatches_nothing() {
    scheduling(TestApp::spawn().await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn on_postgres_a_scheduled_rollout_waits_and_a_closed_window_dispatches_nothing() {
    let url = fleet_tests::fresh_postgres().await;
    scheduling(TestApp::spawn_with(|s| s.database_url = Some(url.clone())).await).await;
}

async fn scheduling(app: TestApp) {
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), 3, 0.0, "s-", 0).await;
    // Whole seconds: the server keeps milliseconds.
    let start_at = (OffsetDateTime::now_utc() + time::Duration::seconds(4)).replace_nanosecond(0).unwrap();
    let scheduled =
        create(&app, json!({"firmware": fw.id, "target": {"devices": ["s-0"]}, "start_at": rfc3339(start_at)})).await;
    // An hour from now until two hours from now: closed. An hour ago until an hour ahead: open.
    let closed =
        create(&app, json!({"firmware": fw.id, "target": {"devices": ["s-1"]}, "maintenance_window": window(60, 120)}))
            .await;
    let open =
        create(&app, json!({"firmware": fw.id, "target": {"devices": ["s-2"]}, "maintenance_window": window(-60, 60)}))
            .await;

    let body = get(&app, &format!("/rollouts/{scheduled}")).await;
    assert_eq!((body["state"].as_str(), body["window"].as_str()), (Some("scheduled"), None), "{body:#}");
    assert_eq!(body["waves"][0]["state"], "pending");
    assert_eq!(body["options"]["start_at"].as_str().map(|s| s.len() >= 20), Some(true), "{body:#}");
    let done = wait_for(&app, &open, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!((count(&done, "succeeded"), done["window"].as_str()), (1, Some("open")), "{done:#}");

    // The open one finished; the scheduled one has not started yet (its start is seconds away).
    if OffsetDateTime::now_utc() + time::Duration::milliseconds(500) < start_at {
        let waiting = get(&app, &format!("/rollouts/{scheduled}")).await;
        assert_eq!((waiting["state"].as_str(), count(&waiting, "pending")), (Some("scheduled"), 1), "{waiting:#}");
    }
    let started = wait_for(&app, &scheduled, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(count(&started, "succeeded"), 1, "{started:#}");
    let entry = &get(&app, &format!("/rollouts/{scheduled}/devices")).await["items"][0];
    let sent_at = OffsetDateTime::parse(entry["sent_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(sent_at >= start_at, "sent at {sent_at}, before its start {start_at}");

    // The closed one: still running, nothing sent, its window shown closed.
    let waiting = get(&app, &format!("/rollouts/{closed}")).await;
    assert_eq!(
        (waiting["state"].as_str(), waiting["window"].as_str()),
        (Some("running"), Some("closed")),
        "{waiting:#}"
    );
    assert_eq!((count(&waiting, "pending"), waiting["total"].as_u64()), (1, Some(1)), "{waiting:#}");
    let entry = &get(&app, &format!("/rollouts/{closed}/devices")).await["items"][0];
    assert_eq!((&entry["sent_at"], entry["attempts"].as_u64()), (&Value::Null, Some(0)), "{entry}");
    assert_eq!(waiting["options"]["maintenance_window"]["time_zone"], "Asia/Kolkata");
    sim.stop().await;
}

#[tokio::test]
async fn bad_schedules_are_bad_requests() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("b-0", "sim", &Default::default()).await.unwrap();
    let ok_window = json!({"days": "Mon-Fri", "start": "01:00", "end": "04:00", "time_zone": "Europe/Berlin"});
    let with = |field: &str, value: Value| {
        let mut w = ok_window.clone();
        w[field] = value;
        json!({"firmware": fw.id, "target": {"devices": ["b-0"]}, "maintenance_window": w})
    };
    let cases = [
        (with("time_zone", json!("Europe/Atlantis")), "unknown time zone `Europe/Atlantis`"),
        (with("days", json!("Mon-Fry")), "unknown day `Fry`"),
        (with("start", json!("25:00")), "`25:00` is not a time"),
        (with("end", json!("01:00")), "start and end are both 01:00"),
        (json!({"firmware": fw.id, "target": {"devices": ["b-0"]}, "start_at": "tomorrow"}), "start_at"),
        (json!({"firmware": fw.id, "target": {"devices": ["b-0"]}, "dynamic": true}), "dynamic needs"),
    ];
    for (body, detail) in cases {
        let (status, problem) = post(&app, "/rollouts", body.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (400, Some("bad_request")), "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{detail}: {problem}");
    }
    let (status, problem) = post(&app, "/rollouts", with("days", json!({"not": "text"}))).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("bad_request")), "{problem}");
}

#[tokio::test]
async fn a_scheduled_rollout_pauses_resumes_to_scheduled_cancels_and_pauses_on_revocation() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    for id in ["c-0", "c-1"] {
        app.client.add_device(id, "sim", &Default::default()).await.unwrap();
    }
    let later = rfc3339(OffsetDateTime::now_utc() + time::Duration::hours(1));
    let id = create(&app, json!({"firmware": fw.id, "target": {"devices": ["c-0", "c-1"]}, "start_at": later})).await;
    // Its devices are busy, as in any active rollout.
    let (status, problem) = post(&app, "/rollouts", json!({"firmware": fw.id, "target": {"devices": ["c-0"]}})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("device_busy")), "{problem}");

    let (status, paused) = post(&app, &format!("/rollouts/{id}/pause"), json!({})).await;
    assert_eq!((status, paused["state"].as_str(), paused["reason"].as_str()), (200, Some("paused"), Some("operator")));
    let (status, resumed) = post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    assert_eq!((status, resumed["state"].as_str()), (200, Some("scheduled")), "{resumed}");
    let (status, cancelled) = post(&app, &format!("/rollouts/{id}/cancel"), json!({})).await;
    assert_eq!((status, cancelled["state"].as_str()), (200, Some("cancelled")), "{cancelled}");
    let done = wait_for(&app, &id, Duration::from_secs(10), |b| count(b, "cancelled") == 2).await;
    assert_eq!(done["total"], 2, "{done:#}");

    // Revoking the signing key pauses a scheduled rollout too; it cannot resume then.
    let id = create(&app, json!({"firmware": fw.id, "target": {"devices": ["c-0"]}, "start_at": later})).await;
    let keyid = app.client.list_keys(None).await.unwrap().items[0].keyid.clone();
    app.client.revoke_key(&keyid).await.unwrap();
    let paused = get(&app, &format!("/rollouts/{id}")).await;
    assert_eq!((paused["state"].as_str(), paused["reason"].as_str()), (Some("paused"), Some("key_revoked")));
    let (status, refused) = post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("key_revoked")), "{refused}");
}

#[tokio::test]
async fn fleetctl_schedules_with_a_compact_window_and_makes_a_rollout_dynamic() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("f-0", "sim", &Default::default()).await.unwrap();
    let later = rfc3339(OffsetDateTime::now_utc() + time::Duration::hours(1));
    let args = ["-o", "json", "rollouts", "create", "--firmware", &fw.id, "--hardware", "sim", "--start-at", &later];
    let window = ["--window", "Mon,Wed-Fri 22:00-02:00 Europe/Berlin", "--dynamic"];
    let out = fleetctl(&app, &args.into_iter().chain(window).collect::<Vec<_>>()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["state"], "scheduled", "{created:#}");
    assert_eq!(
        created["options"]["maintenance_window"],
        json!({"days": "Mon,Wed-Fri", "start": "22:00", "end": "02:00", "time_zone": "Europe/Berlin"})
    );
    assert_eq!(created["options"]["dynamic"], true);
    assert!(matches!(created["window"].as_str(), Some("open" | "closed")), "{created:#}");

    let bad =
        fleetctl(&app, &["rollouts", "create", "--firmware", &fw.id, "--hardware", "sim", "--window", "Mon 01:00"])
            .await;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("DAYS START-END ZONE"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
