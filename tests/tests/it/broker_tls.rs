//! No credential in cleartext beyond loopback (CONTRACT §12), on the embedded default:
//! `--tls-self-signed` makes a CA in the data directory and serves HTTPS and mqtts:// with
//! it (TLS ended by the broker's gate); simulated devices that pin that CA complete a
//! rollout over both; a cleartext client on the TLS port and a client of another CA are
//! refused; simulated devices with `--certificates` enroll, log in with their certificates
//! alone, complete a rollout and use the kept certificates again; `--require-tls` closes cleartext HTTP and MQTT from a peer that is not
//! loopback (this machine's own non-loopback address stands for one) and keeps them open
//! to local clients.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fleet_cli::ApiClient;
use fleet_tests::certs::TestCerts;
use fleet_tests::simulator::{Simulator, SimulatorSetup};
use fleet_tests::{ADMIN_TOKEN, TestApp};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use serde_json::json;

use crate::rollouts::{firmware, wait_for};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

/// Connects as `id` with `token` to `host:port` (over TLS trusting `ca` when given); Ok
/// once the broker let it in, Err with what happened otherwise (within 5 s).
async fn connect(host: &str, port: u16, ca: Option<&Path>, id: &str, token: &str) -> Result<(), String> {
    let mut options = MqttOptions::new(id, host, port);
    options.set_credentials(id, token).set_clean_start(true);
    if let Some(ca) = ca {
        let config = fleet_protocol::tls::client_config(Some(ca)).unwrap();
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config))));
    }
    let (_client, mut eventloop) = AsyncClient::new(options, 4);
    let_in(&mut eventloop).await
}

/// Polls until the broker lets the client in (Ok) or refuses or drops it (Err with what
/// happened), within 5 s.
pub(crate) async fn let_in(eventloop: &mut EventLoop) -> Result<(), String> {
    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => return Ok(()),
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Err(format!("refused: {:?}", ack.code)),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await;
    outcome.unwrap_or_else(|_| Err("no answer within 5 s".into()))
}

fn host_port(url: &str) -> (String, u16) {
    let (host, port) = url.split_once("://").unwrap().1.rsplit_once(':').unwrap();
    (host.to_owned(), port.parse().unwrap())
}

#[tokio::test]
async fn one_flag_serves_https_and_mqtts_to_devices_that_pin_the_servers_own_ca() {
    let mut app = TestApp::spawn_embedded(|s| s.tls_self_signed = true).await;
    let ca = app.data_dir.join("tls/ca.crt");
    let https = app.client.base_url().replacen("http://", "https://", 1);
    let client = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&ca)).unwrap();
    client.add_key("release", &String::from_utf8(fleet_tests::sample("test-only-release.pub")).unwrap()).await.unwrap();
    let mqtts = app.mqtts_url.clone().expect("the embedded broker serves mqtts:// with TLS");
    let (host, tls_port) = host_port(&mqtts);

    // Simulated devices on the real agent code path, over https:// and mqtts:// only.
    app.client = client.clone();
    let fw = firmware(&app, "gateway-os", "3.0.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimulatorSetup {
        ca_file: Some(&ca),
        ..SimulatorSetup::new(AGENT, 5, &https, &mqtts, dir.path())
    })
    .await;
    let id = client.create_rollout(&json!({"firmware": fw.id, "target": {"hardware": "sim"}})).await.unwrap().id;
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(done["counts"]["succeeded"], 5, "{done:#}");
    sim.stop().await;

    // A device's own credentials: accepted over TLS with the CA, refused without TLS on the
    // TLS port and with another CA.
    let token = client.add_device("t-1", "sim", &Default::default()).await.unwrap().token;
    connect(&host, tls_port, Some(&ca), "t-1", &token).await.expect("mqtts with the server's CA");
    let cleartext = connect(&host, tls_port, None, "t-1", &token).await;
    assert!(cleartext.is_err(), "a cleartext CONNECT on the TLS port: {cleartext:?}");
    let other = TestCerts::generate(&dir.path().join("other"), "other");
    let wrong = connect(&host, tls_port, Some(&other.ca), "t-1", &token).await.expect_err("another CA");
    assert!(wrong.to_lowercase().contains("certificate"), "{wrong}");
}

