//! TLS everywhere: the server serves HTTPS, the agent connects over mqtts:// and downloads
//! over https:// trusting only `--ca-file`; with another CA, both are refused.

use std::time::Duration;

use fleet_cli::ApiClient;
use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel};
use fleet_tests::agent::{AgentProcess, AgentSetup};
use fleet_tests::certs::TestCerts;
use fleet_tests::mosquitto::Mosquitto;
use fleet_tests::{ADMIN_TOKEN, TestApp, manifest_for, release_key, samples_dir, sign, wait_rollout};
use serde_json::json;

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

#[tokio::test]
async fn the_server_serves_https_to_clients_that_trust_its_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    let good = TestCerts::generate(&dir.path().join("certs"), "good");
    let wrong = TestCerts::generate(&dir.path().join("certs"), "wrong");
    let app = TestApp::spawn_with(|s| {
        s.tls_cert = Some(good.cert.clone());
        s.tls_key = Some(good.key.clone());
    })
    .await;
    let https = app.client.base_url().replacen("http://", "https://", 1);

    let trusted = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&good.ca)).unwrap();
    assert!(trusted.list_keys(None).await.is_ok(), "HTTPS with the test CA");
    let untrusting = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&wrong.ca)).unwrap();
    let refused = untrusting.list_keys(None).await.expect_err("another CA");
    assert!(format!("{refused:?}").to_lowercase().contains("certificate"), "{refused:?}");
    let system_roots = ApiClient::new(&https, ADMIN_TOKEN);
    assert!(system_roots.list_keys(None).await.is_err(), "a test CA is not a system root");
    assert!(app.client.list_keys(None).await.is_err(), "no cleartext HTTP on the TLS port");
}

#[tokio::test]
#[ignore = "needs the mosquitto binary (CI installs it)"]
async fn the_agent_uses_mqtts_and_https_with_the_test_ca_and_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let good = TestCerts::generate(&dir.path().join("certs"), "good");
    let wrong = TestCerts::generate(&dir.path().join("certs"), "wrong");
    let data = dir.path().join("server");
    let broker = Mosquitto::start(&data.join("mosquitto"), Some(&good));
    let (plain_url, tls_url) = (broker.url(), broker.tls_url());
    let ca = good.ca.clone();
    let app = TestApp::spawn_full(&data, Some(broker), |s| {
        s.tls_cert = Some(good.cert.clone());
        s.tls_key = Some(good.key.clone());
        s.mqtt_url = Some(tls_url.clone());
        s.mqtt_ca_file = Some(ca.clone());
    })
    .await;
    let https = app.client.base_url().replacen("http://", "https://", 1);
    let client = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&good.ca)).unwrap();
    client.add_key("release", &String::from_utf8(fleet_tests::sample("test-only-release.pub")).unwrap()).await.unwrap();

    let bytes: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 241) as u8).collect();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bytes);
    m.hardware = vec![HardwareModel::parse("rpi4").unwrap()];
    let envelope = serde_json::to_vec(&sign(&m, &[&release_key()])).unwrap();
    let len = bytes.len() as u64;
    let fw = client.upload(ArtifactKind::Firmware, envelope, bytes.into(), len).await.unwrap();

    // `tls` trusts the test CA over mqtts and https; `blind` trusts another CA over mqtts;
    // `plain` connects over mqtt:// but trusts another CA for https.
    let agent = |id: &str, mqtt: &str, ca: &std::path::Path, token: String| AgentSetup {
        id: DeviceId::parse(id).unwrap(),
        token,
        hardware: "rpi4".into(),
        server: https.clone(),
        mqtt_url: mqtt.to_owned(),
        trust: samples_dir().join("test-only-release.pub"),
        state_dir: dir.path().join(id),
        extra: vec!["--ca-file".into(), ca.to_str().unwrap().into(), "--health-timeout-s".into(), "20".into()],
        env: vec![],
    };
    let mut agents = vec![];
    for (id, mqtt, ca) in
        [("tls", &tls_url, &good.ca), ("blind", &tls_url, &wrong.ca), ("plain", &plain_url, &wrong.ca)]
    {
        let token = client.add_device(id, "rpi4", &Default::default()).await.unwrap().token;
        agents.push(AgentProcess::spawn(AGENT, &agent(id, mqtt, ca, token)));
    }
    for id in ["tls", "plain"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !client.get_device(id).await.unwrap().online {
            assert!(tokio::time::Instant::now() < deadline, "{id} never came online");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let body = json!({"firmware": fw.id, "target": {"devices": ["tls", "blind", "plain"]}, "device_timeout_s": 10});
    let id = client.create_rollout(&body).await.unwrap().id;
    let finished = |v: &serde_json::Value| {
        v["counts"]["succeeded"].as_u64() == Some(1) && v["counts"]["timed_out"].as_u64() == Some(2)
    };
    let body = wait_rollout(&client, &id, Duration::from_secs(60), finished).await;
    let entries = client.rollout_devices(&id, None, None).await.unwrap().items;
    let state = |dev: &str| {
        let e = entries.iter().find(|e| e.device_id == dev).unwrap_or_else(|| panic!("{dev} in {body:#}"));
        (e.state.as_str().to_owned(), e.reason.map(|r| r.as_str().to_owned()))
    };
    assert_eq!(state("tls"), ("succeeded".into(), None));
    // The command reached `plain` over MQTT, but its HTTPS confirmation was refused, so it
    // dropped the command unconfirmed (CONTRACT §6 step 2) and the server timed it out.
    assert_eq!(state("plain").0, "timed_out", "HTTPS with another CA");
    assert_eq!(state("blind").0, "timed_out", "mqtts with another CA");
    assert!(!client.get_device("blind").await.unwrap().online, "mqtts with another CA never connects");
    assert!(agents[1].log().contains("certificate"), "{}", agents[1].log());
    assert!(agents[2].log().contains("certificate"), "{}", agents[2].log());
}
