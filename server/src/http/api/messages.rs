//! Messages over HTTP, for testing and debugging as in RabbitMQ:
//! `POST /api/exchanges/{vhost}/{name}/publish` routes a message the way
//! the AMQP channel does (`Channel::deliver`), and
//! `POST /api/queues/{vhost}/{name}/get` takes messages with `Queue::get`
//! and then settles or requeues them according to `ackmode`.
//!
//! Both count on the vhost's API pseudo-channel (`Stats::api_channel`), so
//! the overview's rates include them, as RabbitMQ's do.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use bytes::Bytes;
use warren_api_types::objects::{GotMessage, Routed};
use warren_api_types::requests::{GetMessages, Publish};

use super::{exchanges, queues};
use crate::broker::auth::Access;
use crate::broker::message::Message;
use crate::broker::queue::QueuedMessage;
use crate::http::Ctx;
use crate::http::amqp_json::{json_to_properties, properties_to_json};
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo};
use crate::http::extract::{P, RawBody, json, parse_body};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/exchanges/{vhost}/{name}/publish", post(publish))
        .route("/api/queues/{vhost}/{name}/get", post(get_messages))
}

fn decode_payload(payload: &str, encoding: &str) -> ApiResult<Bytes> {
    match encoding {
        "string" => Ok(Bytes::copy_from_slice(payload.as_bytes())),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map(Bytes::from)
            .map_err(|e| ApiError::bad_request(format!("payload is not valid base64: {e}"))),
        other => Err(ApiError::bad_request(format!(
            "payload_encoding '{other}' is not supported; use string or base64"
        ))),
    }
}

async fn publish(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    RawBody(raw): RawBody,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    let x = exchanges::lookup(&ctx, &who, &v, &name)?;
    let body: serde_json::Map<String, serde_json::Value> = parse_body(&raw)?;
    // RabbitMQ requires these four and names every one missing.
    let missing: Vec<String> = ["routing_key", "properties", "payload", "payload_encoding"]
        .into_iter()
        .filter(|k| !body.contains_key(*k))
        .map(|k| format!("{{key_missing,{k}}}"))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!("[{}]", missing.join(","))));
    }
    let body: Publish = serde_json::from_value(body.into())
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    if body.routing_key.len() > 255 {
        return Err(ApiError::bad_request("routing_key is longer than 255 bytes"));
    }
    let props = json_to_properties(&body.properties)?;
    // RabbitMQ's channel refuses any other delivery mode (rabbit_basic).
    if let Some(mode) = props.delivery_mode().filter(|m| !matches!(m, 1 | 2)) {
        return Err(ApiError::bad_request(format!(
            "406 PRECONDITION_FAILED - invalid message: {{delivery_mode_unknown,{mode}}}"
        )));
    }
    if let Some(exp) = props.expiration()
        && exp.as_str().parse::<u64>().is_err()
    {
        return Err(ApiError::bad_request(format!("invalid expiration '{}'", exp.as_str())));
    }
    let payload = decode_payload(&body.payload, &body.payload_encoding)?;
    let max = ctx.broker.config.max_message_size;
    if payload.len() > max {
        return Err(ApiError::bad_request(format!(
            "message size {} is larger than configured max size {max}",
            payload.len()
        )));
    }
    // RabbitMQ publishes on a channel and answers its close as a 400 with
    // the AMQP code and text (rabbit_mgmt_wm_exchange_publish).
    who.require_access(&v, Access::Write, "exchange", &x.name)
        .map_err(|e| ApiError::bad_request(format!("403 ACCESS_REFUSED - {}", e.reason)))?;
    if x.internal {
        return Err(ApiError::not_authorised(format!("cannot publish to internal exchange '{}'", x.name)));
    }
    ctx.broker
        .auth
        .check_topic_access(&v, &who.user.name, &x, Access::Write, &body.routing_key)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let vh = super::vhost(&ctx, &v)?;
    let msg = Arc::new(Message::new(x.name.clone(), &body.routing_key, &props, payload));
    // The same delivery path as AMQP publishes: alternate exchanges, CC and
    // BCC, persistence for durable queues, length limits.
    let targets = vh.route_all(&x, &msg, props.headers().as_ref());
    ctx.stats.api_channel(&v).publish.incr();
    x.stats.publish_in.incr();
    x.stats.publish_out.add(targets.len() as u64);
    let routed_to = targets.len();
    let msg = match props.headers().as_ref().is_some_and(|h| h.contains_key("BCC")) {
        true => crate::broker::deadletter::strip_bcc(&msg).map(Arc::new).unwrap_or(msg),
        false => msg,
    };
    let d = vh.deliver(targets, msg.clone(), ctx.broker.stores.as_ref()).map_err(ApiError::from)?;
    // Queues held on other nodes get it through them; answer once they have.
    for answer in d.elsewhere {
        if !answer.await.unwrap_or(false) {
            return Err(ApiError::unavailable("a node holding one of the queues did not take the message"));
        }
    }
    // Queues whose home is down did not get it, as in RabbitMQ.
    Ok(json(&Routed { routed: routed_to > d.unreachable }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AckMode {
    AckRequeueTrue,
    AckRequeueFalse,
    RejectRequeueTrue,
    RejectRequeueFalse,
}

fn ack_mode(s: &str) -> ApiResult<AckMode> {
    Ok(match s {
        "ack_requeue_true" => AckMode::AckRequeueTrue,
        "ack_requeue_false" => AckMode::AckRequeueFalse,
        "reject_requeue_true" => AckMode::RejectRequeueTrue,
        "reject_requeue_false" => AckMode::RejectRequeueFalse,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid ackmode value: {other}. Valid values are: ack_requeue_true, ack_requeue_false, reject_requeue_true, reject_requeue_false"
            )));
        }
    })
}

