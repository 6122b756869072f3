//! Runtime parameters: `/api/parameters[/{component}[/{vhost}[/{name}]]]`
//! and `/api/global-parameters[/{name}]`. Policies and limits are runtime
//! parameters too, managed by their own modules ([`super::policies`],
//! [`super::limits`]), so their components are refused here.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use warren_api_types::objects;
use warren_api_types::requests::PutParameter;

use super::limits::USER_LIMITS;
use super::vhost;
use crate::definitions::{DefinitionCommand, OPERATOR_POLICY, POLICY, VHOST_LIMITS};
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo, check_name};
use crate::http::extract::{Body, P, created_or_no_content, json, no_content};
use crate::http::paging::{ListQuery, Listed, respond};

const RESERVED_COMPONENTS: [&str; 3] = [POLICY, OPERATOR_POLICY, VHOST_LIMITS];

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/parameters", get(list_all))
        .route("/api/parameters/{component}", get(list_component))
        .route("/api/parameters/{component}/{vhost}", get(list_component_vhost))
        .route("/api/parameters/{component}/{vhost}/{name}", get(show).put(set).delete(clear))
        .route("/api/global-parameters", get(list_global))
        .route("/api/global-parameters/{name}", get(show_global).put(set_global).delete(clear_global))
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
