//! A replicated queue's Raft group as openraft sees it: what its log
//! entries carry, and its type configuration. Every group on a node shares
//! one type configuration; a group is told apart by its id on the link and
//! in the shared write-ahead log.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::cluster::forward::WireMessage;
use crate::cluster::types::Member;

/// One log entry: what the leader decided since its previous entry, in
/// this order: messages enqueued (with the ids it gave them), messages
/// delivered to consumers that must ack them, and messages that left the
/// queue (acked, rejected, dropped, expired, purged).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ops {
    /// The term of the leadership whose queue core decided these. An
    /// entry that reaches the log in another term (the node lost the lead
    /// and won it again before its old core stopped) is stale and is not
    /// applied: the new leadership's core was loaded without it. 0 (entries
    /// written before terms were recorded) is always applied.
    #[serde(default)]
    pub term: u64,
    pub enqueue: Vec<(u64, WireMessage)>,
    pub delivered: Vec<u64>,
    pub remove: Vec<u64>,
}

impl Ops {
    pub fn is_empty(&self) -> bool {
        self.enqueue.is_empty() && self.delivered.is_empty() && self.remove.is_empty()
    }
}

openraft::declare_raft_types!(
    /// A replicated queue's group.
    pub QueueTypes:
        D = Ops,
        /// Whether the entry was applied (false: stale, see [`Ops::term`]).
        R = bool,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<QueueTypes>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type GroupRaft = openraft::Raft<QueueTypes>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<QueueTypes>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
pub type Snapshot = openraft::Snapshot<QueueTypes>;
pub type StorageError = openraft::StorageError<NodeId>;

/// A queue's group id: from its vhost, name and incarnation (which
/// declaration of the name it is), so that every node computes the same,
/// and a queue declared again under a deleted one's name has another
/// group. Incarnation 0 (queues from before it was recorded) leaves it
/// out, as those groups' ids were computed.
pub fn group_id(q: &crate::broker::queue::Queue) -> u64 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(q.vhost.as_bytes());
    h.update([0]);
    h.update(q.name.as_bytes());
    let incarnation = q.incarnation();
    if incarnation != 0 {
        h.update([0]);
        h.update(incarnation.to_be_bytes());
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}
