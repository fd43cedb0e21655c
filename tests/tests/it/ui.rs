//! The dashboard's pages and assets as served (CONTRACT §8), without a browser: `/`
//! redirects to `/ui/`, every page answers with the strict policy and no inline script or
//! style, assets come with their content types and ETags, unknown paths are 404, and
//! `GET /whoami` tells a client a token's scope. The browser test is `ui_browser`.

use fleet_cli::client::TokenScope;
use fleet_tests::TestApp;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION, X_CONTENT_TYPE_OPTIONS};

const PAGES: [&str; 6] =
    ["/ui/", "/ui/devices", "/ui/devices/dev-1", "/ui/rollouts", "/ui/rollouts/r-1", "/ui/artifacts"];

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The policy allows nothing inline, nothing evaluated and nothing from elsewhere.
fn assert_strict(r: &reqwest::Response, what: &str) {
    let csp = r.headers().get(CONTENT_SECURITY_POLICY).unwrap_or_else(|| panic!("{what}: no CSP")).to_str().unwrap();
    for needed in
        ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(needed), "{what}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains("http"), "{what}: {csp}");
    assert_eq!(r.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
}

#[tokio::test]
async fn the_root_redirects_to_the_dashboard() {
    let app = TestApp::spawn().await;
    let base = app.client.base_url();
    for path in ["/", "/ui"] {
        let r = http().get(format!("{base}{path}")).send().await.unwrap();
        assert!(r.status().is_redirection(), "{path}: {}", r.status());
        assert_eq!(r.headers()[LOCATION], "/ui/", "{path}");
    }
}

#[tokio::test]
async fn every_page_is_the_shell_with_a_strict_policy_and_nothing_inline() {
    let app = TestApp::spawn().await;
    let base = app.client.base_url();
    for page in PAGES {
        let r = http().get(format!("{base}{page}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{page}");
        assert_strict(&r, page);
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{page}");
        let html = r.text().await.unwrap().to_lowercase();
        // Every <script> has a src; no style element or attribute, no inline handler.
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(tag.contains(" src=\"/ui/"), "{page}: inline script {tag}");
        }
        assert!(!html.contains("style=") && !html.contains("<style"), "{page}: inline style");
        assert!(!html.contains(" onclick=") && !html.contains(" onload=") && !html.contains("javascript:"), "{page}");
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src=\"//"), "{page}");
        // The sign-in form: a token field, a submit button, and a POST so a token can never
        // land in a URL even before the script runs.
        assert!(html.contains("name=\"token\"") && html.contains("type=\"submit\""), "{page}");
        assert!(html.contains("<form id=\"sign-in-form\" method=\"post\""), "{page}");
    }
}

#[tokio::test]
async fn assets_come_with_their_content_types_and_an_etag_that_revalidates() {
    let app = TestApp::spawn().await;
    let base = app.client.base_url();
    for (path, kind) in [
        ("/ui/assets/app.js", "text/javascript"),
        ("/ui/assets/app.css", "text/css"),
        ("/ui/assets/icon.svg", "image/svg+xml"),
    ] {
        let r = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_strict(&r, path);
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with(kind), "{path}");
        let etag = r.headers()[ETAG].clone();
        assert!(!r.text().await.unwrap().is_empty(), "{path}");
        let again = http().get(format!("{base}{path}")).header(IF_NONE_MATCH, etag).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    // The script never puts the token in a URL or a cookie, and evaluates no strings.
    let js = http().get(format!("{base}/ui/assets/app.js")).send().await.unwrap().text().await.unwrap();
    for banned in ["eval(", "new Function", "innerHTML", "document.cookie", "new EventSource", "?token", "&token"] {
        assert!(!js.contains(banned), "app.js uses {banned}");
    }
}

#[tokio::test]
async fn an_unknown_dashboard_path_is_a_404_page_with_the_same_policy() {
    let app = TestApp::spawn().await;
    let base = app.client.base_url();
    for path in ["/ui/x", "/ui/devices/a/b", "/ui/assets/nothing.js"] {
        let r = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_strict(&r, path);
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{path}");
        assert!(r.text().await.unwrap().contains("href=\"/ui/\""), "{path}");
    }
    // The API's own unknown routes stay problem+json.
    let r = http().get(format!("{base}/api/v1/nothing")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
}

#[tokio::test]
async fn whoami_names_the_token_and_its_scope() {
    let app = TestApp::spawn().await;
    let me: serde_json::Value =
        app.client.request(reqwest::Method::GET, "/whoami").send().await.unwrap().json().await.unwrap();
    assert_eq!(me["scope"], "admin", "{me}");
    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    let reader = fleet_cli::ApiClient::new(app.client.base_url(), viewer.token);
    let me: serde_json::Value =
        reader.request(reqwest::Method::GET, "/whoami").send().await.unwrap().json().await.unwrap();
    assert_eq!(me, serde_json::json!({"name": "viewer", "scope": "read-only"}));
    let r = http().get(format!("{}/api/v1/whoami", app.client.base_url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
