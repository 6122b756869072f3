//! `/metrics`: Prometheus text exposition of the node's aggregated metrics,
//! with the names of RabbitMQ's `rabbitmq_prometheus` plugin, so existing
//! dashboards and alerts work. Like that plugin's endpoint it needs no
//! credentials; it reveals counts only, never names.
//!
//! Gauges are read live; the `_total` counters are the sampler's node
//! totals (see [`super::stats`]), so they trail by at most one interval.

use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Ctx;
use super::api::vhosts::lengths;
use super::stats::TOT_LEN;

pub fn router() -> Router<Ctx> {
    Router::new().route("/metrics", get(metrics))
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# TYPE {name} {kind}\n# HELP {name} {help}\n{name} {value}");
}

async fn metrics(State(ctx): State<Ctx>) -> Response {
    let broker = &ctx.broker;
    let (mut len, mut queues, mut consumers) = ([0u64; 3], 0u64, 0u64);
    for v in broker.vhosts() {
        let l = lengths(&v);
        for i in 0..3 {
            len[i] += l[i];
        }
        queues += v.queue_count() as u64;
        consumers += v.queues().iter().map(|q| q.counts().consumers).sum::<u64>();
    }
    let conns = broker.connections.list();
    let channels: u64 = conns.iter().map(|c| u64::from(c.channel_count())).sum();
    let t = ctx.stats.node().last().copied().unwrap_or([0; TOT_LEN]);
    // Sample layout after the three lengths: publish, confirm,
    // return_unroutable, deliver, deliver_no_ack, get, get_no_ack, ack,
    // redeliver.
    let mut out = String::with_capacity(4096);
    let g = "gauge";
    let c = "counter";
    metric(&mut out, "rabbitmq_queue_messages", g, "Sum of ready and unacknowledged messages", len[0]);
    metric(
        &mut out,
        "rabbitmq_queue_messages_ready",
        g,
        "Messages ready to be delivered to consumers",
        len[1],
    );
    metric(
        &mut out,
        "rabbitmq_queue_messages_unacked",
        g,
        "Messages delivered to consumers but not yet acknowledged",
        len[2],
    );
    metric(&mut out, "rabbitmq_queues", g, "Queues available", queues);
    metric(&mut out, "rabbitmq_consumers", g, "Consumers currently connected", consumers);
    metric(&mut out, "rabbitmq_connections", g, "Connections currently open", conns.len() as u64);
    metric(&mut out, "rabbitmq_channels", g, "Channels currently open", channels);
    metric(
        &mut out,
        "rabbitmq_global_messages_received_total",
        c,
        "Total number of messages received from publishers",
        t[3],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_confirmed_total",
        c,
        "Total number of messages confirmed to publishers",
        t[4],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_unroutable_returned_total",
        c,
        "Total number of messages returned to publishers as unroutable",
        t[5],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_delivered_total",
        c,
        "Total number of messages delivered to consumers",
        t[6] + t[7] + t[8] + t[9],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_delivered_consume_manual_ack_total",
        c,
        "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
        t[6],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_delivered_consume_auto_ack_total",
        c,
        "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
        t[7],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_delivered_get_manual_ack_total",
        c,
        "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
        t[8],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_delivered_get_auto_ack_total",
        c,
        "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
        t[9],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_acknowledged_total",
        c,
        "Total number of messages acknowledged by consumers",
        t[10],
    );
    metric(
        &mut out,
        "rabbitmq_global_messages_redelivered_total",
        c,
        "Total number of messages redelivered to consumers",
        t[11],
    );
    // Password logins per protocol, as rabbitmq_prometheus names them (the
    // per-source ones, which it shows only per object, are left out).
    let attempts = broker.auth.attempts.by_protocol();
    for (name, help, pick) in [
        ("rabbitmq_auth_attempts_total", "Total number of authorization attempts", 0),
        ("rabbitmq_auth_attempts_succeeded_total", "Total number of successful authentication attempts", 1),
        ("rabbitmq_auth_attempts_failed_total", "Total number of failed authentication attempts", 2),
    ] {
        let _ = writeln!(out, "# TYPE {name} counter\n# HELP {name} {help}");
        for (protocol, n) in &attempts {
            let v = [n.attempts, n.succeeded, n.failed][pick];
            let _ = writeln!(out, "{name}{{protocol=\"{}\"}} {v}", protocol.name());
        }
    }
    // Warren's own: the message stores' work, for durability benchmarks.
    if let Some(stores) = &broker.stores {
        for (which, store) in [("persistent", &stores.persistent), ("paging", &stores.paging)] {
            let st = store.stats();
            for (name, kind, help, v) in [
                ("appends_total", c, "Records appended", st.appends),
                ("fsyncs_total", c, "fsync calls (one per group commit)", st.fsyncs),
                ("acks_total", c, "Messages let go of", st.acks),
                ("bytes", g, "Bytes in segment files", st.bytes),
                ("segments", g, "Segment files", u64::from(st.segments)),
            ] {
                metric(&mut out, &format!("warren_{which}_store_{name}"), kind, help, v);
            }
        }
    }
    let _ = writeln!(
        out,
        "# TYPE rabbitmq_identity_info untyped\n# HELP rabbitmq_identity_info RabbitMQ node & cluster identity info\nrabbitmq_identity_info{{rabbitmq_node=\"{}\",rabbitmq_cluster=\"{}\"}} 1",
        broker.config.node_name,
        super::api::overview::cluster_name_of(&ctx).replace('"', "\\\"")
    );
    let mut resp = out.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp
}
