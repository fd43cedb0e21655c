//! A typed client for the Fleet OTA REST API, used by `fleetctl` and the tests.

use std::collections::BTreeMap;

use fleet_protocol::paths::{self, RolloutAction, RolloutDeviceAction};
use fleet_protocol::{ArtifactKind, Envelope, Problem};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is named here once; the cause (connection refused, …) is the source, kept
    /// without its own copy of the URL so that `{:#}` does not repeat it.
    #[error("cannot reach the server{}", at(.url.as_deref()))]
    Transport {
        url: Option<String>,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered, but not with what was expected.
    #[error("unreadable answer from the server{}", at(.url.as_deref()))]
    Decode {
        url: Option<String>,
        #[source]
        source: reqwest::Error,
    },
    #[error("{} ({}): {}", .0.title, .0.code.as_str(), .0.detail)]
    Problem(Problem),
    #[error("unexpected answer {0}: {1}")]
    Unexpected(StatusCode, String),
    #[error("CA file {0}: {1}")]
    CaFile(String, String),
}

/// ` at URL`, or nothing.
fn at(url: Option<&str>) -> String {
    url.map(|u| format!(" at {u}")).unwrap_or_default()
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        let url = e.url().map(ToString::to_string);
        let decode = e.is_decode();
        let source = e.without_url();
        if decode { Self::Decode { url, source } } else { Self::Transport { url, source } }
    }
}

impl ClientError {
    /// The problem body, when the server answered with one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem(p) => Some(p),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

pub use fleet_protocol::api::{
    ArtifactInfo as Artifact, AuditEntry, CreateRollout, DeviceInfo as Device, DeviceWithToken, KeyInfo, List, Rollout,
    RolloutDevice, RolloutPlan, RolloutTarget, TokenInfo, TokenScope, TokenWithSecret,
};

/// Device list filters.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    pub hardware: Option<String>,
    pub labels: Vec<(String, String)>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only devices below the latest trust version (or reporting none).
    pub trust_behind: bool,
}

