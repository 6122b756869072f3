//! Limits: `/api/vhost-limits` (stored as RabbitMQ stores them, the
//! runtime parameter `vhost-limits`/`limits` of each vhost) and
//! `/api/user-limits`. The broker's `User` has no limits, so user limits
//! live in one global parameter, [`USER_LIMITS`], hidden from the global
//! parameter list and exported inside each user, as RabbitMQ exports them.
//! The broker enforces them (`broker::limits`).

use std::collections::HashSet;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, put};
use serde_json::{Map, Value};
use warren_api_types::objects;
use warren_api_types::requests::PutLimit;

use super::vhost;
use crate::definitions::{DefinitionCommand, VHOST_LIMITS};
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo};
use crate::http::extract::{Body, P, json, no_content};
use crate::http::paging::{ListQuery, Listed, respond};

pub use crate::broker::limits::USER_LIMITS;
const VHOST_LIMIT_NAMES: [&str; 2] = ["max-connections", "max-queues"];
const USER_LIMIT_NAMES: [&str; 2] = ["max-connections", "max-channels"];

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/vhost-limits", get(vhost_limits_all))
        .route("/api/vhost-limits/{vhost}", get(vhost_limits_one))
        .route("/api/vhost-limits/{vhost}/{name}", put(set_vhost_limit).delete(clear_vhost_limit))
        .route("/api/user-limits", get(user_limits_all))
        .route("/api/user-limits/{user}", get(user_limits_one))
        .route("/api/user-limits/{user}/{name}", put(set_user_limit).delete(clear_user_limit))
}

impl Listed for objects::Limits {
    fn name(&self) -> &str {
        self.vhost.as_deref().or(self.user.as_deref()).unwrap_or("")
    }
}

/// A limits object: integer values only.
pub fn check_limits(m: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    for (k, v) in m {
        if !v.is_i64() {
            return Err(ApiError::bad_request(format!("limit '{k}' must be an integer")));
        }
    }
    Ok(m.clone())
}

fn limit_value(name: &str, allowed: &[&str], body: &PutLimit) -> ApiResult<i64> {
    if !allowed.contains(&name) {
        return Err(ApiError::bad_request(format!("unknown limit '{name}'; known: {}", allowed.join(", "))));
    }
    Ok(body.value.0)
}

