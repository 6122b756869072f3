//! `/api/auth/attempts/{node}` and `/api/auth/attempts/{node}/source`:
//! password logins on this node, per protocol and per source (client
//! address, user name, protocol), as RabbitMQ 3.11+ serves them; `DELETE`
//! on either resets both, as `reset_node_auth_attempt_metrics` does. Reading
//! needs `monitoring`, resetting `administrator`.
//!
//! Unlike RabbitMQ, sources are always tracked (RabbitMQ needs
//! `track_auth_attempt_source`), in a table of bounded size
//! (`broker::auth::ATTEMPT_SOURCES`), and only the node that serves the
//! request answers: another member's name is 404.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use warren_api_types::objects::{AuthAttempts, AuthAttemptsBySource};

use super::node;
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{P, json, no_content};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/auth/attempts/{node}", get(by_protocol).delete(reset))
        .route("/api/auth/attempts/{node}/source", get(by_source).delete(reset))
}

fn this_node(ctx: &Ctx, name: &str) -> ApiResult<()> {
    if name == node(ctx) { Ok(()) } else { Err(ApiError::object_not_found()) }
}

async fn by_protocol(State(ctx): State<Ctx>, who: Authed, P(name): P<String>) -> ApiResult<Response> {
    who.require_monitor()?;
    this_node(&ctx, &name)?;
    let items: Vec<AuthAttempts> = ctx
        .broker
        .auth
        .attempts
        .by_protocol()
        .into_iter()
        .map(|(p, c)| AuthAttempts {
            protocol: p.name().to_owned(),
            auth_attempts: c.attempts,
            auth_attempts_failed: c.failed,
            auth_attempts_succeeded: c.succeeded,
        })
        .collect();
    Ok(json(&items))
}

async fn by_source(State(ctx): State<Ctx>, who: Authed, P(name): P<String>) -> ApiResult<Response> {
    who.require_monitor()?;
    this_node(&ctx, &name)?;
    let items: Vec<AuthAttemptsBySource> = ctx
        .broker
        .auth
        .attempts
        .by_source()
        .into_iter()
        .map(|((address, user, p), c)| AuthAttemptsBySource {
            remote_address: address,
            username: user,
            protocol: p.name().to_owned(),
            auth_attempts: c.attempts,
            auth_attempts_failed: c.failed,
            auth_attempts_succeeded: c.succeeded,
        })
        .collect();
    Ok(json(&items))
}

async fn reset(State(ctx): State<Ctx>, who: Authed, P(name): P<String>) -> ApiResult<Response> {
    who.require_admin()?;
    this_node(&ctx, &name)?;
    ctx.broker.auth.attempts.reset();
    Ok(no_content())
}
