//! The simulator's device tokens. Each device keeps its token in `STATE_DIR/{id}/token`; a
//! state dir can outlive the server it was made for (a fresh server, a wiped database), so
//! a kept token is checked with one request as that device before it is used
//! (`GET /devices/{id}/command`: 200 or 204 means the server knows it). A device with no
//! token or a refused one is registered (or, when the id exists, its token is rotated) with
//! the operator token, and the new token is kept.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use fleet_protocol::paths;
use reqwest::StatusCode;

/// What a device's token is and where it came from.
#[derive(Debug)]
pub struct DeviceToken {
    pub token: String,
    pub origin: Origin,
}

/// Where a device's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Kept from an earlier run, and the server accepted it.
    Kept,
    /// None was kept: registered now.
    Registered,
    /// The kept one was refused (an earlier run against another server?): a new one now.
    Replaced,
}

/// Why a device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the server refused the operator token ({0}): is --operator-token-file the admin token of --server?")]
    OperatorRefused(StatusCode),
    #[error("{id}: the server answered {status} {body}")]
    Unexpected { id: String, status: StatusCode, body: String },
    #[error("{id}: the server's answer has no token")]
    NoToken { id: String },
    #[error("{id}: cannot reach the server: {source}")]
    Transport { id: String, source: reqwest::Error },
    #[error("{}: {source}", .path.display())]
    File { path: PathBuf, source: std::io::Error },
}

/// Where a device's server is and who registers devices there.
#[derive(Debug, Clone, Copy)]
pub struct Registrar<'a> {
    pub http: &'a crate::http::Http,
    pub server: &'a reqwest::Url,
    pub operator: &'a str,
    pub hardware: &'a str,
}

impl Registrar<'_> {
    /// A token the server accepts for `id`: the one kept in `dir` if the server takes it,
    /// else a new one (kept in `dir`).
    pub async fn token(&self, id: &str, dir: &Path) -> Result<DeviceToken, TokenError> {
        let token_file = dir.join("token");
        let kept = crate::config::read_token(&token_file).ok();
        if let Some(token) = &kept {
            if self.accepted(id, token).await? {
                return Ok(DeviceToken { token: token.clone(), origin: Origin::Kept });
            }
        }
        let token = self.register(id).await?;
        keep(dir, &token_file, &token)?;
        let origin = if kept.is_some() { Origin::Replaced } else { Origin::Registered };
        Ok(DeviceToken { token, origin })
    }

    /// Whether the server accepts `token` as device `id`.
    async fn accepted(&self, id: &str, token: &str) -> Result<bool, TokenError> {
        let url = paths::api_url(self.server.as_str(), &paths::device_command(id));
        let _turn = self.http.turn().await;
        let response = self.http.client().get(url).bearer_auth(token).send().await.map_err(transport(id))?;
        match response.status() {
            StatusCode::OK | StatusCode::NO_CONTENT => Ok(true),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(false),
            status => Err(unexpected(id, status, response).await),
        }
    }

    /// Registers `id`; when it exists already (an earlier run whose token is lost), rotates
    /// its token instead.
    async fn register(&self, id: &str) -> Result<String, TokenError> {
        let base = self.server.as_str();
        let body = serde_json::json!({"id": id, "hardware": self.hardware, "labels": {"simulated": "true"}});
        let post = |path: String| self.http.client().post(paths::api_url(base, &path)).bearer_auth(self.operator);
        let _turn = self.http.turn().await;
        let mut response = post(paths::DEVICES.to_owned()).json(&body).send().await.map_err(transport(id))?;
        if response.status() == StatusCode::CONFLICT {
            response = post(paths::device_token(id)).send().await.map_err(transport(id))?;
        }
        match response.status() {
            status if status.is_success() => {}
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(TokenError::OperatorRefused(status));
            }
            status => return Err(unexpected(id, status, response).await),
        }
        let value: serde_json::Value = response.json().await.map_err(transport(id))?;
        value["token"].as_str().map(str::to_owned).ok_or_else(|| TokenError::NoToken { id: id.to_owned() })
    }
}

fn transport(id: &str) -> impl FnOnce(reqwest::Error) -> TokenError + '_ {
    move |source| TokenError::Transport { id: id.to_owned(), source }
}

async fn unexpected(id: &str, status: StatusCode, response: reqwest::Response) -> TokenError {
    let mut body = response.text().await.unwrap_or_default();
    body.truncate(200);
    TokenError::Unexpected { id: id.to_owned(), status, body }
}

/// Writes `token` to `file` (0600), creating `dir`.
fn keep(dir: &Path, file: &Path, token: &str) -> Result<(), TokenError> {
    let err = |source| TokenError::File { path: file.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(file).map_err(err)?;
    std::io::Write::write_all(&mut f, token.as_bytes()).map_err(err)
}
