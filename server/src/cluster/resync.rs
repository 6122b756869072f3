//! A member that restarts takes back the cluster's transient entities.
//!
//! A node keeps only the durable part of the metadata on disk; after a
//! restart it rebuilds that part and replays the metadata log from where
//! its store stopped, so transient exchanges, queues and bindings made
//! before the restart would be missing on it while the others list them.
//! And its own transient queues went with its process.
//!
//! So a restarted node proposes `NodeRestarted { node }` through the
//! metadata log once it is back. Every node applies it at the same index
//! M: it deletes the node's transient queues (`Broker::apply_in_memory`).
//! Every other node whose metadata is whole then sends the restarted node
//! its whole metadata as of M (`Call::Resync`), taken inside its own apply
//! of M, so it is exactly the state at M whatever came after. The
//! restarted node, applying M itself, waits for the first such copy (a
//! few seconds at most) and reconciles its metadata with it, as it would
//! install a snapshot. It is whole from then on. A node that formed or
//! joined the cluster in this process is whole from the start (a joiner
//! installs the cluster's snapshot).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::network::{Call, Reply};
use super::node::Cluster;
use crate::broker::Broker;
use crate::definitions::DefinitionCommand;

/// How long a restarted node waits for a member's copy of the metadata.
const WAIT_FOR_COPY: Duration = Duration::from_secs(3);
/// How long the copy may take to reach the restarted node.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// This node's side of the resynchronisation.
pub struct Resync {
    /// Whether this node's metadata is whole (transient entities included).
    whole: AtomicBool,
    /// Copies other members sent, by the log index of the marker.
    copies: parking_lot::Mutex<HashMap<u64, Vec<DefinitionCommand>>>,
    arrived: Notify,
}

impl Default for Resync {
    fn default() -> Self {
        Resync { whole: AtomicBool::new(true), copies: Default::default(), arrived: Notify::new() }
    }
}

impl Resync {
    /// This node restarted as a member: its metadata lacks the transient
    /// part until the marker it proposes is applied.
    pub fn restarted(&self) {
        self.whole.store(false, Ordering::Release);
    }

    pub fn is_whole(&self) -> bool {
        self.whole.load(Ordering::Acquire)
    }

    /// A member's copy of the metadata at `index` arrived.
    pub fn accept(&self, index: u64, commands: Vec<DefinitionCommand>) -> Reply {
        self.copies.lock().entry(index).or_insert(commands);
        self.arrived.notify_waiters();
        Reply::Done
    }

    /// Waits for a copy for `index`, up to [`WAIT_FOR_COPY`].
    async fn copy_for(&self, index: u64) -> Option<Vec<DefinitionCommand>> {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_COPY;
        loop {
            let arrived = self.arrived.notified();
            if let Some(c) = self.copies.lock().remove(&index) {
                return Some(c);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.copies.lock().remove(&index);
            }
        }
    }
}

impl Cluster {
    /// Called by the state machine right after it applied the marker of
    /// `node`'s restart at `index`. Returns the commands this node must
    /// reconcile its metadata with (when it is the restarted node and a
    /// copy came), whose durable part the caller stores.
    pub(super) async fn restart_applied(
        &self,
        broker: &Arc<Broker>,
        node: &str,
        index: u64,
    ) -> Option<Vec<DefinitionCommand>> {
        if node != self.me.name {
            if self.resync.is_whole()
                && let Some(addr) = self.address_of(node)
            {
                let call = Call::Resync { index, commands: broker.metadata_commands() };
                let peers = self.peers().clone();
                tokio::spawn(async move {
                    if let Err(e) = peers.call(&addr, call, SEND_TIMEOUT).await {
                        tracing::debug!("cannot send the metadata to a restarted member: {e}");
                    }
                });
            }
            return None;
        }
        if self.resync.is_whole() {
            return None;
        }
        let copy = self.resync.copy_for(index).await;
        // Whole or not, it does not wait again: a cluster restarted as a
        // whole has no member with the transient part, as in RabbitMQ.
        self.resync.whole.store(true, Ordering::Release);
        match &copy {
            Some(_) => tracing::info!("took the cluster's transient exchanges, queues and bindings"),
            None => tracing::info!("no member had the cluster's transient entities to give"),
        }
        copy
    }

    /// After a restart as a member: proposes the marker of this node's
    /// restart once the metadata log takes changes (retrying while it
    /// cannot), unless it is the only member.
    pub(super) async fn announce_restart(self: Arc<Self>) {
        let Ok(broker) = self.broker() else { return };
        let cmd = DefinitionCommand::NodeRestarted { node: self.me.name.clone() };
        loop {
            if self.is_clustered() && self.other_members().is_empty() {
                self.resync.whole.store(true, Ordering::Release);
                return;
            }
            match broker.apply(cmd.clone()).await {
                Ok(_) => return,
                Err(e) => tracing::debug!("cannot announce this node's restart yet: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
