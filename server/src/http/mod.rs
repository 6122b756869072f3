//! The management HTTP API on port 15672, compatible with RabbitMQ's
//! management plugin, served by axum inside the broker process.
//!
//! `server::Node` binds the listeners and calls [`serve`]. A tour:
//!
//! - [`error`]: `ApiError`, the one error type, and its JSON wire form.
//! - [`extract`]: body and path extractors whose rejections are `ApiError`s.
//! - [`auth`]: Basic and Bearer (JWT) authentication, and the tag rules.
//! - [`paging`]: filtering, sorting, paging and column selection of lists.
//! - [`stats`]: the sampler turning counters into rates and history;
//!   [`present`] puts them into API objects.
//! - [`amqp_json`]: arguments and message properties as JSON.
//! - [`api`]: one module per resource, each with its own `router()`, merged
//!   in [`router`]. Every change goes through `Broker::apply`.
//! - [`https`]: the same application over TLS (`management.ssl.*`).
//! - [`metrics`]: Prometheus text at `/metrics`; [`openapi`]: the API's
//!   OpenAPI document; [`assets`]: everything outside `/api` (the
//!   dashboard), whose bundle and HTML shell [`shell`] owns.

pub mod amqp_json;
pub mod api;
pub mod assets;
pub mod auth;
pub mod error;
pub mod extract;
pub mod https;
pub mod metrics;
pub mod openapi;
pub mod paging;
pub mod present;
pub mod queue_sort;
pub mod shell;
pub mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::broker::Broker;

/// What every handler can reach.
pub struct ApiState {
    pub broker: Arc<Broker>,
    pub stats: Arc<stats::Stats>,
    pub jwt: auth::JwtKeys,
    /// The AMQP side, which `stop_app`/`start_app` stop and start; its
    /// `listeners()` are empty while it is stopped.
    pub app: Arc<crate::server::App>,
    pub http_addrs: Vec<SocketAddr>,
    /// The management API's HTTPS listeners (`management.ssl.port`).
    pub https_addrs: Vec<SocketAddr>,
}

pub type Ctx = Arc<ApiState>;

/// The whole application: every resource's routes, the assets fallback and
/// the security headers.
pub fn router(ctx: Ctx) -> Router {
    // Checks the embedded dashboard now, so that a missing or stale one is
    // logged at start.
    let _ = shell::bundle();
    let max_body = ctx.broker.config.max_body_size;
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    Router::new()
        .merge(api::router())
        .merge(auth::router())
        .merge(metrics::router())
        .merge(openapi::router())
        .merge(assets::router())
        .fallback(assets::fallback)
        // Every body extractor reads at most this much; above it the
        // extractors answer RabbitMQ's 400 (`extract`).
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(assets::no_challenge_for_dashboard))
        .layer(header(header::CONTENT_SECURITY_POLICY, shell::CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::CACHE_CONTROL, "no-cache"))
        // A bug in a handler must answer 500, not drop the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(error::ApiError::internal("a handler panicked"))
        }))
        .with_state(ctx)
}

/// Serves the API on one listener until the task is aborted.
pub async fn serve(ctx: Ctx, listener: TcpListener) {
    let app = router(ctx).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("HTTP listener stopped: {e}");
    }
}
