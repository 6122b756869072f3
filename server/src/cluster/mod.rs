//! Clustering (see `docs/cluster.md`): several nodes sharing their metadata
//! through a Raft group, over authenticated links.
//!
//! - [`secret`]: the shared cluster secret (RabbitMQ's Erlang cookie).
//! - [`link`]: the authenticated inter-node connection and its calls.
//! - [`node`]: this node's place in the cluster: forming, joining,
//!   leaving, proposing changes, and the members' status.
//! - [`types`], [`log_store`], [`state_machine`], [`network`]: the
//!   metadata Raft group as openraft sees it: its types, its log in
//!   `definitions.db`, the broker as its state machine, and its RPCs over
//!   the link.
//! - [`replicated`]: replicated queues, a Raft group each, over
//!   [`wal`], the node's one write-ahead log shared by every group.
//! - [`liveness`]: which members answer; a queue whose home does not is
//!   down.
//! - [`remote`]: the backend of queues homed on other nodes, which the
//!   broker's queues call (the broker owns the trait), built on
//!   [`forward`] (publishes forwarded to the home) and [`consume`]
//!   (consumers, gets, purges and settles served by the home over the
//!   link).
//! - [`wal`]: the node's one write-ahead log, shared by the Raft groups of
//!   every replicated queue, with group commit.
//!
//! The cluster is a layer above the broker: it implements the broker's
//! `Consensus` (metadata changes through the Raft group) and
//! `QueueBackends` traits, installed at start, and otherwise uses the
//! broker's public API.

// openraft's StorageError is large by design; it is the trait's error type.
#![allow(clippy::result_large_err)]

pub mod consume;
pub mod forward;
pub mod link;
pub mod liveness;
pub mod log_store;
pub mod network;
pub mod node;
pub mod remote;
pub mod replicated;
pub mod resync;
pub mod secret;
pub mod state_machine;
pub mod tls;
pub mod types;
pub mod wal;

/// A node's Raft id: the first 8 bytes of the SHA-256 of its name, so that
/// every node computes every other node's id alike.
pub fn node_id(name: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(name.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}
