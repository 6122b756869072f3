//! Extractors whose rejections are `ApiError`s, and the JSON response
//! helper every handler uses.
//!
//! - [`Body`]: a JSON request body, whatever its `Content-Type` (RabbitMQ
//!   does not insist on one, and `rabbitmqadmin` sends none with an empty
//!   body). An empty body reads as `{}`, and so do `null`, `true` and
//!   `false`, as in RabbitMQ. Any other body that is not a JSON object
//!   (`[]`, `3`) is a 400 `not_json`, a string one saying so; malformed
//!   JSON, unknown fields and wrong types are a 400 with serde's
//!   explanation. Every request body is capped by
//!   `management.http.max_body_size` (the layer in `http::router`); above
//!   it the answer is RabbitMQ's 400 `Exceeded HTTP request body size
//!   limit`.
//! - [`P`]: path parameters, percent-decoded (`%2F` is the vhost `/`).
//! - [`json`]: serializes once into a byte buffer and answers it.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::bad_request("Exceeded HTTP request body size limit")
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        parse_body(&bytes).map(Body)
    }
}

/// A body read but not yet parsed, for handlers that must first answer
/// 404 for a missing object, as RabbitMQ does (`resource_exists` comes
/// before the body is looked at).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|_| ApiError::bad_request("Exceeded HTTP request body size limit"))
    }
}

/// RabbitMQ's answer to a body that is JSON but not an object.
pub const NOT_JSON: &str = "not_json";
const DOUBLY_ENCODED: &str =
    "invalid payload: the request body JSON-decoded to a string. Is the input doubly-JSON-encoded?";

/// Parses a request body, which must be a JSON object (every body the API
/// takes is one); empty, `null`, `true` and `false` mean `{}`, as RabbitMQ
/// reads them. Anything else that is not an object is refused before serde
/// sees it: serde would read a struct from an array (`[]` as a user with
/// every field defaulted, an empty password among them).
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let trimmed = bytes.trim_ascii();
    let text: &[u8] = match trimmed.first() {
        None => b"{}",
        Some(b'{') => bytes,
        Some(b'"') => return Err(ApiError::bad_request(DOUBLY_ENCODED)),
        Some(b'[' | b'-' | b'0'..=b'9') => return Err(ApiError::bad_request(NOT_JSON)),
        Some(_) if matches!(trimmed, b"null" | b"true" | b"false") => b"{}",
        // Not JSON at all: serde says where.
        Some(_) => bytes,
    };
    serde_json::from_slice(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "invalid request body",
            _ => "malformed JSON",
        };
        ApiError::bad_request(format!("{what}: {e}"))
    })
}

/// Path parameters with an `ApiError` rejection.
pub struct P<T>(pub T);

impl<S, T> FromRequestParts<S> for P<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(P(v)),
            Err(e) => Err(ApiError::bad_request(format!("invalid path: {e}"))),
        }
    }
}

/// A 200 answer with `value` as JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(StatusCode::OK, bytes),
        Err(e) => ApiError::internal(format!("serializing a response: {e}")).into_response(),
    }
}

pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// 201 when something was created, 204 otherwise, as RabbitMQ answers PUT.
pub fn created_or_no_content(created: bool) -> Response {
    if created { StatusCode::CREATED.into_response() } else { StatusCode::NO_CONTENT.into_response() }
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