#[tokio::test]
async fn simulated_devices_with_certificates_complete_a_rollout_with_no_password() {
    let mut app = TestApp::spawn_embedded(|s| s.tls_self_signed = true).await;
    let ca = app.data_dir.join("tls/ca.crt");
    let https = app.client.base_url().replacen("http://", "https://", 1);
    let client = ApiClient::trusting(&https, ADMIN_TOKEN, Some(&ca)).unwrap();
    client.add_key("release", &String::from_utf8(fleet_tests::sample("test-only-release.pub")).unwrap()).await.unwrap();
    let mqtts = app.mqtts_url.clone().unwrap();
    app.client = client.clone();
    let fw = firmware(&app, "gateway-os", "3.1.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let setup = SimulatorSetup {
        ca_file: Some(&ca),
        certificates: true,
        ..SimulatorSetup::new(AGENT, 5, &https, &mqtts, dir.path())
    };

    // Online means the broker let each in on its certificate: the simulator sends no
    // password with one (and without a certificate an empty password is refused, below).
    let sim = Simulator::start(setup.clone()).await;
    let said = sim.printed.join("\n");
    assert!(said.contains("certificates: 5 devices in") && said.contains("(0 kept"), "{said}");
    for n in 0..5 {
        let key = dir.path().join(format!("sim-{n}/device.key"));
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        assert!(dir.path().join(format!("sim-{n}/device.crt")).exists());
    }
    let id = client.create_rollout(&json!({"firmware": fw.id, "target": {"hardware": "sim"}})).await.unwrap().id;
    let done = wait_for(&app, &id, Duration::from_secs(60), |b| b["state"] == "completed").await;
    assert_eq!(done["counts"]["succeeded"], 5, "{done:#}");
    sim.stop().await;
    let (host, tls_port) = host_port(&mqtts);
    let bare = connect(&host, tls_port, Some(&ca), "sim-0", "").await;
    assert!(bare.is_err(), "no certificate and no password: {bare:?}");

    // The next start uses the kept certificates (the kept tokens were accepted).
    let again = Simulator::start(setup).await;
    let said = again.printed.join("\n");
    assert!(said.contains("(5 kept ones used again)"), "{said}");
    again.stop().await;
}

/// An IPv4 address of this machine that is not loopback, to stand for a remote peer.
fn non_loopback_address() -> String {
    let out = std::process::Command::new("ip").args(["-o", "-4", "addr", "show", "scope", "global"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let address = text.split_whitespace().skip_while(|w| *w != "inet").nth(1).and_then(|a| a.split('/').next());
    address.expect("this test needs a non-loopback IPv4 address on this machine (`ip -4 addr`)").to_owned()
}

#[tokio::test]
#[ignore = "needs a non-loopback IPv4 address on this machine (CI's has one)"]
async fn require_tls_refuses_cleartext_from_beyond_loopback_and_serves_tls_to_it() {
    let ip = non_loopback_address();
    let any = "0.0.0.0:0".parse().unwrap();
    let app = TestApp::spawn_embedded(|s| {
        (s.listen, s.embedded_broker, s.embedded_broker_tls) = (any, any, any);
        (s.require_tls, s.tls_self_signed, s.tls_san) = (true, true, vec![ip.clone()]);
    })
    .await;
    let ca = app.data_dir.join("tls/ca.crt");
    let port = |url: &str| url.rsplit_once(':').unwrap().1.parse::<u16>().unwrap();
    let (http_port, plain_port) = (port(app.client.base_url()), port(&app.mqtt_url));
    let tls_port = port(app.mqtts_url.as_deref().unwrap());
    let remote = ApiClient::trusting(format!("https://{ip}:{http_port}"), ADMIN_TOKEN, Some(&ca)).unwrap();
    let token = remote.add_device("r-1", "sim", &Default::default()).await.expect("HTTPS from beyond loopback").token;

    let refused = connect(&ip, plain_port, None, "r-1", &token).await;
    assert!(refused.is_err(), "cleartext MQTT from {ip}: {refused:?}");
    connect("127.0.0.1", plain_port, None, "r-1", &token).await.expect("cleartext MQTT from loopback");
    connect(&ip, tls_port, Some(&ca), "r-1", &token).await.expect("mqtts from beyond loopback");

    // Without TLS for HTTP, cleartext HTTP is served to loopback only.
    let plain = TestApp::spawn_embedded(|s| {
        (s.listen, s.require_tls) = (any, true);
    })
    .await;
    let http_port = port(plain.client.base_url());
    let http = reqwest::Client::new();
    let from_afar = http.get(format!("http://{ip}:{http_port}/healthz")).send().await;
    assert!(from_afar.is_err(), "cleartext HTTP from {ip}: {from_afar:?}");
    let local = http.get(format!("http://127.0.0.1:{http_port}/healthz")).send().await.unwrap();
    assert!(local.status().is_success());
}
