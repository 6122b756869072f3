//! `/api/queues`: list, show, declare (PUT), delete (with `if-empty` and
//! `if-unused`), a queue's bindings, and purge (`DELETE .../contents`).
//! Getting messages is in [`super::messages`].

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldTable};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get, put};
use warren_api_types::objects;
use warren_api_types::requests::DeclareQueue;

use super::{listed_vhosts, node, vhost};
use crate::broker::auth::Access;
use crate::broker::queue::Queue;
use crate::definitions::DefinitionCommand;
use crate::http::Ctx;
use crate::http::amqp_json::{json_to_table, table_to_json};
use crate::http::api::{bindings, connections};
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo, check_name};
use crate::http::extract::{P, RawBody, created_or_no_content, no_content, parse_body};
use crate::http::paging::{ListQuery, Listed, respond_lazy, respond_one};
use crate::http::present::queue_stats;
use crate::http::queue_sort::QueueSort;
use crate::http::stats::queue_sample;

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/queues", get(list_all))
        .route("/api/queues/{vhost}", get(list_vhost))
        .route("/api/queues/{vhost}/", put(empty_name))
        .route("/api/queues/{vhost}/{name}", get(show).put(declare).delete(remove))
        .route("/api/queues/{vhost}/{name}/bindings", get(queue_bindings))
        .route("/api/queues/{vhost}/{name}/contents", delete(purge))
}

