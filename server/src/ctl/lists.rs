//! `list_queues`, `list_exchanges`, `list_bindings`, `list_connections`,
//! `list_channels`, `list_consumers`: rabbitmqctl's column names (its info
//! keys) read from the API's objects, with its default columns. [`Row`]
//! says how each kind of object answers to those names; the other verb
//! families list their objects through [`table`] too.

use serde::de::DeserializeOwned;
use serde_json::Value;
use warren_api_types::objects::{Binding, Channel, Connection, Consumer, Exchange, Queue};

use super::client::seg;
use super::{CtlError, Ctx, R};

/// An API object listed as a row of rabbitmqctl's columns.
pub trait Row: DeserializeOwned {
    /// The columns it has, in the order a usage error lists them.
    const COLUMNS: &'static [&'static str];
    /// The value under `column`, one of [`Row::COLUMNS`].
    fn cell(&self, column: &str) -> Value;
}

/// Prints `items` under `columns` (or `defaults`); a column the kind of
/// object does not have is a usage error, as in rabbitmqctl.
pub fn table<T: Row>(c: &Ctx, items: &[T], columns: &[String], defaults: &[&str]) -> R<()> {
    let columns: Vec<String> =
        if columns.is_empty() { defaults.iter().map(|s| s.to_string()).collect() } else { columns.to_vec() };
    for col in &columns {
        if !T::COLUMNS.contains(&col.as_str()) {
            return Err(CtlError::usage(format!(
                "invalid column '{col}'; valid columns are: {}",
                T::COLUMNS.join(", ")
            )));
        }
    }
    let rows: Vec<Vec<Value>> =
        items.iter().map(|it| columns.iter().map(|col| it.cell(col)).collect()).collect();
    c.out.rows(&columns, &rows);
    Ok(())
}

/// The vhost of `-p` must exist for a per-vhost list.
fn vhost_list<T: Row>(c: &Ctx, what: &str) -> R<Vec<T>> {
    let path = format!("/api/{what}/{}", seg(&c.vhost));
    match c.client.try_get(&path)? {
        Ok(items) => Ok(items),
        Err(r) if r.status == reqwest::StatusCode::NOT_FOUND => {
            Err(CtlError::data(format!("virtual host '{}' does not exist", c.vhost)))
        }
        Err(r) => Err(c.client.refused(r)),
    }
}

impl Row for Queue {
    const COLUMNS: &'static [&'static str] = &[
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
        "leader",
        "members",
        "online",
    ];
    fn cell(&self, column: &str) -> Value {
        match column {
            "name" => self.name.as_str().into(),
            "vhost" => self.vhost.as_str().into(),
            "messages" => self.totals.messages.into(),
            "messages_ready" => self.totals.messages_ready.into(),
            "messages_unacknowledged" => self.totals.messages_unacknowledged.into(),
            "message_bytes" => self.message_bytes.into(),
            "message_bytes_ready" => self.message_bytes_ready.into(),
            "message_bytes_unacknowledged" => self.message_bytes_unacknowledged.into(),
            "messages_paged_out" => self.messages_paged_out.into(),
            "consumers" => self.consumers.into(),
            "durable" => self.durable.into(),
            "auto_delete" => self.auto_delete.into(),
            "exclusive" => self.exclusive.into(),
            "exclusive_consumer_tag" => self.exclusive_consumer_tag.clone().into(),
            "arguments" => self.arguments.clone(),
            "node" => self.node.as_str().into(),
            "policy" => self.policy.clone().into(),
            "operator_policy" => self.operator_policy.clone().into(),
            "effective_policy_definition" => self.effective_policy_definition.clone(),
            "state" => self.state.as_str().into(),
            "type" => self.kind.as_str().into(),
            "leader" => self.leader.clone().into(),
            "members" => self.members.clone().into(),
            "online" => self.online.clone().into(),
            _ => Value::Null,
        }
    }
}

pub fn queues(c: &Ctx, columns: &[String]) -> R<()> {
    let items: Vec<Queue> = vhost_list(c, "queues")?;
    c.out.info(&format!("Listing queues for vhost {} ...", c.vhost));
    table(c, &items, columns, &["name", "messages"])
}

impl Row for Exchange {
    const COLUMNS: &'static [&'static str] =
        &["name", "vhost", "type", "durable", "auto_delete", "internal", "arguments", "policy"];
    fn cell(&self, column: &str) -> Value {
        match column {
            "name" => self.name.as_str().into(),
            "vhost" => self.vhost.as_str().into(),
            "type" => self.kind.as_str().into(),
            "durable" => self.durable.into(),
            "auto_delete" => self.auto_delete.into(),
            "internal" => self.internal.into(),
            "arguments" => self.arguments.clone(),
            "policy" => self.policy.clone().into(),
            _ => Value::Null,
        }
    }
}

pub fn exchanges(c: &Ctx, columns: &[String]) -> R<()> {
    let items: Vec<Exchange> = vhost_list(c, "exchanges")?;
    c.out.info(&format!("Listing exchanges for vhost {} ...", c.vhost));
    table(c, &items, columns, &["name", "type"])
}

