//! What the API returns: one struct per kind of object, with RabbitMQ's field
//! names. `arguments`, `client_properties` and parameter values are free-form
//! JSON, as in RabbitMQ.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stats::{MessageStats, QueueTotals, RateDetails};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    pub name: String,
    pub vhost: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub exclusive: bool,
    pub arguments: Value,
    pub node: String,
    pub state: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// A replicated queue's leader, its members, and the members that are
    /// running (RabbitMQ's quorum queue fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<Vec<String>>,
    pub consumers: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_consumer_tag: Option<String>,
    #[serde(flatten)]
    pub totals: QueueTotals,
    pub message_bytes: u64,
    pub message_bytes_ready: u64,
    pub message_bytes_unacknowledged: u64,
    /// Ready messages kept on disk only (RabbitMQ's `messages_paged_out`).
    #[serde(default)]
    pub messages_paged_out: u64,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub operator_policy: Option<String>,
    /// The settings that came from policies.
    #[serde(default)]
    pub effective_policy_definition: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_stats: Option<MessageStats>,
    /// The queue's consumers: in a single queue's object only, as in
    /// RabbitMQ (lists leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_details: Option<Vec<Consumer>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub name: String,
    pub vhost: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: Value,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_stats: Option<MessageStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub source: String,
    pub vhost: String,
    pub destination: String,
    pub destination_type: String,
    pub routing_key: String,
    pub arguments: Value,
    pub properties_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vhost {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub tracing: bool,
    /// RabbitMQ's field for the type of queues declared without
    /// `x-queue-type`; Warren does not report it yet (always `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
    #[serde(flatten)]
    pub totals: QueueTotals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_stats: Option<MessageStats>,
    pub cluster_state: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub password_hash: String,
    pub hashing_algorithm: String,
    /// RabbitMQ 3.10 returns a list here (older versions a comma-separated
    /// string, which the requests accept too).
    pub tags: Vec<String>,
    pub limits: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPermission {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// A runtime parameter (`/api/parameters`), also the shape of policies'
/// storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub component: String,
    pub vhost: String,
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalParameter {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    #[serde(rename = "apply-to")]
    pub apply_to: String,
    pub definition: Value,
    pub priority: i64,
}

/// `/api/vhost-limits` and `/api/user-limits` items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub value: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub name: String,
    pub node: String,
    pub vhost: String,
    pub user: String,
    pub state: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub protocol: String,
    pub auth_mechanism: String,
    pub host: String,
    pub port: u16,
    pub peer_host: String,
    pub peer_port: u16,
    pub ssl: bool,
    /// `tlsv1.2` or `tlsv1.3` over TLS; null (as in RabbitMQ) otherwise.
    #[serde(default)]
    pub ssl_protocol: Option<String>,
    /// The negotiated cipher suite over TLS; null otherwise.
    #[serde(default)]
    pub ssl_cipher: Option<String>,
    /// Over TLS, the key exchange and MAC as Erlang names them (`any` and
    /// `aead` for TLS 1.3); null otherwise.
    #[serde(default)]
    pub ssl_key_exchange: Option<String>,
    #[serde(default)]
    pub ssl_hash: Option<String>,
    /// The client certificate's subject and issuer (RFC 4514, as RabbitMQ
    /// writes them) and validity (`<not before> - <not after>`); null
    /// without a client certificate.
    #[serde(default)]
    pub peer_cert_subject: Option<String>,
    #[serde(default)]
    pub peer_cert_issuer: Option<String>,
    #[serde(default)]
    pub peer_cert_validity: Option<String>,
    pub channels: u32,
    pub channel_max: u16,
    pub frame_max: u32,
    pub timeout: u16,
    pub connected_at: u64,
    pub client_properties: Value,
    pub recv_oct: u64,
    pub recv_oct_details: RateDetails,
    pub send_oct: u64,
    pub send_oct_details: RateDetails,
}

/// The connection a channel or consumer belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionDetails {
    pub name: String,
    pub peer_host: String,
    pub peer_port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    pub node: String,
    pub number: u16,
    pub vhost: String,
    pub user: String,
    pub state: String,
    pub connection_details: ConnectionDetails,
    pub prefetch_count: u32,
    pub global_prefetch_count: u32,
    pub consumer_count: u32,
    pub messages_unacknowledged: u32,
    pub confirm: bool,
    pub transactional: bool,
    pub message_stats: MessageStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRef {
    pub name: String,
    pub vhost: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRef {
    pub name: String,
    pub number: u16,
    pub connection_name: String,
    pub peer_host: String,
    pub peer_port: u16,
    pub user: String,
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub consumer_tag: String,
    pub queue: QueueRef,
    pub channel_details: ChannelRef,
    pub ack_required: bool,
    pub exclusive: bool,
    pub prefetch_count: u32,
    pub active: bool,
    pub activity_status: String,
    pub arguments: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub node: String,
    pub protocol: String,
    pub ip_address: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectTotals {
    pub connections: u64,
    pub channels: u64,
    pub exchanges: u64,
    pub queues: u64,
    pub consumers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeTypeInfo {
    pub name: String,
    pub description: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub management_version: String,
    pub rates_mode: String,
    pub product_name: String,
    pub product_version: String,
    pub rabbitmq_version: String,
    pub cluster_name: String,
    pub node: String,
    pub exchange_types: Vec<ExchangeTypeInfo>,
    pub listeners: Vec<Listener>,
    pub object_totals: ObjectTotals,
    pub queue_totals: QueueTotals,
    pub message_stats: MessageStats,
    pub statistics_db_event_queue: u64,
    pub disable_stats: bool,
    pub enable_queue_totals: bool,
}

/// A node, with every field RabbitMQ 3.10's `/api/nodes` has. A member
/// of the cluster that does not answer has its figures left out (`None`),
/// as RabbitMQ leaves them out for a stopped node; for the node answering,
/// and for every member that answers it, they are all present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub running: bool,
    pub uptime: u64,
    pub processors: u64,
    pub os_pid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<u64>,
    pub mem_alarm: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_total: Option<u64>,
    pub sockets_used: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets_total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free_limit: Option<u64>,
    pub disk_free_alarm: bool,
    pub exchange_types: Vec<ExchangeTypeInfo>,
    /// Network partitions seen (always empty: Raft has none to report).
    #[serde(default)]
    pub partitions: Vec<String>,
    /// Links to the other members, as RabbitMQ's distribution links.
    #[serde(default)]
    pub cluster_links: Vec<Value>,
    #[serde(flatten)]
    pub details: NodeDetails,
    /// Warren's addition (RabbitMQ's node object has no such field): the
    /// queues this node holds and their messages, so the dashboard can show
    /// depths per node without listing every queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_totals: Option<NodeQueueTotals>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub name: String,
    pub description: String,
    pub version: String,
}

/// A web context (`contexts`): the management listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebContext {
    pub description: String,
    pub path: String,
    /// A string, as RabbitMQ shows its listener options.
    pub port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

macro_rules! node_details {
    (
        figures { $($fig:ident: $fty:ty,)* }
        counters { $($field:ident, $details:ident;)* }
        averages { $($avg:ident, $avg_details:ident;)* }
    ) => {
        /// The rest of RabbitMQ's node fields: settings and figures of the
        /// process, then counters (each with its `_details` rate) as in
        /// RabbitMQ's `node_coarse_stats`, `node_persister_stats` and
        /// connection churn. All are present for the node answering.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct NodeDetails {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $fig: Option<$fty>,
            )*
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<u64>,
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $details: Option<RateDetails>,
            )*
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $avg: Option<f64>,
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $avg_details: Option<RateDetails>,
            )*
        }
    };
}

