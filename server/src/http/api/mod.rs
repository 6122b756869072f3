//! The `/api` resources, one module per noun, each with its own `router()`;
//! [`router`] merges them. Shared helpers for looking up vhosts live here.
//!
//! Handlers read through the broker's public accessors and change things
//! only with `Broker::apply(DefinitionCommand::...)`, after checking tags,
//! permissions and input, so that a refused request changes nothing.

pub mod auth_attempts;
pub mod bindings;
pub mod connections;
pub mod definitions;
pub mod exchanges;
pub mod health;
pub mod limits;
pub mod messages;
pub mod node;
pub mod overview;
pub mod parameters;
pub mod permissions;
pub mod policies;
pub mod queues;
pub mod quorum;
pub mod users;
pub mod vhosts;

use std::sync::Arc;

use axum::Router;

use super::Ctx;
use super::auth::Authed;
use super::error::{ApiError, ApiResult};
use crate::broker::vhost::VHost;

pub fn router() -> Router<Ctx> {
    Router::new()
        .merge(overview::router())
        .merge(vhosts::router())
        .merge(users::router())
        .merge(permissions::router())
        .merge(exchanges::router())
        .merge(queues::router())
        .merge(quorum::router())
        .merge(bindings::router())
        .merge(messages::router())
        .merge(parameters::router())
        .merge(policies::router())
        .merge(limits::router())
        .merge(connections::router())
        .merge(definitions::router())
        .merge(health::router())
        .merge(node::router())
        .merge(auth_attempts::router())
}

/// The vhost named in a URL, or 404 `vhost_not_found`.
pub fn vhost(ctx: &Ctx, name: &str) -> ApiResult<Arc<VHost>> {
    ctx.broker.vhost(name).ok_or_else(ApiError::vhost_not_found)
}

/// The vhosts whose objects a list shows this user: one when the URL names
/// it (which the user must be allowed to read), else all it may see.
pub fn listed_vhosts(ctx: &Ctx, who: &Authed, only: Option<&str>) -> ApiResult<Vec<Arc<VHost>>> {
    match only {
        Some(name) => {
            who.require_vhost_read(name)?;
            Ok(vec![vhost(ctx, name)?])
        }
        None => Ok(ctx.broker.vhosts().into_iter().filter(|v| who.sees_vhost(&v.name)).collect()),
    }
}

/// RabbitMQ's URL name of the default exchange.
pub fn exchange_name(url_name: &str) -> &str {
    if url_name == "amq.default" { "" } else { url_name }
}

/// The node name shown on objects.
pub fn node(ctx: &Ctx) -> String {
    ctx.broker.config.node_name.clone()
}
