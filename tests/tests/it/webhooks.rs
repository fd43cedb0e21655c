//! Webhooks (CONTRACT §10): signed deliveries from the database outbox to a local receiver,
//! retried with the same `webhook-id`, disabled by 410, delivered after a restart, and a
//! dead endpoint that does not slow a rollout.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fleet_tests::TestApp;
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};

use crate::rollouts::{create, firmware, fleetctl, get, post, simulate_with, wait_for};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn kind(&self) -> String {
        serde_json::from_str::<Value>(&self.body).unwrap()["type"].as_str().unwrap().to_owned()
    }
}

#[derive(Debug, Default)]
struct Inbox {
    got: Mutex<Vec<Received>>,
    /// Statuses to answer, in order; 204 once empty.
    answers: Mutex<VecDeque<u16>>,
}

/// A local webhook receiver that records every request.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
}

impl Receiver {
    async fn start() -> Self {
        Self::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    async fn on(listener: tokio::net::TcpListener) -> Self {
        let inbox = Arc::new(Inbox::default());
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(inbox.clone());
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, inbox }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn got(&self) -> Vec<Received> {
        self.inbox.got.lock().unwrap().clone()
    }

    /// Waits until a request of event type `kind` came.
    async fn wait_for(&self, kind: &str, within: Duration) -> Received {
        let deadline = Instant::now() + within;
        loop {
            if let Some(r) = self.got().into_iter().find(|r| r.kind() == kind) {
                return r;
            }
            let kinds: Vec<_> = self.got().iter().map(Received::kind).collect();
            assert!(Instant::now() < deadline, "no {kind} within {within:?}; got {kinds:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    inbox.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    let status = inbox.answers.lock().unwrap().pop_front().unwrap_or(204);
    StatusCode::from_u16(status).unwrap()
}

/// Standard Webhooks verification, as a receiver does it with the secret.
fn verify(secret: &str, r: &Received) {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(r.signature, expected, "signature of {}", r.id);
    let age = fleet_server::clock::now_ms() / 1000 - r.timestamp.parse::<i64>().unwrap();
    assert!((-5..120).contains(&age), "a fresh timestamp: {age}s");
}

/// Registers a webhook; returns (id, secret).
async fn register(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let (status, body) = post(app, "/webhooks", json!({"url": url, "events": events})).await;
    assert_eq!(status, 201, "{body}");
    (body["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn deliveries_are_signed_and_carry_rollout_and_device_events() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let receiver = Receiver::start().await;
    let (id, secret) = register(&app, &receiver.url(), json!(["rollout.*", "device.updated", "device.online"])).await;
    assert_eq!(STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap().len(), 32);

    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), 3, 0.0, "wh-", 0).await;
    // The devices are announced online (what they have installed is their starting point).
    let deadline = Instant::now() + Duration::from_secs(15);
    while receiver.got().iter().filter(|r| r.kind() == "device.online").count() < 3 {
        assert!(Instant::now() < deadline, "three device.online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rollout = create(&app, json!({"firmware": fw.id, "target": {"hardware": "sim"}})).await;
    wait_for(&app, &rollout, Duration::from_secs(60), |b| b["state"] == "completed").await;
    let created = receiver.wait_for("rollout.created", Duration::from_secs(15)).await;
    let completed = receiver.wait_for("rollout.completed", Duration::from_secs(15)).await;
    let updated = receiver.wait_for("device.updated", Duration::from_secs(15)).await;
    for r in receiver.got() {
        verify(&secret, &r);
        assert!(r.id.starts_with("msg_"));
        let kind = r.kind();
        assert!(kind.starts_with("rollout.") || kind == "device.updated" || kind == "device.online", "{kind}");
    }
    let body = |r: &Received| serde_json::from_str::<Value>(&r.body).unwrap();
    assert_eq!(body(&created)["data"]["id"], rollout.as_str());
    assert_eq!(body(&completed)["data"]["state"], "completed");
    assert_eq!(body(&updated)["data"]["firmware"]["version"], "1.0.0");
    assert!(body(&updated)["timestamp"].is_string());

    let deadline = Instant::now() + Duration::from_secs(15);
    let shown = loop {
        let shown = get(&app, &format!("/webhooks/{id}")).await;
        if shown["counts"]["pending"] == 0 {
            break shown;
        }
        assert!(Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(shown["enabled"], true);
    assert!(shown["counts"]["delivered"].as_i64().unwrap() >= 6, "{shown}");
    assert_eq!(shown["counts"]["failed"], 0, "{shown}");
    assert_eq!(shown["last_status"], 204);
    assert!(shown.get("secret").is_none(), "the secret is shown once");
    let deliveries = get(&app, &format!("/webhooks/{id}/deliveries")).await;
    let items = deliveries["items"].as_array().unwrap();
    assert!(items.iter().any(|d| d["type"] == "device.updated" && d["state"] == "delivered"), "{deliveries}");
    sim.stop().await;
}

#[tokio::test]
async fn registration_refuses_cleartext_to_other_hosts_and_unknown_events() {
    let app = TestApp::spawn().await;
    for (url, events) in [
        ("http://hooks.example.com/x", json!(["*"])),
        ("ftp://127.0.0.1/x", json!(["*"])),
        ("https://hooks.example.com/x", json!(["rollout.finished"])),
        ("https://hooks.example.com/x", json!([])),
    ] {
        let (status, body) = post(&app, "/webhooks", json!({"url": url, "events": events})).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{url} {events}");
    }
    let (status, _) = post(&app, "/webhooks", json!({"url": "https://hooks.example.com/x", "events": ["*"]})).await;
    assert_eq!(status, 201);
    let r = app.client.request(reqwest::Method::GET, "/webhooks/wh_nope").send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_id_and_410_disables() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap();
    let receiver = Receiver::start().await;
    receiver.inbox.answers.lock().unwrap().push_back(500);
    let (id, _) = register(&app, &receiver.url(), json!(["rollout.created", "rollout.paused"])).await;

    let rollout = create(&app, json!({"firmware": fw.id, "target": {"devices": ["dev-a"]}})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.got().len() < 2 {
        assert!(Instant::now() < deadline, "retried after its backoff: {:?}", receiver.got());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = receiver.got();
    assert_eq!(got[0].id, got[1].id, "the same webhook-id on the retry");
    assert_eq!(got[1].kind(), "rollout.created");
    // The answer reached the receiver before the server recorded it: wait for the record.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let deliveries = get(&app, &format!("/webhooks/{id}/deliveries")).await;
        let first = &deliveries["items"][0];
        if first["state"] == "delivered" {
            assert_eq!(first["attempts"], 2, "{deliveries}");
            break;
        }
        assert!(Instant::now() < deadline, "{deliveries}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    receiver.inbox.answers.lock().unwrap().push_back(410);
    let (status, _) = post(&app, &format!("/rollouts/{rollout}/pause"), json!({})).await;
    assert_eq!(status, 200);
    receiver.wait_for("rollout.paused", Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&app, &format!("/webhooks/{id}")).await["enabled"] != false {
        assert!(Instant::now() < deadline, "410 disables the webhook");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = get(&app, &format!("/webhooks/{id}")).await;
    assert_eq!(shown["last_status"], 410);
}

#[tokio::test]
async fn deliveries_pending_at_a_stop_are_delivered_after_the_restart() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(data.path(), |_| {}).await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap();
    // A port with nothing listening yet: every attempt fails until the receiver starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let (id, secret) = register(&app, &url, json!(["rollout.created"])).await;
    create(&app, json!({"firmware": fw.id, "target": {"devices": ["dev-a"]}})).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(&app, &format!("/webhooks/{id}")).await["counts"]["pending"] != 1 {
        assert!(Instant::now() < deadline, "the event is in the outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;

    let receiver = Receiver::on(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    let app = TestApp::spawn_in(data.path(), |_| {}).await;
    let got = receiver.wait_for("rollout.created", Duration::from_secs(30)).await;
    verify(&secret, &got);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&app, &format!("/webhooks/{id}")).await["counts"]["delivered"] != 1 {
        assert!(Instant::now() < deadline, "recorded as delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_dead_endpoint_does_not_slow_a_rollout() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let v1 = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let v2 = firmware(&app, "gateway-os", "1.1.0", "sim").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), 10, 0.0, "dead-", 0).await;
    let timed = |fw: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let id = create(app, json!({"firmware": fw, "target": {"hardware": "sim"}})).await;
            wait_for(app, &id, Duration::from_secs(90), |b| b["state"] == "completed").await;
            started.elapsed()
        }
    };
    let baseline = timed(v1.id.clone()).await;

    // Accepts connections and never answers.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = dead.accept().await {
            open.push(socket);
        }
    });
    let (id, _) = register(&app, &format!("http://{dead_addr}/hook"), json!(["*"])).await;
    let with_dead = timed(v2.id.clone()).await;
    eprintln!("rollout of 10: {baseline:?}; with a dead endpoint on every event: {with_dead:?}");
    assert!(
        with_dead < baseline * 2 + Duration::from_secs(3),
        "baseline {baseline:?}, with a dead endpoint {with_dead:?}"
    );
    let shown = get(&app, &format!("/webhooks/{id}")).await;
    assert_eq!(shown["counts"]["delivered"], 0, "{shown}");
    held.abort();
    sim.stop().await;
}

#[tokio::test]
async fn fleetctl_manages_webhooks_and_mqtt_tokens() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let run = |args: Vec<String>| {
        let app = &app;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = fleetctl(app, &args).await;
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let mut add = args("-o json webhooks add --events rollout.*,device.failed");
    add.push(receiver.url());
    let created: Value = serde_json::from_str(&run(add).await).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));

    let table = run(args("webhooks list")).await;
    assert!(table.starts_with("ID ") && table.contains(&id) && table.contains("rollout.*,device.failed"), "{table}");
    let shown = run(args(&format!("webhooks show {id}"))).await;
    assert!(shown.contains("enabled") && shown.contains(&receiver.url()), "{shown}");
    let listed: Value = serde_json::from_str(&run(args("-o json webhooks list")).await).unwrap();
    assert_eq!(listed["items"][0]["events"], json!(["rollout.*", "device.failed"]));
    assert_eq!(run(args(&format!("webhooks deliveries {id}"))).await.trim(), "no deliveries");
    run(args(&format!("webhooks rm {id}"))).await;
    assert_eq!(run(args("webhooks list")).await.trim(), "no webhooks");

    let token = run(args("tokens create ha --scope read-only --mqtt")).await;
    assert!(token.trim().starts_with("fleet_op_"), "{token}");
    let tokens = run(args("tokens list")).await;
    assert!(tokens.lines().any(|l| l.starts_with("ha ") && l.contains(" yes ")), "{tokens}");
}

#[tokio::test]
async fn presence_changes_are_device_online_and_offline_events() {
    let app = TestApp::spawn_with(|s| s.presence_timeout = Duration::from_secs(3)).await;
    let token = app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap().token;
    let receiver = Receiver::start().await;
    let (_, secret) = register(&app, &receiver.url(), json!(["device.*"])).await;
    crate::rollouts::publish_as(&app.mqtt_url, "dev-a", &token, "presence", b"online".to_vec()).await;
    let online = receiver.wait_for("device.online", Duration::from_secs(15)).await;
    // Silent past --presence-timeout: marked offline by the server, announced as well.
    let offline = receiver.wait_for("device.offline", Duration::from_secs(15)).await;
    for r in [&online, &offline] {
        verify(&secret, r);
        assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap()["data"]["device_id"], "dev-a");
    }
}

/// Two replicas on one PostgreSQL: each event is recorded once and each delivery sent by
/// one replica at a time (one request per `webhook-id` when the endpoint answers 2xx).
#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn two_replicas_send_each_event_once() {
    let url = fleet_tests::fresh_postgres().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on_db = |s: &mut fleet_server::Settings| s.database_url = Some(url.clone());
    let a = TestApp::spawn_full(dir_a.path(), None, on_db).await;
    let b = TestApp::spawn_full(dir_b.path(), None, |s| s.database_url = Some(url.clone())).await;
    a.trust_release_key().await;
    let fw = firmware(&a, "gateway-os", "1.0.0", "sim").await;
    for i in 0..5 {
        a.client.add_device(&format!("dev-{i}"), "sim", &Default::default()).await.unwrap();
    }
    let receiver = Receiver::start().await;
    register(&a, &receiver.url(), json!(["rollout.created", "rollout.paused", "rollout.resumed"])).await;
    let id = create(&a, json!({"firmware": fw.id, "target": {"hardware": "sim"}})).await;
    for (app, action) in [(&b, "pause"), (&a, "resume"), (&b, "pause"), (&a, "resume")] {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let (status, body) = post(app, &format!("/rollouts/{id}/{action}"), json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = receiver.got();
    let kinds: Vec<_> = got.iter().map(Received::kind).collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!((count("rollout.created"), count("rollout.paused"), count("rollout.resumed")), (1, 2, 2), "{kinds:?}");
    let mut ids: Vec<_> = got.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "one request per webhook-id");
    a.stop().await;
    b.stop().await;
}
