//! Replicated queues' members and leaders, as RabbitMQ's management API
//! exposes them (for `rabbitmq-queues`' verbs; `warrenctl` calls these).
//! Administrators only, but the status, which any user allowed to read the
//! vhost may see.
//!
//! - `POST /api/queues/quorum/{vhost}/{name}/replicas/add` `{"node"}`:
//!   a member on `node` (204).
//! - `DELETE /api/queues/quorum/{vhost}/{name}/replicas/delete` `{"node"}`:
//!   the member on `node` goes (202).
//! - `POST /api/queues/quorum/replicas/on/{node}/grow`
//!   `{"strategy": "all"|"even", "vhost_pattern", "queue_pattern"}`: a
//!   member on `node` for every matching quorum queue. RabbitMQ answers
//!   204; Warren answers 200 with each queue's outcome
//!   (`[{"vhost", "name", "size", "result"}]`, what `rabbitmq-queues grow`
//!   prints).
//! - `DELETE /api/queues/quorum/replicas/on/{node}/shrink`: the member on
//!   `node` of every quorum queue goes; 200 with the outcomes (RabbitMQ:
//!   202 without them).
//! - `GET /api/queues/quorum/{vhost}/{name}/status`: each member's Raft
//!   state, with RabbitMQ's keys (`Node Name`, `Raft State`, ...), and
//!   Warren's `Member Id`.
//! - `POST /api/rebalance/queues`: moves leaders of replicated queues so
//!   that each node leads about as many. Without a body, as RabbitMQ: all
//!   replicated queues, in the background, 204. With Warren's body
//!   `{"type": "all"|"quorum"|"classic", "vhost_pattern", "queue_pattern"}`:
//!   done before the answer, 200 with how many queues each node leads
//!   (what `rabbitmq-queues rebalance` prints).
//!
//! Failures are RabbitMQ's: 404 for a queue that does not exist, 503 with
//! its reason (`classic_queue_not_supported`, `node_not_running`,
//! `last_node`, `timeout`) for a change that cannot be made.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json as j};

use super::node;
use super::queues::lookup;
use crate::cluster::node::Cluster;
use crate::cluster::replicated::members::{Kind, ReplicaStatus, Strategy};
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Body, P, RawBody, json, no_content, parse_body};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/queues/quorum/{vhost}/{name}/replicas/add", post(add_member))
        .route("/api/queues/quorum/{vhost}/{name}/replicas/delete", delete(delete_member))
        .route("/api/queues/quorum/{vhost}/{name}/status", get(status))
        .route("/api/queues/quorum/replicas/on/{node}/grow", post(grow))
        .route("/api/queues/quorum/replicas/on/{node}/shrink", delete(shrink))
        .route("/api/rebalance/queues", post(rebalance))
}

fn clustered(ctx: &Ctx) -> ApiResult<Arc<Cluster>> {
    ctx.app
        .clustered()
        .cloned()
        .ok_or_else(|| ApiError::unavailable(format!("{} is not clustered", node(ctx))))
}

fn pattern(what: &str, p: Option<&str>) -> ApiResult<regex::Regex> {
    let p = p.unwrap_or(".*");
    regex::Regex::new(p).map_err(|e| ApiError::bad_request(format!("invalid {what} '{p}': {e}")))
}

#[derive(Deserialize)]
struct NodeBody {
    node: String,
}

async fn add_member(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    RawBody(raw): RawBody,
) -> ApiResult<Response> {
    who.require_admin()?;
    lookup(&ctx, &who, &v, &name)?;
    let body: NodeBody = parse_body(&raw)?;
    let cluster = clustered(&ctx)?;
    tracing::info!("'{}' adds a member on {} to queue '{name}' in vhost '{v}'", who.name(), body.node);
    cluster.add_member(&v, &name, &body.node).await?;
    Ok(no_content())
}

