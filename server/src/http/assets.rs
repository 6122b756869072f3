//! Everything outside `/api`: the dashboard's place. Until the Leptos
//! dashboard is embedded, `/` answers a short page saying so; any other
//! path is a 404, JSON under `/api` and plain text elsewhere. No path is
//! ever mapped onto the file system here, so `..` cannot escape anything;
//! when assets arrive they must be served from an embedded table, by exact
//! name.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Ctx;
use super::error::ApiError;

const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Warren</title></head>\n<body><h1>Warren management</h1>\n<p>The dashboard is not built into this server yet. The HTTP API is at <a href=\"/api/overview\">/api</a>; its description is at <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p>\n</body></html>\n";

pub fn router() -> Router<Ctx> {
    Router::new().route("/", get(index)).route("/index.html", get(index))
}

async fn index() -> Response {
    let mut resp = PAGE.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    resp
}

/// Unknown paths: JSON 404 under `/api`, plain 404 elsewhere.
pub async fn fallback(uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::object_not_found().into_response();
    }
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}
