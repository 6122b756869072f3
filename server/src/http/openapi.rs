//! `/api/openapi.json`: the API's OpenAPI 3 document, hand-written in
//! `openapi.json` beside this file and checked against the server by the
//! schemathesis test (`tests/python/test_http_openapi.py`). Public, like
//! RabbitMQ's API reference page.

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::Ctx;
use super::extract::json_bytes;

const DOCUMENT: &str = include_str!("openapi.json");

pub fn router() -> Router<Ctx> {
    Router::new().route("/api/openapi.json", get(document))
}

async fn document() -> Response {
    json_bytes(StatusCode::OK, DOCUMENT.as_bytes().to_vec())
}