impl Row for Binding {
    const COLUMNS: &'static [&'static str] = &[
        "source_name",
        "source_kind",
        "destination_name",
        "destination_kind",
        "routing_key",
        "arguments",
        "vhost",
        "properties_key",
    ];
    fn cell(&self, column: &str) -> Value {
        match column {
            "source_name" => self.source.as_str().into(),
            "source_kind" => "exchange".into(),
            "destination_name" => self.destination.as_str().into(),
            "destination_kind" => self.destination_type.as_str().into(),
            "routing_key" => self.routing_key.as_str().into(),
            "arguments" => self.arguments.clone(),
            "vhost" => self.vhost.as_str().into(),
            "properties_key" => self.properties_key.as_str().into(),
            _ => Value::Null,
        }
    }
}

pub fn bindings(c: &Ctx, columns: &[String]) -> R<()> {
    let items: Vec<Binding> = vhost_list(c, "bindings")?;
    c.out.info(&format!("Listing bindings for vhost {}...", c.vhost));
    // All but `vhost` and `properties_key`, as in rabbitmqctl.
    table(c, &items, columns, &Binding::COLUMNS[..6])
}

impl Row for Connection {
    const COLUMNS: &'static [&'static str] = &[
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
    fn cell(&self, column: &str) -> Value {
        match column {
            "name" => self.name.as_str().into(),
            "user" => self.user.as_str().into(),
            "vhost" => self.vhost.as_str().into(),
            "peer_host" => self.peer_host.as_str().into(),
            "peer_port" => self.peer_port.into(),
            "host" => self.host.as_str().into(),
            "port" => self.port.into(),
            "state" => self.state.as_str().into(),
            "type" => self.kind.as_str().into(),
            "protocol" => self.protocol.as_str().into(),
            "auth_mechanism" => self.auth_mechanism.as_str().into(),
            "ssl" => self.ssl.into(),
            "channels" => self.channels.into(),
            "channel_max" => self.channel_max.into(),
            "frame_max" => self.frame_max.into(),
            "timeout" => self.timeout.into(),
            "connected_at" => self.connected_at.into(),
            "client_properties" => self.client_properties.clone(),
            "recv_oct" => self.recv_oct.into(),
            "send_oct" => self.send_oct.into(),
            "node" => self.node.as_str().into(),
            _ => Value::Null,
        }
    }
}

pub fn connections(c: &Ctx, columns: &[String]) -> R<()> {
    let items: Vec<Connection> = c.client.get("/api/connections")?;
    c.out.info("Listing connections ...");
    table(c, &items, columns, &["user", "peer_host", "peer_port", "state"])
}

impl Row for Channel {
    const COLUMNS: &'static [&'static str] = &[
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
    fn cell(&self, column: &str) -> Value {
        match column {
            "pid" | "name" => self.name.as_str().into(),
            "user" => self.user.as_str().into(),
            "vhost" => self.vhost.as_str().into(),
            "number" => self.number.into(),
            "connection" => self.connection_details.name.as_str().into(),
            "consumer_count" => self.consumer_count.into(),
            "messages_unacknowledged" => self.messages_unacknowledged.into(),
            "prefetch_count" => self.prefetch_count.into(),
            "global_prefetch_count" => self.global_prefetch_count.into(),
            "confirm" => self.confirm.into(),
            "transactional" => self.transactional.into(),
            "state" => self.state.as_str().into(),
            "node" => self.node.as_str().into(),
            _ => Value::Null,
        }
    }
}

pub fn channels(c: &Ctx, columns: &[String]) -> R<()> {
    let items: Vec<Channel> = c.client.get("/api/channels")?;
    c.out.info("Listing channels ...");
    table(c, &items, columns, &["pid", "user", "consumer_count", "messages_unacknowledged"])
}

impl Row for Consumer {
    const COLUMNS: &'static [&'static str] = &[
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
        "exclusive",
        "activity_status",
        "vhost",
        "connection",
    ];
    fn cell(&self, column: &str) -> Value {
        match column {
            "queue_name" => self.queue.name.as_str().into(),
            "channel_pid" => self.channel_details.name.as_str().into(),
            "consumer_tag" => self.consumer_tag.as_str().into(),
            "ack_required" => self.ack_required.into(),
            "prefetch_count" => self.prefetch_count.into(),
            "active" => self.active.into(),
            "arguments" => self.arguments.clone(),
            "exclusive" => self.exclusive.into(),
            "activity_status" => self.activity_status.as_str().into(),
            "vhost" => self.queue.vhost.as_str().into(),
            "connection" => self.channel_details.connection_name.as_str().into(),
            _ => Value::Null,
        }
    }
}

pub fn consumers(c: &Ctx, columns: &[String]) -> R<()> {
    let items: Vec<Consumer> = vhost_list(c, "consumers")?;
    c.out.info(&format!("Listing consumers in vhost {} ...", c.vhost));
    // Up to `arguments`, as in rabbitmqctl.
    table(c, &items, columns, &Consumer::COLUMNS[..7])
}
