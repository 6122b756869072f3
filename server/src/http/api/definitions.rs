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

use std::collections::HashSet;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json as j};
use warren_api_types::requests::Tags;

use super::overview::RABBITMQ_VERSION;
use super::{bindings, exchanges, parameters, permissions, policies, queues, users, vhost};
use crate::broker::DefinitionCommand;
use crate::broker::auth::{Permissions, TopicPermission, User};
use crate::broker::exchange::ExchangeType;
use crate::broker::parameters::{OPERATOR_POLICY, POLICY, validate_policy};
use crate::http::Ctx;
use crate::http::amqp_json::json_to_table;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_name};
use crate::http::extract::{Body, P, json, no_content};
use crate::http::paging::ListQuery;

/// Definitions files can be large: 64 MiB instead of the default 2 MiB.
const BODY_LIMIT: usize = 64 << 20;

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/definitions", get(export_all).post(import_all))
        .route("/api/definitions/{vhost}", get(export_vhost).post(import_vhost))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
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

// ----- import -------------------------------------------------------------

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Defs {
    users: Vec<DUser>,
    vhosts: Vec<DVhost>,
    permissions: Vec<DPermission>,
    topic_permissions: Vec<DTopicPermission>,
    parameters: Vec<DParameter>,
    global_parameters: Vec<DGlobal>,
    policies: Vec<DPolicy>,
    operator_policies: Vec<DPolicy>,
    queues: Vec<DQueue>,
    exchanges: Vec<DExchange>,
    bindings: Vec<DBinding>,
}

#[derive(Deserialize)]
struct DUser {
    name: String,
    #[serde(default)]
    password_hash: String,
    #[serde(default)]
    hashing_algorithm: Option<String>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    limits: Map<String, Value>,
}

#[derive(Deserialize)]
struct DVhost {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    metadata: Option<DVhostMeta>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DVhostMeta {
    description: Option<String>,
    tags: Option<Tags>,
}

#[derive(Deserialize)]
struct DPermission {
    user: String,
    vhost: String,
    configure: String,
    write: String,
    read: String,
}

#[derive(Deserialize)]
struct DTopicPermission {
    user: String,
    vhost: String,
    exchange: String,
    write: String,
    read: String,
}

#[derive(Deserialize)]
struct DParameter {
    #[serde(default)]
    vhost: Option<String>,
    component: String,
    name: String,
    value: Value,
}

#[derive(Deserialize)]
struct DGlobal {
    name: String,
    value: Value,
}

#[derive(Deserialize)]
struct DPolicy {
    #[serde(default)]
    vhost: Option<String>,
    name: String,
    pattern: String,
    #[serde(default, rename = "apply-to")]
    apply_to: Option<String>,
    definition: Value,
    #[serde(default)]
    priority: i64,
}

#[derive(Deserialize)]
struct DQueue {
    name: String,
    #[serde(default)]
    vhost: Option<String>,
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    arguments: Map<String, Value>,
}

#[derive(Deserialize)]
struct DExchange {
    name: String,
    #[serde(default)]
    vhost: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    arguments: Map<String, Value>,
}

#[derive(Deserialize)]
struct DBinding {
    source: String,
    #[serde(default)]
    vhost: Option<String>,
    destination: String,
    destination_type: String,
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: Map<String, Value>,
}

/// The vhost an item goes to: the URL's for a vhost import, else its own.
fn target(item: &Option<String>, only: Option<&str>) -> ApiResult<String> {
    match (only, item) {
        (Some(v), _) => Ok(v.to_owned()),
        (None, Some(v)) => Ok(v.clone()),
        (None, None) => Err(ApiError::bad_request("an item has no vhost")),
    }
}

/// Everything the import will do, checked, as broker commands.
fn plan(ctx: &Ctx, d: Defs, only: Option<&str>) -> ApiResult<Vec<DefinitionCommand>> {
    let mut cmds = Vec::new();
    let mut vhosts: HashSet<String> = ctx.broker.vhosts().iter().map(|v| v.name.to_string()).collect();
    let mut users: HashSet<String> = ctx.broker.auth.users().iter().map(|u| u.name.clone()).collect();
    let need_vhost = |vs: &HashSet<String>, v: &str| {
        if vs.contains(v) {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!("vhost '{v}' does not exist")))
        }
    };
    for v in d.vhosts {
        check_name("vhost", &v.name)?;
        let meta = v.metadata.unwrap_or_default();
        vhosts.insert(v.name.clone());
        cmds.push(DefinitionCommand::AddVhost {
            name: v.name,
            description: v.description.or(meta.description).unwrap_or_default(),
            tags: v.tags.or(meta.tags).map(|t| t.0).unwrap_or_default(),
        });
    }
    for u in d.users {
        check_name("user", &u.name)?;
        let (hash, algo) = users::given_hash(&u.password_hash, u.hashing_algorithm.as_deref())?;
        parameters::check_limits(&u.limits)?;
        users.insert(u.name.clone());
        cmds.push(DefinitionCommand::PutUser(User {
            name: u.name,
            password_hash: hash,
            hashing_algorithm: algo,
            tags: u.tags.0,
        }));
    }
    for p in d.permissions {
        need_vhost(&vhosts, &p.vhost)?;
        if !users.contains(&p.user) {
            return Err(ApiError::bad_request(format!("user '{}' does not exist", p.user)));
        }
        Permissions::new(&p.configure, &p.write, &p.read).map_err(ApiError::bad_request)?;
        cmds.push(DefinitionCommand::SetPermissions {
            vhost: p.vhost,
            user: p.user,
            configure: p.configure,
            write: p.write,
            read: p.read,
        });
    }
    for p in d.topic_permissions {
        need_vhost(&vhosts, &p.vhost)?;
        if !users.contains(&p.user) {
            return Err(ApiError::bad_request(format!("user '{}' does not exist", p.user)));
        }
        TopicPermission::new(&p.exchange, &p.write, &p.read).map_err(ApiError::bad_request)?;
        cmds.push(DefinitionCommand::SetTopicPermissions {
            vhost: p.vhost,
            user: p.user,
            exchange: p.exchange,
            write: p.write,
            read: p.read,
        });
    }
    for p in d.parameters {
        let v = target(&p.vhost, only)?;
        need_vhost(&vhosts, &v)?;
        check_name("parameter", &p.name)?;
        cmds.push(DefinitionCommand::SetParameter {
            component: p.component,
            vhost: v,
            name: p.name,
            value: p.value,
        });
    }
    for g in d.global_parameters {
        check_name("global parameter", &g.name)?;
        cmds.push(DefinitionCommand::SetGlobalParameter { name: g.name, value: g.value });
    }
    for (component, list) in [(POLICY, d.policies), (OPERATOR_POLICY, d.operator_policies)] {
        for p in list {
            let v = target(&p.vhost, only)?;
            need_vhost(&vhosts, &v)?;
            check_name("policy", &p.name)?;
            let value = j!({"pattern": p.pattern, "definition": p.definition, "priority": p.priority,
                            "apply-to": p.apply_to.unwrap_or_else(|| "all".into())});
            validate_policy(&value)?;
            cmds.push(DefinitionCommand::SetParameter {
                component: component.into(),
                vhost: v,
                name: p.name,
                value,
            });
        }
    }
    for x in d.exchanges {
        let v = target(&x.vhost, only)?;
        need_vhost(&vhosts, &v)?;
        check_name("exchange", &x.name)?;
        let kind = ExchangeType::parse(&x.kind)
            .ok_or_else(|| ApiError::bad_request(format!("unknown exchange type '{}'", x.kind)))?;
        cmds.push(DefinitionCommand::DeclareExchange {
            vhost: v,
            name: x.name,
            kind,
            durable: x.durable,
            auto_delete: x.auto_delete,
            internal: x.internal,
            arguments: json_to_table(&x.arguments)?,
        });
    }
    for q in d.queues {
        let v = target(&q.vhost, only)?;
        need_vhost(&vhosts, &v)?;
        check_name("queue", &q.name)?;
        cmds.push(DefinitionCommand::DeclareQueue {
            vhost: v,
            name: q.name,
            durable: q.durable,
            auto_delete: q.auto_delete,
            exclusive_owner: None,
            arguments: json_to_table(&q.arguments)?,
        });
    }
    for b in d.bindings {
        let v = target(&b.vhost, only)?;
        need_vhost(&vhosts, &v)?;
        if !matches!(b.destination_type.as_str(), "queue" | "exchange") {
            return Err(ApiError::bad_request(format!("unknown destination_type '{}'", b.destination_type)));
        }
        cmds.push(DefinitionCommand::Bind {
            vhost: v,
            source: b.source,
            destination_kind: b.destination_type,
            destination: b.destination,
            routing_key: b.routing_key,
            arguments: json_to_table(&b.arguments)?,
            requester: None,
        });
    }
    Ok(cmds)
}

