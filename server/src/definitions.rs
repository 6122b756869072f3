//! The vocabulary of definitions: [`DefinitionCommand`], every change to
//! the broker's metadata as a value, and the plain types it carries
//! ([`User`], [`ExchangeType`], the parameter components [`POLICY`],
//! [`OPERATOR_POLICY`] and [`VHOST_LIMITS`]).
//!
//! AMQP methods, the HTTP API, definitions import, recovery from disk and
//! the cluster's metadata Raft group all build a command and hand it to
//! `Broker::apply`, so none of them can disagree about what a change means.
//! The broker applies commands to memory, the definitions store
//! (`store::definitions`) writes them to SQLite, and the cluster carries
//! them in its log. This module is the leaf all three import: it depends on
//! none of them, only on serde and the AMQP field table, so that they need
//! not import each other for their common words.

use amq_protocol::types::FieldTable;

/// The runtime parameter components the broker gives a meaning to (a
/// [`DefinitionCommand::SetParameter`] of any other component is stored and
/// returned as given): policies, operator policies and vhost limits.
pub const POLICY: &str = "policy";
pub const OPERATOR_POLICY: &str = "operator_policy";
pub const VHOST_LIMITS: &str = "vhost-limits";

/// Serializable: in a cluster, commands are the metadata Raft group's log
/// entries and snapshots.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum DefinitionCommand {
    AddVhost {
        name: String,
        description: String,
        tags: Vec<String>,
    },
    DeleteVhost {
        name: String,
    },
    PutUser(User),
    DeleteUser {
        name: String,
    },
    SetPermissions {
        vhost: String,
        user: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        vhost: String,
        user: String,
    },
    /// Sets a runtime parameter; policies are component `policy`.
    SetParameter {
        component: String,
        vhost: String,
        name: String,
        value: serde_json::Value,
    },
    ClearParameter {
        component: String,
        vhost: String,
        name: String,
    },
    SetGlobalParameter {
        name: String,
        value: serde_json::Value,
    },
    ClearGlobalParameter {
        name: String,
    },
    SetTopicPermissions {
        vhost: String,
        user: String,
        exchange: String,
        write: String,
        read: String,
    },
    ClearTopicPermissions {
        vhost: String,
        user: String,
        /// None clears every exchange's topic permissions for the user.
        exchange: Option<String>,
    },
    DeclareExchange {
        vhost: String,
        name: String,
        kind: ExchangeType,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    },
    DeleteExchange {
        vhost: String,
        name: String,
        if_unused: bool,
    },
    DeclareQueue {
        vhost: String,
        name: String,
        durable: bool,
        auto_delete: bool,
        /// The connection owning an exclusive queue.
        exclusive_owner: Option<u64>,
        arguments: FieldTable,
        /// In a cluster, the node holding the queue's messages (the node
        /// that declared it); None on a single node.
        #[serde(default)]
        home: Option<String>,
        /// In a cluster, which declaration of the name this is: the index
        /// of the metadata log entry that created the queue (set when it
        /// is applied; 0 on a single node and for queues declared before
        /// Warren recorded it). A queue deleted and declared again under
        /// the same name is another queue: its replicated group is another
        /// group, and a member that missed the delete drops the old one.
        #[serde(default)]
        incarnation: u64,
    },
    DeleteQueue {
        vhost: String,
        name: String,
        if_unused: bool,
        if_empty: bool,
        /// The connection asking, for the exclusive-queue check; None for
        /// the management side.
        requester: Option<u64>,
    },
    Bind {
        vhost: String,
        source: String,
        destination_kind: String,
        destination: String,
        routing_key: String,
        arguments: FieldTable,
        requester: Option<u64>,
    },
    Unbind {
        vhost: String,
        source: String,
        destination_kind: String,
        destination: String,
        routing_key: String,
        arguments: FieldTable,
        requester: Option<u64>,
    },
    /// The cluster's own, never imported or exported: member `node`
    /// restarted. Its transient queues went with its process, so every
    /// node deletes them; and the node takes the transient entities it
    /// lost from a member that has them (`cluster/state_machine.rs`).
    NodeRestarted {
        node: String,
    },
    /// The cluster's own, never imported or exported: the members an
    /// operator chose for a replicated queue (`add_member`,
    /// `delete_member`, `grow`, `shrink`), which replace those its
    /// arguments or policy choose. Kept with the queue, so that they
    /// outlive a restart of the whole cluster.
    SetQueueMembers {
        vhost: String,
        name: String,
        members: Vec<String>,
    },
}

/// An exchange's type: how it routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "fanout" => Some(Self::Fanout),
            "topic" => Some(Self::Topic),
            "headers" => Some(Self::Headers),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        }
    }
}

/// A user as stored: the broker's `auth` checks logins and permissions
/// against it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub name: String,
    /// Empty means the user has no password and cannot log in with one.
    pub password_hash: String,
    pub hashing_algorithm: String,
    pub tags: Vec<String>,
}

impl User {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
    pub fn is_administrator(&self) -> bool {
        self.has_tag("administrator")
    }
}
