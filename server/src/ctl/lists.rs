//! `list_queues`, `list_exchanges`, `list_bindings`, `list_connections`,
//! `list_channels`, `list_consumers`: rabbitmqctl's column names (its info
//! keys) read from the API's objects, with its default columns.

use serde_json::Value;

use super::client::seg;
use super::{CtlError, Ctx, R};

/// Prints `items` under `columns` (or `defaults`), each column read by
/// `get`; a column not in `valid` is a usage error, as in rabbitmqctl.
pub fn table(
    c: &Ctx,
    items: &[Value],
    columns: &[String],
    defaults: &[&str],
    valid: &[&str],
    get: impl Fn(&Value, &str) -> Value,
) -> R<()> {
    let columns: Vec<String> =
        if columns.is_empty() { defaults.iter().map(|s| s.to_string()).collect() } else { columns.to_vec() };
    for col in &columns {
        if !valid.contains(&col.as_str()) {
            return Err(CtlError::usage(format!(
                "invalid column '{col}'; valid columns are: {}",
                valid.join(", ")
            )));
        }
    }
    let rows: Vec<Vec<Value>> =
        items.iter().map(|it| columns.iter().map(|col| get(it, col)).collect()).collect();
    c.out.rows(&columns, &rows);
    Ok(())
}

/// A field, or a dotted path into nested objects.
pub fn field(v: &Value, path: &str) -> Value {
    path.split('.').fold(v.clone(), |cur, k| cur.get(k).cloned().unwrap_or(Value::Null))
}

fn list(c: &Ctx, path: &str) -> R<Vec<Value>> {
    match c.client.get(path)? {
        Value::Array(a) => Ok(a),
        other => Err(CtlError::new(super::EX_SOFTWARE, format!("expected a list from {path}, got {other}"))),
    }
}

/// The vhost of `-p` must exist for a per-vhost list.
fn vhost_list(c: &Ctx, what: &str) -> R<Vec<Value>> {
    let path = format!("/api/{what}/{}", seg(&c.vhost));
    match c.client.try_get(&path)? {
        Ok(Value::Array(a)) => Ok(a),
        Ok(other) => {
            Err(CtlError::new(super::EX_SOFTWARE, format!("expected a list from {path}, got {other}")))
        }
        Err(r) if r.status == reqwest::StatusCode::NOT_FOUND => {
            Err(CtlError::data(format!("virtual host '{}' does not exist", c.vhost)))
        }
        Err(r) => Err(c.client.refused(r)),
    }
}

const QUEUE_COLUMNS: &[&str] = &[
    "name",
    "vhost",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
    "message_bytes",
    "message_bytes_ready",
    "message_bytes_unacknowledged",
    "messages_paged_out",
    "consumers",
    "durable",
    "auto_delete",
    "exclusive",
    "exclusive_consumer_tag",
    "arguments",
    "node",
    "policy",
    "operator_policy",
    "effective_policy_definition",
    "state",
    "type",
];

pub fn queues(c: &Ctx, columns: &[String]) -> R<()> {
    let items = vhost_list(c, "queues")?;
    c.out.info(&format!("Listing queues for vhost {} ...", c.vhost));
    table(c, &items, columns, &["name", "messages"], QUEUE_COLUMNS, field)
}

pub fn exchanges(c: &Ctx, columns: &[String]) -> R<()> {
    let items = vhost_list(c, "exchanges")?;
    c.out.info(&format!("Listing exchanges for vhost {} ...", c.vhost));
    let valid = ["name", "vhost", "type", "durable", "auto_delete", "internal", "arguments", "policy"];
    table(c, &items, columns, &["name", "type"], &valid, field)
}

pub fn bindings(c: &Ctx, columns: &[String]) -> R<()> {
    let items = vhost_list(c, "bindings")?;
    c.out.info(&format!("Listing bindings for vhost {}...", c.vhost));
    let defaults =
        ["source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"];
    let mut valid = defaults.to_vec();
    valid.extend(["vhost", "properties_key"]);
    table(c, &items, columns, &defaults, &valid, |b, col| match col {
        "source_name" => field(b, "source"),
        "source_kind" => Value::from("exchange"),
        "destination_name" => field(b, "destination"),
        "destination_kind" => field(b, "destination_type"),
        other => field(b, other),
    })
}

const CONNECTION_COLUMNS: &[&str] = &[
    "name",
    "user",
    "vhost",
    "peer_host",
    "peer_port",
    "host",
    "port",
    "state",
    "type",
    "protocol",
    "auth_mechanism",
    "ssl",
    "channels",
    "channel_max",
    "frame_max",
    "timeout",
    "connected_at",
    "client_properties",
    "recv_oct",
    "send_oct",
    "node",
];

pub fn connections(c: &Ctx, columns: &[String]) -> R<()> {
    let items = list(c, "/api/connections")?;
    c.out.info("Listing connections ...");
    table(c, &items, columns, &["user", "peer_host", "peer_port", "state"], CONNECTION_COLUMNS, field)
}

pub fn channels(c: &Ctx, columns: &[String]) -> R<()> {
    let items = list(c, "/api/channels")?;
    c.out.info("Listing channels ...");
    let valid = [
        "pid",
        "name",
        "user",
        "vhost",
        "number",
        "connection",
        "consumer_count",
        "messages_unacknowledged",
        "prefetch_count",
        "global_prefetch_count",
        "confirm",
        "transactional",
        "state",
        "node",
    ];
    let defaults = ["pid", "user", "consumer_count", "messages_unacknowledged"];
    table(c, &items, columns, &defaults, &valid, |ch, col| match col {
        "pid" => field(ch, "name"),
        "connection" => field(ch, "connection_details.name"),
        other => field(ch, other),
    })
}

pub fn consumers(c: &Ctx, columns: &[String]) -> R<()> {
    let items = vhost_list(c, "consumers")?;
    c.out.info(&format!("Listing consumers in vhost {} ...", c.vhost));
    let defaults = [
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
    ];
    let mut valid = defaults.to_vec();
    valid.extend(["exclusive", "activity_status", "vhost", "connection"]);
    table(c, &items, columns, &defaults, &valid, |x, col| match col {
        "queue_name" => field(x, "queue.name"),
        "vhost" => field(x, "queue.vhost"),
        "channel_pid" => field(x, "channel_details.name"),
        "connection" => field(x, "channel_details.connection_name"),
        other => field(x, other),
    })
}
