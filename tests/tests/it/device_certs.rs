//! Device certificates (CONTRACT §12) on the embedded broker, with `--tls-self-signed`'s CA
//! signing them: real TLS and real certificates made here. A device's certificate logs it
//! in to MQTT with no password and stands for its token over HTTPS; it cannot be used as
//! another client id nor read another device's commands; certificates of another CA,
//! expired ones and ones the server never issued are refused; rotating the device's token
//! revokes them and closes the session at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleet_cli::ApiClient;
use fleet_protocol::tls::ClientIdentity;
use fleet_tests::certs::TestCerts;
use fleet_tests::{ADMIN_TOKEN, TestApp};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use serde_json::{Value, json};

/// A key and certificate of one device, as PEM files.
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Identity {
    fn as_client(&self) -> ClientIdentity<'_> {
        ClientIdentity { cert: &self.cert, key: &self.key }
    }
}

/// A fresh key and a CSR whose subject CN is `cn`.
fn csr(cn: &str) -> (KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, csr)
}

/// `POST /devices/{id}/certificate` with `bearer` (or none), over `client`.
async fn post_csr(client: &reqwest::Client, https: &str, id: &str, bearer: Option<&str>, csr: &str) -> (u16, Value) {
    let mut request = client.post(format!("{https}/api/v1/devices/{id}/certificate")).json(&json!({"csr_pem": csr}));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An HTTPS client trusting `ca`, presenting `identity` when given.
fn https_client(ca: &Path, identity: Option<&Identity>) -> reqwest::Client {
    let config = match identity {
        Some(id) => fleet_protocol::tls::client_config_with_identity(Some(ca), id.as_client()).unwrap(),
        None => fleet_protocol::tls::client_config(Some(ca)).unwrap(),
    };
    reqwest::Client::builder().use_preconfigured_tls(config).build().unwrap()
}

/// Enrolls device `id` with its token: a key and a certificate from the server, in `dir`.
async fn enroll(ca: &Path, https: &str, id: &str, token: &str, dir: &Path) -> Identity {
    let (key, csr) = csr(id);
    let (status, body) = post_csr(&https_client(ca, None), https, id, Some(token), &csr).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["serial"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
    assert!(body["expires_at"].as_str().is_some(), "{body}");
    write_identity(dir, id, body["certificate_pem"].as_str().unwrap(), &key)
}

fn write_identity(dir: &Path, name: &str, cert_pem: &str, key: &KeyPair) -> Identity {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key_file) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    Identity { cert, key: key_file }
}

/// Connects over mqtts:// with `identity` and no password, as `client_id` and `username`;
/// the client and its event loop once let in, else what happened (within 5 s).
async fn connect(
    port: u16,
    ca: &Path,
    identity: &Identity,
    client_id: &str,
    username: &str,
) -> Result<(AsyncClient, EventLoop), String> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_credentials(username, "").set_clean_start(true);
    let config = fleet_protocol::tls::client_config_with_identity(Some(ca), identity.as_client()).unwrap();
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config))));
    let (client, mut eventloop) = AsyncClient::new(options, 4);
    crate::broker_tls::let_in(&mut eventloop).await.map(|()| (client, eventloop))
}

/// The next SUBACK's reason, or the error that ended the connection.
async fn suback(eventloop: &mut EventLoop) -> Result<SubscribeReasonCode, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(ack)))) => return Ok(ack.return_codes[0]),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no SUBACK within 5 s".into()),
        }
    }
}

/// Whether the broker closes the connection within `within`.
async fn closed_within(eventloop: &mut EventLoop, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        loop {
            if let Err(e) = eventloop.poll().await {
                return e;
            }
        }
    })
    .await
    .is_ok()
}

