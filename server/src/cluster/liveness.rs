//! Which members of the cluster are reachable: this node pings every other
//! member on the link every [`PING_INTERVAL`], and a member that does not
//! answer within [`PING_TIMEOUT`] is down until it answers again.
//!
//! A queue whose home is down is down too: every operation on it through
//! another node is refused with RabbitMQ's 404 ("home node ... is down or
//! inaccessible") instead of being queued, answered from a stale copy, or
//! served by a node that has none of its messages. A member is up until a
//! ping has failed, so a node that just started does not see every queue as
//! down before its first round.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::Duration;

use super::network::{Call, Reply};
use super::node::Cluster;

pub const PING_INTERVAL: Duration = Duration::from_millis(500);
pub const PING_TIMEOUT: Duration = Duration::from_millis(1000);

#[derive(Default)]
pub struct Liveness {
    down: parking_lot::RwLock<HashSet<String>>,
}

impl Liveness {
    /// Whether the member called `node` failed its last ping.
    pub fn is_down(&self, node: &str) -> bool {
        let down = self.down.read();
        !down.is_empty() && down.contains(node)
    }

    fn mark(&self, node: &str, up: bool) {
        let changed =
            if up { self.down.write().remove(node) } else { self.down.write().insert(node.to_owned()) };
        if changed {
            match up {
                true => tracing::info!("cluster: {node} answers again"),
                false => tracing::warn!("cluster: {node} does not answer; its queues are down"),
            }
        }
    }

    /// Forgets what it knew of members that left.
    fn retain(&self, members: &HashSet<String>) {
        let mut down = self.down.write();
        if down.iter().any(|n| !members.contains(n)) {
            down.retain(|n| members.contains(n));
        }
    }
}

/// Pings the other members until the cluster is gone.
pub(super) async fn watch(cluster: Weak<Cluster>) {
    loop {
        tokio::time::sleep(PING_INTERVAL).await;
        let Some(c) = cluster.upgrade() else { return };
        let members = c.other_members();
        let names: HashSet<String> = members.iter().map(|m| m.name.clone()).collect();
        c.liveness.retain(&names);
        let pings = members.into_iter().map(|m| {
            let peers = c.peers().clone();
            async move {
                let up = matches!(peers.call(&m.addr, Call::Ping, PING_TIMEOUT).await, Ok(Reply::Done));
                (m.name, up)
            }
        });
        for (name, up) in futures_util::future::join_all(pings).await {
            c.liveness.mark(&name, up);
        }
    }
}
