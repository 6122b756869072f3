//! Health: `/api/aliveness-test/{vhost}` (declares a queue, publishes a
//! message to it and gets it back, for real, as RabbitMQ 3.10 does; 4.1
//! made it a no-op) and RabbitMQ's
//! `/api/health/checks/*`, answering 200 `{"status":"ok"}` or 503 with a
//! reason; and the deprecated `/api/healthchecks/node[/{node}]`, which
//! RabbitMQ 3.10 still serves and monitoring scripts still call.
//!
//! `metadata-majority`, Warren's own, fails on a clustered node that sees
//! fewer than a majority of the members (a minority partition), and so
//! does `ready-to-serve-clients`.
//!
//! Warren has no memory or disk alarms yet, so the alarm checks pass; they
//! will read the alarms once the broker raises them.

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::FieldTable;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use serde_json::json as j;

use super::vhost;
use crate::broker::Applied;
use crate::broker::message::Message;
use crate::definitions::DefinitionCommand;
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{P, json, json_bytes};

const ALIVENESS_QUEUE: &str = "aliveness-test";

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/aliveness-test/{vhost}", get(aliveness))
        .route("/api/health/checks/alarms", get(no_alarms))
        .route("/api/health/checks/local-alarms", get(no_alarms))
        .route("/api/health/checks/port-listener/{port}", get(port_listener))
        .route("/api/health/checks/protocol-listener/{protocol}", get(protocol_listener))
        .route("/api/health/checks/virtual-hosts", get(virtual_hosts))
        .route("/api/health/checks/node-is-quorum-critical", get(ok))
        .route("/api/health/checks/node-is-mirror-sync-critical", get(ok))
        .route("/api/health/checks/metadata-majority", get(metadata_majority))
        .route("/api/health/checks/ready-to-serve-clients", get(ready))
        .route("/api/healthchecks/node", get(|s, w| node_check(s, w, None)))
        .route("/api/healthchecks/node/{node}", get(|s, w, P(n): P<String>| node_check(s, w, Some(n))))
}

fn failed(body: serde_json::Value) -> Response {
    json_bytes(StatusCode::SERVICE_UNAVAILABLE, body.to_string().into_bytes())
}

fn status_ok() -> Response {
    json(&j!({"status": "ok"}))
}

async fn aliveness(State(ctx): State<Ctx>, who: Authed, P(v): P<String>) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    let vh = vhost(&ctx, &v)?;
    // RabbitMQ 3.10 declares the queue on a channel: a new one is held to
    // the vhost's `max-queues`, and the channel's close becomes a 400
    // naming its code and text.
    if vh.queue(ALIVENESS_QUEUE).is_none()
        && let Err(e) = ctx.broker.check_queue_limit(&v, ALIVENESS_QUEUE)
    {
        return Err(ApiError::bad_request(format!("{} {}", e.reply_code(), e.reply_text())));
    }
    let applied = ctx
        .broker
        .apply(DefinitionCommand::DeclareQueue {
            vhost: v.clone(),
            name: ALIVENESS_QUEUE.into(),
            durable: false,
            auto_delete: false,
            exclusive_owner: None,
            arguments: FieldTable::default(),
            home: None,
            incarnation: 0,
        })
        .await;
    let q = match applied {
        Ok(Applied::Queue(d)) => d.queue,
        Ok(_) => return Ok(failed(j!({"status": "failed", "reason": "unexpected declare result"}))),
        Err(e) => return Ok(failed(j!({"status": "failed", "reason": e.to_string()}))),
    };
    // A unique body, so a leftover from an earlier run cannot pass for ours.
    let token = format!("test_message {}", crate::http::stats::now_ms());
    let msg =
        Message::new(Arc::from(""), ALIVENESS_QUEUE, &BasicProperties::default(), Bytes::from(token.clone()));
    if let Some(x) = vh.exchange("") {
        x.stats.publish_in.incr();
        x.stats.publish_out.incr();
    }
    ctx.stats.api_channel(&v).publish.incr();
    q.publish(Arc::new(msg), None);
    // Drain: older test messages may sit in front of ours.
    while let Some((m, _)) = q.get_here(true) {
        if m.msg.body.as_ref() == token.as_bytes() {
            return Ok(status_ok());
        }
    }
    Ok(failed(j!({"status": "failed", "reason": "the test message did not come back"})))
}

async fn ok(_who: Authed) -> Response {
    status_ok()
}