/// The API client: a base URL and a bearer token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    /// A client trusting the system's roots for https://.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        Self::trusting(base, token, None).expect("a default HTTP client builds")
    }

    /// A client that, with `ca_file`, trusts only that CA (PEM) for https://.
    pub fn trusting(
        base: impl Into<String>,
        token: impl Into<String>,
        ca_file: Option<&std::path::Path>,
    ) -> ClientResult<Self> {
        fleet_protocol::tls::install_default_provider();
        let mut builder = reqwest::Client::builder().tcp_nodelay(true);
        if let Some(path) = ca_file {
            let failed = |e: &dyn std::fmt::Display| ClientError::CaFile(path.display().to_string(), e.to_string());
            let pem = std::fs::read(path).map_err(|e| failed(&e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| failed(&e))?;
            if certs.is_empty() {
                return Err(failed(&"no certificate"));
            }
            builder = builder.tls_certs_only(certs);
        }
        Ok(Self { http: builder.build()?, base: base.into().trim_end_matches('/').to_owned(), token: token.into() })
    }

    /// The same server with another token.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self { token: token.into(), ..self.clone() }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `base/api/v1{path}`; `path` is one of [`fleet_protocol::paths`].
    pub fn api_url(&self, path: &str) -> String {
        paths::api_url(&self.base, path)
    }

    /// A request to `/api/v1{path}` carrying the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.api_url(path)).bearer_auth(&self.token)
    }

    pub(crate) async fn decode<T: DeserializeOwned>(response: Response) -> ClientResult<T> {
        let response = Self::check(response).await?;
        Ok(response.json().await?)
    }

    /// Turns a non-success answer into [`ClientError`].
    pub async fn check(response: Response) -> ClientResult<Response> {
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<Problem>(&body) {
            Ok(p) => ClientError::Problem(p),
            Err(_) => ClientError::Unexpected(status, body),
        })
    }

    pub async fn health(&self) -> ClientResult<serde_json::Value> {
        Self::decode(self.http.get(format!("{}{}", self.base, paths::HEALTHZ)).send().await?).await
    }

    /// GET a text body (e.g. Mosquitto's files).
    pub async fn get_text(&self, path: &str) -> ClientResult<String> {
        Ok(Self::check(self.request(Method::GET, path).send().await?).await?.text().await?)
    }

    // Keys.

    pub async fn add_key(&self, name: &str, public_key_pem: &str) -> ClientResult<KeyInfo> {
        let body = serde_json::json!({"name": name, "public_key_pem": public_key_pem});
        Self::decode(self.request(Method::POST, paths::KEYS).json(&body).send().await?).await
    }

    pub async fn list_keys(&self, cursor: Option<&str>) -> ClientResult<List<KeyInfo>> {
        let q: Vec<(&str, &str)> = cursor.map(|c| ("cursor", c)).into_iter().collect();
        Self::decode(self.request(Method::GET, paths::KEYS).query(&q).send().await?).await
    }

    pub async fn revoke_key(&self, keyid: &str) -> ClientResult<()> {
        Self::check(self.request(Method::DELETE, &paths::key(keyid)).send().await?).await?;
        Ok(())
    }

    // Trust documents.

    /// `POST /trust`: stores the next trust document.
    pub async fn push_trust(&self, envelope: &Envelope) -> ClientResult<Envelope> {
        Self::decode(self.request(Method::POST, paths::TRUST).json(envelope).send().await?).await
    }

    /// `GET /trust` (the latest) or `GET /trust/{version}`.
    pub async fn get_trust(&self, version: Option<u64>) -> ClientResult<Envelope> {
        let path = version.map_or_else(|| paths::TRUST.to_owned(), paths::trust_version);
        Self::decode(self.request(Method::GET, &path).send().await?).await
    }

    // Artifacts.

    /// Uploads `envelope` then the file body (streamed; `len` bytes).
    pub async fn upload(
        &self,
        kind: ArtifactKind,
        envelope_json: Vec<u8>,
        body: reqwest::Body,
        len: u64,
    ) -> ClientResult<Artifact> {
        let form = reqwest::multipart::Form::new()
            .part(
                "envelope",
                reqwest::multipart::Part::bytes(envelope_json)
                    .file_name("envelope.dsse.json")
                    .mime_str("application/json")?,
            )
            .part(
                "file",
                reqwest::multipart::Part::stream_with_length(body, len)
                    .file_name("artifact.bin")
                    .mime_str("application/octet-stream")?,
            );
        Self::decode(self.request(Method::POST, &paths::artifacts(kind)).multipart(form).send().await?).await
    }

    pub async fn list_artifacts(
        &self,
        kind: ArtifactKind,
        name: Option<&str>,
        cursor: Option<&str>,
    ) -> ClientResult<List<Artifact>> {
        let mut q = vec![];
        if let Some(n) = name {
            q.push(("name", n));
        }
        if let Some(c) = cursor {
            q.push(("cursor", c));
        }
        Self::decode(self.request(Method::GET, &paths::artifacts(kind)).query(&q).send().await?).await
    }

    pub async fn get_artifact(&self, kind: ArtifactKind, id: &str) -> ClientResult<Artifact> {
        Self::decode(self.request(Method::GET, &paths::artifact(kind, id)).send().await?).await
    }

    pub async fn delete_artifact(&self, kind: ArtifactKind, id: &str) -> ClientResult<()> {
        Self::check(self.request(Method::DELETE, &paths::artifact(kind, id)).send().await?).await?;
        Ok(())
    }

    /// Starts a blob download; the caller streams the body.
    pub async fn blob(&self, kind: ArtifactKind, id: &str, range_from: Option<u64>) -> ClientResult<Response> {
        let mut req = self.request(Method::GET, &paths::artifact_blob(kind, id));
        if let Some(from) = range_from {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        Self::check(req.send().await?).await
    }

    // Devices.

    pub async fn add_device(
        &self,
        id: &str,
        hardware: &str,
        labels: &BTreeMap<String, String>,
    ) -> ClientResult<DeviceWithToken> {
        let body = serde_json::json!({"id": id, "hardware": hardware, "labels": labels});
        Self::decode(self.request(Method::POST, paths::DEVICES).json(&body).send().await?).await
    }

    pub async fn list_devices(&self, query: &DeviceQuery) -> ClientResult<List<Device>> {
        let mut q: Vec<(&str, String)> = vec![];
        if let Some(h) = &query.hardware {
            q.push(("hardware", h.clone()));
        }
        for (k, v) in &query.labels {
            q.push(("label", format!("{k}={v}")));
        }
        if let Some(l) = query.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(c) = &query.cursor {
            q.push(("cursor", c.clone()));
        }
        if query.trust_behind {
            q.push(("trust_behind", "true".into()));
        }
        Self::decode(self.request(Method::GET, paths::DEVICES).query(&q).send().await?).await
    }

    pub async fn get_device(&self, id: &str) -> ClientResult<Device> {
        Self::decode(self.request(Method::GET, &paths::device(id)).send().await?).await
    }

    /// `PATCH /devices/{id}`: replaces all of the device's labels with `labels`.
    pub async fn set_device_labels(&self, id: &str, labels: &BTreeMap<String, String>) -> ClientResult<Device> {
        let body = serde_json::json!({"labels": labels});
        Self::decode(self.request(Method::PATCH, &paths::device(id)).json(&body).send().await?).await
    }

    pub async fn delete_device(&self, id: &str) -> ClientResult<()> {
        Self::check(self.request(Method::DELETE, &paths::device(id)).send().await?).await?;
        Ok(())
    }

    // Rollouts.

    /// `POST /rollouts`: creates and starts a rollout. The request is usually a
    /// [`CreateRollout`]; tests also send bodies of their own.
    pub async fn create_rollout(&self, request: &impl Serialize) -> ClientResult<Rollout> {
        Self::decode(self.request(Method::POST, paths::ROLLOUTS).json(request).send().await?).await
    }

    /// `POST /rollouts?dry_run=true`: what the rollout would do; creates nothing.
    pub async fn plan_rollout(&self, request: &impl Serialize) -> ClientResult<RolloutPlan> {
        let req = self.request(Method::POST, paths::ROLLOUTS).query(&[("dry_run", "true")]).json(request);
        Self::decode(req.send().await?).await
    }

    pub async fn list_rollouts(&self, cursor: Option<&str>) -> ClientResult<List<Rollout>> {
        let q: Vec<(&str, &str)> = cursor.map(|c| ("cursor", c)).into_iter().collect();
        Self::decode(self.request(Method::GET, paths::ROLLOUTS).query(&q).send().await?).await
    }

    pub async fn get_rollout(&self, id: &str) -> ClientResult<Rollout> {
        Self::decode(self.request(Method::GET, &paths::rollout(id)).send().await?).await
    }

    /// `DELETE /rollouts/{id}`: only a finished rollout.
    pub async fn delete_rollout(&self, id: &str) -> ClientResult<()> {
        Self::check(self.request(Method::DELETE, &paths::rollout(id)).send().await?).await?;
        Ok(())
    }

    pub async fn rollout_devices(
        &self,
        id: &str,
        state: Option<&str>,
        cursor: Option<&str>,
    ) -> ClientResult<List<RolloutDevice>> {
        let mut q = vec![];
        if let Some(s) = state {
            q.push(("state", s));
        }
        if let Some(c) = cursor {
            q.push(("cursor", c));
        }
        Self::decode(self.request(Method::GET, &paths::rollout_devices(id)).query(&q).send().await?).await
    }

    /// `pause`, `resume` or `cancel`.
    pub async fn control_rollout(&self, id: &str, action: RolloutAction) -> ClientResult<Rollout> {
        Self::decode(self.request(Method::POST, &paths::rollout_action(id, action)).send().await?).await
    }

    /// `POST /rollouts/{id}/devices/{device_id}/cancel|retry|skip`: the device's entry after.
    pub async fn control_rollout_device(
        &self,
        id: &str,
        device_id: &str,
        action: RolloutDeviceAction,
    ) -> ClientResult<RolloutDevice> {
        let path = paths::rollout_device_action(id, device_id, action);
        Self::decode(self.request(Method::POST, &path).send().await?).await
    }

    /// The rollout's Server-Sent Events; read bodies with [`crate::sse::next_event`].
    pub async fn rollout_events(&self, id: &str) -> ClientResult<Response> {
        let req = self.request(Method::GET, &paths::rollout_events(id)).header("accept", "text/event-stream");
        Self::check(req.send().await?).await
    }

    pub async fn rotate_token(&self, id: &str) -> ClientResult<DeviceWithToken> {
        Self::decode(self.request(Method::POST, &paths::device_token(id)).send().await?).await
    }

    // Operator tokens and the audit trail.

    pub async fn create_operator_token(&self, name: &str, scope: TokenScope) -> ClientResult<TokenWithSecret> {
        self.create_token(name, scope, false).await
    }

    /// `POST /tokens`; with `mqtt`, the token also logs in to the broker as `op:{name}`.
    pub async fn create_token(&self, name: &str, scope: TokenScope, mqtt: bool) -> ClientResult<TokenWithSecret> {
        let body = serde_json::json!({"name": name, "scope": scope, "mqtt": mqtt});
        Self::decode(self.request(Method::POST, paths::TOKENS).json(&body).send().await?).await
    }

    pub async fn list_operator_tokens(&self, cursor: Option<&str>) -> ClientResult<List<TokenInfo>> {
        Self::decode(self.request(Method::GET, paths::TOKENS).query(&[("cursor", cursor)]).send().await?).await
    }

    pub async fn revoke_operator_token(&self, name: &str) -> ClientResult<()> {
        Self::check(self.request(Method::DELETE, &paths::token(name)).send().await?).await?;
        Ok(())
    }

    pub async fn audit(&self, limit: Option<u32>, cursor: Option<&str>) -> ClientResult<List<AuditEntry>> {
        let limit = limit.map(|l| l.to_string());
        let query = [("limit", limit.as_deref()), ("cursor", cursor)];
        Self::decode(self.request(Method::GET, paths::AUDIT).query(&query).send().await?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fleetctl` prints errors with `{:#}` (the whole chain): the URL appears once.
    #[tokio::test]
    async fn an_unreachable_server_is_named_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = ApiClient::new(&base, "t").list_keys(None).await.unwrap_err();
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert!(shown.starts_with(&format!("cannot reach the server at {base}/api/v1/keys: ")), "{shown}");
        assert_eq!(shown.matches(&base).count(), 1, "{shown}");
    }
}