/// Limits of imported users, applied after the users exist.
fn user_limits(v: &Value) -> Vec<(String, Map<String, Value>)> {
    v.get("users")
        .and_then(Value::as_array)
        .map(|us| {
            us.iter()
                .filter_map(|u| {
                    Some((u.get("name")?.as_str()?.to_owned(), u.get("limits")?.as_object()?.clone()))
                })
                .filter(|(_, l)| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

async fn import(ctx: Ctx, body: Value, only: Option<&str>) -> ApiResult<Response> {
    if !body.is_object() {
        return Err(ApiError::bad_request("definitions must be a JSON object"));
    }
    let limits = if only.is_some() { Vec::new() } else { user_limits(&body) };
    let mut defs: Defs = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid definitions: {e}")))?;
    if only.is_some() {
        // A vhost's definitions carry only its topology, parameters and
        // policies; node-wide items in such a file are ignored, as RabbitMQ
        // ignores them.
        defs.users.clear();
        defs.vhosts.clear();
        defs.permissions.clear();
        defs.topic_permissions.clear();
        defs.global_parameters.clear();
        defs.operator_policies.clear();
    }
    let cmds = plan(&ctx, defs, only)?;
    for cmd in cmds {
        ctx.broker.apply(cmd).await?;
    }
    for (u, l) in limits {
        parameters::set_user_limits(&ctx, &u, l).await?;
    }
    Ok(no_content())
}

async fn import_all(State(ctx): State<Ctx>, who: Authed, Body(body): Body<Value>) -> ApiResult<Response> {
    who.require_admin()?;
    import(ctx, body, None).await
}

async fn import_vhost(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    Body(body): Body<Value>,
) -> ApiResult<Response> {
    who.require_admin()?;
    vhost(&ctx, &v)?;
    import(ctx.clone(), body, Some(&v)).await
}
