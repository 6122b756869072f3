//! A replicated queue as its queue core sees it (quorum queues, and queues
//! matched by an `ha-mode` policy). Its messages are kept by a Raft group
//! whose members are several nodes; one of them, the group's leader, serves
//! the queue with its ordinary core (`QueueState` in this module's parent),
//! and the others reach that node through the queue's backend.
//!
//! On the leader, the group's log is the queue's message store: a published
//! message is appended to the log (the publisher's confirm waits until a
//! majority has it on disk), and every message that leaves the queue (ack,
//! reject, drop, expiry, purge) is removed through it. Deliveries are
//! recorded too, so that a new leader hands out again what the old one had
//! delivered with `redelivered` set. The log itself, its members and its
//! elections belong to the cluster, which implements [`ReplicaLog`].
//!
//! A replicated queue never uses the node's message store; so in it, a
//! message's `StoreRef` names the message's id in the log (see
//! [`ref_of`]).

use std::sync::Arc;

use super::backend::Accepted;
use crate::broker::message::Message;
use crate::store::messages::StoreRef;

/// How a replicated queue chooses its members (from its arguments or its
/// policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `x-queue-type: quorum`, with `x-quorum-initial-group-size`.
    Quorum { initial: Option<u64> },
    /// `ha-mode: all`.
    All,
    /// `ha-mode: exactly`, `ha-params: N`.
    Exactly(u64),
    /// `ha-mode: nodes`, `ha-params: [names]`.
    Nodes(Vec<String>),
}

impl Replication {
    /// The members for a queue declared on `home` in a cluster of
    /// `nodes`: the home first, then the next nodes by name (wrapping
    /// around), so that every node computes the same set.
    pub fn members(&self, home: &str, nodes: &[String]) -> Vec<String> {
        let mut sorted: Vec<&String> = nodes.iter().collect();
        sorted.sort();
        sorted.dedup();
        let start = sorted.iter().position(|n| *n == home).unwrap_or(0);
        let ring: Vec<String> =
            sorted.iter().cycle().skip(start).take(sorted.len()).map(|s| (*s).clone()).collect();
        let take = |n: u64| ring.iter().take(n.max(1) as usize).cloned().collect::<Vec<_>>();
        match self {
            Replication::Quorum { initial } => take(initial.unwrap_or(3)),
            Replication::All => ring,
            Replication::Exactly(n) => take(*n),
            // The home stays a member: its node holds the queue when a
            // policy makes it replicated.
            Replication::Nodes(names) => {
                ring.iter().filter(|n| *n == home || names.contains(n)).cloned().collect()
            }
        }
    }

    /// RabbitMQ's name of the queue's type.
    pub fn kind(&self) -> &'static str {
        match self {
            Replication::Quorum { .. } => "quorum",
            _ => "classic",
        }
    }
}

/// A replicated queue's log, on the node that leads its group.
pub trait ReplicaLog: Send + Sync {
    /// Appends `msg`: its id in the log, and the answer (true once a
    /// majority of the members has it on disk).
    fn append(&self, msg: &Arc<Message>) -> (u64, Accepted);
    /// Records that the message was handed to a consumer that must ack it.
    fn delivered(&self, id: u64);
    /// The message left the queue for good.
    fn remove(&self, id: u64);
    /// The message with this id, while it is in the queue.
    fn read(&self, id: u64) -> Option<Arc<Message>>;
}

/// A message of a replicated queue, as a new leader loads it.
pub struct Replicated {
    pub id: u64,
    pub msg: Arc<Message>,
    /// It was delivered by a former leader and not settled.
    pub delivered: bool,
}

/// Marks a `StoreRef` that names a message in a replicated queue's log
/// rather than in the node's message store (whose segment numbers never
/// come near it). A queue made replicated by a policy may still hold
/// messages of the message store until they are settled.
const REPLICA_BIT: u32 = 1 << 31;

/// The `StoreRef` that stands for message `id` (below 2^63) in a
/// replicated queue.
pub fn ref_of(id: u64, body_len: usize) -> StoreRef {
    StoreRef { segment: REPLICA_BIT | (id >> 32) as u32, offset: id as u32, len: body_len as u32 }
}

pub fn is_replica_ref(r: StoreRef) -> bool {
    r.segment & REPLICA_BIT != 0
}

/// The id of a replicated queue's message from its `StoreRef`.
pub fn id_of(r: StoreRef) -> u64 {
    (u64::from(r.segment & !REPLICA_BIT) << 32) | u64::from(r.offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn members_start_at_the_home_and_wrap() {
        let nodes = names(&["c", "a", "b"]);
        assert_eq!(Replication::All.members("b", &nodes), names(&["b", "c", "a"]));
        assert_eq!(Replication::Exactly(2).members("c", &nodes), names(&["c", "a"]));
        assert_eq!(
            Replication::Quorum { initial: None }.members("a", &names(&["a", "b"])),
            names(&["a", "b"])
        );
        assert_eq!(Replication::Nodes(names(&["a", "x"])).members("b", &nodes), names(&["b", "a"]));
    }

    #[test]
    fn ids_survive_their_store_ref() {
        for id in [0, 1, u64::from(u32::MAX) + 7, u64::MAX >> 1] {
            assert!(is_replica_ref(ref_of(id, 10)));
            assert_eq!(id_of(ref_of(id, 10)), id);
        }
        assert!(!is_replica_ref(StoreRef { segment: 12, offset: 0, len: 1 }));
    }
}
