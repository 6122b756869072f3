//! `rabbitmq-queues`' verbs for replicated queues: `add_member`,
//! `delete_member`, `grow`, `shrink`, `quorum_status`, `rebalance`, with
//! its banners and columns, over the `/api/queues/quorum/...` and
//! `/api/rebalance/queues` endpoints.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::client::{Refusal, seg};
use super::{CtlError, Ctx, R};

fn missing(c: &Ctx, queue: &str) -> CtlError {
    CtlError::data(format!("queue '{queue}' in vhost '{}' does not exist", c.vhost))
}

/// A request about one queue: a 404 says the queue does not exist.
fn about_queue(c: &Ctx, queue: &str, r: Result<Value, Refusal>) -> R<Value> {
    match r {
        Ok(v) => Ok(v),
        Err(r) if r.status == StatusCode::NOT_FOUND => Err(missing(c, queue)),
        Err(r) => Err(c.client.refused(r)),
    }
}

fn quorum_path(c: &Ctx, queue: &str, tail: &str) -> String {
    format!("/api/queues/quorum/{}/{}/{tail}", seg(&c.vhost), seg(queue))
}

pub fn add_member(c: &Ctx, queue: &str, node: &str, membership: &str) -> R<()> {
    if !matches!(membership, "promotable" | "voter") {
        return Err(CtlError::usage(format!("voter status '{membership}' is not recognised.")));
    }
    c.out.info(&format!("Adding a member for queue {queue} on node {node}..."));
    let path = quorum_path(c, queue, "replicas/add");
    let r = c.client.try_json(Method::POST, &path, &json!({ "node": node }))?;
    about_queue(c, queue, r).map(drop)
}

pub fn delete_member(c: &Ctx, queue: &str, node: &str) -> R<()> {
    c.out.info(&format!("Removing a replica of queue {queue} on node {node}..."));
    let path = quorum_path(c, queue, "replicas/delete");
    let r = c.client.try_json(Method::DELETE, &path, &json!({ "node": node }))?;
    about_queue(c, queue, r).map(drop)
}

/// The outcomes of grow or shrink, as rabbitmq-queues lists them.
fn outcomes(c: &Ctx, list: &Value, errors_only: bool) {
    let columns: Vec<String> = ["vhost", "name", "size", "result"].map(String::from).to_vec();
    let rows: Vec<Vec<Value>> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| !errors_only || o["result"].as_str().is_some_and(|r| r.starts_with("error")))
        .map(|o| columns.iter().map(|k| o[k.as_str()].clone()).collect())
        .collect();
    c.out.rows(&columns, &rows);
}

pub fn grow(
    c: &Ctx,
    node: &str,
    strategy: &str,
    vhost_pattern: &str,
    queue_pattern: &str,
    errors_only: bool,
) -> R<()> {
    if !matches!(strategy, "all" | "even") {
        return Err(CtlError::usage(format!("strategy '{strategy}' is not recognised.")));
    }
    c.out.info(&format!("Growing {strategy} quorum queues on {node}..."));
    let body =
        json!({ "strategy": strategy, "vhost_pattern": vhost_pattern, "queue_pattern": queue_pattern });
    let list: Value =
        c.client.post_read(&format!("/api/queues/quorum/replicas/on/{}/grow", seg(node)), &body)?;
    outcomes(c, &list, errors_only);
    Ok(())
}

pub fn shrink(c: &Ctx, node: &str, errors_only: bool) -> R<()> {
    c.out.info(&format!("Shrinking quorum queues on {node}..."));
    let path = format!("/api/queues/quorum/replicas/on/{}/shrink", seg(node));
    let list = c.client.try_json(Method::DELETE, &path, &Value::Null)?.map_err(|r| c.client.refused(r))?;
    outcomes(c, &list, errors_only);
    Ok(())
}

/// The columns of `quorum_status`, in RabbitMQ's order, then Warren's
/// member id and what the member holds (members at the same applied index
/// must show the same digest).
const STATUS_COLUMNS: [&str; 12] = [
    "Node Name",
    "Raft State",
    "Membership",
    "Last Log Index",
    "Last Applied",
    "Commit Index",
    "Snapshot Index",
    "Term",
    "Member Id",
    "Messages",
    "Contents Applied",
    "Contents Digest",
];

pub fn quorum_status(c: &Ctx, queue: &str) -> R<()> {
    let overview: Value = c.client.get("/api/overview")?;
    let node = overview["node"].as_str().unwrap_or(&c.client.node).to_owned();
    c.out.info(&format!("Status of queue {queue} on node {node} ..."));
    let r = c.client.try_get(&quorum_path(c, queue, "status"))?;
    let list = about_queue(c, queue, r)?;
    let columns: Vec<String> = STATUS_COLUMNS.map(String::from).to_vec();
    let rows: Vec<Vec<Value>> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| columns.iter().map(|k| m[k.as_str()].clone()).collect())
        .collect();
    c.out.rows(&columns, &rows);
    Ok(())
}

pub fn rebalance(c: &Ctx, kind: &str, vhost_pattern: &str, queue_pattern: &str) -> R<()> {
    let banner = match kind {
        "all" => "Re-balancing leaders of all replicated queues...",
        "classic" => "Re-balancing leaders of replicated (mirrored, non-exclusive) classic queues...",
        "quorum" => "Re-balancing leaders of quorum queues...",
        t => {
            return Err(CtlError::usage(format!(
                "type {t} is not supported. Try one of all, classic, quorum."
            )));
        }
    };
    c.out.info(banner);
    let body = json!({ "type": kind, "vhost_pattern": vhost_pattern, "queue_pattern": queue_pattern });
    let list: Value = c.client.post_read("/api/rebalance/queues", &body)?;
    let mut columns: Vec<String> = vec!["Node name".into(), "Number of quorum queues".into()];
    if kind != "quorum" {
        columns.push("Number of replicated classic queues".into());
    }
    let rows: Vec<Vec<Value>> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| columns.iter().map(|k| m[k.as_str()].clone()).collect())
        .collect();
    c.out.rows(&columns, &rows);
    Ok(())
}
