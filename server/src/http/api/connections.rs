//! `/api/connections`, `/api/channels` and `/api/consumers`, each with its
//! per-vhost variant, from the broker's connection registry and queues.
//!
//! As in RabbitMQ, monitoring users and administrators see every
//! connection and channel, other users only their own; closing one
//! (`DELETE /api/connections/{name}`, reason in the `X-Reason` header) is
//! for administrators and the connection's own user.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use warren_api_types::objects;

use super::{listed_vhosts, node, vhost};
use crate::broker::connections::{ChannelStats, ConnectionInfo};
use crate::broker::queue::Queue;
use crate::http::Ctx;
use crate::http::amqp_json::table_to_json;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{P, no_content};
use crate::http::paging::{ListQuery, Listed, respond, respond_one};
use crate::http::present::{channel_stats, details_of};
use crate::http::stats::channel_sample;

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/connections", get(list_connections))
        .route("/api/vhosts/{vhost}/connections", get(list_vhost_connections))
        .route("/api/connections/{name}", get(show_connection).delete(close_connection))
        .route("/api/connections/{name}/channels", get(connection_channels))
        .route("/api/channels", get(list_channels))
        .route("/api/vhosts/{vhost}/channels", get(list_vhost_channels))
        .route("/api/channels/{name}", get(show_channel))
        .route("/api/consumers", get(list_consumers))
        .route("/api/consumers/{vhost}", get(list_vhost_consumers))
}

