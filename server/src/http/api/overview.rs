//! The node as a whole: `/api/overview`, `/api/cluster-name`, `/api/nodes`,
//! `/api/nodes/{node}`, `/api/whoami` and `/api/extensions`.
//!
//! Node figures come from the operating system: resident memory from
//! `/proc/self/status`, open descriptors from `/proc/self/fd` and
//! `getrlimit`, free disk space of the data directory from `statvfs`,
//! context switches from `/proc/self/task/*/status`, disk bytes from
//! `/proc/self/io`. RabbitMQ's Erlang processes are tokio tasks here
//! (`proc_used`, and `run_queue` the tasks waiting in the scheduler's global
//! queue). A figure that cannot be read is left out rather than guessed.
//! Figures with no counterpart in Warren (garbage collection, Mnesia, the
//! queue index, file handle cache seeks and reopens) are 0, and their rates
//! 0, so that tools reading them find RabbitMQ's whole node object.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;
use warren_api_types::objects::{
    self, Application, ExchangeTypeInfo, Listener, NodeDetails, ObjectTotals, WebContext,
};
use warren_api_types::stats::RateDetails;

use super::{node, vhosts};
use crate::cluster::network::NodeInfo;
use crate::definitions::DefinitionCommand;
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_name};
use crate::http::extract::{Body, P, json, no_content};
use crate::http::paging::{ListQuery, respond_one};
use crate::http::present::totals_stats;
use crate::http::stats::Series;

/// The version RabbitMQ clients see; Warren follows RabbitMQ 3.10's API.
pub const RABBITMQ_VERSION: &str = "3.10.8";
pub const CLUSTER_NAME: &str = "cluster_name";

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/overview", get(overview))
        .route("/api/cluster-name", get(cluster_name).put(set_cluster_name))
        .route("/api/nodes", get(nodes))
        .route("/api/nodes/{node}", get(one_node))
        .route("/api/whoami", get(whoami))
        .route("/api/extensions", get(extensions))
}

fn exchange_types() -> Vec<ExchangeTypeInfo> {
    [
        ("direct", "AMQP direct exchange, as per the AMQP specification"),
        ("fanout", "AMQP fanout exchange, as per the AMQP specification"),
        ("headers", "AMQP headers exchange, as per the AMQP specification"),
        ("topic", "AMQP topic exchange, as per the AMQP specification"),
    ]
    .into_iter()
    .map(|(n, d)| ExchangeTypeInfo { name: n.into(), description: d.into(), enabled: true })
    .collect()
}

pub fn listeners(ctx: &Ctx) -> Vec<Listener> {
    let l = |a: &SocketAddr, protocol: &str| Listener {
        node: node(ctx),
        protocol: protocol.into(),
        ip_address: a.ip().to_string(),
        port: a.port(),
    };
    // RabbitMQ's protocol names.
    let amqp = ctx.app.listeners();
    let amqps = ctx.app.tls_listeners();
    (amqp.iter().map(|a| l(a, "amqp")))
        .chain(amqps.iter().map(|a| l(a, "amqp/ssl")))
        .chain(ctx.http_addrs.iter().map(|a| l(a, "http")))
        .chain(ctx.https_addrs.iter().map(|a| l(a, "https")))
        .collect()
}

pub fn cluster_name_of(ctx: &Ctx) -> String {
    match ctx.broker.parameters.global(CLUSTER_NAME) {
        Some(Value::String(s)) => s,
        _ => ctx.broker.config.cluster_name.clone(),
    }
}