node_details! {
    figures {
        proc_used: u64,
        proc_total: u64,
        run_queue: u64,
        mem_calculation_strategy: String,
        rates_mode: String,
        auth_mechanisms: Vec<ExchangeTypeInfo>,
        applications: Vec<Application>,
        contexts: Vec<WebContext>,
        log_files: Vec<String>,
        db_dir: String,
        config_files: Vec<String>,
        net_ticktime: u64,
        enabled_plugins: Vec<String>,
        ra_open_file_metrics: std::collections::BTreeMap<String, u64>,
        metrics_gc_queue_length: std::collections::BTreeMap<String, u64>,
        fd_used_details: RateDetails,
        sockets_used_details: RateDetails,
        mem_used_details: RateDetails,
        disk_free_details: RateDetails,
        proc_used_details: RateDetails,
    }
    counters {
        gc_num, gc_num_details;
        gc_bytes_reclaimed, gc_bytes_reclaimed_details;
        context_switches, context_switches_details;
        io_read_count, io_read_count_details;
        io_read_bytes, io_read_bytes_details;
        io_write_count, io_write_count_details;
        io_write_bytes, io_write_bytes_details;
        io_sync_count, io_sync_count_details;
        io_seek_count, io_seek_count_details;
        io_reopen_count, io_reopen_count_details;
        mnesia_ram_tx_count, mnesia_ram_tx_count_details;
        mnesia_disk_tx_count, mnesia_disk_tx_count_details;
        msg_store_read_count, msg_store_read_count_details;
        msg_store_write_count, msg_store_write_count_details;
        queue_index_write_count, queue_index_write_count_details;
        queue_index_read_count, queue_index_read_count_details;
        connection_created, connection_created_details;
        connection_closed, connection_closed_details;
        channel_created, channel_created_details;
        channel_closed, channel_closed_details;
        queue_declared, queue_declared_details;
        queue_created, queue_created_details;
        queue_deleted, queue_deleted_details;
    }
    averages {
        io_read_avg_time, io_read_avg_time_details;
        io_write_avg_time, io_write_avg_time_details;
        io_sync_avg_time, io_sync_avg_time_details;
        io_seek_avg_time, io_seek_avg_time_details;
    }
}

/// Queues held by one node, and the messages in them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeQueueTotals {
    pub queues: u64,
    pub messages: u64,
    pub messages_ready: u64,
    pub messages_unacknowledged: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub name: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterName {
    pub name: String,
}

/// `POST /api/exchanges/{vhost}/{name}/publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    pub routed: bool,
}

/// One message of `POST /api/queues/{vhost}/{name}/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GotMessage {
    pub payload_bytes: u64,
    pub redelivered: bool,
    pub exchange: String,
    pub routing_key: String,
    pub message_count: u64,
    pub properties: Value,
    pub payload: String,
    pub payload_encoding: String,
}

/// `POST /api/login`: the token to send as `Authorization: Bearer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginToken {
    pub token: String,
    pub name: String,
    pub tags: Vec<String>,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// `GET /api/health/checks/...` on success: `{"status": "ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /api/auth/attempts/{node}`: password logins on that node for one
/// protocol (`amqp091`, `http`), as RabbitMQ 3.11+ answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthAttempts {
    pub protocol: String,
    pub auth_attempts: u64,
    pub auth_attempts_failed: u64,
    pub auth_attempts_succeeded: u64,
}

/// `GET /api/auth/attempts/{node}/source`: the same per client address and
/// user name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthAttemptsBySource {
    pub remote_address: String,
    pub username: String,
    pub protocol: String,
    pub auth_attempts: u64,
    pub auth_attempts_failed: u64,
    pub auth_attempts_succeeded: u64,
}
