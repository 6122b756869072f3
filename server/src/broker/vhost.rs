//! A virtual host: its own namespace of exchanges and queues.
//!
//! Each map sits behind a `RwLock`; lookups (every publish) take the read
//! side briefly, declarations and deletions the write side. The default
//! exchange has no binding table: it routes by looking the routing key up in
//! the queue map, which is what "every queue is bound to it by its name"
//! means.

use std::sync::Arc;

use amq_protocol::types::FieldTable;
use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::args;
use super::consumer::{Consumer, Outbound};
use super::error::{BrokerError, Result, rs};
use super::exchange::{Binding, BindingInfo, DestKind, Destination, Exchange, RouteTargets};
use super::policy::VhostPolicies;
use super::queue::{Queue, QueueConfig};
use crate::definitions::ExchangeType;
use crate::store::Stores;

pub struct VHost {
    pub name: Arc<str>,
    meta: RwLock<VhostMeta>,
    exchanges: RwLock<FxHashMap<Arc<str>, Arc<Exchange>>>,
    queues: RwLock<FxHashMap<Arc<str>, Arc<Queue>>>,
    /// Direct reply-to pseudo-queues, by name; they are not in `queues`.
    pub(super) reply_queues: RwLock<FxHashMap<Arc<str>, Arc<Queue>>>,
    policies: RwLock<VhostPolicies>,
    stores: Option<Arc<Stores>>,
}

/// A vhost's description and tags, which may change after creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VhostMeta {
    pub description: String,
    pub tags: Vec<String>,
}

/// What declaring a queue did.
pub struct QueueDeclared {
    pub queue: Arc<Queue>,
    pub created: bool,
}

pub struct ExchangeSpec<'a> {
    pub name: &'a str,
    pub kind: ExchangeType,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

pub struct QueueSpec<'a> {
    pub name: &'a str,
    pub durable: bool,
    pub auto_delete: bool,
    pub exclusive_owner: Option<u64>,
    pub arguments: FieldTable,
}

/// The exchanges every vhost starts with, as in RabbitMQ.
const PREDECLARED: &[(&str, ExchangeType, bool)] = &[
    ("", ExchangeType::Direct, false),
    ("amq.direct", ExchangeType::Direct, false),
    ("amq.fanout", ExchangeType::Fanout, false),
    ("amq.topic", ExchangeType::Topic, false),
    ("amq.headers", ExchangeType::Headers, false),
    ("amq.match", ExchangeType::Headers, false),
    ("amq.rabbitmq.trace", ExchangeType::Topic, true),
];

impl VHost {
    pub fn new(name: &str, description: String, tags: Vec<String>, stores: Option<Arc<Stores>>) -> Self {
        let name: Arc<str> = name.into();
        let mut exchanges = FxHashMap::default();
        for (xname, kind, internal) in PREDECLARED {
            let x = Exchange::new(
                (*xname).into(),
                name.clone(),
                *kind,
                true,
                false,
                *internal,
                FieldTable::default(),
            );
            exchanges.insert(x.name.clone(), Arc::new(x));
        }
        VHost {
            name,
            meta: RwLock::new(VhostMeta { description, tags }),
            exchanges: RwLock::new(exchanges),
            queues: RwLock::new(FxHashMap::default()),
            reply_queues: RwLock::new(FxHashMap::default()),
            policies: RwLock::new(VhostPolicies::default()),
            stores,
        }
    }

    pub fn meta(&self) -> VhostMeta {
        self.meta.read().clone()
    }

    pub fn set_meta(&self, meta: VhostMeta) {
        *self.meta.write() = meta;
    }

    pub fn exchange(&self, name: &str) -> Option<Arc<Exchange>> {
        self.exchanges.read().get(name).cloned()
    }

