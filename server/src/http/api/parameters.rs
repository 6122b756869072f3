//! Runtime parameters: `/api/parameters[/{component}[/{vhost}[/{name}]]]`,
//! `/api/global-parameters[/{name}]`, and the limits built on them,
//! `/api/vhost-limits` (component `vhost-limits`, name `limits`, as in
//! RabbitMQ) and `/api/user-limits`.
//!
//! The broker's `User` has no limits yet, so user limits are kept in one
//! global parameter, [`USER_LIMITS`], hidden from the global parameter list
//! and exported inside each user, as RabbitMQ exports them. Warren stores
//! and returns limits; it does not enforce them yet.

use std::collections::HashSet;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, put};
use serde_json::{Map, Value};
use warren_api_types::objects;
use warren_api_types::requests::{PutLimit, PutParameter};

use super::vhost;
use crate::broker::DefinitionCommand;
use crate::broker::parameters::{OPERATOR_POLICY, POLICY, VHOST_LIMITS};
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo, check_name};
use crate::http::extract::{Body, P, created_or_no_content, json, no_content};
use crate::http::paging::{ListQuery, Listed, respond};

/// The global parameter holding every user's limits.
pub const USER_LIMITS: &str = "warren_user_limits";
const RESERVED_COMPONENTS: [&str; 3] = [POLICY, OPERATOR_POLICY, VHOST_LIMITS];
const VHOST_LIMIT_NAMES: [&str; 2] = ["max-connections", "max-queues"];
const USER_LIMIT_NAMES: [&str; 2] = ["max-connections", "max-channels"];

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/parameters", get(list_all))
        .route("/api/parameters/{component}", get(list_component))
        .route("/api/parameters/{component}/{vhost}", get(list_component_vhost))
        .route("/api/parameters/{component}/{vhost}/{name}", get(show).put(set).delete(clear))
        .route("/api/global-parameters", get(list_global))
        .route("/api/global-parameters/{name}", get(show_global).put(set_global).delete(clear_global))
        .route("/api/vhost-limits", get(vhost_limits_all))
        .route("/api/vhost-limits/{vhost}", get(vhost_limits_one))
        .route("/api/vhost-limits/{vhost}/{name}", put(set_vhost_limit).delete(clear_vhost_limit))
        .route("/api/user-limits", get(user_limits_all))
        .route("/api/user-limits/{user}", get(user_limits_one))
        .route("/api/user-limits/{user}/{name}", put(set_user_limit).delete(clear_user_limit))
}

