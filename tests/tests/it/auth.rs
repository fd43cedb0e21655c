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