impl Listed for objects::Queue {
    fn name(&self) -> &str {
        &self.name
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

/// A queue as the API shows it.
pub fn item(ctx: &Ctx, q: &Arc<Queue>, lq: &ListQuery) -> objects::Queue {
    let live = queue_sample(q);
    let (totals, ms) = ctx.stats.with_queue(q, |series| queue_stats(&live, series, lq));
    let counts = q.counts();
    let config = q.config();
    let exclusive_consumer_tag =
        q.consumers().iter().find(|c| c.exclusive).map(|c| c.tag.as_str().to_owned());
    // A replicated queue's members, and those that run.
    let replicas = q.is_replicated().then(|| {
        let cluster = ctx.app.cluster();
        let members = q.members();
        let online: Vec<String> =
            members.iter().filter(|m| cluster.is_none_or(|c| !c.is_down(m))).cloned().collect();
        (members, online)
    });
    // Without a majority of its members running, a replicated queue can
    // take nothing: RabbitMQ's `minority`.
    let state = match &replicas {
        Some((members, online)) if !members.is_empty() && online.len() * 2 <= members.len() => "minority",
        _ if q.is_home_down() => "down",
        _ => "running",
    };
    objects::Queue {
        name: q.name.to_string(),
        vhost: q.vhost.to_string(),
        durable: q.durable,
        auto_delete: q.auto_delete,
        exclusive: q.is_exclusive(),
        arguments: table_to_json(&q.arguments),
        node: q.serving_node().or_else(|| q.home.get().map(|h| h.to_string())).unwrap_or_else(|| node(ctx)),
        state: state.into(),
        kind: if config.quorum { "quorum" } else { "classic" }.into(),
        leader: q.is_replicated().then(|| q.serving_node()).flatten(),
        online: replicas.as_ref().map(|(_, online)| online.clone()),
        members: replicas.map(|(members, _)| members),
        consumers: counts.consumers,
        exclusive_consumer_tag,
        totals,
        message_bytes: counts.ready_bytes + counts.unacked_bytes,
        message_bytes_ready: counts.ready_bytes,
        message_bytes_unacknowledged: counts.unacked_bytes,
        messages_paged_out: counts.paged,
        policy: config.policy.clone(),
        operator_policy: config.operator_policy.clone(),
        effective_policy_definition: serde_json::Value::Object(config.effective_policy_definition.clone()),
        message_stats: Some(ms),
        consumer_details: None,
    }
}

fn list(ctx: &Ctx, who: &Authed, only: Option<&str>, lq: &ListQuery) -> ApiResult<Response> {
    let mut queues = Vec::new();
    for v in listed_vhosts(ctx, who, only)? {
        queues.extend(v.queues());
    }
    let sort = lq.sort.as_deref().and_then(QueueSort::parse);
    let value = sort.as_ref().map(|s| move |q: &Arc<Queue>| s.value(&ctx.stats, q));
    let value = value.as_ref().map(|f| f as &dyn Fn(&Arc<Queue>) -> f64);
    respond_lazy(lq, queues, |q| (&q.vhost, &q.name), |q| item(ctx, q, lq), value)
}

async fn list_all(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    list(&ctx, &who, None, &lq)
}

async fn list_vhost(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    list(&ctx, &who, Some(&v), &lq)
}

/// The queue named by a URL, after the vhost access check.
pub fn lookup(ctx: &Ctx, who: &Authed, v: &str, name: &str) -> ApiResult<Arc<Queue>> {
    who.require_vhost_read(v)?;
    vhost(ctx, v)?.queue(name).ok_or_else(ApiError::object_not_found)
}

async fn show(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    lq: ListQuery,
) -> ApiResult<Response> {
    let q = lookup(&ctx, &who, &v, &name)?;
    let mut one = item(&ctx, &q, &lq);
    one.consumer_details = Some(connections::queue_consumers(&ctx, &q));
    Ok(respond_one(&lq, &one))
}

async fn empty_name(who: Authed) -> ApiResult<Response> {
    drop(who);
    Err(ApiError::bad_request("queue name must not be empty"))
}

async fn declare(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    RawBody(raw): RawBody,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    vhost(&ctx, &v)?;
    let body: DeclareQueue = parse_body(&raw)?;
    check_name("queue", &name)?;
    check_echo("name", body.name.as_deref(), &name)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    if body.exclusive.is_some_and(|e| e.0) {
        return Err(ApiError::bad_request("exclusive queues cannot be declared over HTTP"));
    }
    let mut arguments: FieldTable = match &body.arguments {
        Some(a) => json_to_table(a)?,
        None => FieldTable::default(),
    };
    if let Some(t) = &body.queue_type {
        arguments.insert("x-queue-type".into(), AMQPValue::LongString(t.as_str().into()));
    }
    who.require_access(&v, Access::Configure, "queue", &name)?;
    let existing = ctx.broker.vhost(&v).and_then(|vh| vh.queue(&name));
    if let Some(q) = &existing {
        q.check_available()?;
    }
    let exists = existing.is_some();
    if !exists && name.starts_with("amq.") {
        return Err(ApiError::not_authorised(format!(
            "queue name '{name}' contains reserved prefix 'amq.*'"
        )));
    }
    if !exists {
        ctx.broker.check_queue_limit(&v, &name)?;
    }
    ctx.broker
        .apply(DefinitionCommand::DeclareQueue {
            vhost: v,
            name,
            durable: body.durable.is_none_or(|d| d.0),
            auto_delete: body.auto_delete.is_some_and(|d| d.0),
            exclusive_owner: None,
            arguments,
            home: None,
            incarnation: 0,
        })
        .await?;
    Ok(created_or_no_content(!exists))
}

async fn remove(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    let q = lookup(&ctx, &who, &v, &name)?;
    who.require_access(&v, Access::Configure, "queue", &name)?;
    q.check_available()?;
    ctx.broker
        .apply(DefinitionCommand::DeleteQueue {
            vhost: v,
            name,
            if_unused: lq.raw.get("if-unused").is_some_and(|v| v == "true"),
            if_empty: lq.raw.get("if-empty").is_some_and(|v| v == "true"),
            requester: None,
        })
        .await?;
    Ok(no_content())
}

async fn queue_bindings(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    lq: ListQuery,
) -> ApiResult<Response> {
    lookup(&ctx, &who, &v, &name)?;
    let items = bindings::of_vhost(&ctx, &v)?
        .into_iter()
        .filter(|b| b.destination_type == "queue" && b.destination == name)
        .collect();
    bindings::respond_bindings(&lq, items)
}

async fn purge(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    let q = lookup(&ctx, &who, &v, &name)?;
    who.require_access(&v, Access::Read, "queue", &name)?;
    q.purge().await?;
    Ok(no_content())
}
