use fleet_protocol::ErrorCode;
use fleet_tests::TestApp;
use reqwest::{Method, StatusCode};

async fn code_of(resp: reqwest::Response) -> (StatusCode, Option<ErrorCode>) {
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body: Option<fleet_protocol::Problem> = resp.json().await.ok();
    if body.is_some() {
        assert_eq!(ct.as_deref(), Some("application/problem+json"));
    }
    (status, body.map(|p| p.code))
}

#[tokio::test]
async fn tokens_and_rights() {
    let app = TestApp::spawn().await;
    let dev = app.client.add_device("dev-1", "rpi4", &Default::default()).await.unwrap();
    fleet_protocol::tls::install_default_provider();
    let raw = reqwest::Client::new();
    let url = app.client.api_url("/devices");

    let none = raw.get(&url).send().await.unwrap();
    assert_eq!(code_of(none).await, (StatusCode::UNAUTHORIZED, Some(ErrorCode::Unauthorized)));

    let wrong = raw.get(&url).bearer_auth("fleet_dev_nope").send().await.unwrap();
    assert_eq!(code_of(wrong).await, (StatusCode::UNAUTHORIZED, Some(ErrorCode::Unauthorized)));

    let device = app.client.with_token(&dev.token);
    for (method, path) in [
        (Method::GET, "/devices"),
        (Method::GET, "/devices/dev-1"),
        (Method::POST, "/devices/dev-1/token"),
        (Method::DELETE, "/devices/dev-1"),
        (Method::GET, "/keys"),
        (Method::GET, "/firmware"),
        (Method::POST, "/firmware"),
    ] {
        let resp = device.request(method.clone(), path).send().await.unwrap();
        assert_eq!(code_of(resp).await, (StatusCode::FORBIDDEN, Some(ErrorCode::Forbidden)), "{method} {path}");
    }

    // Its own command is allowed (none yet: 204); another device's is not.
    app.client.add_device("dev-2", "rpi4", &Default::default()).await.unwrap();
    let own = device.request(Method::GET, "/devices/dev-1/command").send().await.unwrap();
    assert_eq!(own.status(), StatusCode::NO_CONTENT);
    let other = device.request(Method::GET, "/devices/dev-2/command").send().await.unwrap();
    assert_eq!(code_of(other).await, (StatusCode::FORBIDDEN, Some(ErrorCode::Forbidden)));

    let health = raw.get(format!("{}/healthz", app.client.base_url())).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let unknown = app.client.request(Method::GET, "/nothing-here").send().await.unwrap();
    assert_eq!(code_of(unknown).await, (StatusCode::NOT_FOUND, Some(ErrorCode::NotFound)));
}

#[tokio::test]
async fn rotated_and_deleted_tokens_stop_working() {
    let app = TestApp::spawn().await;
    let first = app.client.add_device("dev-1", "rpi4", &Default::default()).await.unwrap().token;
    let command = |token: &str| app.client.with_token(token).request(Method::GET, "/devices/dev-1/command").send();

    assert_eq!(command(&first).await.unwrap().status(), StatusCode::NO_CONTENT);
    let second = app.client.rotate_token("dev-1").await.unwrap().token;
    assert_ne!(first, second);
    assert_eq!(command(&first).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(command(&second).await.unwrap().status(), StatusCode::NO_CONTENT);

    app.client.delete_device("dev-1").await.unwrap();
    assert_eq!(command(&second).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let gone = app.client.rotate_token("dev-1").await.unwrap_err();
    assert_eq!(gone.problem().unwrap().code, ErrorCode::NotFound);
}

/// The admin token lives (hashed) in the database: setting it replaces the old one for every
/// server on that database, and a server started without one keeps the stored token.
#[tokio::test]
async fn the_admin_token_is_kept_in_the_database_and_replaced_by_setting_it() {
    use fleet_server::settings::Secret;
    let app = TestApp::spawn().await;
    let dir = app.stop().await.expect("data dir");

    // Started without FLEET_ADMIN_TOKEN: the stored token stays; the file made now is not valid.
    let app = TestApp::spawn_in(dir.path(), |s| s.admin_token = None).await;
    let with = |token: &str| fleet_cli::ApiClient::new(app.client.base_url(), token);
    with(fleet_tests::ADMIN_TOKEN).list_keys(None).await.expect("stored admin token still valid");
    let file_token = std::fs::read_to_string(dir.path().join("admin.token")).expect("token file");
    let refused = with(file_token.trim()).list_keys(None).await.expect_err("file token is not the stored one");
    assert_eq!(refused.problem().map(|p| p.code), Some(ErrorCode::Unauthorized), "{refused}");
    // Stopped, not just dropped: the data directory is locked until the server has stopped.
    app.stop().await;

    // Given a new one, the old one stops working.
    let new = "rotated-admin-token-Q4n8Xb2Lm7Vt1Rk9Pz3Wc6Jh5Sd0Fy";
    let app = TestApp::spawn_in(dir.path(), |s| s.admin_token = Some(Secret::new(new))).await;
    let with = |token: &str| fleet_cli::ApiClient::new(app.client.base_url(), token);
    with(new).list_keys(None).await.expect("new admin token");
    let refused = with(fleet_tests::ADMIN_TOKEN).list_keys(None).await.expect_err("old admin token");
    assert_eq!(refused.problem().map(|p| p.code), Some(ErrorCode::Unauthorized), "{refused}");
}