/// A certificate for `cn` signed with the server's own CA key (`DATA_DIR/tls/ca.key`) but
/// not by the server, valid from `from` to `to` days from now.
fn signed_behind_the_servers_back(data_dir: &Path, cn: &str, from: i64, to: i64, dir: &Path) -> Identity {
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(data_dir.join("tls/ca.key")).unwrap()).unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.distinguished_name.push(DnType::CommonName, "Fleet OTA server CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    (params.not_before, params.not_after) = (now + time::Duration::days(from), now + time::Duration::days(to));
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    write_identity(dir, &format!("{cn}-forged{from}{to}"), &cert.pem(), &key)
}

fn tls_port(app: &TestApp) -> u16 {
    app.mqtts_url.as_deref().unwrap().rsplit_once(':').unwrap().1.parse().unwrap()
}

#[tokio::test]
async fn a_device_certificate_logs_in_as_its_device_only() {
    let app = TestApp::spawn_embedded(|s| s.tls_self_signed = true).await;
    let ca = app.data_dir.join("tls/ca.crt");
    let https = app.client.base_url().replacen("http://", "https://", 1);
    let admin = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&ca)).unwrap();
    let token_a = admin.add_device("cert-a", "sim", &Default::default()).await.unwrap().token;
    let token_b = admin.add_device("cert-b", "sim", &Default::default()).await.unwrap().token;
    let dir = tempfile::tempdir().unwrap();
    let port = tls_port(&app);

    // Only a CSR for the device itself, by itself (or the operator).
    let plain = https_client(&ca, None);
    let (_, csr_b) = csr("cert-b");
    assert_eq!(post_csr(&plain, &https, "cert-a", Some(&token_a), &csr_b).await.0, 400, "CN of another device");
    assert_eq!(post_csr(&plain, &https, "cert-b", Some(&token_a), &csr_b).await.0, 403, "another device's route");
    assert_eq!(post_csr(&plain, &https, "cert-a", None, &csr("cert-a").1).await.0, 401, "no credential");
    assert_eq!(post_csr(&plain, &https, "cert-a", Some(&token_a), "not a CSR").await.0, 400);
    let a = enroll(&ca, &https, "cert-a", &token_a, dir.path()).await;
    let by_operator = post_csr(&plain, &https, "cert-b", Some(ADMIN_TOKEN), &csr_b).await;
    assert_eq!(by_operator.0, 200, "{}", by_operator.1);

    // MQTT with no password, as its own device only.
    let (client, mut eventloop) = connect(port, &ca, &a, "cert-a", "cert-a").await.expect("A's certificate as A");
    client.subscribe("fleet/devices/cert-b/commands", QoS::AtLeastOnce).await.unwrap();
    let refused = suback(&mut eventloop).await;
    assert!(!matches!(refused, Ok(SubscribeReasonCode::Success(_))), "A reads B's commands: {refused:?}");
    drop((client, eventloop));
    assert!(connect(port, &ca, &a, "cert-b", "cert-b").await.is_err(), "A's certificate as client id B");
    assert!(connect(port, &ca, &a, "cert-a", "cert-b").await.is_err(), "A's certificate with username B");
    assert!(connect(port, &ca, &a, "cert-b", "cert-a").await.is_err(), "A's certificate with client id B");

    // Over HTTPS the certificate stands for A's token, on A's routes only.
    let with_a = https_client(&ca, Some(&a));
    let own = with_a.get(format!("{https}/api/v1/devices/cert-a/command")).send().await.unwrap();
    assert_eq!(own.status().as_u16(), 204);
    let other = with_a.get(format!("{https}/api/v1/devices/cert-b/command")).send().await.unwrap();
    assert_eq!(other.status().as_u16(), 403);
    let operator_route = with_a.get(format!("{https}/api/v1/devices")).send().await.unwrap();
    assert_eq!(operator_route.status().as_u16(), 403);
    // A device renews its certificate with the certificate it has.
    let (_, csr_a) = csr("cert-a");
    assert_eq!(post_csr(&with_a, &https, "cert-a", None, &csr_a).await.0, 200);
    // Tokens still work next to certificates.
    let by_token = plain.get(format!("{https}/api/v1/devices/cert-b/command")).bearer_auth(&token_b).send().await;
    assert_eq!(by_token.unwrap().status().as_u16(), 204);
}