impl Listed for objects::Connection {
    fn name(&self) -> &str {
        &self.name
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

impl Listed for objects::Channel {
    fn name(&self) -> &str {
        &self.name
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

impl Listed for objects::Consumer {
    fn name(&self) -> &str {
        &self.consumer_tag
    }
    fn vhost(&self) -> &str {
        &self.queue.vhost
    }
}

fn ms_since_epoch(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn connection_item(ctx: &Ctx, c: &Arc<ConnectionInfo>) -> objects::Connection {
    use std::sync::atomic::Ordering::Relaxed;
    let series = ctx.stats.connection(c);
    let peer_cert = c.tls.as_ref().and_then(|t| t.peer_cert.as_deref());
    objects::Connection {
        name: c.name.clone(),
        node: node(ctx),
        vhost: c.vhost.clone(),
        user: c.user.clone(),
        state: "running".into(),
        kind: "network".into(),
        protocol: "AMQP 0-9-1".into(),
        auth_mechanism: c.auth_mechanism.clone(),
        host: c.local.ip().to_string(),
        port: c.local.port(),
        peer_host: c.peer.ip().to_string(),
        peer_port: c.peer.port(),
        ssl: c.tls.is_some(),
        ssl_protocol: c.tls.as_ref().map(|t| t.protocol.clone()),
        ssl_cipher: c.tls.as_ref().map(|t| t.cipher.clone()),
        ssl_key_exchange: c.tls.as_ref().map(|t| t.key_exchange.clone()),
        ssl_hash: c.tls.as_ref().map(|t| t.hash.clone()),
        peer_cert_subject: peer_cert.map(|p| p.subject.to_string()),
        peer_cert_issuer: peer_cert.map(|p| p.issuer.to_string()),
        peer_cert_validity: peer_cert.map(|p| p.validity()),
        channels: c.channel_count(),
        channel_max: c.channel_max,
        frame_max: c.frame_max,
        timeout: c.heartbeat,
        connected_at: ms_since_epoch(c.connected_at),
        client_properties: table_to_json(&c.client_properties),
        recv_oct: c.recv_oct.load(Relaxed),
        recv_oct_details: details_of(series.as_ref(), 0),
        send_oct: c.send_oct.load(Relaxed),
        send_oct_details: details_of(series.as_ref(), 1),
    }
}

/// The connections this user may see, optionally of one vhost.
fn visible(ctx: &Ctx, who: &Authed, only: Option<&str>) -> Vec<Arc<ConnectionInfo>> {
    ctx.broker
        .connections
        .list()
        .into_iter()
        .filter(|c| who.is_monitor() || c.user == who.name())
        .filter(|c| only.is_none_or(|v| c.vhost == v))
        .collect()
}

async fn list_connections(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    respond(&lq, visible(&ctx, &who, None).iter().map(|c| connection_item(&ctx, c)).collect())
}

async fn list_vhost_connections(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_vhost_read(&v)?;
    vhost(&ctx, &v)?;
    respond(&lq, visible(&ctx, &who, Some(&v)).iter().map(|c| connection_item(&ctx, c)).collect())
}

fn find_connection(ctx: &Ctx, who: &Authed, name: &str) -> ApiResult<Arc<ConnectionInfo>> {
    visible(ctx, who, None).into_iter().find(|c| c.name == name).ok_or_else(ApiError::object_not_found)
}

async fn show_connection(
    State(ctx): State<Ctx>,
    who: Authed,
    P(name): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    let c = find_connection(&ctx, &who, &name)?;
    Ok(respond_one(&lq, &connection_item(&ctx, &c)))
}

async fn close_connection(
    State(ctx): State<Ctx>,
    who: Authed,
    P(name): P<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let c = find_connection(&ctx, &who, &name)?;
    if !who.is_admin() && c.user != who.name() {
        return Err(ApiError::not_authorised("User not authorised to access object"));
    }
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .filter(|r| !r.is_empty())
        .unwrap_or("Closed via management plugin");
    c.force_close(reason);
    Ok(no_content())
}

fn channel_item(ctx: &Ctx, c: &ConnectionInfo, ch: &Arc<ChannelStats>, lq: &ListQuery) -> objects::Channel {
    use std::sync::atomic::Ordering::Relaxed;
    let live = channel_sample(ch);
    let series = ctx.stats.channel(ch);
    objects::Channel {
        name: format!("{} ({})", c.name, ch.number),
        node: node(ctx),
        number: ch.number,
        vhost: c.vhost.clone(),
        user: c.user.clone(),
        state: "running".into(),
        connection_details: objects::ConnectionDetails {
            name: c.name.clone(),
            peer_host: c.peer.ip().to_string(),
            peer_port: c.peer.port(),
        },
        prefetch_count: ch.prefetch_count.load(Relaxed),
        global_prefetch_count: ch.global_prefetch_count.load(Relaxed),
        consumer_count: ch.consumer_count.load(Relaxed),
        messages_unacknowledged: ch.unacked.load(Relaxed),
        confirm: ch.confirm.load(Relaxed),
        transactional: ch.transactional.load(Relaxed),
        message_stats: channel_stats(&live, series.as_ref(), lq),
    }
}

fn channels_of(ctx: &Ctx, conns: &[Arc<ConnectionInfo>], lq: &ListQuery) -> Vec<objects::Channel> {
    conns
        .iter()
        .flat_map(|c| c.channels().iter().map(|ch| channel_item(ctx, c, ch, lq)).collect::<Vec<_>>())
        .collect()
}

async fn connection_channels(
    State(ctx): State<Ctx>,
    who: Authed,
    P(name): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    let c = find_connection(&ctx, &who, &name)?;
    respond(&lq, channels_of(&ctx, &[c], &lq))
}

async fn list_channels(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    respond(&lq, channels_of(&ctx, &visible(&ctx, &who, None), &lq))
}

async fn list_vhost_channels(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_vhost_read(&v)?;
    vhost(&ctx, &v)?;
    respond(&lq, channels_of(&ctx, &visible(&ctx, &who, Some(&v)), &lq))
}

async fn show_channel(
    State(ctx): State<Ctx>,
    who: Authed,
    P(name): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    let ch = channels_of(&ctx, &visible(&ctx, &who, None), &lq)
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(ApiError::object_not_found)?;
    Ok(respond_one(&lq, &ch))
}

fn consumers(ctx: &Ctx, who: &Authed, only: Option<&str>) -> ApiResult<Vec<objects::Consumer>> {
    let mut out = Vec::new();
    for v in listed_vhosts(ctx, who, only)? {
        for q in v.queues() {
            out.extend(queue_consumers(ctx, &q));
        }
    }
    Ok(out)
}

/// A queue's consumers as the API shows them. Under single active consumer
/// one is `single_active` and the others are `waiting`, as in RabbitMQ.
pub fn queue_consumers(ctx: &Ctx, q: &Queue) -> Vec<objects::Consumer> {
    let active = q.active_consumer();
    q.consumers()
        .iter()
        .map(|c| {
            let conn = ctx.broker.connections.get(c.connection_id);
            let (cname, peer_host, peer_port, user) = match &conn {
                Some(ci) => (ci.name.clone(), ci.peer.ip().to_string(), ci.peer.port(), ci.user.clone()),
                None => (String::new(), String::new(), 0, String::new()),
            };
            let (is_active, status) = match &active {
                None => (true, "up"),
                Some(a) if Arc::ptr_eq(a, c) => (true, "single_active"),
                Some(_) => (false, "waiting"),
            };
            objects::Consumer {
                consumer_tag: c.tag.as_str().to_owned(),
                queue: objects::QueueRef { name: q.name.to_string(), vhost: q.vhost.to_string() },
                channel_details: objects::ChannelRef {
                    name: format!("{cname} ({})", c.channel),
                    number: c.channel,
                    connection_name: cname,
                    peer_host,
                    peer_port,
                    user,
                    node: node(ctx),
                },
                ack_required: !c.no_ack,
                exclusive: c.exclusive,
                prefetch_count: c.prefetch,
                active: is_active,
                activity_status: status.into(),
                arguments: table_to_json(&c.arguments),
            }
        })
        .collect()
}

async fn list_consumers(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    respond(&lq, consumers(&ctx, &who, None)?)
}

async fn list_vhost_consumers(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    respond(&lq, consumers(&ctx, &who, Some(&v))?)
}