async fn delete_member(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    RawBody(raw): RawBody,
) -> ApiResult<Response> {
    who.require_admin()?;
    lookup(&ctx, &who, &v, &name)?;
    let body: NodeBody = parse_body(&raw)?;
    let cluster = clustered(&ctx)?;
    tracing::info!("'{}' removes the member on {} of queue '{name}' in vhost '{v}'", who.name(), body.node);
    cluster.delete_member(&v, &name, &body.node).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn status_row(s: &ReplicaStatus) -> Value {
    j!({
        "Node Name": s.node,
        "Member Id": format!("{:016x}", s.id),
        "Raft State": s.state,
        "Membership": s.membership,
        "Last Log Index": s.last_log_index,
        "Last Applied": s.last_applied,
        "Commit Index": s.commit_index,
        "Snapshot Index": s.snapshot_index,
        "Term": s.term,
        "Messages": s.contents.messages,
        "Contents Applied": s.contents.applied,
        "Contents Digest": format!("{:016x}", s.contents.digest),
    })
}

async fn status(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
) -> ApiResult<Response> {
    lookup(&ctx, &who, &v, &name)?;
    let cluster = clustered(&ctx)?;
    let rows: Vec<Value> = cluster
        .quorum_status(&v, &name)
        .await?
        .iter()
        .map(|r| match r {
            Ok(s) => status_row(s),
            Err((node, reason)) => j!({
                "Node Name": node,
                "Member Id": format!("{:016x}", crate::cluster::node_id(node)),
                "Raft State": reason,
                "Membership": "",
                "Last Log Index": "",
                "Last Applied": "",
                "Commit Index": "",
                "Snapshot Index": "",
                "Term": "",
            }),
        })
        .collect();
    Ok(json(&rows))
}

#[derive(Deserialize, Default)]
struct GrowBody {
    strategy: Option<String>,
    vhost_pattern: Option<String>,
    queue_pattern: Option<String>,
}

async fn grow(
    State(ctx): State<Ctx>,
    who: Authed,
    P(target): P<String>,
    Body(body): Body<GrowBody>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let strategy = match body.strategy.as_deref().unwrap_or("all") {
        "all" => Strategy::All,
        "even" => Strategy::Even,
        s => return Err(ApiError::bad_request(format!("strategy '{s}' is not recognised."))),
    };
    let vhosts = pattern("vhost_pattern", body.vhost_pattern.as_deref())?;
    let queues = pattern("queue_pattern", body.queue_pattern.as_deref())?;
    let cluster = clustered(&ctx)?;
    tracing::info!("'{}' grows quorum queues on {target}", who.name());
    let out = cluster.grow_on(&target, strategy, &vhosts, &queues).await?;
    Ok(json(&out))
}

async fn shrink(State(ctx): State<Ctx>, who: Authed, P(target): P<String>) -> ApiResult<Response> {
    who.require_admin()?;
    let cluster = clustered(&ctx)?;
    tracing::info!("'{}' shrinks quorum queues on {target}", who.name());
    let out = cluster.shrink_on(&target).await?;
    Ok(json(&out))
}

#[derive(Deserialize, Default)]
struct RebalanceBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    vhost_pattern: Option<String>,
    queue_pattern: Option<String>,
}

async fn rebalance(
    State(ctx): State<Ctx>,
    who: Authed,
    Body(body): Body<RebalanceBody>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let kind = match body.kind.as_deref() {
        None => None,
        Some("all") => Some(Kind::All),
        Some("quorum") => Some(Kind::Quorum),
        Some("classic") => Some(Kind::Classic),
        Some(t) => {
            return Err(ApiError::bad_request(format!(
                "type {t} is not supported. Try one of all, classic, quorum."
            )));
        }
    };
    let vhosts = pattern("vhost_pattern", body.vhost_pattern.as_deref())?;
    let queues = pattern("queue_pattern", body.queue_pattern.as_deref())?;
    let cluster = clustered(&ctx)?;
    tracing::info!("User '{}' has initiated a queue rebalance", who.name());
    let Some(kind) = kind else {
        tokio::spawn(async move {
            if let Err(e) = cluster.rebalance(Kind::All, &vhosts, &queues).await {
                tracing::warn!("rebalancing queues failed: {}", e.message);
            }
        });
        return Ok(no_content());
    };
    let counts = cluster.rebalance(kind, &vhosts, &queues).await?;
    let rows: Vec<Value> = counts
        .iter()
        .map(|l| {
            j!({
                "Node name": l.node,
                "Number of quorum queues": l.quorum,
                "Number of replicated classic queues": l.classic,
            })
        })
        .collect();
    Ok(json(&rows))
}
