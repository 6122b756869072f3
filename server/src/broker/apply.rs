//! What a [`DefinitionCommand`] does to the broker's memory:
//! [`Broker::apply_in_memory`] and its result, [`Applied`].
//!
//! Callers check permissions and names first; applying checks existence and
//! equivalence and performs the change. Recovery and the cluster's snapshots
//! replay commands through here alone; every other change comes through
//! `commit`, which persists what this did.

use std::sync::Arc;

use super::Broker;
use super::auth::{Permissions, TopicPermission};
use super::error::{BrokerError, Result};
use super::exchange::Exchange;
use super::parameters;
use super::policy::{Policy, VhostPolicies};
use super::queue::Queue;
use super::vhost::{ExchangeSpec, QueueDeclared, QueueSpec, VHost};
use crate::definitions::{DefinitionCommand, OPERATOR_POLICY, POLICY};

/// What a command did, for the caller's reply.
pub enum Applied {
    Done,
    /// Whether the entity was created (false: it existed, or nothing changed).
    Changed(bool),
    Exchange(Arc<Exchange>, bool),
    Queue(QueueDeclared),
    /// A queue was deleted with this many ready messages (0 if it was
    /// absent), and the auto-delete exchanges that lost their last binding
    /// with it and went too.
    QueueDeleted(Option<Arc<Queue>>, u64, Vec<Arc<str>>),
    /// Whether the binding existed, and the auto-delete source exchange
    /// when it went with its last binding.
    Unbound(bool, Option<Arc<str>>),
    /// The transient queues of a restarted node went, and with them these
    /// auto-delete exchanges (vhost, name).
    Swept(Vec<(String, Arc<str>)>),
}

impl Applied {
    /// Exchanges deleted as a side effect, whose deletion must be persisted.
    pub fn exchanges_deleted(&self) -> &[Arc<str>] {
        match self {
            Applied::QueueDeleted(_, _, x) => x,
            Applied::Unbound(_, Some(x)) => std::slice::from_ref(x),
            _ => &[],
        }
    }
}

impl Broker {
    /// Recompiles a vhost's policies after one changed, and applies them to
    /// its queues and exchanges at once.
    fn refresh_policies(&self, vhost: &str, component: &str) {
        if component != POLICY && component != OPERATOR_POLICY {
            return;
        }
        let Some(v) = self.vhost(vhost) else { return };
        let compile = |c: &str| {
            self.parameters.list(Some(c), Some(vhost)).iter().filter_map(Policy::from_parameter).collect()
        };
        v.set_policies(VhostPolicies { policies: compile(POLICY), operator: compile(OPERATOR_POLICY) });
    }

