//! Refusals that come from the routing and serving layers rather than a handler — 405 from
//! axum's method router, 416 from tower-http's file service, 400 from axum's `Path`
//! extractor (a segment that is not UTF-8 once percent-decoded) — answered as problem+json
//! like every other error, their headers (`Allow`, `Content-Range`) kept. Request lines and
//! headers larger than the API ever needs are refused here as 414 and 431 problem+json,
//! well below the limits at which hyper itself answers with a bare status (a 64 KiB
//! request target, 100 headers, a ~400 KiB head), which no middleware can reach.

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use fleet_protocol::ErrorCode;
use fleet_protocol::problem::PROBLEM_JSON;

use super::error::ApiError;

/// The longest request target (path and query) served.
pub const MAX_URI_LEN: usize = 8 * 1024;
/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The middleware: refuses oversized request heads, and dresses bare refusals.
pub async fn as_problems(request: Request, next: Next) -> Response {
    if let Some(refusal) = oversized(&request) {
        return refusal.into_response();
    }
    let response = next.run(request).await;
    let code = match response.status() {
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::RANGE_NOT_SATISFIABLE => ErrorCode::RangeNotSatisfiable,
        StatusCode::URI_TOO_LONG => ErrorCode::UriTooLong,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
        _ => return response,
    };
    if response.headers().get(CONTENT_TYPE).is_some_and(|t| t == PROBLEM_JSON) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = bare_detail(body).await.unwrap_or_else(|| code.title().to_owned());
    let mut problem = ApiError::new(code, detail).into_response();
    keep_headers(parts.headers, problem.headers_mut());
    problem
}

/// The text of a bare refusal (axum's rejections say what was wrong), if short and present.
async fn bare_detail(body: axum::body::Body) -> Option<String> {
    let bytes = axum::body::to_bytes(body, 4096).await.ok()?;
    let text = String::from_utf8(bytes.to_vec()).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// 414 or 431 for a request head larger than the API needs.
fn oversized(request: &Request) -> Option<ApiError> {
    let uri_len = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_LEN {
        return Some(ApiError::new(ErrorCode::UriTooLong, format!("request target over {MAX_URI_LEN} bytes")));
    }
    let header_bytes: usize = request.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        let detail = format!("request headers over {MAX_HEADER_BYTES} bytes");
        return Some(ApiError::new(ErrorCode::HeadersTooLarge, detail));
    }
    None
}

/// The refusal's own headers, but the body's type and length are the problem's.
fn keep_headers(from: HeaderMap, to: &mut HeaderMap) {
    let mut name = None;
    for (n, value) in from {
        name = n.or(name);
        match &name {
            Some(n) if *n != CONTENT_TYPE && *n != CONTENT_LENGTH => {
                to.append(n.clone(), value);
            }
            _ => {}
        }
    }
}