#[tokio::test]
async fn certificates_of_another_ca_expired_or_never_issued_are_refused() {
    let app = TestApp::spawn_embedded(|s| s.tls_self_signed = true).await;
    let ca = app.data_dir.join("tls/ca.crt");
    let https = app.client.base_url().replacen("http://", "https://", 1);
    let admin = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&ca)).unwrap();
    admin.add_device("cert-x", "sim", &Default::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = tls_port(&app);

    // Another CA's certificate for the same name: the TLS handshake fails.
    let other = TestCerts::generate(&dir.path().join("other"), "other");
    let foreign = Identity { cert: other.cert.clone(), key: other.key.clone() };
    assert!(connect(port, &ca, &foreign, "cert-x", "cert-x").await.is_err(), "another CA");
    let foreign_https = https_client(&ca, Some(&foreign)).get(format!("{https}/api/v1/devices/cert-x/command")).send();
    assert!(foreign_https.await.is_err(), "another CA over HTTPS");

    // Expired, though signed by the right CA.
    let expired = signed_behind_the_servers_back(&app.data_dir, "cert-x", -10, -1, dir.path());
    let refused = connect(port, &ca, &expired, "cert-x", "cert-x").await.map(drop).expect_err("expired");
    assert!(refused.to_lowercase().contains("certificate") || refused.contains("refused"), "{refused}");

    // Valid and signed with the CA's key, but not issued by the server: unknown to it.
    let forged = signed_behind_the_servers_back(&app.data_dir, "cert-x", -1, 10, dir.path());
    let refused = connect(port, &ca, &forged, "cert-x", "cert-x").await.map(drop).expect_err("never issued");
    assert!(refused.contains("refused"), "{refused}");
    let status = https_client(&ca, Some(&forged)).get(format!("{https}/api/v1/devices/cert-x/command")).send();
    assert_eq!(status.await.unwrap().status().as_u16(), 401);
}

#[tokio::test]
async fn rotating_the_token_revokes_the_certificates_and_closes_the_session() {
    let app = TestApp::spawn_embedded(|s| s.tls_self_signed = true).await;
    let ca = app.data_dir.join("tls/ca.crt");
    let https = app.client.base_url().replacen("http://", "https://", 1);
    let admin = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&ca)).unwrap();
    let token = admin.add_device("cert-r", "sim", &Default::default()).await.unwrap().token;
    let token_d = admin.add_device("cert-d", "sim", &Default::default()).await.unwrap().token;
    let dir = tempfile::tempdir().unwrap();
    let port = tls_port(&app);
    let cert = enroll(&ca, &https, "cert-r", &token, dir.path()).await;
    let cert_d = enroll(&ca, &https, "cert-d", &token_d, dir.path()).await;

    let (_client, mut eventloop) = connect(port, &ca, &cert, "cert-r", "cert-r").await.expect("before rotation");
    admin.rotate_token("cert-r").await.unwrap();
    assert!(closed_within(&mut eventloop, Duration::from_secs(5)).await, "the session is closed at once");
    let refused = connect(port, &ca, &cert, "cert-r", "cert-r").await.map(drop).expect_err("revoked");
    assert!(refused.contains("refused"), "{refused}");
    let status = https_client(&ca, Some(&cert)).get(format!("{https}/api/v1/devices/cert-r/command")).send();
    assert_eq!(status.await.unwrap().status().as_u16(), 401);

    // Removing a device revokes its certificates the same way.
    let (_client, mut eventloop) = connect(port, &ca, &cert_d, "cert-d", "cert-d").await.expect("before removal");
    admin.delete_device("cert-d").await.unwrap();
    assert!(closed_within(&mut eventloop, Duration::from_secs(5)).await, "the session is closed at once");
    assert!(connect(port, &ca, &cert_d, "cert-d", "cert-d").await.is_err(), "removed");
}

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

