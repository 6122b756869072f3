//! `/api/permissions` and `/api/topic-permissions`: list, show, set (PUT)
//! and clear (DELETE) a user's permissions in a vhost. Administrators only.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use warren_api_types::objects;
use warren_api_types::requests::{PutPermission, PutTopicPermission};

use super::vhost;
use crate::definitions::DefinitionCommand;
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo};
use crate::http::extract::{Body, P, created_or_no_content, json, no_content};
use crate::http::paging::{ListQuery, Listed, respond};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/permissions", get(list))
        .route("/api/permissions/{vhost}/{user}", get(show).put(set).delete(clear))
        .route("/api/topic-permissions", get(list_topic))
        .route("/api/topic-permissions/{vhost}/{user}", get(show_topic).put(set_topic).delete(clear_topic))
}

impl Listed for objects::Permission {
    fn name(&self) -> &str {
        &self.user
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

impl Listed for objects::TopicPermission {
    fn name(&self) -> &str {
        &self.user
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

pub fn all(ctx: &Ctx) -> Vec<objects::Permission> {
    ctx.broker
        .auth
        .all_permissions()
        .into_iter()
        .map(|(vhost, user, p)| objects::Permission {
            user,
            vhost,
            configure: p.configure.clone(),
            write: p.write.clone(),
            read: p.read.clone(),
        })
        .collect()
}

pub fn all_topic(ctx: &Ctx) -> Vec<objects::TopicPermission> {
    ctx.broker
        .auth
        .all_topic_permissions()
        .into_iter()
        .map(|(vhost, user, p)| objects::TopicPermission {
            user,
            vhost,
            exchange: p.exchange,
            write: p.write,
            read: p.read,
        })
        .collect()
}

/// The vhost and user of a permission URL must both exist.
fn check_target(ctx: &Ctx, v: &str, u: &str) -> ApiResult<()> {
    vhost(ctx, v)?;
    if ctx.broker.auth.user(u).is_none() {
        return Err(ApiError::not_found("user_not_found"));
    }
    Ok(())
}

async fn list(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    who.require_admin()?;
    respond(&lq, all(&ctx))
}

async fn show(State(ctx): State<Ctx>, who: Authed, P((v, u)): P<(String, String)>) -> ApiResult<Response> {
    who.require_admin()?;
    check_target(&ctx, &v, &u)?;
    let p =
        all(&ctx).into_iter().find(|p| p.vhost == v && p.user == u).ok_or_else(ApiError::object_not_found)?;
    Ok(json(&p))
}

async fn set(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, u)): P<(String, String)>,
    Body(body): Body<PutPermission>,
) -> ApiResult<Response> {
    who.require_admin()?;
    check_target(&ctx, &v, &u)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    check_echo("user", body.user.as_deref(), &u)?;
    let existed = ctx.broker.auth.permissions(&v, &u).is_some();
    ctx.broker
        .apply(DefinitionCommand::SetPermissions {
            vhost: v,
            user: u,
            configure: body.configure,
            write: body.write,
            read: body.read,
        })
        .await?;
    Ok(created_or_no_content(!existed))
}

async fn clear(State(ctx): State<Ctx>, who: Authed, P((v, u)): P<(String, String)>) -> ApiResult<Response> {
    who.require_admin()?;
    check_target(&ctx, &v, &u)?;
    if ctx.broker.auth.permissions(&v, &u).is_none() {
        return Err(ApiError::object_not_found());
    }
    ctx.broker.apply(DefinitionCommand::ClearPermissions { vhost: v, user: u }).await?;
    Ok(no_content())
}

async fn list_topic(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    who.require_admin()?;
    respond(&lq, all_topic(&ctx))
}

async fn show_topic(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, u)): P<(String, String)>,
) -> ApiResult<Response> {
    who.require_admin()?;
    check_target(&ctx, &v, &u)?;
    let items: Vec<_> = all_topic(&ctx).into_iter().filter(|p| p.vhost == v && p.user == u).collect();
    if items.is_empty() {
        return Err(ApiError::object_not_found());
    }
    Ok(json(&items))
}

async fn set_topic(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, u)): P<(String, String)>,
    Body(body): Body<PutTopicPermission>,
) -> ApiResult<Response> {
    who.require_admin()?;
    check_target(&ctx, &v, &u)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    check_echo("user", body.user.as_deref(), &u)?;
    if body.exchange.len() > 255 {
        return Err(ApiError::bad_request("exchange name is too long"));
    }
    // As in RabbitMQ, the resource is the user's topic permissions in the
    // vhost: a new exchange's entry beside existing ones is an update (204).
    let existed = all_topic(&ctx).iter().any(|p| p.vhost == v && p.user == u);
    ctx.broker
        .apply(DefinitionCommand::SetTopicPermissions {
            vhost: v,
            user: u,
            exchange: body.exchange,
            write: body.write,
            read: body.read,
        })
        .await?;
    Ok(created_or_no_content(!existed))
}

/// `?exchange=X` clears only that exchange's entry, as
/// `rabbitmqctl clear_topic_permissions user X` does (a Warren addition to
/// the HTTP API; without it, every entry of the user in the vhost goes).
#[derive(serde::Deserialize)]
struct ClearTopicQuery {
    exchange: Option<String>,
}

async fn clear_topic(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, u)): P<(String, String)>,
    Query(q): Query<ClearTopicQuery>,
) -> ApiResult<Response> {
    who.require_admin()?;
    check_target(&ctx, &v, &u)?;
    let exchange = q.exchange.filter(|e| !e.is_empty());
    let matches = |p: &objects::TopicPermission| {
        p.vhost == v && p.user == u && exchange.as_ref().is_none_or(|e| &p.exchange == e)
    };
    if !all_topic(&ctx).iter().any(matches) {
        return Err(ApiError::object_not_found());
    }
    ctx.broker.apply(DefinitionCommand::ClearTopicPermissions { vhost: v, user: u, exchange }).await?;
    Ok(no_content())
}