fn render(qm: &QueuedMessage, left: u64, base64_only: bool, truncate: Option<usize>) -> GotMessage {
    let m = &qm.msg;
    let body = &m.body[..truncate.map_or(m.body.len(), |t| t.min(m.body.len()))];
    let (payload, payload_encoding) = match std::str::from_utf8(body) {
        Ok(s) if !base64_only => (s.to_owned(), "string"),
        _ => (base64::engine::general_purpose::STANDARD.encode(body), "base64"),
    };
    GotMessage {
        payload_bytes: m.body.len() as u64,
        redelivered: qm.redelivered,
        exchange: m.exchange.to_string(),
        routing_key: m.routing_key.to_string(),
        message_count: left,
        properties: properties_to_json(&m.decoded_properties()),
        payload,
        payload_encoding: payload_encoding.into(),
    }
}

async fn get_messages(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    RawBody(raw): RawBody,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    let q = queues::lookup(&ctx, &who, &v, &name)?;
    let body: GetMessages = parse_body(&raw)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    let mode = ack_mode(&body.ackmode)?;
    let base64_only = match body.encoding.as_str() {
        "auto" => false,
        "base64" => true,
        _ => return Err(ApiError::bad_request("Unsupported encoding. Please use auto or base64.")),
    };
    let count =
        u64::try_from(body.count.0).map_err(|_| ApiError::bad_request("count must not be negative"))?;
    let truncate = match body.truncate {
        Some(t) => {
            Some(usize::try_from(t.0).map_err(|_| ApiError::bad_request("truncate must not be negative"))?)
        }
        None => None,
    };
    who.require_access(&v, Access::Read, "queue", &name)?;
    if q.is_exclusive() {
        return Err(ApiError::bad_request(format!(
            "cannot obtain exclusive access to locked queue '{name}' in vhost '{v}'"
        )));
    }
    let no_ack = mode == AckMode::AckRequeueFalse;
    let api = ctx.stats.api_channel(&v);
    let mut taken = Vec::new();
    let mut out = Vec::new();
    for _ in 0..count {
        let Some((qm, left)) = q.get(no_ack).await? else { break };
        if no_ack {
            api.get_no_ack.incr()
        } else {
            api.get.incr()
        }
        if qm.redelivered {
            api.redeliver.incr();
        }
        out.push(render(&qm, left, base64_only, truncate));
        taken.push(qm);
    }
    // Settle only after taking them all, so that `count` distinct messages
    // come back even when they are requeued.
    match mode {
        AckMode::AckRequeueFalse => {}
        AckMode::AckRequeueTrue | AckMode::RejectRequeueTrue => q.requeue(taken),
        AckMode::RejectRequeueFalse => q.discard(taken),
    }
    Ok(json(&out))
}
