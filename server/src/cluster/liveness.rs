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
//!
//! Liveness also tells a node whether it is in a minority: when fewer than
//! a majority of the voters answer (this node included), no metadata change
//! can commit, so [`super::node::Cluster::propose`] refuses at once with
//! the reason instead of waiting for the Raft timeout. And the Raft leader
//! deletes, for the whole cluster, the exclusive queues of a member that
//! has been down for [`EXCLUSIVE_GRACE`] ([`reap`]): their owner's
//! connection died with it, as RabbitMQ deletes them. It deletes every
//! classic queue (exclusive, transient or durable) of a node that is no
//! longer a member at all (`forget_cluster_node`): its messages went with
//! that node, as RabbitMQ deletes a forgotten node's classic queues.

use std::collections::{HashMap, HashSet};
use std::sync::Weak;
use std::time::{Duration, Instant};

use super::network::{Call, Reply};
use super::node::Cluster;
use crate::definitions::DefinitionCommand;

/// Also how soon a replicated queue's followers find its leader's node
/// gone (`super::replicated::elections`).
pub const PING_INTERVAL: Duration = Duration::from_millis(100);
pub const PING_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a member stays down before the leader deletes its exclusive
/// queues: a brief pause (a GC, a SIGSTOP, a slow disk) deletes nothing.
pub const EXCLUSIVE_GRACE: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Liveness {
    /// The members that failed their last ping, and since when.
    down: parking_lot::RwLock<HashMap<String, Instant>>,
}

impl Liveness {
    /// Whether the member called `node` failed its last ping.
    pub fn is_down(&self, node: &str) -> bool {
        let down = self.down.read();
        !down.is_empty() && down.contains_key(node)
    }

    /// The members that failed their last ping, by name.
    pub fn down(&self) -> Vec<String> {
        let mut names: Vec<String> = self.down.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// How long the member called `node` has been down (None: it is not).
    pub fn down_for(&self, node: &str) -> Option<Duration> {
        self.down.read().get(node).map(Instant::elapsed)
    }

    /// The members that have been down for longer than `grace`.
    fn down_longer_than(&self, grace: Duration) -> Vec<String> {
        self.down.read().iter().filter(|(_, since)| since.elapsed() > grace).map(|(n, _)| n.clone()).collect()
    }

    /// Records a ping's answer; whether the member was just found down.
    fn mark(&self, node: &str, up: bool) -> bool {
        let changed = {
            let mut down = self.down.write();
            // A member keeps the time it first failed until it answers.
            let since = down.get(node).copied().unwrap_or_else(Instant::now);
            match up {
                true => down.remove(node).is_some(),
                false => down.insert(node.to_owned(), since).is_none(),
            }
        };
        if changed {
            match up {
                true => tracing::info!("cluster: {node} answers again"),
                false => tracing::warn!("cluster: {node} does not answer; its queues are down"),
            }
        }
        changed && !up
    }

    /// Forgets what it knew of members that left.
    fn retain(&self, members: &HashSet<String>) {
        let mut down = self.down.write();
        if down.keys().any(|n| !members.contains(n)) {
            down.retain(|n, _| members.contains(n));
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
                (m, up)
            }
        });
        let started = Instant::now();
        let answers = futures_util::future::join_all(pings).await;
        // A round bounded by PING_TIMEOUT that took far longer means this
        // process was paused (SIGSTOP, a frozen VM, a starved runtime): the
        // others' silence then says nothing about them, and marking them
        // down would make this node refuse their queues for a round after
        // it resumes. Answers still count.
        let paused_here = started.elapsed() > PING_TIMEOUT * 3 / 2;
        for (m, up) in answers {
            // A member just found down: what waits on its link (forwarded
            // publishes, calls to its queues) fails now, and is answered
            // no, rather than waiting for a node that may be cut off.
            if (up || !paused_here) && c.liveness.mark(&m.name, up) {
                c.peers().abandon(&m.addr);
            }
        }
    }
}

/// As the Raft leader, until the cluster is gone, deletes the exclusive
/// queues whose home has been down for [`EXCLUSIVE_GRACE`], and the
/// classic queues (the exclusive ones among them) whose home is no longer
/// a member; a replicated queue that is not exclusive lives on in its
/// other members. Each deletion is an ordinary metadata change, applied
/// by every member; one that fails (no majority, a new leader) is tried
/// again on the next round.
pub(super) async fn reap(cluster: Weak<Cluster>) {
    // The members at the last round that left nothing to delete: while no
    // member is down and they stay the same, there is nothing to look at.
    let mut clean: Option<HashSet<String>> = None;
    loop {
        tokio::time::sleep(PING_INTERVAL).await;
        let Some(c) = cluster.upgrade() else { return };
        // A leader cut off from the majority cannot commit: not worth trying.
        if !c.is_leader() || c.minority().is_some() {
            clean = None;
            continue;
        }
        let down: HashSet<String> = c.liveness.down_longer_than(EXCLUSIVE_GRACE).into_iter().collect();
        let mut members: HashSet<String> = c.other_members().into_iter().map(|m| m.name).collect();
        members.insert(c.me.name.clone());
        if down.is_empty() && clean.as_ref() == Some(&members) {
            continue;
        }
        let mut failed = false;
        let Ok(broker) = c.broker() else { return };
        for v in broker.vhosts() {
            for q in v.queues() {
                let Some(home) = q.home.get() else { continue };
                let why = if !members.contains(&**home) && (q.is_exclusive() || !q.is_replicated()) {
                    "is no longer a member"
                } else if q.is_exclusive() && down.contains(&**home) {
                    "is down"
                } else {
                    continue;
                };
                let cmd = DefinitionCommand::DeleteQueue {
                    vhost: v.name.to_string(),
                    name: q.name.to_string(),
                    if_unused: false,
                    if_empty: false,
                    requester: None,
                };
                match c.propose(cmd).await {
                    Ok(_) => tracing::info!(
                        "cluster: deleted queue '{}' in vhost '{}': its node {home} {why}",
                        q.name,
                        v.name
                    ),
                    Err(e) => {
                        failed = true;
                        tracing::warn!("cluster: cannot delete queue '{}' of {home}: {e}", q.name)
                    }
                }
            }
        }
        clean = (!failed).then_some(members);
    }
}
