//! The OpenAPI document covers exactly the routes the server serves, and validates.

use std::collections::BTreeSet;

use fleet_tests::TestApp;

async fn document(app: &TestApp) -> serde_json::Value {
    let url = format!("{}/api/v1/openapi.json", app.client.base_url());
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_of_the_router() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> =
        fleet_server::http::routes().into_iter().map(|(m, p)| (m.to_string(), p)).collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty() && extra.is_empty(), "undocumented: {missing:?}; not served: {extra:?}");
    assert!(served.len() >= 40, "{served:?}");

    // Every operation's error bodies are problem+json.
    let problem = doc["components"]["schemas"]["Problem"].clone();
    assert_eq!(problem["required"].as_array().map(Vec::len), Some(5), "{problem}");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') && path.starts_with("/api/v1/") {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/Problem", "{method} {path} {status}");
                }
            }
        }
    }

    // The documented routes answer (not the 404 of an unknown route, not 405).
    for (method, path) in &served {
        let concrete = path.replace("{id}", "x").replace("{keyid}", "x").replace("{name}", "x");
        let url = format!("{}{concrete}", app.client.base_url());
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = reqwest::Client::new().request(method.clone(), url).send().await.unwrap();
        assert_ne!(r.status(), 405, "{method} {path}");
        if r.status() == 404 {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            assert_ne!(body["detail"], "route not found", "{method} {path}");
        }
    }

    let ui = reqwest::get(format!("{}/api/docs/", app.client.base_url())).await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"), "the Swagger UI page");
}

#[tokio::test]
#[ignore = "needs openapi-spec-validator from PyPI (CI installs it)"]
async fn the_openapi_document_validates() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new("openapi-spec-validator").arg(&file).output().expect("openapi-spec-validator");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