impl Listed for objects::Parameter {
    fn name(&self) -> &str {
        &self.name
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

impl Listed for objects::GlobalParameter {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Listed for objects::Limits {
    fn name(&self) -> &str {
        self.vhost.as_deref().or(self.user.as_deref()).unwrap_or("")
    }
}

fn params(ctx: &Ctx, who: &Authed, component: Option<&str>, v: Option<&str>) -> Vec<objects::Parameter> {
    ctx.broker
        .parameters
        .list(component, v)
        .into_iter()
        .filter(|p| !RESERVED_COMPONENTS.contains(&p.component.as_str()) && who.sees_vhost(&p.vhost))
        .map(|p| objects::Parameter { component: p.component, vhost: p.vhost, name: p.name, value: p.value })
        .collect()
}

async fn list_all(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    if !who.is_policymaker() && !who.is_monitor() {
        return Err(ApiError::not_authorised("User not authorised to access object"));
    }
    respond(&lq, params(&ctx, &who, None, None))
}

async fn list_component(
    State(ctx): State<Ctx>,
    who: Authed,
    P(c): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    if !who.is_policymaker() && !who.is_monitor() {
        return Err(ApiError::not_authorised("User not authorised to access object"));
    }
    respond(&lq, params(&ctx, &who, Some(&c), None))
}

async fn list_component_vhost(
    State(ctx): State<Ctx>,
    who: Authed,
    P((c, v)): P<(String, String)>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_policymaker(&v)?;
    vhost(&ctx, &v)?;
    respond(&lq, params(&ctx, &who, Some(&c), Some(&v)))
}

async fn show(
    State(ctx): State<Ctx>,
    who: Authed,
    P((c, v, n)): P<(String, String, String)>,
) -> ApiResult<Response> {
    who.require_policymaker(&v)?;
    vhost(&ctx, &v)?;
    let p = params(&ctx, &who, Some(&c), Some(&v)).into_iter().find(|p| p.name == n);
    Ok(json(&p.ok_or_else(ApiError::object_not_found)?))
}

async fn set(
    State(ctx): State<Ctx>,
    who: Authed,
    P((c, v, n)): P<(String, String, String)>,
    Body(body): Body<PutParameter>,
) -> ApiResult<Response> {
    who.require_policymaker(&v)?;
    vhost(&ctx, &v)?;
    check_name("component", &c)?;
    check_name("parameter", &n)?;
    check_echo("component", body.component.as_deref(), &c)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    check_echo("name", body.name.as_deref(), &n)?;
    if RESERVED_COMPONENTS.contains(&c.as_str()) {
        return Err(ApiError::bad_request(format!("component '{c}' is managed through its own endpoint")));
    }
    let existed = ctx.broker.parameters.get(&c, &v, &n).is_some();
    ctx.broker
        .apply(DefinitionCommand::SetParameter { component: c, vhost: v, name: n, value: body.value })
        .await?;
    Ok(created_or_no_content(!existed))
}

async fn clear(
    State(ctx): State<Ctx>,
    who: Authed,
    P((c, v, n)): P<(String, String, String)>,
) -> ApiResult<Response> {
    who.require_policymaker(&v)?;
    vhost(&ctx, &v)?;
    if RESERVED_COMPONENTS.contains(&c.as_str()) || ctx.broker.parameters.get(&c, &v, &n).is_none() {
        return Err(ApiError::object_not_found());
    }
    ctx.broker.apply(DefinitionCommand::ClearParameter { component: c, vhost: v, name: n }).await?;
    Ok(no_content())
}

pub fn globals(ctx: &Ctx) -> Vec<objects::GlobalParameter> {
    ctx.broker
        .parameters
        .globals()
        .into_iter()
        .filter(|(n, _)| n != USER_LIMITS)
        .map(|(name, value)| objects::GlobalParameter { name, value })
        .collect()
}

async fn list_global(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    if !who.is_policymaker() {
        return Err(ApiError::not_authorised("User not authorised to access object"));
    }
    respond(&lq, globals(&ctx))
}

async fn show_global(State(ctx): State<Ctx>, who: Authed, P(n): P<String>) -> ApiResult<Response> {
    if !who.is_policymaker() {
        return Err(ApiError::not_authorised("User not authorised to access object"));
    }
    let p = globals(&ctx).into_iter().find(|p| p.name == n).ok_or_else(ApiError::object_not_found)?;
    Ok(json(&p))
}

async fn set_global(
    State(ctx): State<Ctx>,
    who: Authed,
    P(n): P<String>,
    Body(body): Body<PutParameter>,
) -> ApiResult<Response> {
    if !who.is_policymaker() {
        return Err(ApiError::not_authorised("User not authorised to access object"));
    }
    check_name("global parameter", &n)?;
    check_echo("name", body.name.as_deref(), &n)?;
    if n == USER_LIMITS {
        return Err(ApiError::bad_request(format!("'{USER_LIMITS}' is reserved; use /api/user-limits")));
    }
    let existed = ctx.broker.parameters.global(&n).is_some();
    ctx.broker.apply(DefinitionCommand::SetGlobalParameter { name: n, value: body.value }).await?;
    Ok(created_or_no_content(!existed))
}

async fn clear_global(State(ctx): State<Ctx>, who: Authed, P(n): P<String>) -> ApiResult<Response> {
    if !who.is_policymaker() {
        return Err(ApiError::not_authorised("User not authorised to access object"));
    }
    if n == USER_LIMITS || ctx.broker.parameters.global(&n).is_none() {
        return Err(ApiError::object_not_found());
    }
    ctx.broker.apply(DefinitionCommand::ClearGlobalParameter { name: n }).await?;
    Ok(no_content())
}

// ----- limits -------------------------------------------------------------

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