fn vhost_limits(ctx: &Ctx, v: &str) -> Map<String, Value> {
    match ctx.broker.parameters.get(VHOST_LIMITS, v, "limits") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

async fn vhost_limits_all(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    let items = ctx
        .broker
        .vhosts()
        .iter()
        .filter(|v| who.sees_vhost(&v.name))
        .map(|v| (v.name.to_string(), vhost_limits(&ctx, &v.name)))
        .filter(|(_, m)| !m.is_empty())
        .map(|(v, value)| objects::Limits { vhost: Some(v), user: None, value })
        .collect();
    respond(&lq, items)
}

async fn vhost_limits_one(State(ctx): State<Ctx>, who: Authed, P(v): P<String>) -> ApiResult<Response> {
    who.require_vhost_read(&v)?;
    vhost(&ctx, &v)?;
    let value = vhost_limits(&ctx, &v);
    let items: Vec<_> =
        if value.is_empty() { vec![] } else { vec![objects::Limits { vhost: Some(v), user: None, value }] };
    Ok(json(&items))
}

async fn set_vhost_limit(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    Body(body): Body<PutLimit>,
) -> ApiResult<Response> {
    who.require_admin()?;
    vhost(&ctx, &v)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    let n = limit_value(&name, &VHOST_LIMIT_NAMES, &body)?;
    let mut m = vhost_limits(&ctx, &v);
    m.insert(name, n.into());
    ctx.broker
        .apply(DefinitionCommand::SetParameter {
            component: VHOST_LIMITS.into(),
            vhost: v,
            name: "limits".into(),
            value: Value::Object(m),
        })
        .await?;
    Ok(no_content())
}

async fn clear_vhost_limit(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
) -> ApiResult<Response> {
    who.require_admin()?;
    vhost(&ctx, &v)?;
    let mut m = vhost_limits(&ctx, &v);
    if m.remove(&name).is_none() {
        return Err(ApiError::object_not_found());
    }
    let cmd = if m.is_empty() {
        DefinitionCommand::ClearParameter { component: VHOST_LIMITS.into(), vhost: v, name: "limits".into() }
    } else {
        DefinitionCommand::SetParameter {
            component: VHOST_LIMITS.into(),
            vhost: v,
            name: "limits".into(),
            value: Value::Object(m),
        }
    };
    ctx.broker.apply(cmd).await?;
    Ok(no_content())
}

fn all_user_limits(ctx: &Ctx) -> Map<String, Value> {
    match ctx.broker.parameters.global(USER_LIMITS) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

pub fn user_limits(ctx: &Ctx, user: &str) -> Map<String, Value> {
    match all_user_limits(ctx).remove(user) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

pub async fn set_user_limits(ctx: &Ctx, user: &str, limits: Map<String, Value>) -> ApiResult<()> {
    let mut all = all_user_limits(ctx);
    if limits.is_empty() {
        if all.remove(user).is_none() {
            return Ok(());
        }
    } else {
        all.insert(user.to_owned(), Value::Object(limits));
    }
    let cmd = if all.is_empty() {
        DefinitionCommand::ClearGlobalParameter { name: USER_LIMITS.into() }
    } else {
        DefinitionCommand::SetGlobalParameter { name: USER_LIMITS.into(), value: Value::Object(all) }
    };
    ctx.broker.apply(cmd).await?;
    Ok(())
}

pub async fn clear_user_limits(ctx: &Ctx, user: &str) -> ApiResult<()> {
    set_user_limits(ctx, user, Map::new()).await
}

async fn user_limits_all(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    let users: HashSet<String> = ctx.broker.auth.users().iter().map(|u| u.name.clone()).collect();
    let items = all_user_limits(&ctx)
        .into_iter()
        .filter(|(u, _)| users.contains(u) && (who.is_admin() || u == who.name()))
        .filter_map(|(u, v)| match v {
            Value::Object(value) => Some(objects::Limits { vhost: None, user: Some(u), value }),
            _ => None,
        })
        .collect();
    respond(&lq, items)
}

async fn user_limits_one(State(ctx): State<Ctx>, who: Authed, P(u): P<String>) -> ApiResult<Response> {
    if !who.is_admin() && u != who.name() {
        return Err(ApiError::not_authorised("Not administrator user"));
    }
    ctx.broker.auth.user(&u).ok_or_else(ApiError::object_not_found)?;
    let value = user_limits(&ctx, &u);
    let items: Vec<_> =
        if value.is_empty() { vec![] } else { vec![objects::Limits { vhost: None, user: Some(u), value }] };
    Ok(json(&items))
}

async fn set_user_limit(
    State(ctx): State<Ctx>,
    who: Authed,
    P((u, name)): P<(String, String)>,
    Body(body): Body<PutLimit>,
) -> ApiResult<Response> {
    who.require_admin()?;
    ctx.broker.auth.user(&u).ok_or_else(ApiError::object_not_found)?;
    check_echo("user", body.user.as_deref(), &u)?;
    let n = limit_value(&name, &USER_LIMIT_NAMES, &body)?;
    let mut m = user_limits(&ctx, &u);
    m.insert(name, n.into());
    set_user_limits(&ctx, &u, m).await?;
    Ok(no_content())
}

async fn clear_user_limit(
    State(ctx): State<Ctx>,
    who: Authed,
    P((u, name)): P<(String, String)>,
) -> ApiResult<Response> {
    who.require_admin()?;
    ctx.broker.auth.user(&u).ok_or_else(ApiError::object_not_found)?;
    let mut m = user_limits(&ctx, &u);
    if m.remove(&name).is_none() {
        return Err(ApiError::object_not_found());
    }
    set_user_limits(&ctx, &u, m).await?;
    Ok(no_content())
}
