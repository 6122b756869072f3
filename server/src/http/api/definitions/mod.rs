//! `/api/definitions[/{vhost}]`: export (GET) and import (POST) in
//! RabbitMQ's own definitions format, so a RabbitMQ export loads into
//! Warren and back. Administrators only.
//!
//! Import parses and checks the whole document first (names, exchange
//! types, hashes, permission regexes, policies, references to vhosts and
//! users), so a bad document changes nothing; then it applies each item
//! through `Broker::apply`, in dependency order. Users exported by RabbitMQ
//! keep their `rabbit_password_hashing_sha256` hashes, which the broker
//! upgrades to argon2id at their next login.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json as j};

use super::overview::RABBITMQ_VERSION;
use super::{bindings, exchanges, parameters, permissions, policies, queues, users, vhost};
use crate::definitions::{OPERATOR_POLICY, POLICY};
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::ApiResult;
use crate::http::extract::{P, json};
use crate::http::paging::ListQuery;

pub(crate) mod import;

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/definitions", get(export_all).post(import::import_all))
        .route("/api/definitions/{vhost}", get(export_vhost).post(import::import_vhost))
}

fn header_fields() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("rabbit_version".into(), RABBITMQ_VERSION.into());
    m.insert("rabbitmq_version".into(), RABBITMQ_VERSION.into());
    m.insert("product_name".into(), "Warren".into());
    m.insert("product_version".into(), env!("CARGO_PKG_VERSION").into());
    m
}

fn strip_vhost(mut v: Value) -> Value {
    if let Value::Object(o) = &mut v {
        o.remove("vhost");
    }
    v
}

/// Queues, exchanges and bindings worth exporting: not exclusive queues,
/// not the predeclared exchanges, not the default exchange's bindings.
fn topology(ctx: &Ctx, only: Option<&str>) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let lq = ListQuery::default();
    let (mut qs, mut xs, mut bs) = (Vec::new(), Vec::new(), Vec::new());
    for v in ctx.broker.vhosts().into_iter().filter(|v| only.is_none_or(|o| o == &*v.name)) {
        for q in v.queues().iter().filter(|q| !q.is_exclusive()) {
            let i = queues::item(ctx, q, &lq);
            qs.push(j!({"name": i.name, "vhost": i.vhost, "durable": i.durable,
                        "auto_delete": i.auto_delete, "arguments": i.arguments}));
        }
        for x in v.exchanges().iter().filter(|x| !x.is_default() && !x.name.starts_with("amq.")) {
            let i = exchanges::item(ctx, x, &lq);
            xs.push(j!({"name": i.name, "vhost": i.vhost, "type": i.kind, "durable": i.durable,
                        "auto_delete": i.auto_delete, "internal": i.internal, "arguments": i.arguments}));
        }
        for b in
            bindings::of_vhost(ctx, &v.name).unwrap_or_default().into_iter().filter(|b| !b.source.is_empty())
        {
            bs.push(j!({"source": b.source, "vhost": b.vhost, "destination": b.destination,
                        "destination_type": b.destination_type, "routing_key": b.routing_key,
                        "arguments": b.arguments}));
        }
    }
    let by = |a: &Value, b: &Value| {
        (a["vhost"].as_str(), a["name"].as_str(), a["source"].as_str()).cmp(&(
            b["vhost"].as_str(),
            b["name"].as_str(),
            b["source"].as_str(),
        ))
    };
    qs.sort_by(by);
    xs.sort_by(by);
    bs.sort_by(by);
    (qs, xs, bs)
}

fn policy_values(ctx: &Ctx, component: &str, only: Option<&str>) -> Vec<Value> {
    policies::all(ctx, component, only)
        .into_iter()
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect()
}

fn answer(body: Value, lq: &ListQuery) -> Response {
    let mut resp = json(&body);
    if let Some(name) = lq.raw.get("download") {
        let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    resp
}

async fn export_all(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    who.require_admin()?;
    let mut m = header_fields();
    let users: Vec<Value> = ctx
        .broker
        .auth
        .users()
        .iter()
        .map(|u| serde_json::to_value(users::item(&ctx, u)).unwrap_or(Value::Null))
        .collect();
    let vhosts: Vec<Value> = ctx
        .broker
        .vhosts()
        .iter()
        .map(|v| {
            let meta = v.meta();
            j!({"name": &*v.name, "description": meta.description, "tags": meta.tags,
                "metadata": {"description": meta.description, "tags": meta.tags}})
        })
        .collect();
    let params: Vec<Value> = ctx
        .broker
        .parameters
        .list(None, None)
        .into_iter()
        .filter(|p| p.component != POLICY && p.component != OPERATOR_POLICY)
        .map(|p| j!({"value": p.value, "vhost": p.vhost, "component": p.component, "name": p.name}))
        .collect();
    let (qs, xs, bs) = topology(&ctx, None);
    m.insert("users".into(), users.into());
    m.insert("vhosts".into(), vhosts.into());
    m.insert("permissions".into(), serde_json::to_value(permissions::all(&ctx)).unwrap_or_default());
    m.insert(
        "topic_permissions".into(),
        serde_json::to_value(permissions::all_topic(&ctx)).unwrap_or_default(),
    );
    m.insert("parameters".into(), params.into());
    m.insert("global_parameters".into(), serde_json::to_value(parameters::globals(&ctx)).unwrap_or_default());
    m.insert("policies".into(), policy_values(&ctx, POLICY, None).into());
    m.insert("operator_policies".into(), policy_values(&ctx, OPERATOR_POLICY, None).into());
    m.insert("queues".into(), qs.into());
    m.insert("exchanges".into(), xs.into());
    m.insert("bindings".into(), bs.into());
    Ok(answer(Value::Object(m), &lq))
}

async fn export_vhost(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_admin()?;
    vhost(&ctx, &v)?;
    let mut m = header_fields();
    let params: Vec<Value> = ctx
        .broker
        .parameters
        .list(None, Some(&v))
        .into_iter()
        .filter(|p| p.component != POLICY && p.component != OPERATOR_POLICY)
        .map(|p| j!({"value": p.value, "component": p.component, "name": p.name}))
        .collect();
    let (qs, xs, bs) = topology(&ctx, Some(&v));
    let strip = |l: Vec<Value>| Value::Array(l.into_iter().map(strip_vhost).collect());
    m.insert("parameters".into(), params.into());
    m.insert("policies".into(), strip(policy_values(&ctx, POLICY, Some(&v))));
    m.insert("queues".into(), strip(qs));
    m.insert("exchanges".into(), strip(xs));
    m.insert("bindings".into(), strip(bs));
    Ok(answer(Value::Object(m), &lq))
}
