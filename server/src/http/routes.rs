//! The API router and the list of its routes, built by the same calls: every route is
//! added with its method, so the list is what the router serves (a test compares it with
//! the OpenAPI document).

use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;

use crate::state::AppState;

/// A router that remembers its (method, path) pairs.
#[derive(Debug, Default)]
pub struct ApiRouter {
    router: Router<AppState>,
    routes: Vec<(Method, String)>,
}

impl ApiRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `method` on `path`, served by `handler` (a method router for that one method).
    pub fn route(mut self, method: Method, path: &str, handler: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, handler);
        self.routes.push((method, path.to_owned()));
        self
    }

    pub fn get(self, path: &str, handler: MethodRouter<AppState>) -> Self {
        self.route(Method::GET, path, handler)
    }

    pub fn post(self, path: &str, handler: MethodRouter<AppState>) -> Self {
        self.route(Method::POST, path, handler)
    }

    pub fn patch(self, path: &str, handler: MethodRouter<AppState>) -> Self {
        self.route(Method::PATCH, path, handler)
    }

    pub fn delete(self, path: &str, handler: MethodRouter<AppState>) -> Self {
        self.route(Method::DELETE, path, handler)
    }

    pub fn merge(mut self, other: ApiRouter) -> Self {
        self.router = self.router.merge(other.router);
        self.routes.extend(other.routes);
        self
    }

    /// All routes under `prefix`.
    pub fn nest(mut self, prefix: &str, other: ApiRouter) -> Self {
        self.router = self.router.nest(prefix, other.router);
        self.routes.extend(other.routes.into_iter().map(|(m, p)| (m, format!("{prefix}{p}"))));
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<(Method, String)>) {
        (self.router, self.routes)
    }
}
