//! A small controllable stand-in for the server's device-facing API, used until rollouts
//! land: it confirms whatever command a test chooses, serves whatever bytes it likes
//! (optionally slowly, to be interrupted), registers simulated devices, and records every
//! request it sees.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fleet_protocol::message::Command;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    commands: HashMap<String, Command>,
    blobs: HashMap<String, (Vec<u8>, Option<Duration>)>,
    tokens: HashMap<String, String>,
    seen: Vec<Seen>,
    /// Trust documents by the version they are served under (whatever they say).
    trust: std::collections::BTreeMap<u64, fleet_protocol::Envelope>,
}

/// The stand-in server.
#[derive(Debug, Clone)]
pub struct DeviceServer {
    pub url: String,
    pub operator_token: String,
    inner: Arc<Mutex<Inner>>,
}

impl DeviceServer {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = inner.clone();
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/api/v1/devices", post(register))
            .route("/api/v1/devices/{id}/token", post(rotate))
            .route("/api/v1/devices/{id}/command", get(command))
            .route("/api/v1/trust", get(trust_latest))
            .route("/api/v1/trust/{version}", get(trust_version))
            .route("/blobs/{name}", get(blob))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, operator_token: "operator-token-for-tests".into(), inner }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("not poisoned")
    }

    /// Registers a device with a known token.
    pub fn add_device(&self, id: &str, token: &str) {
        self.lock().tokens.insert(id.into(), token.into());
    }

    pub fn token_of(&self, id: &str) -> Option<String> {
        self.lock().tokens.get(id).cloned()
    }

    /// What `GET /devices/{id}/command` answers (None: 204).
    pub fn set_command(&self, id: &str, command: Option<Command>) {
        let mut inner = self.lock();
        match command {
            Some(c) => inner.commands.insert(id.into(), c),
            None => inner.commands.remove(id),
        };
    }

    /// Serves `bytes` at `/blobs/{name}`; with `pause`, 16 KiB at a time with a pause between.
    pub fn put_blob(&self, name: &str, bytes: Vec<u8>, pause: Option<Duration>) -> String {
        self.lock().blobs.insert(name.into(), (bytes, pause));
        format!("{}/blobs/{name}", self.url)
    }

    /// Changes a blob's pacing (e.g. full speed after an interrupted download).
    pub fn set_pause(&self, name: &str, pause: Option<Duration>) {
        if let Some(b) = self.lock().blobs.get_mut(name) {
            b.1 = pause;
        }
    }

    /// Serves `envelope` at `GET /trust/{version}` (and as the latest when it is the highest),
    /// unchecked: a test plays a server that lies.
    pub fn put_trust(&self, version: u64, envelope: fleet_protocol::Envelope) {
        self.lock().trust.insert(version, envelope);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }
}

type Shared = Arc<Mutex<Inner>>;

fn record(state: &Shared, path: String, headers: &HeaderMap) {
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
    state.lock().expect("lock").seen.push(Seen {
        path,
        range: get(header::RANGE),
        authorization: get(header::AUTHORIZATION),
    });
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_owned)
}

async fn register(State(state): State<Shared>, headers: HeaderMap, body: axum::Json<serde_json::Value>) -> Response {
    record(&state, "/api/v1/devices".into(), &headers);
    if bearer(&headers).as_deref() != Some("operator-token-for-tests") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    let mut inner = state.lock().expect("lock");
    if inner.tokens.contains_key(&id) {
        return StatusCode::CONFLICT.into_response();
    }
    let token = format!("token-of-{id}");
    inner.tokens.insert(id.clone(), token.clone());
    (StatusCode::CREATED, axum::Json(serde_json::json!({"id": id, "token": token}))).into_response()
}

async fn rotate(State(state): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    record(&state, format!("/api/v1/devices/{id}/token"), &headers);
    let token = format!("rotated-token-of-{id}");
    state.lock().expect("lock").tokens.insert(id.clone(), token.clone());
    axum::Json(serde_json::json!({"id": id, "token": token})).into_response()
}

async fn command(State(state): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    record(&state, format!("/api/v1/devices/{id}/command"), &headers);
    let inner = state.lock().expect("lock");
    if bearer(&headers).is_none() || bearer(&headers) != inner.tokens.get(&id).cloned() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match inner.commands.get(&id) {
        Some(c) => axum::Json(c.clone()).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn trust_latest(State(state): State<Shared>, headers: HeaderMap) -> Response {
    record(&state, "/api/v1/trust".into(), &headers);
    match state.lock().expect("lock").trust.last_key_value() {
        Some((_, envelope)) => axum::Json(envelope.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn trust_version(State(state): State<Shared>, Path(version): Path<u64>, headers: HeaderMap) -> Response {
    record(&state, format!("/api/v1/trust/{version}"), &headers);
    match state.lock().expect("lock").trust.get(&version) {
        Some(envelope) => axum::Json(envelope.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn blob(State(state): State<Shared>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    record(&state, format!("/blobs/{name}"), &headers);
    let Some((bytes, pause)) = state.lock().expect("lock").blobs.get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let from = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, body) = match from {
        Some(n) if n < bytes.len() => (StatusCode::PARTIAL_CONTENT, bytes[n..].to_vec()),
        _ => (StatusCode::OK, bytes.clone()),
    };
    let mut builder = Response::builder().status(status).header(header::CONTENT_LENGTH, body.len());
    if let Some(n) = from.filter(|_| status == StatusCode::PARTIAL_CONTENT) {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes {n}-{}/{}", bytes.len() - 1, bytes.len()));
    }
    let body = match pause {
        None => Body::from(body),
        Some(pause) => {
            let chunks: Vec<Vec<u8>> = body.chunks(16 * 1024).map(<[u8]>::to_vec).collect();
            let stream = futures_util::stream::iter(chunks).then(move |c| async move {
                tokio::time::sleep(pause).await;
                Ok::<_, std::io::Error>(c)
            });
            Body::from_stream(stream)
        }
    };
    builder.body(body).expect("response")
}

use futures_util::StreamExt as _;
