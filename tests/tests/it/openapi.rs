//! The OpenAPI document covers exactly the routes the server serves, lists every status
//! the server answers to bad input (probed on the live server), and validates.

use std::collections::BTreeSet;

use fleet_cli::client::TokenScope;
use fleet_protocol::ArtifactKind;
use fleet_tests::{ADMIN_TOKEN, TestApp, manifest_for, release_key, sign};
use serde_json::Value;

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

/// Ids that exist on the server under test, by the resource a path names before its
/// parameter (`/devices/{id}` → the device); any other parameter gets `x`.
struct Known {
    ids: Vec<(&'static str, String)>,
    read_only: String,
    device: String,
}

impl Known {
    /// A release key, a firmware, a config, a device, a rollout of the firmware to it and a
    /// read-only operator token.
    async fn create(app: &TestApp) -> Self {
        let pem = String::from_utf8(fleet_tests::sample("test-only-release.pub")).unwrap();
        let keyid = app.client.add_key("release", &pem).await.unwrap().keyid;
        let upload = |kind: ArtifactKind, name: &'static str| async move {
            let bytes = vec![7u8; 1000];
            let mut m = manifest_for(kind, name, "1.0.0", &bytes);
            if kind == ArtifactKind::Config {
                m.hardware.clear();
            }
            app.upload(kind, &sign(&m, &[&release_key()]), bytes).await.unwrap().id
        };
        let firmware = upload(ArtifactKind::Firmware, "probe-os").await;
        let config = upload(ArtifactKind::Config, "probe-config").await;
        let device = app.client.add_device("probe-dev", "rpi4", &Default::default()).await.unwrap().token;
        let body = serde_json::json!({"firmware": firmware, "target": {"devices": ["probe-dev"]}});
        let rollout = app.client.create_rollout(&body).await.unwrap().id;
        let read_only = app.client.create_operator_token("reader", TokenScope::ReadOnly).await.unwrap().token;
        let ids = vec![
            ("keys", keyid),
            ("firmware", firmware),
            ("configs", config),
            ("devices", "probe-dev".to_owned()),
            ("rollouts", rollout),
            ("tokens", "reader".to_owned()),
        ];
        Self { ids, read_only, device }
    }

    /// `path` with every parameter replaced by a known id, except the one `bad` names,
    /// which gets the value `bad` gives.
    fn fill(&self, path: &str, bad: Option<(&str, &str)>) -> String {
        let segments: Vec<&str> = path.split('/').collect();
        let mut out = Vec::with_capacity(segments.len());
        for (i, segment) in segments.iter().enumerate() {
            let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                out.push((*segment).to_owned());
                continue;
            };
            let resource = if name == "device_id" { "devices" } else { segments[i - 1] };
            let known = self.ids.iter().find(|(r, _)| *r == resource).map_or("x", |(_, id)| id.as_str());
            out.push(bad.filter(|(b, _)| *b == name).map_or(known, |(_, value)| value).to_owned());
        }
        out.join("/")
    }
}

/// One request of the probe.
struct Probe {
    target: String,
    token: Option<String>,
    body: Option<(&'static str, Vec<u8>)>,
}

/// Values no id rule accepts (percent-encoded: `not valid!`, a byte that is not UTF-8, 65
/// characters), and one that is well formed but names nothing.
fn bad_ids() -> [String; 4] {
    ["not%20valid%21".to_owned(), "%FF".to_owned(), "a".repeat(65), "x".to_owned()]
}

/// Values of the wrong type or out of range, by the parameter's schema type.
fn bad_query_values(parameter: &Value) -> Vec<&'static str> {
    let kind = parameter["schema"]["type"].to_string();
    if kind.contains("integer") {
        vec!["0", "-1", "1001", "abc"]
    } else if kind.contains("boolean") {
        vec!["maybe"]
    } else {
        vec!["not%20valid%21", "%FF", "zzz"]
    }
}

/// The bad requests for one operation: an invalid id in each path parameter (with and
/// without an unknown query parameter), a bad value of each query parameter and an unknown
/// one, bad bodies, and the wrong tokens.
fn probes(path: &str, op: &Value, known: &Known) -> Vec<Probe> {
    let admin = || Some(ADMIN_TOKEN.to_owned());
    let probe = |target: String, token: Option<String>| Probe { target, token, body: None };
    let mut out = vec![];
    let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
    for p in parameters.iter().filter(|p| p["in"] == "path") {
        for value in bad_ids() {
            let target = known.fill(path, Some((p["name"].as_str().unwrap(), &value)));
            out.push(probe(format!("{target}?no_such_parameter=1"), admin()));
            out.push(probe(target, admin()));
        }
    }
    let queries: Vec<&Value> = parameters.iter().filter(|p| p["in"] == "query").collect();
    if !queries.is_empty() {
        out.push(probe(format!("{}?no_such_parameter=1", known.fill(path, None)), admin()));
    }
    for p in queries {
        for value in bad_query_values(p) {
            out.push(probe(format!("{}?{}={value}", known.fill(path, None), p["name"].as_str().unwrap()), admin()));
        }
    }
    let content = op["requestBody"]["content"].as_object().cloned().unwrap_or_default();
    let large = format!("\"{}\"", "a".repeat(1_050_000)).into_bytes();
    let mut bodies: Vec<(&'static str, Vec<u8>)> = vec![("text/plain", b"{}".to_vec())];
    if content.contains_key("application/json") {
        bodies.extend([("application/json", b"{".to_vec()), ("application/json", b"{\"no_such_field\":1}".to_vec())]);
        bodies.push(("application/json", large));
    }
    if content.contains_key("multipart/form-data") {
        bodies.push(("multipart/form-data; boundary=XyZ", b"--XyZ\r\nnot a part\r\n".to_vec()));
    }
    if !content.is_empty() {
        let target = known.fill(path, None);
        out.extend(bodies.into_iter().map(|b| Probe { target: target.clone(), token: admin(), body: Some(b) }));
    }
    for token in [None, Some(known.read_only.clone()), Some(known.device.clone())] {
        out.push(probe(known.fill(path, None), token));
    }
    out
}

/// Every status the live server answers to bad input is listed for its operation, and every
/// error answer is problem+json. The probes come from the served document itself, so an
/// operation added later is probed too.
#[tokio::test]
async fn every_status_answered_to_bad_input_is_in_the_document() {
    let app = TestApp::spawn().await;
    let known = Known::create(&app).await;
    let doc = document(&app).await;
    let http = reqwest::Client::new();
    let (mut undocumented, mut not_problems, mut sent) = (vec![], vec![], 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for probe in probes(path, op, &known) {
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut request = http.request(method.clone(), format!("{}{}", app.client.base_url(), probe.target));
                if let Some(token) = &probe.token {
                    request = request.bearer_auth(token);
                }
                if let Some((content_type, body)) = probe.body {
                    request = request.header("content-type", content_type).body(body);
                }
                let response = request.send().await.unwrap();
                sent += 1;
                let status = response.status();
                let said = format!("{method} {} -> {status}", probe.target);
                if op["responses"].get(status.as_str()).is_none() {
                    undocumented.push(said.clone());
                }
                let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok());
                if status.as_u16() >= 400 && content_type != Some("application/problem+json") {
                    not_problems.push(format!("{said} ({content_type:?})"));
                }
            }
        }
    }
    assert!(undocumented.is_empty(), "answers the document does not list: {undocumented:#?}");
    assert!(not_problems.is_empty(), "error answers that are not problem+json: {not_problems:#?}");
    assert!(sent > 300, "{sent} probes");
}
