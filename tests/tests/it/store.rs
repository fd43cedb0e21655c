//! One storage story, told to both databases: keys, uploads, devices, rollouts, reports,
//! leases, operator tokens, cancel. SQLite always; PostgreSQL where FLEET_TEST_DATABASE_URL names one (CI).

use std::collections::BTreeMap;
use std::sync::Arc;

use fleet_protocol::api::TokenScope;
use fleet_protocol::message::StatusReport;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel, PublicKey, RolloutId};
use fleet_server::artifact_cache::ArtifactCache;
use fleet_server::rollout::device_control::{self, DeviceAction};
use fleet_server::rollout::plan::WaveGate;
use fleet_server::store::rollouts::{
    EntryRecord, EntrySelect, IncomingReport, PauseReason, ReportOutcome, RolloutDeletion, RolloutRecord, RolloutState,
};
use fleet_server::store::{
    DeviceFilter, KeyRecord, NewArtifact, NewDevice, OperatorTokenRecord, PageRequest, Store, StoreError, TokenOwner,
};
use fleet_tests::{manifest_for, sample};

fn page() -> PageRequest {
    PageRequest { limit: 100, cursor: None }
}

fn report(rollout: Option<&str>, state: DeviceState, seq: u64, connect: bool) -> StatusReport {
    StatusReport {
        rollout_id: rollout.map(|r| RolloutId::parse(r).unwrap()),
        state,
        progress: None,
        reason: None,
        seq,
        connect,
        hardware: None,
        firmware: None,
        config: None,
        trust_version: None,
    }
}