async fn overview(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    let vhosts: Vec<_> = ctx.broker.vhosts().into_iter().filter(|v| who.sees_vhost(&v.name)).collect();
    let mut len = [0u64; 3];
    let mut totals = ObjectTotals { connections: 0, channels: 0, exchanges: 0, queues: 0, consumers: 0 };
    for v in &vhosts {
        let l = vhosts::lengths(v);
        for i in 0..3 {
            len[i] += l[i];
        }
        totals.queues += v.queue_count() as u64;
        totals.exchanges += v.exchange_count() as u64;
        totals.consumers += v.queues().iter().map(|q| q.counts().consumers).sum::<u64>();
    }
    for c in ctx.broker.connections.list() {
        if who.is_monitor() || c.user == who.name() {
            totals.connections += 1;
            totals.channels += u64::from(c.channel_count());
        }
    }
    // Monitoring users see the node's totals; others the sum of theirs.
    let series = if who.is_monitor() {
        ctx.stats.node()
    } else {
        let own: Vec<_> = vhosts.iter().filter_map(|v| ctx.stats.vhost(&v.name)).collect();
        Series::sum(own.iter())
    };
    let (queue_totals, message_stats) = totals_stats(len, Some(&series), &lq);
    let body = objects::Overview {
        management_version: RABBITMQ_VERSION.into(),
        rates_mode: "basic".into(),
        product_name: "Warren".into(),
        product_version: env!("CARGO_PKG_VERSION").into(),
        rabbitmq_version: RABBITMQ_VERSION.into(),
        cluster_name: cluster_name_of(&ctx),
        node: node(&ctx),
        exchange_types: exchange_types(),
        listeners: listeners(&ctx),
        object_totals: totals,
        queue_totals,
        message_stats,
        statistics_db_event_queue: 0,
        disable_stats: ctx.broker.config.stats_interval.is_zero(),
        enable_queue_totals: true,
    };
    Ok(respond_one(&lq, &body))
}

async fn cluster_name(State(ctx): State<Ctx>, _who: Authed) -> Response {
    json(&objects::ClusterName { name: cluster_name_of(&ctx) })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterNameBody {
    name: String,
}

async fn set_cluster_name(
    State(ctx): State<Ctx>,
    who: Authed,
    Body(body): Body<ClusterNameBody>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let name = body.name;
    check_name("cluster", &name)?;
    ctx.broker
        .apply(DefinitionCommand::SetGlobalParameter { name: CLUSTER_NAME.into(), value: name.into() })
        .await?;
    Ok(no_content())
}

fn proc_status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn fd_used() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

fn fd_total() -> Option<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    let cur = r.rlim_cur as u64;
    (rc == 0).then_some(cur)
}

/// RabbitMQ's default Erlang process limit, reported as `proc_total`:
/// Warren has no limit on tasks, and tools compare `proc_used` with it.
const PROC_TOTAL: u64 = 1_048_576;

/// Context switches of every thread of the process.
fn context_switches() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(text) = std::fs::read_to_string(task.ok()?.path().join("status")) else { continue };
        for line in text.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// Bytes the process read from and wrote to storage (`/proc/self/io`).
fn disk_io() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("read_bytes:")?, field("write_bytes:")?))
}

/// The node's SASL mechanisms, each `enabled` when `auth_mechanisms.N`
/// lists it (PLAIN and AMQPLAIN by default), as RabbitMQ lists them.
fn auth_mechanisms(c: &crate::config::Config) -> Vec<ExchangeTypeInfo> {
    [
        ("AMQPLAIN", "QPid AMQPLAIN mechanism"),
        ("PLAIN", "SASL PLAIN authentication mechanism"),
        ("EXTERNAL", "SSL authentication mechanism using SASL EXTERNAL"),
    ]
    .into_iter()
    .map(|(n, d)| ExchangeTypeInfo {
        name: n.into(),
        description: d.into(),
        enabled: c.auth_mechanisms.iter().any(|m| m == n),
    })
    .collect()
}

