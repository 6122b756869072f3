//! A queue whose home is another node of the cluster (a remote queue) has
//! no messages here. The messages its consumers on this node receive come
//! from the home, and settling them (ack, reject, requeue) or detaching a
//! consumer must reach the home: the queue hands those to the cluster
//! through [`RemoteQueues`], installed in the broker's [`RemoteHook`] when
//! the node starts its cluster side.

use std::sync::{Arc, OnceLock};

use super::Queue;
use crate::broker::consumer::Consumer;

/// How delivered messages of a remote queue are settled on its home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RemoteSettle {
    Ack,
    /// Rejected without requeue: dead-lettered or dropped on the home.
    Discard,
    Requeue,
}

pub trait RemoteQueues: Send + Sync {
    /// Settles messages of `q` by the ids their home gave them (the `seq`
    /// of the `QueuedMessage`s delivered here).
    fn settle(&self, q: &Queue, op: RemoteSettle, ids: Vec<u64>);
    /// A consumer of `q` on this node goes (cancel, channel close).
    fn unsubscribe(&self, q: &Queue, c: &Arc<Consumer>);
    /// Whether too many bytes of messages wait to be sent to other nodes:
    /// publishers then wait.
    fn forwarding_behind(&self) -> bool;
    /// Whether the member called `node` is down: its queues are then down.
    fn is_down(&self, node: &str) -> bool;
    /// Sends a message to `q`'s home without waiting for its answer
    /// (dead-lettering, which has no publisher to confirm to).
    fn forward(&self, q: &Arc<Queue>, msg: &crate::broker::message::Message);
}

/// Where the broker's queues find the cluster, once it is there.
pub type RemoteHook = Arc<OnceLock<Arc<dyn RemoteQueues>>>;
