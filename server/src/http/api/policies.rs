//! `/api/policies` and `/api/operator-policies`: list, show, set (PUT) and
//! clear (DELETE). Policies are runtime parameters of component `policy`
//! (`operator_policy`), as in RabbitMQ; the broker validates their shape.
//! Policymakers manage policies in their vhosts; operator policies are for
//! administrators.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json as j};
use warren_api_types::objects;
use warren_api_types::requests::PutPolicy;

use super::vhost;
use crate::definitions::{DefinitionCommand, OPERATOR_POLICY, POLICY};
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo, check_name};
use crate::http::extract::{Body, P, created_or_no_content, json, no_content};
use crate::http::paging::{ListQuery, Listed, respond};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/policies", get(|s, w, q| list(s, w, q, None, POLICY)))
        .route("/api/policies/{vhost}", get(|s, w, P(v): P<String>, q| list(s, w, q, Some(v), POLICY)))
        .route(
            "/api/policies/{vhost}/{name}",
            get(|s, w, p| show(s, w, p, POLICY))
                .put(|s, w, p, b| set(s, w, p, b, POLICY))
                .delete(|s, w, p| clear(s, w, p, POLICY)),
        )
        .route("/api/operator-policies", get(|s, w, q| list(s, w, q, None, OPERATOR_POLICY)))
        .route(
            "/api/operator-policies/{vhost}",
            get(|s, w, P(v): P<String>, q| list(s, w, q, Some(v), OPERATOR_POLICY)),
        )
        .route(
            "/api/operator-policies/{vhost}/{name}",
            get(|s, w, p| show(s, w, p, OPERATOR_POLICY))
                .put(|s, w, p, b| set(s, w, p, b, OPERATOR_POLICY))
                .delete(|s, w, p| clear(s, w, p, OPERATOR_POLICY)),
        )
}

impl Listed for objects::Policy {
    fn name(&self) -> &str {
        &self.name
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

fn policy(vhost: String, name: String, v: &Value) -> objects::Policy {
    objects::Policy {
        vhost,
        name,
        pattern: v.get("pattern").and_then(Value::as_str).unwrap_or_default().to_owned(),
        apply_to: v.get("apply-to").and_then(Value::as_str).unwrap_or("all").to_owned(),
        definition: v.get("definition").cloned().unwrap_or_else(|| j!({})),
        priority: v.get("priority").and_then(Value::as_i64).unwrap_or(0),
    }
}

pub fn all(ctx: &Ctx, component: &str, v: Option<&str>) -> Vec<objects::Policy> {
    ctx.broker
        .parameters
        .list(Some(component), v)
        .into_iter()
        .map(|p| policy(p.vhost, p.name, &p.value))
        .collect()
}

/// Who may touch policies of this kind in a vhost.
fn require(who: &Authed, component: &str, v: &str) -> ApiResult<()> {
    if component == OPERATOR_POLICY { who.require_admin() } else { who.require_policymaker(v) }
}

async fn list(
    State(ctx): State<Ctx>,
    who: Authed,
    lq: ListQuery,
    only: Option<String>,
    component: &'static str,
) -> ApiResult<Response> {
    if let Some(v) = &only {
        require(&who, component, v)?;
        vhost(&ctx, v)?;
    } else if !who.is_policymaker() && !who.is_monitor() {
        return Err(ApiError::not_authorised("User not authorised to access object"));
    }
    let items =
        all(&ctx, component, only.as_deref()).into_iter().filter(|p| who.sees_vhost(&p.vhost)).collect();
    respond(&lq, items)
}

async fn show(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, n)): P<(String, String)>,
    component: &'static str,
) -> ApiResult<Response> {
    require(&who, component, &v)?;
    vhost(&ctx, &v)?;
    let p = ctx.broker.parameters.get(component, &v, &n).ok_or_else(ApiError::object_not_found)?;
    Ok(json(&policy(v, n, &p)))
}

async fn set(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, n)): P<(String, String)>,
    Body(body): Body<PutPolicy>,
    component: &'static str,
) -> ApiResult<Response> {
    require(&who, component, &v)?;
    vhost(&ctx, &v)?;
    check_name("policy", &n)?;
    check_echo("name", body.name.as_deref(), &n)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    let value = j!({
        "pattern": body.pattern,
        "definition": body.definition,
        "priority": body.priority.map_or(0, |p| p.0),
        "apply-to": body.apply_to.unwrap_or_else(|| "all".into()),
    });
    let existed = ctx.broker.parameters.get(component, &v, &n).is_some();
    ctx.broker
        .apply(DefinitionCommand::SetParameter { component: component.into(), vhost: v, name: n, value })
        .await?;
    Ok(created_or_no_content(!existed))
}

async fn clear(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, n)): P<(String, String)>,
    component: &'static str,
) -> ApiResult<Response> {
    require(&who, component, &v)?;
    vhost(&ctx, &v)?;
    if ctx.broker.parameters.get(component, &v, &n).is_none() {
        return Err(ApiError::object_not_found());
    }
    ctx.broker
        .apply(DefinitionCommand::ClearParameter { component: component.into(), vhost: v, name: n })
        .await?;
    Ok(no_content())
}
