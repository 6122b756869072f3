//! `ApiError`: every failure of the HTTP API, with its wire form — a status
//! code and RabbitMQ's `{"error": ..., "reason": ...}` body. Handlers return
//! `Result<_, ApiError>`; broker errors convert with `?`.
//!
//! The mapping of broker errors follows what RabbitMQ's management plugin
//! answers (`rabbit_mgmt_util:direct_request`): not_found is 404,
//! access_refused and not_allowed are 401 `not_authorised` (RabbitMQ never
//! answers 403 from its API), every other AMQP error a 400 `bad_request`
//! carrying the broker's explanation. Internal errors are logged and
//! answered 500 without details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use warren_api_types::ErrorBody;

use crate::broker::error::{BrokerError, ErrorKind};

/// The realm in the `WWW-Authenticate` challenge.
pub const REALM_CHALLENGE: &str = "Basic realm=\"Warren Management\"";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub reason: String,
    /// Whether to send the Basic challenge (only when Basic credentials
    /// would help: none given, or wrong ones).
    pub challenge: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> Self {
        ApiError { status, error, reason: reason.into(), challenge: false }
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", reason)
    }
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", reason)
    }
    /// The object named by the URL does not exist.
    pub fn object_not_found() -> Self {
        Self::not_found("Object Not Found")
    }
    pub fn vhost_not_found() -> Self {
        Self::not_found("vhost_not_found")
    }
    /// Authenticated, but not allowed: RabbitMQ's `not_authorised` (401).
    pub fn not_authorised(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "not_authorised", reason)
    }
    /// No or wrong credentials: RabbitMQ's `not_authorized` (401).
    pub fn not_authenticated(challenge: bool) -> Self {
        ApiError { challenge, ..Self::new(StatusCode::UNAUTHORIZED, "not_authorized", "Not_Authorized") }
    }
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method Not Allowed")
    }
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", reason)
    }
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("HTTP API internal error: {detail}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_server_error", "internal error")
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        match e.kind {
            ErrorKind::NotFound => ApiError::not_found(e.message),
            ErrorKind::AccessRefused | ErrorKind::NotAllowed => ApiError::not_authorised(e.message),
            ErrorKind::Unavailable => ApiError::unavailable(e.message),
            ErrorKind::InternalError => ApiError::internal(e.message),
            _ => ApiError::bad_request(e.message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.error.to_owned(), reason: self.reason };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.challenge {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM_CHALLENGE));
        }
        resp
    }
}

/// The longest name RabbitMQ accepts for any object (an AMQP short string).
pub const MAX_NAME_LEN: usize = 255;

/// Checks a name from a URL: not empty, at most 255 bytes.
pub fn check_name(kind: &str, name: &str) -> ApiResult<()> {
    if name.is_empty() {
        return Err(ApiError::bad_request(format!("{kind} name must not be empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ApiError::bad_request(format!(
            "{kind} name is too long: {} bytes, at most {MAX_NAME_LEN} allowed",
            name.len()
        )));
    }
    Ok(())
}

/// A field that repeats a URL part (`rabbitmqadmin` sends `name` and
/// `vhost` in bodies) must agree with it.
pub fn check_echo(field: &str, given: Option<&str>, url: &str) -> ApiResult<()> {
    match given {
        Some(g) if g != url => {
            Err(ApiError::bad_request(format!("{field} '{g}' in the body does not match '{url}' in the URL")))
        }
        _ => Ok(()),
    }
}