/// The fields RabbitMQ adds to a node beyond the basic figures, for this
/// node.
fn node_details(ctx: &Ctx) -> NodeDetails {
    let c = &ctx.broker.config;
    let rate = || Some(RateDetails::default());
    let tokio = tokio::runtime::Handle::current().metrics();
    let proc_used = tokio.num_alive_tasks() as u64;
    let (read_bytes, write_bytes) = disk_io().unwrap_or_default();
    let churn = &ctx.broker.connections.churn;
    let load = |a: &std::sync::atomic::AtomicU64| Some(a.load(std::sync::atomic::Ordering::Relaxed));
    let db_dir = std::path::absolute(&c.data_dir).unwrap_or_else(|_| c.data_dir.clone());
    let gc_queues = [
        "connection_closed",
        "channel_closed",
        "consumer_deleted",
        "exchange_deleted",
        "queue_deleted",
        "vhost_deleted",
        "node_node_deleted",
        "channel_consumer_deleted",
    ];
    NodeDetails {
        proc_used: Some(proc_used),
        proc_total: Some(PROC_TOTAL),
        run_queue: Some(tokio.global_queue_depth() as u64),
        mem_calculation_strategy: Some("rss".into()),
        rates_mode: Some(if c.stats_interval.is_zero() { "none" } else { "basic" }.into()),
        auth_mechanisms: Some(auth_mechanisms(c)),
        applications: Some(vec![
            Application {
                name: "rabbitmq_management".into(),
                description: "RabbitMQ Management Console (as served by Warren)".into(),
                version: RABBITMQ_VERSION.into(),
            },
            Application {
                name: "warren".into(),
                description: "Warren, an AMQP 0-9-1 broker".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
        ]),
        contexts: Some(
            ctx.http_addrs
                .iter()
                .map(|a| WebContext {
                    description: "RabbitMQ Management".into(),
                    path: "/".into(),
                    port: a.port().to_string(),
                    ip: (!a.ip().is_unspecified()).then(|| a.ip().to_string()),
                })
                .collect(),
        ),
        log_files: Some(vec![
            c.log_file.as_ref().map_or_else(|| "<stdout>".to_owned(), |p| p.display().to_string()),
        ]),
        db_dir: Some(db_dir.display().to_string()),
        config_files: Some(c.config_file.iter().map(|p| p.display().to_string()).collect()),
        // RabbitMQ's default; the cluster link has its own heartbeats.
        net_ticktime: Some(60),
        // The management API is built in, the only "plugin" there is.
        enabled_plugins: Some(vec!["rabbitmq_management".into()]),
        ra_open_file_metrics: Some(
            [("ra_log_segment_writer", 0), ("ra_log_wal", 0)].map(|(k, v)| (k.into(), v)).into(),
        ),
        metrics_gc_queue_length: Some(gc_queues.iter().map(|k| ((*k).to_owned(), 0)).collect()),
        fd_used_details: rate(),
        sockets_used_details: rate(),
        mem_used_details: rate(),
        disk_free_details: rate(),
        proc_used_details: rate(),
        gc_num: Some(0),
        gc_num_details: rate(),
        gc_bytes_reclaimed: Some(0),
        gc_bytes_reclaimed_details: rate(),
        context_switches: context_switches(),
        context_switches_details: rate(),
        io_read_count: Some(0),
        io_read_count_details: rate(),
        io_read_bytes: Some(read_bytes),
        io_read_bytes_details: rate(),
        io_write_count: Some(0),
        io_write_count_details: rate(),
        io_write_bytes: Some(write_bytes),
        io_write_bytes_details: rate(),
        io_sync_count: Some(0),
        io_sync_count_details: rate(),
        io_seek_count: Some(0),
        io_seek_count_details: rate(),
        io_reopen_count: Some(0),
        io_reopen_count_details: rate(),
        mnesia_ram_tx_count: Some(0),
        mnesia_ram_tx_count_details: rate(),
        mnesia_disk_tx_count: Some(0),
        mnesia_disk_tx_count_details: rate(),
        msg_store_read_count: Some(0),
        msg_store_read_count_details: rate(),
        msg_store_write_count: Some(0),
        msg_store_write_count_details: rate(),
        queue_index_write_count: Some(0),
        queue_index_write_count_details: rate(),
        queue_index_read_count: Some(0),
        queue_index_read_count_details: rate(),
        connection_created: load(&churn.connection_created),
        connection_created_details: rate(),
        connection_closed: load(&churn.connection_closed),
        connection_closed_details: rate(),
        channel_created: load(&churn.channel_created),
        channel_created_details: rate(),
        channel_closed: load(&churn.channel_closed),
        channel_closed_details: rate(),
        queue_declared: Some(0),
        queue_declared_details: rate(),
        queue_created: Some(0),
        queue_created_details: rate(),
        queue_deleted: Some(0),
        queue_deleted_details: rate(),
        io_read_avg_time: Some(0.0),
        io_read_avg_time_details: rate(),
        io_write_avg_time: Some(0.0),
        io_write_avg_time_details: rate(),
        io_sync_avg_time: Some(0.0),
        io_sync_avg_time_details: rate(),
        io_seek_avg_time: Some(0.0),
        io_seek_avg_time_details: rate(),
    }
}

/// The queues this node holds (all of them on a single node; in a cluster,
/// those whose home it is) and their messages.
fn node_queue_totals(broker: &crate::broker::Broker) -> objects::NodeQueueTotals {
    let mut t = objects::NodeQueueTotals::default();
    for v in broker.vhosts() {
        if broker.consensus().is_none() {
            let [total, ready, unacked] = vhosts::lengths(&v);
            t.queues += v.queue_count() as u64;
            t.messages_ready += ready;
            t.messages_unacknowledged += unacked;
            t.messages += total;
            continue;
        }
        for q in v.queues().into_iter().filter(|q| q.is_held_here()) {
            let c = q.counts();
            t.queues += 1;
            t.messages_ready += c.ready;
            t.messages_unacknowledged += c.unacked;
            t.messages += c.ready + c.unacked;
        }
    }
    t
}

pub fn node_item(ctx: &Ctx) -> objects::Node {
    let alarms = ctx.broker.alarms.state();
    let limits = ctx.broker.alarms.limits();
    let mem_used = proc_status_kb("VmRSS:").map(|kb| kb * 1024);
    let fd_used = fd_used();
    let fd_total = fd_total();
    let sockets_used =
        (ctx.broker.connections.len() + ctx.app.listeners().len() + ctx.http_addrs.len()) as u64;
    objects::Node {
        name: node(ctx),
        kind: "disc".into(),
        // False between `stop_app` and `start_app`.
        running: ctx.app.is_running(),
        uptime: ctx.broker.started_at.elapsed().as_millis() as u64,
        processors: std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1),
        os_pid: std::process::id().to_string(),
        mem_used,
        mem_limit: limits.as_ref().map(|l| l.memory_high_watermark),
        mem_alarm: alarms.memory,
        fd_used,
        fd_total,
        sockets_used,
        // Sockets are file descriptors: the same limit bounds them.
        sockets_total: fd_total,
        disk_free: crate::broker::alarms::disk_free(&ctx.broker.config.data_dir),
        disk_free_limit: limits.as_ref().map(|l| l.disk_free_limit),
        disk_free_alarm: alarms.disk,
        exchange_types: exchange_types(),
        // The members this node cannot reach, as RabbitMQ lists the nodes
        // a node is partitioned from.
        partitions: ctx.app.clustered().map(|c| c.unreachable()).unwrap_or_default(),
        cluster_links: Vec::new(),
        details: node_details(ctx),
        queue_totals: Some(node_queue_totals(&ctx.broker)),
    }
}