async fn story(store: Arc<dyn Store>) {
    // Keys.
    let key = PublicKey::from_pem(&String::from_utf8(sample("test-only-release.pub")).unwrap()).unwrap();
    let record = KeyRecord {
        keyid: key.keyid().clone(),
        name: "release".into(),
        public_key_pem: key.to_pem(),
        created_at_ms: 1,
        revoked_at_ms: None,
    };
    store.insert_key(&record).await.unwrap();
    assert!(matches!(store.insert_key(&record).await, Err(StoreError::Conflict)));
    assert_eq!(store.active_keys().await.unwrap().len(), 1);

    // An upload.
    let bytes = b"image".to_vec();
    let manifest = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    let new = NewArtifact {
        id: "a1".into(),
        manifest_json: String::from_utf8(manifest.to_bytes()).unwrap(),
        manifest: manifest.clone(),
        envelope_json: "{}".into(),
        signers: vec![key.keyid().clone()],
        created_at_ms: 2,
    };
    store.insert_artifact(&new).await.unwrap();
    assert!(matches!(
        store.insert_artifact(&NewArtifact { id: "a2".into(), ..new.clone() }).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.artifact_version_exists(ArtifactKind::Firmware, &manifest.name, &manifest.version).await.unwrap());
    let got = store.get_artifact(ArtifactKind::Firmware, "a1").await.unwrap();
    assert_eq!((got.manifest, got.signers.len()), (manifest.clone(), 1));
    assert!(matches!(store.get_artifact(ArtifactKind::Config, "a1").await, Err(StoreError::NotFound)));
    assert!(store.blob_referenced(&manifest.sha256.to_hex()).await.unwrap());

    // The device routes' cache: one read per TTL, the kind checked, forgetting re-reads.
    let cache = ArtifactCache::default();
    let first = cache.get(store.as_ref(), ArtifactKind::Firmware, "a1").await.unwrap();
    assert_eq!(first.manifest, manifest);
    assert!(Arc::ptr_eq(&first, &cache.get(store.as_ref(), ArtifactKind::Firmware, "a1").await.unwrap()));
    assert!(matches!(cache.get(store.as_ref(), ArtifactKind::Config, "a1").await, Err(StoreError::NotFound)));
    cache.forget("a1");
    assert!(!Arc::ptr_eq(&first, &cache.get(store.as_ref(), ArtifactKind::Firmware, "a1").await.unwrap()));
    assert!(matches!(cache.get(store.as_ref(), ArtifactKind::Firmware, "nope").await, Err(StoreError::NotFound)));

    // Devices.
    for (i, site) in [(0, "berlin"), (1, "berlin"), (2, "paris")] {
        let labels: BTreeMap<String, String> = [("site".to_owned(), site.to_owned())].into();
        let d = NewDevice {
            id: DeviceId::parse(format!("dev-{i}")).unwrap(),
            hardware: HardwareModel::parse("rpi4").unwrap(),
            labels,
            token_hash: format!("hash-{i}"),
            broker_password_hash: format!("$7$-{i}"),
            created_at_ms: 3,
        };
        store.insert_device(&d).await.unwrap();
    }
    let berlin = DeviceFilter { hardware: None, labels: vec![("site".into(), "berlin".into())], trust_below: None };
    assert_eq!(store.list_devices(&berlin, &page()).await.unwrap().items.len(), 2);
    let dev0 = DeviceId::parse("dev-0").unwrap();
    assert_eq!(store.token_owner("hash-0").await.unwrap(), Some(TokenOwner::Device(dev0.clone())));
    let registered = store.credential_changes().await.unwrap();
    assert!(registered >= 3, "each registration raised the credentials' counter: {registered}");
    store.rotate_device_token(&dev0, "hash-0b", "$7$-0b").await.unwrap();
    let rotated = store.credential_changes().await.unwrap();
    assert!(rotated > registered, "so did the rotation");
    assert_eq!(store.token_owner("hash-0").await.unwrap(), None);
    assert_eq!(store.token_owner("hash-0b").await.unwrap(), Some(TokenOwner::Device(dev0.clone())));
    let credentials = store.broker_credentials().await.unwrap();
    assert_eq!(
        credentials.iter().map(|(id, h)| format!("{id}:{h}")).collect::<Vec<_>>(),
        ["dev-0:$7$-0b", "dev-1:$7$-1", "dev-2:$7$-2"]
    );

    // A rollout over the three devices.
    let rollout = RolloutRecord {
        id: "r1".into(),
        artifact_id: "a1".into(),
        kind: ArtifactKind::Firmware,
        state: RolloutState::Running,
        reason: None,
        target: "{}".into(),
        waves: vec![100.0],
        current_wave: 0,
        wave_soak_s: 0,
        wave_gate: WaveGate::Auto,
        max_failure_ratio: 0.5,
        min_finished: 1,
        max_per_minute: None,
        max_in_flight: None,
        max_attempts: 2,
        device_timeout_s: 60,
        max_retries_total: None,
        retries_used: 0,
        health_window_s: 0,
        max_offline_ratio: None,
        pause_detail: None,
        gate_since: 0,
        wave_done_at: None,
        created_at: 4,
        updated_at: 4,
        version: 0,
        schedule: Default::default(),
        dynamic: false,
    };
    let entries: Vec<EntryRecord> = (0..3).map(|i| EntryRecord::pending("r1", &format!("dev-{i}"), i, 0, 4)).collect();
    store.create_rollout(&rollout, &entries).await.unwrap();
    let busy = store.busy_devices(&["dev-1".into(), "dev-9".into()]).await.unwrap();
    assert_eq!(busy, [("dev-1".to_owned(), "r1".to_owned())]);
    let again = RolloutRecord { id: "r2".into(), ..rollout.clone() };
    let clash: Vec<_> = entries.iter().map(|e| EntryRecord { rollout_id: "r2".into(), ..e.clone() }).collect();
    assert!(matches!(store.create_rollout(&again, &clash).await, Err(StoreError::Conflict)), "busy devices refused");

    // The announcer's reads in bulk: registered devices only, each with its active rollout.
    let (ghost, dev2) = (DeviceId::parse("ghost").unwrap(), DeviceId::parse("dev-2").unwrap());
    let mut read = store.get_devices(&[dev0.clone(), ghost.clone(), dev2.clone()]).await.unwrap();
    read.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(read.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["dev-0", "dev-2"]);
    assert_eq!(read[1].labels["site"], "paris");
    let in_rollouts = store.device_rollouts(&[dev0.clone(), ghost.clone(), dev2]).await.unwrap();
    assert_eq!(in_rollouts.len(), 2, "{in_rollouts:?}");
    assert_eq!(in_rollouts.get(&dev0), Some(&("r1".to_owned(), DeviceState::Pending)));
    assert_eq!(store.device_rollout(&ghost).await.unwrap(), None);

    // Dispatch is a compare-and-set: the second claim of the same entry loses.
    let claim = fleet_server::rollout::rules::dispatch(&entries[0], 10);
    assert_eq!(store.change_entries(std::slice::from_ref(&claim), 10).await.unwrap().len(), 1);
    assert!(store.change_entries(&[claim], 10).await.unwrap().is_empty());
    assert_eq!(store.current_command(&dev0).await.unwrap().unwrap().rollout_id, "r1");

    // Reports: applied in order, stale seq ignored, connect of a device in flight re-sends.
    let reports = vec![
        IncomingReport { device: dev0.clone(), report: report(Some("r1"), DeviceState::Downloading, 5, false) },
        IncomingReport { device: dev0.clone(), report: report(Some("r1"), DeviceState::Succeeded, 4, false) },
        IncomingReport { device: dev0.clone(), report: report(None, DeviceState::Idle, 6, true) },
        IncomingReport { device: DeviceId::parse("ghost").unwrap(), report: report(None, DeviceState::Idle, 1, true) },
    ];
    let outcomes = store.apply_reports(&reports, 20).await.unwrap();
    assert_eq!(
        outcomes,
        [
            ReportOutcome::Applied { rollout_id: Some("r1".into()) },
            ReportOutcome::Ignored("stale_seq"),
            ReportOutcome::Resend { rollout_id: "r1".into() },
            ReportOutcome::Ignored("unknown_device"),
        ]
    );
    let mut failed = report(Some("r1"), DeviceState::Failed, 7, false);
    failed.reason = Some(Reason::DigestMismatch);
    store.apply_reports(&[IncomingReport { device: dev0.clone(), report: failed }], 30).await.unwrap();
    let e0 = store.entries("r1").await.unwrap().remove(0);
    assert_eq!((e0.state, e0.reason, e0.retry_at), (DeviceState::Pending, Some(Reason::DigestMismatch), Some(1030)));
    assert_eq!(store.credential_changes().await.unwrap(), rotated, "a rollout and reports change no credential");
    let counts = store.rollout_counts("r1").await.unwrap();
    assert_eq!(counts.iter().map(|c| c.n).sum::<i64>(), 3);

    // The engine's view: counts with what changed since the gate and what was sent lately,
    // and only the entries it acts on.
    let tallies = store.tallies("r1", 25, 5).await.unwrap();
    let sum = |f: fn(&fleet_server::store::rollouts::Count) -> i64| tallies.iter().map(f).sum::<i64>();
    assert_eq!((sum(|c| c.n), sum(|c| c.since), sum(|c| c.sent_recently)), (3, 1, 1), "{tallies:?}");
    let ids = |entries: Vec<EntryRecord>| entries.into_iter().map(|e| e.device_id).collect::<Vec<_>>();
    let select = |s| {
        let store = store.clone();
        async move { ids(store.select_entries("r1", s).await.unwrap()) }
    };
    assert_eq!(select(EntrySelect::Due { wave: 0, now: 30, limit: 10 }).await, ["dev-1", "dev-2"], "dev-0 backs off");
    assert_eq!(select(EntrySelect::Due { wave: 0, now: 30, limit: 1 }).await, ["dev-1"]);
    assert_eq!(select(EntrySelect::Due { wave: 0, now: 2000, limit: 10 }).await, ["dev-0", "dev-1", "dev-2"]);
    assert_eq!(select(EntrySelect::Pending).await.len(), 3);
    assert!(select(EntrySelect::InFlight).await.is_empty());
    let e1 = store.entries("r1").await.unwrap().remove(1);
    assert_eq!(store.change_entries(&[fleet_server::rollout::rules::dispatch(&e1, 40)], 40).await.unwrap().len(), 1);
    assert_eq!(select(EntrySelect::InFlight).await, ["dev-1"]);
    assert!(select(EntrySelect::InFlightSentBy(39)).await.is_empty());
    assert_eq!(select(EntrySelect::InFlightSentBy(40)).await, ["dev-1"]);
    assert!(select(EntrySelect::InFlightQuietSince(39)).await.is_empty());
    assert_eq!(select(EntrySelect::InFlightQuietSince(40)).await, ["dev-1"]);

    // One batch carrying several reports of a device: each sees the one before, the entry
    // ends at the last, written once.
    let dev1 = DeviceId::parse("dev-1").unwrap();
    let steps = [(DeviceState::Downloading, 8), (DeviceState::Verifying, 9), (DeviceState::Installing, 10)];
    let batch: Vec<_> = steps
        .iter()
        .map(|&(state, seq)| IncomingReport { device: dev1.clone(), report: report(Some("r1"), state, seq, false) })
        .collect();
    let outcomes = store.apply_reports(&batch, 50).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ReportOutcome::Applied { rollout_id: Some("r1".into()) }), "{outcomes:?}");
    let e1 = store.entries("r1").await.unwrap().remove(1);
    assert_eq!((e1.state, e1.attempts, e1.last_heard_at), (DeviceState::Installing, 1, Some(50)));
    assert!(select(EntrySelect::InFlightQuietSince(49)).await.is_empty(), "heard at 50");

    // Presence in one batch: the last word of each device counts.
    store.set_presence(&[(dev1.clone(), true), (dev1.clone(), false)], 60).await.unwrap();
    assert!(!store.get_device(&dev1).await.unwrap().online);
    // Silence: `online` last heard at 61 stays until a bound after it, then is offline.
    // dev-0 reported last at 30.
    store.set_presence(&[(dev1.clone(), true)], 61).await.unwrap();
    assert!(store.get_device(&dev0).await.unwrap().online);
    assert!(!store.expire_presence(61).await.unwrap().is_empty());
    assert!(!store.get_device(&dev0).await.unwrap().online, "silent since 30");
    assert!(store.get_device(&dev1).await.unwrap().online, "heard at 61 is not before 61");
    assert_eq!(store.expire_presence(62).await.unwrap().len(), 1, "dev-1 alone");
    let silent = store.get_device(&dev1).await.unwrap();
    assert_eq!((silent.online, silent.last_seen_ms), (false, Some(61)), "offline; last seen kept");

    // A connect report naming no rollout, after the device's success earlier in the same
    // batch: nothing is outstanding any more, so nothing is re-sent.
    let done: Vec<_> =
        [(Some("r1"), DeviceState::Rebooting, 11, false), (Some("r1"), DeviceState::Succeeded, 12, false)]
            .into_iter()
            .chain([(None, DeviceState::Idle, 13, true)])
            .map(|(r, state, seq, connect)| IncomingReport {
                device: dev1.clone(),
                report: report(r, state, seq, connect),
            })
            .collect();
    let r1 = || ReportOutcome::Applied { rollout_id: Some("r1".into()) };
    assert_eq!(
        store.apply_reports(&done, 70).await.unwrap(),
        [r1(), r1(), ReportOutcome::Applied { rollout_id: None }]
    );

    // One replica drives a rollout at a time: a lease, renewed by its holder, taken over
    // once it has run out, given up at a graceful stop.
    assert!(store.lease_rollout("r1", "a", 100, 200).await.unwrap());
    assert!(!store.lease_rollout("r1", "b", 150, 250).await.unwrap(), "a holds it");
    assert!(store.lease_rollout("r1", "a", 150, 300).await.unwrap(), "renewed");
    assert!(!store.lease_rollout("r1", "b", 250, 350).await.unwrap(), "renewal counted");
    assert!(store.lease_rollout("r1", "b", 301, 400).await.unwrap(), "taken over after expiry");
    assert!(!store.lease_rollout("r1", "a", 350, 450).await.unwrap());
    store.release_leases("b").await.unwrap();
    assert!(store.lease_rollout("r1", "a", 350, 450).await.unwrap(), "released");

    // Operator tokens: stored by hash; set replaces, init keeps what is there.
    let token = |name: &str, hash: &str, scope| OperatorTokenRecord {
        name: name.into(),
        scope,
        token_hash: hash.into(),
        mqtt: false,
        broker_password_hash: None,
        created_at_ms: 1,
    };
    let admin = token("admin", "h1", TokenScope::Admin);
    assert_eq!(store.init_operator_token(&admin).await.unwrap(), admin);
    assert_eq!(store.init_operator_token(&token("admin", "h2", TokenScope::Admin)).await.unwrap(), admin);
    store.put_operator_token(&token("admin", "h3", TokenScope::Admin)).await.unwrap();
    let operator = |hash: &'static str| {
        let store = store.clone();
        async move {
            match store.token_owner(hash).await.unwrap() {
                Some(TokenOwner::Operator(t)) => Some(t),
                _ => None,
            }
        }
    };
    assert_eq!(operator("h1").await, None);
    assert_eq!(operator("h3").await.map(|t| t.name), Some("admin".into()));
    assert_eq!(store.token_owner("hash-0b").await.unwrap(), Some(TokenOwner::Device(dev0.clone())), "a device's token");
    store.put_operator_token(&token("viewer", "h4", TokenScope::ReadOnly)).await.unwrap();
    assert_eq!(operator("h4").await.map(|t| t.scope), Some(TokenScope::ReadOnly));
    assert!(
        matches!(store.put_operator_token(&token("other", "h4", TokenScope::Admin)).await, Err(StoreError::Conflict)),
        "one token, one name"
    );

    // Writes of a rollout are a compare-and-set on the version read: an operator's pause
    // committed during an engine step wins over the step's write and stops its claims.
    let read = store.get_rollout("r1").await.unwrap();
    let paused = RolloutRecord { state: RolloutState::Paused, reason: Some(PauseReason::Operator), ..read.clone() };
    assert!(store.update_rollout(&paused).await.unwrap());
    let stale = RolloutRecord { current_wave: 1, updated_at: 90, ..read.clone() };
    assert!(!store.update_rollout(&stale).await.unwrap(), "the engine's write of what it read loses");
    let now = store.get_rollout("r1").await.unwrap();
    assert_eq!((now.state, now.reason, now.current_wave), (RolloutState::Paused, Some(PauseReason::Operator), 0));
    assert_eq!(now.version, read.version + 1);
    let e0 = store.entries("r1").await.unwrap().remove(0);
    assert_eq!(e0.state, DeviceState::Pending);
    let claim = fleet_server::rollout::rules::dispatch(&e0, 90);
    let claims = std::slice::from_ref(&claim);
    assert!(store.claim_entries(&read, claims, 90).await.unwrap().is_empty(), "read before the pause");
    assert!(store.claim_entries(&now, claims, 90).await.unwrap().is_empty(), "paused");
    assert_eq!(store.entries("r1").await.unwrap()[0].state, DeviceState::Pending, "nothing claimed");
    assert!(store.update_rollout(&RolloutRecord { state: RolloutState::Running, reason: None, ..now }).await.unwrap());
    let running = store.get_rollout("r1").await.unwrap();
    assert_eq!(store.claim_entries(&running, claims, 90).await.unwrap().len(), 1, "resumed: claimed");

    // One device: a compare-and-set on the entry that raises the rollout's version; a device
    // cancelled in flight is due its `cancel` until the engine clears the mark.
    let before = store.get_rollout("r1").await.unwrap();
    let e0 = store.entry("r1", &dev0).await.unwrap();
    assert_eq!(e0.state, DeviceState::Sent);
    let cancel = device_control::apply(before.state, &e0, DeviceAction::Cancel).unwrap();
    assert!(cancel.cancel_due);
    assert!(store.control_entry(&cancel.change, true, 95).await.unwrap());
    assert!(!store.control_entry(&cancel.change, true, 96).await.unwrap(), "the entry changed meanwhile");
    assert_eq!(store.get_rollout("r1").await.unwrap().version, before.version + 1, "raised once");
    assert_eq!(store.entry("r1", &dev0).await.unwrap().state, DeviceState::Cancelled);
    assert_eq!(select(EntrySelect::CancelDue).await, ["dev-0"]);
    store.clear_cancel_due("r1", "dev-0").await.unwrap();
    assert!(select(EntrySelect::CancelDue).await.is_empty());
    let absent = store.entry("r1", &DeviceId::parse("dev-9").unwrap()).await;
    assert!(matches!(absent, Err(StoreError::NotFound)), "{absent:?}");

    // Cancel: the rollout stays live while entries are pending; decommissioning leaves it.
    let cancelled = RolloutRecord { state: RolloutState::Cancelled, ..store.get_rollout("r1").await.unwrap() };
    assert!(store.update_rollout(&cancelled).await.unwrap());
    let dev2 = store.entry("r1", &DeviceId::parse("dev-2").unwrap()).await.unwrap();
    let skip = device_control::apply(RolloutState::Running, &dev2, DeviceAction::Skip).unwrap();
    assert!(!store.control_entry(&skip.change, false, 97).await.unwrap(), "a cancelled rollout's devices stay");
    assert_eq!(store.live_rollouts().await.unwrap().len(), 1);
    store.delete_device(&DeviceId::parse("dev-2").unwrap()).await.unwrap();
    let left = store.list_entries("r1", Some(DeviceState::Cancelled), &page()).await.unwrap();
    let ids: Vec<&str> = left.items.iter().map(|e| e.device_id.as_str()).collect();
    assert_eq!(ids, ["dev-0", "dev-2"], "by the operator, by decommissioning");
    assert!(store.rollouts_using("a1").await.unwrap().is_empty(), "a cancelled rollout holds nothing");

    // The retry budget: retries across the rollout, granted as they are written, whether
    // a report or a timeout asks; once used up, failures are final.
    let budget = RolloutRecord { id: "r3".into(), max_attempts: 3, max_retries_total: Some(1), ..rollout.clone() };
    let r3: Vec<EntryRecord> =
        entries[..2].iter().map(|e| EntryRecord { rollout_id: "r3".into(), ..e.clone() }).collect();
    store.create_rollout(&budget, &r3).await.unwrap();
    let claims: Vec<_> = r3.iter().map(|e| fleet_server::rollout::rules::dispatch(e, 100)).collect();
    assert_eq!(store.change_entries(&claims, 100).await.unwrap().len(), 2);
    let failed = |device: &DeviceId| {
        let mut r = report(Some("r3"), DeviceState::Failed, 100, false);
        r.reason = Some(Reason::InstallFailed);
        IncomingReport { device: device.clone(), report: r }
    };
    store.apply_reports(&[failed(&dev0), failed(&dev1)], 110).await.unwrap();
    let states: Vec<(String, DeviceState)> =
        store.entries("r3").await.unwrap().into_iter().map(|e| (e.device_id, e.state)).collect();
    let expected = [("dev-0".to_owned(), DeviceState::Pending), ("dev-1".to_owned(), DeviceState::Failed)];
    assert_eq!(states, expected, "the first retried, the second final");
    assert_eq!(store.get_rollout("r3").await.unwrap().retries_used, 1);
    let e0 = store.entry("r3", &dev0).await.unwrap();
    store.change_entries(&[fleet_server::rollout::rules::dispatch(&e0, 2000)], 2000).await.unwrap();
    let sent = store.entry("r3", &dev0).await.unwrap();
    let timeout = fleet_server::rollout::rules::on_tick_timeout(&sent, 1000, 3, 3000).unwrap();
    assert_eq!((timeout.state, timeout.retry_of), (DeviceState::Pending, Some(DeviceState::TimedOut)), "attempts left");
    assert_eq!(store.change_entries(&[timeout], 3000).await.unwrap().len(), 1);
    let e0 = store.entry("r3", &dev0).await.unwrap();
    assert_eq!((e0.state, e0.retry_at), (DeviceState::TimedOut, None), "no budget left: final");
    assert_eq!(store.get_rollout("r3").await.unwrap().retries_used, 1);

    // Lifecycle: only a finished rollout is deleted, its entries with it; only running or
    // paused rollouts keep an artifact, and a finished one still names it.
    let running = store.delete_finished_rollout("r3").await.unwrap();
    assert_eq!(running, RolloutDeletion::Unfinished(RolloutState::Running));
    assert!(matches!(store.delete_artifact(ArtifactKind::Firmware, "a1").await, Err(StoreError::Referenced)));
    let done = RolloutRecord { state: RolloutState::Completed, ..store.get_rollout("r3").await.unwrap() };
    assert!(store.update_rollout(&done).await.unwrap());
    store.delete_artifact(ArtifactKind::Firmware, "a1").await.unwrap();
    assert!(!store.blob_referenced(&manifest.sha256.to_hex()).await.unwrap());
    assert_eq!(store.get_rollout("r1").await.unwrap().artifact_id, "a1", "history keeps the id");
    assert_eq!(store.delete_finished_rollout("r1").await.unwrap(), RolloutDeletion::Deleted);
    assert!(matches!(store.get_rollout("r1").await, Err(StoreError::NotFound)));
    assert!(store.entries("r1").await.unwrap().is_empty(), "its entries went with it");
    assert!(matches!(store.delete_finished_rollout("r1").await, Err(StoreError::NotFound)));
    assert_eq!(store.entries("r3").await.unwrap().len(), 2, "another rollout's entries stay");
    // Retention: finished before the cut-off (strictly) expires, with its entries.
    let done = store.get_rollout("r3").await.unwrap();
    assert!(store.delete_expired_rollouts(done.updated_at).await.unwrap().is_empty());
    assert_eq!(store.delete_expired_rollouts(done.updated_at + 1).await.unwrap(), ["r3"]);
    assert!(store.entries("r3").await.unwrap().is_empty());
}

#[tokio::test]
async fn story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = fleet_server::store::sqlite::SqliteStore::open(&dir.path().join("db")).await.unwrap();
    story(Arc::new(store)).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn story_on_postgres() {
    let url = fleet_tests::fresh_postgres().await;
    let store = fleet_server::store::postgres::PgStore::connect(&url).await.unwrap();
    story(Arc::new(store)).await;
}
