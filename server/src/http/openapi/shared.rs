//! The answers that layers and extractors shared by many routes give, added to every
//! operation they serve, so that no operation's list of statuses misses them (CONTRACT §7:
//! every status an operation can return is in the document). An operation's own entry for
//! the same status is kept: it says more.
//!
//! - Every operation: 414 `uri_too_long` and 431 `headers_too_large` (`http::refusals`).
//! - With a bearer token: 401 `unauthorized`, and 500 `internal` (the token is looked up in
//!   the database, which may fail).
//! - With a path parameter: 400 `bad_request`, for a segment that is not UTF-8 once
//!   percent-decoded (axum's `Path`, answered as a problem by `http::refusals`).
//! - With a query parameter: 400 `bad_request`, for a value of the wrong type (`ApiQuery`).
//! - With a JSON body: 400 `bad_request` (not JSON, another content type, a missing or
//!   unknown field: `ApiJson`) and 413 `too_large` (over the JSON body limit).

use std::collections::BTreeMap;

use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// The [`Modify`] that adds the shared answers.
pub(super) struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                add_shared(operation);
            }
        }
    }
}

fn add_shared(op: &mut Operation) {
    let mut shared = vec![
        ("414", "uri_too_long: the request target is over 8 KiB"),
        ("431", "headers_too_large: the request headers are over 32 KiB"),
    ];
    if needs_token(op) {
        shared.push(("401", "unauthorized: no or an unknown token"));
        shared.push(("500", "internal: the cause is in the server's log"));
    }
    if has_parameter(op, ParameterIn::Path) {
        shared.push(("400", "bad_request: a path segment that is not UTF-8 once percent-decoded"));
    }
    if has_parameter(op, ParameterIn::Query) {
        shared.push(("400", "bad_request: a query parameter of the wrong type"));
    }
    if has_json_body(op) {
        shared.push(("400", "bad_request: not JSON, another content type, or a missing or unknown field"));
        shared.push(("413", "too_large: a JSON body over 1 MiB"));
    }
    let mut by_status: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (status, description) in shared {
        by_status.entry(status).or_default().push(description);
    }
    for (status, descriptions) in by_status {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| problem(&descriptions.join("; ")));
    }
}

/// A problem+json response (the `Problem` schema, as the operations' own error entries).
fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).into()
}

/// Operations without their own `security` take the document's bearer token; `security(())`
/// (an empty requirement) means none.
fn needs_token(op: &Operation) -> bool {
    op.security.as_ref().is_none_or(|all| all.iter().any(|r| *r != SecurityRequirement::default()))
}

fn has_parameter(op: &Operation, place: ParameterIn) -> bool {
    op.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
}

fn has_json_body(op: &Operation) -> bool {
    matches!(&op.request_body, Some(RefOr::T(body)) if body.content.contains_key("application/json"))
}