    /// Applies a command to memory only: recovery replays stored commands
    /// through here. Everyone else calls `apply`, which also persists.
    pub(crate) fn apply_in_memory(&self, cmd: DefinitionCommand) -> Result<Applied> {
        use DefinitionCommand::*;
        match cmd {
            AddVhost { name, description, tags } => {
                // Adding an existing vhost updates its description and tags.
                if let Some(v) = self.vhost(&name) {
                    v.set_meta(super::vhost::VhostMeta { description, tags });
                    return Ok(Applied::Changed(false));
                }
                let created =
                    self.insert_vhost(Arc::new(VHost::new(&name, description, tags, self.stores.clone())));
                Ok(Applied::Changed(created))
            }
            DeleteVhost { name } => {
                let Some(v) = self.remove_vhost(&name) else {
                    return Err(BrokerError::not_found(format!("no vhost '{name}'")));
                };
                self.connections.close_vhost(&name, &format!("vhost '{name}' is deleted"));
                v.clear();
                self.auth.clear_vhost(&name);
                self.parameters.clear_vhost(&name);
                Ok(Applied::Done)
            }
            PutUser(user) => {
                let existed = self.auth.user(&user.name).is_some();
                self.auth.put_user(user);
                Ok(Applied::Changed(!existed))
            }
            DeleteUser { name } => {
                if !self.auth.delete_user(&name) {
                    return Err(BrokerError::not_found(format!("no user '{name}'")));
                }
                self.connections.close_user(&name, &format!("user '{name}' is deleted"));
                Ok(Applied::Done)
            }
            SetPermissions { vhost, user, configure, write, read } => {
                self.vhost_or_404(&vhost)?;
                if self.auth.user(&user).is_none() {
                    return Err(BrokerError::not_found(format!("no user '{user}'")));
                }
                let p =
                    Permissions::new(&configure, &write, &read).map_err(BrokerError::precondition_failed)?;
                self.auth.set_permissions(&vhost, &user, p);
                Ok(Applied::Done)
            }
            ClearPermissions { vhost, user } => {
                Ok(Applied::Changed(self.auth.clear_permissions(&vhost, &user)))
            }
            SetParameter { component, vhost, name, value } => {
                self.vhost_or_404(&vhost)?;
                if component == POLICY || component == OPERATOR_POLICY {
                    parameters::validate_policy(&value)?;
                    parameters::validate_policy_keys(&component, &value)?;
                }
                self.parameters.set(&component, &vhost, &name, value);
                self.refresh_policies(&vhost, &component);
                Ok(Applied::Done)
            }
            ClearParameter { component, vhost, name } => {
                let cleared = self.parameters.clear(&component, &vhost, &name);
                self.refresh_policies(&vhost, &component);
                Ok(Applied::Changed(cleared))
            }
            SetGlobalParameter { name, value } => {
                self.parameters.set_global(&name, value);
                Ok(Applied::Done)
            }
            ClearGlobalParameter { name } => Ok(Applied::Changed(self.parameters.clear_global(&name))),
            SetTopicPermissions { vhost, user, exchange, write, read } => {
                self.vhost_or_404(&vhost)?;
                if self.auth.user(&user).is_none() {
                    return Err(BrokerError::not_found(format!("no user '{user}'")));
                }
                let p = TopicPermission::new(&exchange, &write, &read)
                    .map_err(BrokerError::precondition_failed)?;
                self.auth.set_topic_permission(&vhost, &user, p);
                Ok(Applied::Done)
            }
            ClearTopicPermissions { vhost, user, exchange } => {
                Ok(Applied::Changed(self.auth.clear_topic_permissions(&vhost, &user, exchange.as_deref())))
            }
            DeclareExchange { vhost, name, kind, durable, auto_delete, internal, arguments } => {
                let v = self.vhost_or_404(&vhost)?;
                let (x, created) = v.declare_exchange(ExchangeSpec {
                    name: &name,
                    kind,
                    durable,
                    auto_delete,
                    internal,
                    arguments,
                })?;
                Ok(Applied::Exchange(x, created))
            }
            DeleteExchange { vhost, name, if_unused } => {
                let v = self.vhost_or_404(&vhost)?;
                Ok(Applied::Changed(v.delete_exchange(&name, if_unused)?.is_some()))
            }
            DeclareQueue {
                vhost,
                name,
                durable,
                auto_delete,
                exclusive_owner,
                arguments,
                home,
                incarnation,
            } => {
                let v = self.vhost_or_404(&vhost)?;
                let declared = v.declare_queue(QueueSpec {
                    name: &name,
                    durable,
                    auto_delete,
                    exclusive_owner,
                    arguments,
                })?;
                // The first declaration made the queue; a redeclare keeps it.
                let _ = declared.queue.incarnation.set(incarnation);
                if let Some(home) = home {
                    declared.queue.set_home(&home, &self.config.node_name, &self.backends);
                    declared.queue.replicate(declared.queue.config().replication.clone());
                }
                Ok(Applied::Queue(declared))
            }
            DeleteQueue { vhost, name, if_unused, if_empty, requester } => {
                let v = self.vhost_or_404(&vhost)?;
                Ok(match v.delete_queue(&name, if_unused, if_empty, requester)? {
                    Some((q, n, gone)) => {
                        if q.is_replicated()
                            && let Some(b) = self.backends.get()
                        {
                            b.deleted(&q);
                        }
                        Applied::QueueDeleted(Some(q), n, gone)
                    }
                    None => Applied::QueueDeleted(None, 0, Vec::new()),
                })
            }
            Bind { vhost, source, destination_kind, destination, routing_key, arguments, requester } => {
                let v = self.vhost_or_404(&vhost)?;
                let created =
                    v.bind(&source, &destination_kind, &destination, &routing_key, arguments, requester)?;
                Ok(Applied::Changed(created))
            }
            Unbind { vhost, source, destination_kind, destination, routing_key, arguments, requester } => {
                let v = self.vhost_or_404(&vhost)?;
                let (removed, gone) =
                    v.unbind(&source, &destination_kind, &destination, &routing_key, arguments, requester)?;
                Ok(Applied::Unbound(removed, gone))
            }
            NodeRestarted { node } => Ok(Applied::Swept(self.sweep_transient_queues(&node))),
            SetQueueMembers { vhost, name, members } => {
                let v = self.vhost_or_404(&vhost)?;
                let q = v
                    .queue(&name)
                    .ok_or_else(|| BrokerError::not_found(format!("no queue '{name}' in vhost '{vhost}'")))?;
                q.choose_members(members);
                Ok(Applied::Changed(true))
            }
        }
    }

    /// Deletes the transient queues homed on `node`, which restarted: their
    /// messages and consumers went with its process, as RabbitMQ deletes
    /// them. Replicated ones live on in their other members and stay.
    fn sweep_transient_queues(&self, node: &str) -> Vec<(String, Arc<str>)> {
        let mut gone = Vec::new();
        for v in self.vhosts() {
            let doomed: Vec<Arc<str>> = v
                .queues()
                .iter()
                .filter(|q| !q.durable && !q.is_replicated() && q.home.get().is_some_and(|h| &**h == node))
                .map(|q| q.name.clone())
                .collect();
            for name in doomed {
                if let Ok(Some((_, _, exchanges))) = v.delete_queue(&name, false, false, None) {
                    tracing::info!(
                        "transient queue '{name}' in vhost '{}' went with the restart of {node}",
                        v.name
                    );
                    gone.extend(exchanges.into_iter().map(|x| (v.name.to_string(), x)));
                }
            }
        }
        gone
    }
}
