//! The operator dashboard (CONTRACT §8): one HTML shell for every page under `/ui/`, one
//! JavaScript module and one style sheet, all compiled into the binary (`ui/`). The pages
//! fetch everything else from the API with the operator token the browser keeps in its
//! session storage, so the server holds no session and sets no cookie (no CSRF surface).
//!
//! Every response here carries a strict Content-Security-Policy (no inline script or
//! style, nothing from another origin) and `X-Content-Type-Options: nosniff`. Assets carry
//! an ETag made of their content hash and are revalidated (`no-cache`), so a new binary's
//! assets are picked up at once and an unchanged one costs a 304.
//! See docs/dashboard.md.

use std::sync::LazyLock;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

use crate::state::AppState;

/// The policy of every dashboard response.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const SHELL: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");
const ICON: &str = include_str!("ui/icon.svg");
const NOT_FOUND: &str = include_str!("ui/404.html");

/// A static file with its content type and ETag.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(body.as_bytes()))[..16]);
        Self { body, content_type, etag }
    }

    /// 200 with the body, or 304 when the browser holds this very version.
    fn serve(&self, headers: &HeaderMap) -> Response {
        let fresh = headers
            .get(IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim().trim_start_matches("W/") == self.etag));
        let status = if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
        let body = if fresh { "" } else { self.body };
        let mut response = (status, body).into_response();
        let h = response.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            h.insert(ETAG, etag);
        }
        guarded(response)
    }
}

static SHELL_ASSET: LazyLock<Asset> = LazyLock::new(|| Asset::new(SHELL, "text/html; charset=utf-8"));
static JS_ASSET: LazyLock<Asset> = LazyLock::new(|| Asset::new(APP_JS, "text/javascript; charset=utf-8"));
static CSS_ASSET: LazyLock<Asset> = LazyLock::new(|| Asset::new(APP_CSS, "text/css; charset=utf-8"));
static ICON_ASSET: LazyLock<Asset> = LazyLock::new(|| Asset::new(ICON, "image/svg+xml"));

/// `GET /` (a redirect) and the dashboard's pages and assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(page))
        .route("/ui/devices", get(page))
        .route("/ui/devices/{id}", get(page))
        .route("/ui/rollouts", get(page))
        .route("/ui/rollouts/{id}", get(page))
        .route("/ui/artifacts", get(page))
        .route("/ui/assets/app.js", get(|h: HeaderMap| async move { JS_ASSET.serve(&h) }))
        .route("/ui/assets/app.css", get(|h: HeaderMap| async move { CSS_ASSET.serve(&h) }))
        .route("/ui/assets/icon.svg", get(|h: HeaderMap| async move { ICON_ASSET.serve(&h) }))
        .route("/favicon.ico", get(|h: HeaderMap| async move { ICON_ASSET.serve(&h) }))
        .route("/ui/{*rest}", get(not_found))
}

/// Every page is the same shell; the script renders the page its path names.
async fn page(headers: HeaderMap) -> Response {
    SHELL_ASSET.serve(&headers)
}

/// An unknown dashboard path: a small HTML page (with the same policy) linking home.
async fn not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, NOT_FOUND).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    guarded(response)
}

/// The security headers of every dashboard response.
fn guarded(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