/// What this node says about itself over the cluster link: among the
/// rest, its own `/api/nodes` entry.
pub fn node_info(ctx: &Ctx) -> NodeInfo {
    let item = node_item(ctx);
    let addrs = |a: &[SocketAddr]| a.iter().map(|a| a.to_string()).collect();
    NodeInfo {
        name: item.name.clone(),
        app_running: item.running,
        amqp_listeners: addrs(&ctx.app.listeners()),
        http_listeners: addrs(&ctx.http_addrs),
        uptime_ms: item.uptime,
        queue_totals: item.queue_totals.clone(),
        node: Some(Box::new(item)),
    }
}

/// Every member of the cluster (this node alone when standalone). This
/// node is described by [`node_item`]; another member by the entry it
/// built the same way and sent over the cluster link, or as not running,
/// with its figures left out, when it does not answer.
pub async fn all_nodes(ctx: &Ctx) -> Vec<objects::Node> {
    let Some(cluster) = ctx.app.clustered() else { return vec![node_item(ctx)] };
    let me = node(ctx);
    let mut out = Vec::new();
    for m in cluster.members().await {
        if m.name == me {
            out.push(node_item(ctx));
            continue;
        }
        let info = m.info.unwrap_or_default();
        out.push(info.node.map(|n| *n).unwrap_or_else(|| objects::Node {
            name: m.name,
            kind: "disc".into(),
            running: info.app_running,
            uptime: info.uptime_ms,
            exchange_types: exchange_types(),
            queue_totals: info.queue_totals,
            ..objects::Node::default()
        }));
    }
    out
}

async fn nodes(State(ctx): State<Ctx>, who: Authed) -> ApiResult<Response> {
    who.require_monitor()?;
    Ok(json(&all_nodes(&ctx).await))
}

async fn one_node(
    State(ctx): State<Ctx>,
    who: Authed,
    P(name): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_monitor()?;
    if name == node(&ctx) {
        return Ok(respond_one(&lq, &node_item(&ctx)));
    }
    let found = all_nodes(&ctx).await.into_iter().find(|n| n.name == name);
    Ok(respond_one(&lq, &found.ok_or_else(ApiError::object_not_found)?))
}

async fn whoami(who: Authed) -> Response {
    json(&objects::WhoAmI { name: who.name().to_owned(), tags: who.user.tags.clone() })
}

async fn extensions(_who: Authed) -> Response {
    json(&Vec::<Value>::new())
}
