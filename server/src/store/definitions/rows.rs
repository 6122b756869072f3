//! The rows the store hands back, and `Snapshot`: everything it holds.

use amq_protocol::types::FieldTable;

use crate::definitions::{DefinitionCommand, ExchangeType, User};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostRow {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// None: the node's default queue type.
    pub default_queue_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRow {
    pub vhost: String,
    pub user: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPermissionRow {
    pub vhost: String,
    pub user: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// A durable exchange (only durable exchanges are stored).
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRow {
    pub vhost: String,
    pub name: String,
    pub kind: ExchangeType,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

/// A durable, non-exclusive queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    /// The queue's key in the message store; never reused.
    pub id: u32,
    pub vhost: String,
    pub name: String,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    /// In a cluster, the node holding the queue's messages.
    pub home: Option<String>,
    /// In a cluster, which declaration of the name this is.
    pub incarnation: u64,
    /// In a cluster, the members an operator chose for it.
    pub members: Option<Vec<String>>,
}

/// A binding between two durable ends.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingRow {
    pub vhost: String,
    pub source: String,
    /// `queue` or `exchange`.
    pub destination_kind: String,
    pub destination: String,
    pub routing_key: String,
    pub arguments: FieldTable,
}

/// A policy or an operator policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    pub apply_to: String,
    /// A JSON object.
    pub definition: serde_json::Value,
    pub priority: i64,
}

/// A per-vhost runtime parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterRow {
    pub component: String,
    pub vhost: String,
    pub name: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GlobalParameterRow {
    pub name: String,
    pub value: serde_json::Value,
}

/// The limits of one vhost or one user, as RabbitMQ's JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsRow {
    /// The vhost's or the user's name.
    pub name: String,
    pub value: serde_json::Value,
}

/// Every stored definition, read in one transaction. Each list is sorted
/// (queues by id, the others by their key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub vhosts: Vec<VhostRow>,
    pub users: Vec<User>,
    pub permissions: Vec<PermissionRow>,
    pub topic_permissions: Vec<TopicPermissionRow>,
    pub exchanges: Vec<ExchangeRow>,
    pub queues: Vec<QueueRow>,
    pub bindings: Vec<BindingRow>,
    pub policies: Vec<PolicyRow>,
    pub operator_policies: Vec<PolicyRow>,
    pub parameters: Vec<ParameterRow>,
    pub global_parameters: Vec<GlobalParameterRow>,
    pub vhost_limits: Vec<LimitsRow>,
    pub user_limits: Vec<LimitsRow>,
}

impl Snapshot {
    /// The snapshot as the commands that rebuild it, in an order `Broker::apply`
    /// accepts: vhosts, users, permissions, exchanges, queues, topic
    /// permissions, policies, limits and parameters, then bindings (which
    /// need both of their ends). User limits and vhosts' default queue types
    /// have no command yet and are left out; read them from the fields.
    pub fn commands(&self) -> Vec<DefinitionCommand> {
        let mut out = Vec::with_capacity(
            self.vhosts.len()
                + self.users.len()
                + self.permissions.len()
                + self.exchanges.len()
                + self.queues.len()
                + self.bindings.len(),
        );
        out.extend(self.vhosts.iter().map(|v| DefinitionCommand::AddVhost {
            name: v.name.clone(),
            description: v.description.clone(),
            tags: v.tags.clone(),
        }));
        out.extend(self.users.iter().cloned().map(DefinitionCommand::PutUser));
        out.extend(self.permissions.iter().map(|p| DefinitionCommand::SetPermissions {
            vhost: p.vhost.clone(),
            user: p.user.clone(),
            configure: p.configure.clone(),
            write: p.write.clone(),
            read: p.read.clone(),
        }));
        out.extend(self.exchanges.iter().map(|x| DefinitionCommand::DeclareExchange {
            vhost: x.vhost.clone(),
            name: x.name.clone(),
            kind: x.kind,
            durable: true,
            auto_delete: x.auto_delete,
            internal: x.internal,
            arguments: x.arguments.clone(),
        }));
        out.extend(self.queues.iter().map(|q| DefinitionCommand::DeclareQueue {
            vhost: q.vhost.clone(),
            name: q.name.clone(),
            durable: true,
            auto_delete: q.auto_delete,
            exclusive_owner: None,
            arguments: q.arguments.clone(),
            home: q.home.clone(),
            incarnation: q.incarnation,
        }));
        out.extend(self.queues.iter().filter_map(|q| {
            Some(DefinitionCommand::SetQueueMembers {
                vhost: q.vhost.clone(),
                name: q.name.clone(),
                members: q.members.clone()?,
            })
        }));
        out.extend(self.topic_permissions.iter().map(|t| DefinitionCommand::SetTopicPermissions {
            vhost: t.vhost.clone(),
            user: t.user.clone(),
            exchange: t.exchange.clone(),
            write: t.write.clone(),
            read: t.read.clone(),
        }));
        let policy = |component: &str, p: &PolicyRow| DefinitionCommand::SetParameter {
            component: component.to_owned(),
            vhost: p.vhost.clone(),
            name: p.name.clone(),
            value: super::extras::policy_value(p),
        };
        out.extend(self.policies.iter().map(|p| policy(crate::definitions::POLICY, p)));
        out.extend(self.operator_policies.iter().map(|p| policy(crate::definitions::OPERATOR_POLICY, p)));
        out.extend(self.vhost_limits.iter().map(|l| DefinitionCommand::SetParameter {
            component: crate::definitions::VHOST_LIMITS.to_owned(),
            vhost: l.name.clone(),
            name: "limits".to_owned(),
            value: l.value.clone(),
        }));
        out.extend(self.parameters.iter().map(|p| DefinitionCommand::SetParameter {
            component: p.component.clone(),
            vhost: p.vhost.clone(),
            name: p.name.clone(),
            value: p.value.clone(),
        }));
        out.extend(
            self.global_parameters.iter().map(|g| DefinitionCommand::SetGlobalParameter {
                name: g.name.clone(),
                value: g.value.clone(),
            }),
        );
        out.extend(self.bindings.iter().map(|b| DefinitionCommand::Bind {
            vhost: b.vhost.clone(),
            source: b.source.clone(),
            destination_kind: b.destination_kind.clone(),
            destination: b.destination.clone(),
            routing_key: b.routing_key.clone(),
            arguments: b.arguments.clone(),
            requester: None,
        }));
        out
    }
}