    pub fn queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues.read().get(name).cloned()
    }

    pub fn exchanges(&self) -> Vec<Arc<Exchange>> {
        self.exchanges.read().values().cloned().collect()
    }

    pub fn queues(&self) -> Vec<Arc<Queue>> {
        self.queues.read().values().cloned().collect()
    }

    pub fn queue_count(&self) -> usize {
        self.queues.read().len()
    }

    pub fn exchange_count(&self) -> usize {
        self.exchanges.read().len()
    }

    fn exchange_or_404(&self, name: &str) -> Result<Arc<Exchange>> {
        self.exchange(name)
            .ok_or_else(|| BrokerError::not_found(format!("no {}", rs("exchange", name, &self.name))))
    }

    pub fn queue_or_404(&self, name: &str) -> Result<Arc<Queue>> {
        self.queue(name)
            .ok_or_else(|| BrokerError::not_found(format!("no {}", rs("queue", name, &self.name))))
    }

    /// Routes a message; the default exchange routes by queue name.
    pub fn route(
        &self,
        exchange: &Exchange,
        key: &str,
        headers: Option<&FieldTable>,
        out: &mut RouteTargets,
    ) {
        if exchange.is_default() {
            if let Some(q) = self.queues.read().get(key) {
                out.push(q.clone());
            } else if key.starts_with(super::publish::REPLY_TO)
                && let Some(q) = self.reply_queue(key)
            {
                out.push(q);
            }
        } else {
            exchange.route(key, headers, out);
        }
    }

    pub fn declare_exchange(&self, spec: ExchangeSpec<'_>) -> Result<(Arc<Exchange>, bool)> {
        let mut map = self.exchanges.write();
        if let Some(x) = map.get(spec.name) {
            let resource = rs("exchange", spec.name, &self.name);
            if x.kind != spec.kind {
                return Err(args::inequivalent_flag("type", &resource, spec.kind.as_str(), x.kind.as_str()));
            }
            for (key, want, have) in [
                ("durable", spec.durable, x.durable),
                ("auto_delete", spec.auto_delete, x.auto_delete),
                ("internal", spec.internal, x.internal),
            ] {
                if want != have {
                    return Err(args::inequivalent_flag(
                        key,
                        &resource,
                        &want.to_string(),
                        &have.to_string(),
                    ));
                }
            }
            args::assert_exchange_args_equivalent(&x.arguments, &spec.arguments, &resource)?;
            return Ok((x.clone(), false));
        }
        let x = Arc::new(Exchange::new(
            spec.name.into(),
            self.name.clone(),
            spec.kind,
            spec.durable,
            spec.auto_delete,
            spec.internal,
            spec.arguments,
        ));
        x.apply_policy(&self.policies.read());
        map.insert(x.name.clone(), x.clone());
        Ok((x, true))
    }

    /// Deletes an exchange and every binding from or to it. Deleting an
    /// exchange that does not exist succeeds, as in RabbitMQ.
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<Option<Arc<Exchange>>> {
        let x = {
            let mut map = self.exchanges.write();
            let Some(x) = map.get(name).cloned() else {
                return Ok(None);
            };
            if if_unused && x.binding_count() > 0 {
                return Err(BrokerError::precondition_failed(format!(
                    "{} in use",
                    rs("exchange", name, &self.name)
                )));
            }
            map.remove(name);
            x
        };
        x.mark_deleted();
        let dest = Destination::Exchange(x.clone());
        for other in self.exchanges() {
            other.unbind_destination(&dest);
        }
        // Drop the outgoing bindings too, so exchanges bound in a loop free
        // each other.
        x.clear_bindings();
        Ok(Some(x))
    }

    pub fn policies(&self) -> VhostPolicies {
        self.policies.read().clone()
    }

    /// Replaces the vhost's policies and applies them to every queue and
    /// exchange at once.
    pub fn set_policies(&self, policies: VhostPolicies) {
        *self.policies.write() = policies.clone();
        for q in self.queues() {
            q.set_config(QueueConfig::resolve(&q.name, &q.arguments, &policies));
        }
        for x in self.exchanges() {
            x.apply_policy(&policies);
        }
    }

    /// Creates a direct reply-to pseudo-queue for one channel's consumer:
    /// not listed, not bound, gone with the channel.
    pub fn new_reply_queue(self: &Arc<Self>, name: &str, owner: u64) -> Arc<Queue> {
        let q = Arc::new(Queue::new(
            name.into(),
            self.name.clone(),
            false,
            false,
            Some(owner),
            FieldTable::default(),
            None,
            Arc::downgrade(self),
            QueueConfig::default(),
        ));
        self.add_reply_queue(q.clone());
        q
    }

    pub fn declare_queue(self: &Arc<Self>, spec: QueueSpec<'_>) -> Result<QueueDeclared> {
        let resource = rs("queue", spec.name, &self.name);
        let mut map = self.queues.write();
        if let Some(q) = map.get(spec.name) {
            if q.exclusive_owner != spec.exclusive_owner {
                return Err(locked(&resource));
            }
            if q.durable != spec.durable {
                return Err(args::inequivalent_flag(
                    "durable",
                    &resource,
                    &spec.durable.to_string(),
                    &q.durable.to_string(),
                ));
            }
            if q.auto_delete != spec.auto_delete {
                return Err(args::inequivalent_flag(
                    "auto_delete",
                    &resource,
                    &spec.auto_delete.to_string(),
                    &q.auto_delete.to_string(),
                ));
            }
            args::assert_queue_args_equivalent(&q.arguments, &spec.arguments, &resource)?;
            return Ok(QueueDeclared { queue: q.clone(), created: false });
        }
        args::validate_queue_args(&spec.arguments, spec.name, &self.name)?;
        if QueueConfig::target(&spec.arguments) == super::policy::Target::QuorumQueue {
            // Quorum queues are durable, shared and long-lived by definition.
            let bad = if !spec.durable {
                Some("non-durable")
            } else if spec.auto_delete {
                Some("auto-delete")
            } else if spec.exclusive_owner.is_some() {
                Some("exclusive-owner")
            } else {
                None
            };
            if let Some(property) = bad {
                return Err(BrokerError::precondition_failed(format!(
                    "invalid property '{property}' for {resource}"
                )));
            }
        }
        let q = Arc::new(Queue::new(
            spec.name.into(),
            self.name.clone(),
            spec.durable,
            spec.auto_delete,
            spec.exclusive_owner,
            spec.arguments.clone(),
            self.stores.clone(),
            Arc::downgrade(self),
            QueueConfig::resolve(spec.name, &spec.arguments, &self.policies.read()),
        ));
        map.insert(q.name.clone(), q.clone());
        Ok(QueueDeclared { queue: q, created: true })
    }

    /// Deletes a queue with its bindings; its consumers are told with a
    /// basic.cancel. Returns the number of ready messages it held. Deleting a
    /// queue that does not exist succeeds with 0, as in RabbitMQ.
    pub fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        requester: Option<u64>,
    ) -> Result<Option<(Arc<Queue>, u64, Vec<Arc<str>>)>> {
        let q = {
            let mut map = self.queues.write();
            let Some(q) = map.get(name).cloned() else {
                return Ok(None);
            };
            check_exclusive(&q, requester, &self.name)?;
            let counts = q.counts();
            if if_unused && counts.consumers > 0 {
                return Err(BrokerError::precondition_failed(format!(
                    "{} in use",
                    rs("queue", name, &self.name)
                )));
            }
            if if_empty && counts.ready > 0 {
                return Err(BrokerError::precondition_failed(format!(
                    "{} not empty",
                    rs("queue", name, &self.name)
                )));
            }
            map.remove(name);
            q
        };
        let (purged, consumers) = q.delete();
        notify_cancelled(consumers);
        let dest = Destination::Queue(q.clone());
        let mut emptied = Vec::new();
        for x in self.exchanges() {
            if x.unbind_destination(&dest) > 0 && x.auto_delete && x.binding_count() == 0 {
                emptied.push(x.name.clone());
            }
        }
        // Auto-delete exchanges left without bindings go too; the caller
        // persists their deletion.
        emptied.retain(|x| self.delete_exchange(x, true).is_ok_and(|d| d.is_some()));
        Ok(Some((q, purged, emptied)))
    }

    /// `kind` as definition commands carry it ([`DestKind::as_str`]).
    fn destination(&self, kind: &str, name: &str) -> Result<Destination> {
        Ok(match DestKind::from_name(kind) {
            DestKind::Exchange => Destination::Exchange(self.exchange_or_404(name)?),
            DestKind::Queue => Destination::Queue(self.queue_or_404(name)?),
        })
    }

    pub fn bind(
        &self,
        source: &str,
        destination_kind: &str,
        destination: &str,
        routing_key: &str,
        arguments: FieldTable,
        requester: Option<u64>,
    ) -> Result<bool> {
        let x = self.exchange_or_404(source)?;
        let dest = self.destination(destination_kind, destination)?;
        if let Destination::Queue(q) = &dest {
            check_exclusive(q, requester, &self.name)?;
        }
        Ok(x.bind(Binding { destination: dest, routing_key: routing_key.into(), arguments }))
    }

    /// Removes a binding. Returns whether it existed (removing one that does
    /// not exist succeeds, as in RabbitMQ) and the source exchange when it
    /// was auto-delete and has now gone.
    pub fn unbind(
        &self,
        source: &str,
        destination_kind: &str,
        destination: &str,
        routing_key: &str,
        arguments: FieldTable,
        requester: Option<u64>,
    ) -> Result<(bool, Option<Arc<str>>)> {
        let x = self.exchange_or_404(source)?;
        let dest = self.destination(destination_kind, destination)?;
        if let Destination::Queue(q) = &dest {
            check_exclusive(q, requester, &self.name)?;
        }
        let removed = x.unbind(&Binding { destination: dest, routing_key: routing_key.into(), arguments });
        if removed
            && x.auto_delete
            && x.binding_count() == 0
            && let Ok(Some(gone)) = self.delete_exchange(&x.name, true)
        {
            return Ok((true, Some(gone.name.clone())));
        }
        Ok((removed, None))
    }

    pub fn bindings(&self) -> Vec<BindingInfo> {
        let mut out = Vec::new();
        for q in self.queues() {
            out.push(BindingInfo {
                source: "".into(),
                destination: q.name.clone(),
                destination_kind: DestKind::Queue,
                routing_key: q.name.as_ref().into(),
                arguments: FieldTable::default(),
            });
        }
        for x in self.exchanges() {
            out.extend(x.bindings());
        }
        out
    }

    /// Removes everything (vhost deletion). Consumers are cancelled.
    pub fn clear(&self) -> Vec<Arc<Queue>> {
        let queues: Vec<Arc<Queue>> = self.queues.write().drain().map(|(_, q)| q).collect();
        for q in &queues {
            let (_, consumers) = q.delete();
            notify_cancelled(consumers);
        }
        for x in self.exchanges.write().drain().map(|(_, x)| x) {
            x.mark_deleted();
        }
        queues
    }
}

fn locked(resource: &str) -> BrokerError {
    BrokerError::resource_locked(format!(
        "cannot obtain exclusive access to locked {resource}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
    ))
}

/// An exclusive queue may only be used by the connection that declared it.
/// `requester` is None for the management API, which RabbitMQ also lets
/// through.
pub fn check_exclusive(q: &Queue, requester: Option<u64>, vhost: &str) -> Result<()> {
    match (q.exclusive_owner, requester) {
        (Some(owner), Some(r)) if owner != r => Err(locked(&rs("queue", &q.name, vhost))),
        _ => Ok(()),
    }
}

fn notify_cancelled(consumers: Vec<Arc<Consumer>>) {
    for c in consumers {
        c.outbox.clone().push(Outbound::Cancelled { consumer: c });
    }
}