/// `fleet-agent enroll` for `id` with `token`: the key and certificate in `state_dir`.
async fn enroll_agent(https: &str, ca: &Path, id: &str, token: &str, state_dir: &Path) -> Identity {
    std::fs::create_dir_all(state_dir).unwrap();
    let token_file = state_dir.join("enroll-token");
    std::fs::write(&token_file, token).unwrap();
    let out = tokio::process::Command::new(AGENT)
        .arg("enroll")
        .args(["--device-id", id, "--server", https])
        .arg("--token-file")
        .arg(&token_file)
        .arg("--ca-file")
        .arg(ca)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "enroll: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(&token_file).unwrap();
    let key = state_dir.join("device.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
    Identity { cert: state_dir.join("device.crt"), key }
}

/// Waits until `pred` holds for device `id` (within `within`).
async fn wait_device(
    client: &ApiClient,
    id: &str,
    within: Duration,
    pred: impl Fn(&fleet_protocol::api::DeviceInfo) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let device = client.get_device(id).await.unwrap();
        if pred(&device) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "device {id}: {device:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn agents_with_certificates_only_complete_a_rollout_and_renew_before_expiry() {
    // Certificates live 30 s here: renewal is due some 19 s after each is signed.
    let mut app = TestApp::spawn_embedded(|s| {
        s.tls_self_signed = true;
        s.test_device_cert_lifetime_s = Some(30);
    })
    .await;
    let ca = app.data_dir.join("tls/ca.crt");
    let https = app.client.base_url().replacen("http://", "https://", 1);
    let admin = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&ca)).unwrap();
    admin.add_key("release", &String::from_utf8(fleet_tests::sample("test-only-release.pub")).unwrap()).await.unwrap();
    app.client = admin.clone();
    let mqtts = app.mqtts_url.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut agents = vec![];
    let mut setups = vec![];
    for n in 0..3 {
        let id = format!("cert-agent-{n}");
        let token = admin.add_device(&id, "sim", &Default::default()).await.unwrap().token;
        let state_dir = dir.path().join(&id);
        let identity = enroll_agent(&https, &ca, &id, &token, &state_dir).await;
        let setup = fleet_tests::agent::AgentSetup {
            id: fleet_protocol::DeviceId::parse(id.clone()).unwrap(),
            token: String::new(),
            hardware: "sim".into(),
            server: https.clone(),
            mqtt_url: mqtts.clone(),
            trust: fleet_tests::samples_dir().join("test-only-release.pub"),
            state_dir,
            extra: vec![
                "--client-cert".into(),
                identity.cert.display().to_string(),
                "--client-key".into(),
                identity.key.display().to_string(),
                "--ca-file".into(),
                ca.display().to_string(),
                "--health-timeout-s".into(),
                "20".into(),
            ],
            env: vec![],
        };
        agents.push(fleet_tests::agent::AgentProcess::spawn(AGENT, &setup));
        setups.push((setup, std::fs::read(&identity.cert).unwrap()));
    }
    for (setup, _) in &setups {
        wait_device(&admin, setup.id.as_str(), Duration::from_secs(15), |d| d.online).await;
    }

    let fw = crate::rollouts::firmware(&app, "gateway-os", "5.0.0", "sim").await;
    let rollout = admin.create_rollout(&json!({"firmware": fw.id, "target": {"hardware": "sim"}})).await.unwrap();
    let done =
        crate::rollouts::wait_for(&app, &rollout.id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(done["counts"]["succeeded"], 3, "{done:#}\n{}", agents[0].log());

    // Each agent renews its certificate and stays online.
    for ((setup, first), agent) in setups.iter().zip(&agents) {
        let cert = setup.state_dir.join("device.crt");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        while std::fs::read(&cert).unwrap() == *first {
            assert!(tokio::time::Instant::now() < deadline, "no renewal: {}", agent.log());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        wait_device(&admin, setup.id.as_str(), Duration::from_secs(5), |d| d.online).await;
    }
    // Once the first certificates have expired, a restarted agent logs in with its renewed one.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (setup, _) = &setups[0];
    agents[0].terminate().await;
    wait_device(&admin, setup.id.as_str(), Duration::from_secs(10), |d| !d.online).await;
    agents[0] = fleet_tests::agent::AgentProcess::spawn(AGENT, setup);
    wait_device(&admin, setup.id.as_str(), Duration::from_secs(15), |d| d.online).await;
}

/// On Mosquitto (`require_certificate`, `use_identity_as_username`, `crlfile`): a device
/// certificate logs in with no password, as its CN; rotating the token puts it in the CRL
/// the server writes, and after the reload the server takes over the session still open
/// with it (`--mosquitto-cert-url`): it is closed at once and refused when it reconnects,
/// while another device's session stays open. Removing a device does the same.
#[tokio::test]
#[ignore = "needs the mosquitto binary (CI installs it)"]
async fn on_mosquitto_a_revoked_certificate_is_refused_and_its_open_session_closed() {
    let dir = tempfile::tempdir().unwrap();
    let device_ca = fleet_tests::certs::TestCa::generate(&dir.path().join("ca"), "devices");
    let broker_certs = TestCerts::generate(&dir.path().join("broker-certs"), "broker");
    let broker = fleet_tests::mosquitto::Mosquitto::start_with(
        &dir.path().join("mosquitto"),
        Some(&broker_certs),
        Some(&device_ca),
    );
    let (tls_port, cert_url) = (broker.tls_port.unwrap(), broker.tls_url());
    let (ca_cert, ca_key, broker_ca) = (device_ca.cert.clone(), device_ca.key.clone(), broker_certs.ca.clone());
    let app = TestApp::spawn_full(dir.path(), Some(broker), |s| {
        s.tls_self_signed = true;
        (s.device_ca_cert, s.device_ca_key) = (Some(ca_cert), Some(ca_key));
        (s.mosquitto_cert_url, s.mqtt_ca_file) = (Some(cert_url), Some(broker_ca));
    })
    .await;
    let server_ca = app.data_dir.join("tls/ca.crt");
    let https = app.client.base_url().replacen("http://", "https://", 1);
    let admin = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&server_ca)).unwrap();
    let token = admin.add_device("cert-m", "sim", &Default::default()).await.unwrap().token;
    let cert = enroll(&server_ca, &https, "cert-m", &token, dir.path()).await;
    let token_k = admin.add_device("cert-k", "sim", &Default::default()).await.unwrap().token;
    let cert_k = enroll(&server_ca, &https, "cert-k", &token_k, dir.path()).await;

    // Its username is its CN: Mosquitto's ACL patterns confine it as for a token.
    let (_m, mut session) = connect(tls_port, &broker_certs.ca, &cert, "cert-m", "cert-m")
        .await
        .expect("a device certificate on Mosquitto");
    let (k, mut session_k) =
        connect(tls_port, &broker_certs.ca, &cert_k, "cert-k", "cert-k").await.expect("another device's certificate");

    admin.rotate_token("cert-m").await.unwrap();
    assert!(closed_within(&mut session, Duration::from_secs(5)).await, "the open session is closed at once");
    let crl = std::fs::read_to_string(app.mosquitto.as_ref().unwrap().dir.join("devices.crl")).unwrap();
    assert!(crl.contains("BEGIN X509 CRL"), "{crl}");
    assert!(connect(tls_port, &broker_certs.ca, &cert, "cert-m", "cert-m").await.is_err(), "revoked");
    assert!(!closed_within(&mut session_k, Duration::from_secs(1)).await, "another device's session stays open");
    k.subscribe("fleet/devices/cert-k/commands", QoS::AtLeastOnce).await.unwrap();
    let granted = suback(&mut session_k).await;
    assert!(matches!(granted, Ok(SubscribeReasonCode::Success(_))), "{granted:?}");

    // Removing a device closes its certificate's session the same way.
    admin.delete_device("cert-k").await.unwrap();
    assert!(closed_within(&mut session_k, Duration::from_secs(5)).await, "closed at once on removal");
    assert!(connect(tls_port, &broker_certs.ca, &cert_k, "cert-k", "cert-k").await.is_err(), "removed");
}
