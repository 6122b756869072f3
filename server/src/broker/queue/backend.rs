//! Where a queue's messages are kept. A queue's own core (this module's
//! parent) keeps them when this node is the queue's home; otherwise the
//! queue has a [`QueueBackend`] that serves it from elsewhere: today the
//! home node over the cluster link (`cluster::remote`), and with replicated
//! queues, a Raft group. The queue picks; its callers (AMQP, HTTP,
//! dead-lettering) call the queue and never ask where its messages are.
//!
//! The broker owns these traits. The cluster installs a [`QueueBackends`]
//! factory in the broker's [`BackendsHook`] when it starts; a queue homed
//! elsewhere asks it for its backend the first time it needs one.

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use super::{Queue, QueuedMessage};
use crate::broker::consumer::Consumer;
use crate::broker::error::Result;
use crate::broker::exchange::RouteTargets;
use crate::broker::message::Message;

/// How delivered messages are settled where the queue's messages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Settle {
    Ack,
    /// Rejected without requeue: dead-lettered or dropped.
    Discard,
    Requeue,
}

/// Whether a backend took a published message: true once it is enqueued,
/// and on disk when it had to be stored. A dropped sender means no.
pub type Accepted = oneshot::Receiver<bool>;

/// A queue's messages when this node's queue core does not hold them.
/// Messages delivered through a backend carry the backend's id for them
/// in `QueuedMessage::seq`, by which they are settled.
pub trait QueueBackend: Send + Sync {
    /// The node that holds the messages.
    fn node(&self) -> &str;
    /// Whether that node cannot be reached now: the queue is then down.
    fn is_down(&self) -> bool;
    /// Enqueues `msg` in the named queues of `vhost`, all served by this
    /// backend, in the order of calls.
    fn publish(&self, vhost: &str, queues: Vec<String>, msg: &Message) -> Accepted;
    /// Attaches `c`, a consumer on this node: its deliveries reach its
    /// connection's outbox like any other.
    fn consume<'a>(&'a self, q: &'a Arc<Queue>, c: &'a Arc<Consumer>) -> BoxFuture<'a, Result<()>>;
    /// A consumer of `q` on this node goes (cancel, channel close).
    fn cancel(&self, q: &Queue, c: &Arc<Consumer>);
    /// basic.get: a message and how many are left.
    fn get<'a>(&'a self, q: &'a Queue, no_ack: bool) -> BoxFuture<'a, Result<Option<(QueuedMessage, u64)>>>;
    /// Removes every ready message; returns how many there were.
    fn purge<'a>(&'a self, q: &'a Queue) -> BoxFuture<'a, Result<u64>>;
    /// Settles delivered messages by their ids.
    fn settle(&self, q: &Queue, op: Settle, ids: Vec<u64>);
}

/// Makes the backends of queues that are not kept here; installed by the
/// cluster when it starts.
pub trait QueueBackends: Send + Sync {
    /// The backend of the queues homed on `home`, another node.
    fn remote(&self, home: &str) -> Arc<dyn QueueBackend>;
    /// Whether too many bytes of messages wait to be sent to other nodes:
    /// publishers then wait.
    fn behind(&self) -> bool;
    /// A replicated queue was declared (or found at start): the cluster
    /// starts this node's member of its group if it is one, and tells the
    /// queue who leads it.
    fn replicated(&self, q: &Arc<Queue>);
    /// A replicated queue was deleted: its group goes, with its log.
    fn deleted(&self, q: &Queue);
    /// An operator chose a replicated queue's members
    /// ([`Queue::chosen_members`]): this node joins or leaves its group,
    /// or, leading it, changes its voters.
    fn members_chosen(&self, q: &Arc<Queue>);
}

/// Where the broker's queues find the backends, once the cluster is there.
pub type BackendsHook = Arc<OnceLock<Arc<dyn QueueBackends>>>;

/// What became of a message sent to the queues that backends serve.
#[derive(Default)]
pub struct SentElsewhere {
    /// One answer per backend that took the message.
    pub accepted: Vec<Accepted>,
    /// Queues whose messages are on a node that is down (or that this node
    /// cannot reach yet): the message is not in them.
    pub unreachable: usize,
}

/// Sends `msg` to the queues among `targets` that a backend serves, once
/// per backend, and leaves in `targets` the queues held here.
pub fn send_elsewhere(vhost: &str, targets: &mut RouteTargets, msg: &Message) -> SentElsewhere {
    let mut out = SentElsewhere::default();
    // Every publish comes here: the common case is one scan.
    if !targets.iter().any(|q| q.is_remote()) {
        return out;
    }
    let mut groups: Vec<(Arc<dyn QueueBackend>, Vec<String>)> = Vec::new();
    targets.retain(|q| {
        let Some(b) = q.backend() else { return true };
        match b {
            Ok(b) if !b.is_down() => match groups.iter_mut().find(|(g, _)| Arc::ptr_eq(g, &b)) {
                Some((_, names)) => names.push(q.name.to_string()),
                None => groups.push((b.clone(), vec![q.name.to_string()])),
            },
            _ => out.unreachable += 1,
        }
        false
    });
    for (b, names) in groups {
        out.accepted.push(b.publish(vhost, names, msg));
    }
    out
}
