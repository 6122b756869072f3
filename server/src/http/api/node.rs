//! `/api/node/...`: what `rabbitmqctl` does inside the Erlang VM, for
//! `warrenctl`. Administrators only, and not in the OpenAPI document (a
//! fuzzer must not stop the node).
//!
//! - `GET /api/node/status`: the node's state for `status` and
//!   `cluster_status` (versions, pid, uptime, whether the AMQP app runs,
//!   config file, data dir, listeners, alarms, memory, descriptors, disk).
//! - `GET /api/node/environment`: the effective settings under their
//!   `warren.conf` keys.
//! - `POST /api/node/stop_app`, `/api/node/start_app`: close or reopen the
//!   AMQP listeners (clients are disconnected) while HTTP keeps serving.
//! - `POST /api/node/stop`: the process shuts down, as on SIGTERM.
//! - `POST /api/node/reload_certificates`: the AMQPS and HTTPS listeners
//!   and the cluster link read their certificate, key and CA files again,
//!   as on SIGHUP (`{"reloaded": ["AMQPS", "HTTPS", "cluster link"]}`);
//!   files that do not load keep the old settings and are answered 500
//!   with the reason.
//! - `POST /api/node/authenticate` `{"username", "password"}`: whether the
//!   credentials are valid (`authenticate_user`), tags or no tags.
//! - `GET /api/node/cluster_status`: the members, which run, the leader,
//!   which members this node cannot reach (`partitions`), and whether it
//!   sees a majority (`minority`: why not).
//! - `POST /api/node/join_cluster` `{"node", "address"?}`: this node (its
//!   app stopped) resets and joins the cluster of `node`, reached at
//!   `address` or at the node name's host and port 25672.
//! - `POST /api/node/forget_cluster_node` `{"node"}`: removes a member.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json as j};

use super::node;
use super::overview::{RABBITMQ_VERSION, cluster_name_of, listeners, node_item};
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Body, json, no_content};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/node/status", get(status))
        .route("/api/node/environment", get(environment))
        .route("/api/node/stop_app", post(stop_app))
        .route("/api/node/start_app", post(start_app))
        .route("/api/node/stop", post(stop))
        .route("/api/node/reload_certificates", post(reload_certificates))
        .route("/api/node/authenticate", post(authenticate))
        .route("/api/node/cluster_status", get(cluster_status))
        .route("/api/node/join_cluster", post(join_cluster))
        .route("/api/node/forget_cluster_node", post(forget_cluster_node))
}