/// 503 while a memory or disk alarm is on, as RabbitMQ answers.
async fn no_alarms(State(ctx): State<Ctx>, _who: Authed) -> Response {
    let a = ctx.broker.alarms.state();
    if !a.any() {
        return status_ok();
    }
    let node = ctx.broker.config.node_name.clone();
    let mut alarms = Vec::new();
    if a.memory {
        alarms.push(j!({"node": node, "resource": "memory"}));
    }
    if a.disk {
        alarms.push(j!({"node": node, "resource": "disk"}));
    }
    failed(j!({"status": "failed", "reason": "resource alarm(s) in effect in the cluster", "alarms": alarms}))
}

async fn port_listener(State(ctx): State<Ctx>, _who: Authed, P(port): P<String>) -> Response {
    let (amqp, amqps) = (ctx.app.listeners(), ctx.app.tls_listeners());
    let ports: Vec<u16> =
        amqp.iter().chain(&amqps).chain(&ctx.http_addrs).chain(&ctx.https_addrs).map(|a| a.port()).collect();
    match port.parse::<u16>() {
        Ok(p) if ports.contains(&p) => status_ok(),
        _ => {
            failed(j!({"status": "failed", "reason": "No active listener", "missing": port, "ports": ports}))
        }
    }
}

async fn protocol_listener(State(ctx): State<Ctx>, _who: Authed, P(protocol): P<String>) -> Response {
    let present = match protocol.as_str() {
        "amqp" | "amqp091" | "amqp0-9-1" => ctx.app.is_running(),
        "amqp/ssl" | "amqps" => !ctx.app.tls_listeners().is_empty(),
        "http" | "management" => !ctx.http_addrs.is_empty(),
        "https" => !ctx.https_addrs.is_empty(),
        _ => false,
    };
    if present {
        status_ok()
    } else {
        failed(j!({"status": "failed", "reason": "No active listener", "missing": protocol}))
    }
}

async fn virtual_hosts(State(ctx): State<Ctx>, _who: Authed) -> Response {
    // Every vhost in the registry is running: Warren has no stopped state.
    let _ = ctx.broker.vhosts();
    status_ok()
}

/// Warren's own: 503 while this node, clustered, sees fewer than a
/// majority of the members, so that it cannot change definitions.
async fn metadata_majority(State(ctx): State<Ctx>, _who: Authed) -> Response {
    match ctx.app.clustered().and_then(|c| c.minority()) {
        Some(why) => failed(j!({"status": "failed", "reason": why})),
        None => status_ok(),
    }
}

/// 503 when the node cannot serve clients as the cluster would: its AMQP
/// side is stopped, or it is in a minority partition (its clients could
/// not declare anything, and would read what the majority may have
/// changed), so that a load balancer's probe takes it out of rotation.
async fn ready(State(ctx): State<Ctx>, _who: Authed) -> Response {
    if !ctx.app.is_running() {
        return failed(j!({"status": "failed", "reason": "no AMQP listener"}));
    }
    match ctx.app.clustered().and_then(|c| c.minority()) {
        Some(why) => failed(j!({"status": "failed", "reason": why})),
        None => status_ok(),
    }
}

/// RabbitMQ's node health check (`rabbit_health_check:local`): the node
/// answers, lists its channels and queues, and has no alarm. Here: the
/// node's AMQP side runs and no alarm is on; another member of the cluster
/// must say it runs. A node that is not a member is 404.
async fn node_check(State(ctx): State<Ctx>, _who: Authed, name: Option<String>) -> ApiResult<Response> {
    let me = super::node(&ctx);
    let name = name.unwrap_or_else(|| me.clone());
    if name != me {
        let member = super::overview::all_nodes(&ctx).await.into_iter().find(|n| n.name == name);
        return match member {
            None => Err(ApiError::object_not_found()),
            Some(n) if n.running => Ok(status_ok()),
            Some(_) => Ok(failed(j!({"status": "failed", "reason": "nodedown"}))),
        };
    }
    if !ctx.app.is_running() {
        return Ok(failed(
            j!({"status": "failed", "reason": "the AMQP application is not running (stop_app)"}),
        ));
    }
    let a = ctx.broker.alarms.state();
    if a.any() {
        let mut alarms = Vec::new();
        for (on, resource) in [(a.memory, "memory"), (a.disk, "disk")] {
            if on {
                alarms.push(format!("{{{{resource_limit,{resource},'{me}'}},[]}}"));
            }
        }
        let reason = format!("resource alarm(s) in effect:[{}]", alarms.join(","));
        return Ok(failed(j!({"status": "failed", "reason": reason})));
    }
    Ok(status_ok())
}
