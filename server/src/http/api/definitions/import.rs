//! Importing definitions: the document is parsed into typed items, every
//! item is checked and turned into a `DefinitionCommand` ([`plan`]) before
//! the first one is applied, so a bad document changes nothing.

use std::collections::{BTreeMap, HashSet};

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json as j};
use warren_api_types::requests::Tags;

use crate::broker::Broker;
use crate::broker::auth::{Permissions, TopicPermission};
use crate::broker::parameters::{validate_policy, validate_policy_keys};
use crate::definitions::{DefinitionCommand, ExchangeType, OPERATOR_POLICY, POLICY, User};
use crate::http::Ctx;
use crate::http::amqp_json::json_to_table;
use crate::http::api::{limits, users, vhost};
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_name};
use crate::http::extract::{Body, P, no_content};

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
fn plan(broker: &Broker, d: Defs, only: Option<&str>) -> ApiResult<Vec<DefinitionCommand>> {
    let mut cmds = Vec::new();
    let mut vhosts: HashSet<String> = broker.vhosts().iter().map(|v| v.name.to_string()).collect();
    let mut users: HashSet<String> = broker.auth.users().iter().map(|u| u.name.clone()).collect();
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
        limits::check_limits(&u.limits)?;
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
            validate_policy_keys(component, &value)?;
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
    // The queues each vhost would gain, checked against its `max-queues`
    // before anything is applied.
    let mut new_queues: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for q in d.queues {
        let v = target(&q.vhost, only)?;
        need_vhost(&vhosts, &v)?;
        check_name("queue", &q.name)?;
        if broker.vhost(&v).is_none_or(|vh| vh.queue(&q.name).is_none()) {
            new_queues.entry(v.clone()).or_default().insert(q.name.clone());
        }
        cmds.push(DefinitionCommand::DeclareQueue {
            vhost: v,
            name: q.name,
            durable: q.durable,
            auto_delete: q.auto_delete,
            exclusive_owner: None,
            arguments: json_to_table(&q.arguments)?,
            home: None,
            incarnation: 0,
        });
    }
    for (v, names) in &new_queues {
        broker.check_queues_to_import(v, names.len())?;
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

/// A document as the import reads it, checked: the commands to apply and
/// the users' limits to set after them. Nothing is applied here (the fuzz
/// target `definitions` calls it too, with an in-memory broker).
pub(crate) fn parse_and_plan(
    broker: &Broker,
    body: Value,
    only: Option<&str>,
) -> ApiResult<(Vec<DefinitionCommand>, Vec<(String, Map<String, Value>)>)> {
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
    Ok((plan(broker, defs, only)?, limits))
}

async fn import(ctx: Ctx, body: Value, only: Option<&str>) -> ApiResult<Response> {
    let (cmds, limits) = parse_and_plan(&ctx.broker, body, only)?;
    ctx.broker.apply_all(cmds).await?;
    for (u, l) in limits {
        limits::set_user_limits(&ctx, &u, l).await?;
    }
    Ok(no_content())
}

pub async fn import_all(State(ctx): State<Ctx>, who: Authed, Body(body): Body<Value>) -> ApiResult<Response> {
    who.require_admin()?;
    import(ctx, body, None).await
}

pub async fn import_vhost(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    Body(body): Body<Value>,
) -> ApiResult<Response> {
    who.require_admin()?;
    vhost(&ctx, &v)?;
    import(ctx.clone(), body, Some(&v)).await
}
