//! The broker's seam to a cluster's metadata. On a single node the broker
//! applies a definition change itself; once a cluster is installed
//! ([`Broker::install_consensus`](super::Broker::install_consensus)) every
//! change is proposed to it instead, and comes back through the committed
//! log to be applied on every node alike. The broker owns this trait and
//! never names the cluster that implements it (`cluster::node`), as an
//! application plugs a state machine into openraft.

use futures_util::future::BoxFuture;

use super::Applied;
use super::error::Result;
use crate::definitions::DefinitionCommand;

pub trait Consensus: Send + Sync {
    /// Whether this node is a member of a running cluster now; when it is
    /// not, the broker applies changes itself.
    fn is_clustered(&self) -> bool;
    /// This node's name in the cluster.
    fn node_name(&self) -> &str;
    /// Commits `cmd` through the cluster and returns what applying it did
    /// on this node (a declare-ok, or the refusal every node reached).
    fn propose(&self, cmd: DefinitionCommand) -> BoxFuture<'_, Result<Applied>>;
}