async fn cluster_status(State(ctx): State<Ctx>, who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    let Some(cluster) = ctx.app.cluster() else {
        return Err(ApiError::unavailable("the cluster listener is not running"));
    };
    let members = cluster.members().await;
    let running: Vec<&str> = members
        .iter()
        .filter(|m| m.info.as_ref().is_some_and(|i| i.app_running))
        .map(|m| m.name.as_str())
        .collect();
    // As RabbitMQ's: for each node that sees a partition, those it cannot
    // reach. This node speaks only for itself.
    let unreachable = cluster.unreachable();
    let partitions = match unreachable.is_empty() {
        true => j!({}),
        false => j!({ cluster.me.name.as_str(): unreachable }),
    };
    Ok(json(&j!({
        "cluster_name": cluster_name_of(&ctx),
        "clustered": cluster.is_clustered(),
        "leader": cluster.leader(),
        "disk_nodes": members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        "running_nodes": running,
        "partitions": partitions,
        "minority": cluster.minority(),
        "members": members,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    node: String,
    #[serde(default)]
    address: Option<String>,
}

async fn join_cluster(
    State(ctx): State<Ctx>,
    who: Authed,
    Body(body): Body<JoinRequest>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let Some(cluster) = ctx.app.cluster() else {
        return Err(ApiError::unavailable("the cluster listener is not running"));
    };
    if ctx.app.is_running() {
        return Err(ApiError::bad_request(format!(
            "the application of {} is running: stop it first (stop_app)",
            cluster.me.name
        )));
    }
    let Some((_, host)) = body.node.split_once('@').filter(|(n, h)| !n.is_empty() && !h.is_empty()) else {
        return Err(ApiError::bad_request(format!("'{}' is not a node name (NAME@HOST)", body.node)));
    };
    if body.node == cluster.me.name {
        return Err(ApiError::bad_request("a node cannot join itself"));
    }
    let address = body.address.unwrap_or_else(|| format!("{host}:25672"));
    tracing::info!("join_cluster {} at {address} requested by '{}'", body.node, who.name());
    cluster.join(&address).await.map_err(|e| {
        tracing::warn!("join_cluster {} at {address} failed: {}", body.node, e.message);
        ApiError::unavailable(e.message)
    })?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgetRequest {
    node: String,
}

async fn forget_cluster_node(
    State(ctx): State<Ctx>,
    who: Authed,
    Body(body): Body<ForgetRequest>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let Some(cluster) = ctx.app.clustered() else {
        return Err(ApiError::bad_request(format!("{} is not clustered", node(&ctx))));
    };
    cluster.forget(&body.node).await?;
    Ok(no_content())
}

async fn status(State(ctx): State<Ctx>, who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    let n = node_item(&ctx);
    let c = &ctx.broker.config;
    let alarms = ctx.broker.alarms.state();
    let mut alarm_list = Vec::new();
    if alarms.memory {
        alarm_list.push("memory");
    }
    if alarms.disk {
        alarm_list.push("disk");
    }
    let vhosts = ctx.broker.vhosts();
    Ok(json(&j!({
        "node": node(&ctx),
        "cluster_name": cluster_name_of(&ctx),
        "product_name": "Warren",
        "product_version": env!("CARGO_PKG_VERSION"),
        "rabbitmq_version": RABBITMQ_VERSION,
        "os": std::env::consts::OS,
        "pid": std::process::id(),
        "uptime_seconds": ctx.broker.started_at.elapsed().as_secs(),
        "app_running": ctx.app.is_running(),
        "processors": n.processors,
        "config_files": c.config_file.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "log_files": c.log_file.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "data_dir": c.data_dir.display().to_string(),
        "listeners": listeners(&ctx),
        "alarms": alarm_list,
        "mem_used": n.mem_used,
        "mem_limit": n.mem_limit,
        "fd_used": n.fd_used,
        "fd_total": n.fd_total,
        "disk_free": n.disk_free,
        "disk_free_limit": n.disk_free_limit,
        "connections": ctx.broker.connections.len(),
        "queues": vhosts.iter().map(|v| v.queue_count()).sum::<usize>(),
        "virtual_hosts": vhosts.len(),
    })))
}

/// The settings in force, under the keys `warren.conf` sets them with.
pub fn environment_of(ctx: &Ctx) -> serde_json::Map<String, Value> {
    let c = &ctx.broker.config;
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    let listeners: Vec<String> = c.listen_addrs(c.amqp_port).iter().map(|a| a.to_string()).collect();
    put("listeners.tcp", j!(listeners));
    put("management.tcp.port", j!(c.http_port));
    put("management.tcp.ip", j!(c.http_bind.map(|ip| ip.to_string())));
    put("management.login_session_timeout", j!(c.login_session_timeout.as_secs() / 60));
    put("management.http.max_body_size", j!(c.max_body_size));
    put("loopback_users", j!(c.loopback_users));
    put("auth_mechanisms", j!(c.auth_mechanisms));
    let login = &c.cert_login;
    let from = match login.from {
        crate::tls::CertLoginFrom::DistinguishedName => "distinguished_name",
        crate::tls::CertLoginFrom::CommonName => "common_name",
        crate::tls::CertLoginFrom::SubjectAltName => "subject_alternative_name",
    };
    put("ssl_cert_login_from", j!(from));
    put(
        "ssl_cert_login_san_type",
        j!(format!("{:?}", login.san_type).to_lowercase().replace("othername", "other_name")),
    );
    put("ssl_cert_login_san_index", j!(login.san_index));
    put("default_user", j!(c.default_user));
    put("default_vhost", j!(c.default_vhost));
    put("default_user_tags", j!(c.default_user_tags));
    put("default_permissions.configure", j!(c.default_permissions[0]));
    put("default_permissions.write", j!(c.default_permissions[1]));
    put("default_permissions.read", j!(c.default_permissions[2]));
    put("vm_memory_high_watermark.relative", j!(c.memory_high_watermark_relative));
    put("vm_memory_high_watermark.absolute", j!(c.memory_high_watermark_absolute));
    put("disk_free_limit.absolute", j!(c.disk_free_limit));
    put("heartbeat", j!(c.heartbeat));
    put("frame_max", j!(c.frame_max));
    put("channel_max", j!(c.channel_max));
    put("max_message_size", j!(c.max_message_size));
    put("handshake_timeout", j!(c.handshake_timeout.as_millis() as u64));
    put("connection_max", c.connection_max.map_or_else(|| j!("infinity"), |n| j!(n)));
    put("unauthenticated_connection_max", j!(c.unauthenticated_connection_max));
    put("unauthenticated_connection_max_per_address", j!(c.unauthenticated_connection_max_per_address));
    let t = &c.login_throttle;
    put("login_throttle.free_failures", j!(t.free_failures));
    put("login_throttle.initial_delay", j!(t.initial_delay.as_millis() as u64));
    put("login_throttle.max_delay", j!(t.max_delay.as_millis() as u64));
    put("login_throttle.quiet_period", j!(t.quiet_period.as_millis() as u64));
    put("log.console.level", j!(c.log_level));
    put("log.file", j!(c.log_file.as_ref().map(|p| p.display().to_string())));
    put("data_dir", j!(c.data_dir.display().to_string()));
    put("cluster_name", j!(c.cluster_name));
    put("node_name", j!(c.node_name));
    put("collect_statistics_interval", j!(c.stats_interval.as_millis() as u64));
    put("config_file", j!(c.config_file.as_ref().map(|p| p.display().to_string())));
    m
}

async fn environment(State(ctx): State<Ctx>, who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    Ok(json(&environment_of(&ctx)))
}

async fn stop_app(State(ctx): State<Ctx>, who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    tracing::info!("stop_app requested by '{}'", who.name());
    ctx.app.stop().await;
    Ok(no_content())
}

async fn start_app(State(ctx): State<Ctx>, who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    tracing::info!("start_app requested by '{}'", who.name());
    ctx.app.start().await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(no_content())
}

async fn reload_certificates(State(ctx): State<Ctx>, who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    tracing::info!("reload_certificates requested by '{}'", who.name());
    match ctx.app.reload_certificates() {
        Ok(done) => Ok(json(&j!({ "reloaded": done }))),
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            format!("cannot reload TLS certificates: {e}"),
        )),
    }
}

async fn stop(State(ctx): State<Ctx>, who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    tracing::info!("stop requested by '{}'", who.name());
    // Answer first: the HTTP listeners go away with the node.
    let app = ctx.app.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        app.request_stop();
    });
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

async fn authenticate(
    State(ctx): State<Ctx>,
    who: Authed,
    Body(body): Body<Credentials>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let user = ctx.broker.login(&body.username, body.password.into_bytes(), None).await.ok();
    Ok(json(&j!({
        "user": body.username,
        "authenticated": user.is_some(),
        "tags": user.map(|u| u.tags.clone()).unwrap_or_default(),
    })))
}
