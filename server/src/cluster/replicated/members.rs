//! Operating replicated queues, as `rabbitmq-queues` does: a quorum
//! queue's members changed by hand (`add_member`, `delete_member`, and
//! `grow`/`shrink` for every matching queue), each member's Raft state
//! (`quorum_status`), and leaders spread over the nodes (`rebalance`).
//!
//! **Changing members.** The leader of the queue's group makes every change
//! (another node forwards it, [`Call::ChangeMembers`]), one at a time: it
//! updates the members chosen for the queue (its slot's `wanted`, which
//! [`Cluster::grow`] keeps the group to), commits the choice through the
//! metadata log (`DefinitionCommand::SetQueueMembers`, which every node
//! applies: a new member starts its copy of the group, a removed one drops
//! its copy a few seconds later, the others keep the choice for when they
//! lead), then adds the new member as a learner that catches up, and makes
//! the voters the chosen members. Removing the leader's own node first
//! hands the leadership to another member.
//!
//! The choice is kept with the queue's definition (and in metadata
//! snapshots), so a node that restarts, or the whole cluster, keeps it.
//!
//! **Rebalancing.** openraft 0.9 has no leadership transfer. A leader is
//! moved by asking the chosen follower to stand for election
//! (`Raft::trigger().elect()`, [`Call::Elect`]); it wins once the leader's
//! lease on the other voters has run out (the group is idle for
//! `election_timeout_max`, 200 ms), as its log is as long as the leader's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use serde::{Deserialize, Serialize};

use super::CALL_TIMEOUT;
use super::group::Group;
use super::types::group_id;
use crate::broker::error::{BrokerError, Result};
use crate::broker::queue::Queue;
use crate::cluster::network::{Call, Reply};
use crate::cluster::node::Cluster;
use crate::cluster::node_id;
use crate::cluster::types::Member;
use crate::definitions::DefinitionCommand;

/// How long one change of members may take (RabbitMQ's management API
/// gives `add_member` 30 s).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a leader handing over (to remove its own node) or a
/// rebalanced queue waits for the new leader.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// RabbitMQ's reasons, as its management API and CLI give them.
pub const CLASSIC_NOT_SUPPORTED: &str = "classic_queue_not_supported";
pub const NODE_NOT_RUNNING: &str = "node_not_running";
pub const LAST_NODE: &str = "last_node";

/// Changes of members on this node: one at a time.
#[derive(Default)]
pub struct Chosen {
    changing: tokio::sync::Mutex<()>,
}

/// One member of a queue's group, as `quorum_status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub node: String,
    /// The member's Raft id (the node's id).
    pub id: u64,
    /// leader, follower, candidate, or shutdown.
    pub state: String,
    /// voter, or promotable (a learner catching up to become a voter).
    pub membership: String,
    pub term: u64,
    pub last_log_index: u64,
    pub last_applied: u64,
    /// On the leader, the highest index a majority of the voters has; on
    /// another member, what it has applied (openraft's metrics do not give
    /// a follower's commit index, and it applies what it learns committed
    /// at once).
    pub commit_index: u64,
    pub snapshot_index: u64,
    /// The messages this member's state machine holds, and a digest of
    /// them (ids, delivered flags, body sizes), with the log index they
    /// stand at: members at the same index must agree.
    #[serde(default)]
    pub contents: ContentsSummary,
}

/// What a member holds, in brief: equal on every member that applied the
/// same entries. Warren's own columns of `quorum_status`, so that an
/// operator (and the fault tests) can see the replicas agree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentsSummary {
    pub applied: u64,
    pub messages: u64,
    pub digest: u64,
}

/// How `grow` picks queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    All,
    /// Only queues with an even number of members.
    Even,
}

/// Which replicated queues `rebalance` moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Quorum,
    /// Queues made replicated by an `ha-mode` policy.
    Classic,
}

/// One queue's outcome in `grow` or `shrink`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub vhost: String,
    pub name: String,
    /// Its number of members after (before, when it failed).
    pub size: usize,
    /// `ok`, or `error: ...` as rabbitmq-queues prints it.
    pub result: String,
}

/// How many replicated queues a node leads after `rebalance`.
#[derive(Debug, Clone, Serialize)]
pub struct Leaders {
    pub node: String,
    pub quorum: usize,
    pub classic: usize,
}

enum Change {
    Add(String),
    Remove(String),
}

fn unavailable(reason: &str) -> BrokerError {
    BrokerError::unavailable(reason)
}

fn raft_err<E: std::fmt::Display>(e: E) -> BrokerError {
    BrokerError::unavailable(e.to_string())
}

impl Cluster {
    // ------------------------------------------------------------ chosen members

    /// The members an operator chose for `q`, if any.
    pub(super) fn chosen_for(&self, q: &Arc<Queue>) -> Option<Vec<String>> {
        q.chosen_members()
    }

    /// An operator's choice of `q`'s members was applied here: this node
    /// starts or keeps its member, or shows the members chosen. The leader
    /// only keeps the choice: it is making the change
    /// ([`Cluster::change_here`]).
    pub(crate) fn members_chosen(self: &Arc<Self>, q: &Arc<Queue>) {
        let Some(members) = q.chosen_members() else { return };
        let slot = self.replicas.slot(group_id(q));
        if let Some(slot) = &slot
            && slot.group.get().is_some_and(|g| g.is_leader())
        {
            *slot.wanted.lock() = members;
            return;
        }
        if members.contains(&self.me.name) || slot.is_some() {
            self.register_replicated(q);
        } else {
            q.set_members(members);
        }
    }

    // ------------------------------------------------------------ add and delete

    fn find_queue(&self, vhost: &str, queue: &str) -> Result<Arc<Queue>> {
        self.broker()?
            .vhost(vhost)
            .and_then(|v| v.queue(queue))
            .ok_or_else(|| BrokerError::not_found(format!("no queue '{queue}' in vhost '{vhost}'")))
    }

    /// A quorum queue whose members can be changed: a classic queue
    /// (replicated by a policy or not) is refused as RabbitMQ refuses it.
    fn quorum_queue(&self, vhost: &str, queue: &str) -> Result<Arc<Queue>> {
        let q = self.find_queue(vhost, queue)?;
        if !q.config().quorum {
            return Err(unavailable(CLASSIC_NOT_SUPPORTED));
        }
        if !q.is_replicated() {
            return Err(unavailable("the queue is not replicated yet"));
        }
        Ok(q)
    }

    /// Whether `name` is a member of the cluster that answers.
    fn is_running(&self, name: &str) -> bool {
        name == self.me.name || (self.address_of(name).is_some() && !self.is_down(name))
    }

    /// The members chosen for `q`, as this node knows them.
    fn wanted_of(&self, q: &Arc<Queue>) -> Vec<String> {
        match self.replicas.slot(group_id(q)) {
            Some(slot) => slot.wanted.lock().clone(),
            None => self.chosen_for(q).unwrap_or_else(|| q.members()),
        }
    }

    /// `add_member`: a member of `queue`'s group on `node`. Done already
    /// when it is one.
    pub async fn add_member(self: &Arc<Self>, vhost: &str, queue: &str, node: &str) -> Result<()> {
        let q = self.quorum_queue(vhost, queue)?;
        if !self.is_running(node) {
            return Err(unavailable(NODE_NOT_RUNNING));
        }
        self.change_members(&q, Change::Add(node.to_owned())).await
    }

    /// `delete_member`: the member of `queue`'s group on `node` goes. Done
    /// already when it is none; the last member cannot go.
    pub async fn delete_member(self: &Arc<Self>, vhost: &str, queue: &str, node: &str) -> Result<()> {
        let q = self.quorum_queue(vhost, queue)?;
        self.change_members(&q, Change::Remove(node.to_owned())).await
    }

    /// The node leading `q`'s group, as this node knows it.
    fn leader_of(&self, q: &Arc<Queue>) -> Option<String> {
        match self.replicas.group_of(q) {
            Some(g) => g.leader_name(),
            None => q.serving_node(),
        }
    }

    /// Makes the change on the leader, here or by asking it, until the
    /// leader that answers made it.
    async fn change_members(self: &Arc<Self>, q: &Arc<Queue>, change: Change) -> Result<()> {
        let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
        loop {
            let done = match self.leader_of(q) {
                Some(l) if l == self.me.name => self.change_here(q, &change).await?,
                Some(l) => {
                    let addr = self.address_of(&l).ok_or_else(|| unavailable(NODE_NOT_RUNNING))?;
                    let (add, node) = match &change {
                        Change::Add(n) => (true, n.clone()),
                        Change::Remove(n) => (false, n.clone()),
                    };
                    let call = Call::ChangeMembers {
                        vhost: q.vhost.to_string(),
                        queue: q.name.to_string(),
                        add,
                        node,
                    };
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match self.peers().call(&addr, call, left).await {
                        Ok(Reply::Changed(done)) => done,
                        Ok(_) => return Err(unavailable("unexpected reply from the queue's leader")),
                        Err(e) => return Err(e.into()),
                    }
                }
                None => false,
            };
            if done {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(unavailable("timeout"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A change forwarded by another node: made if this node leads.
    pub(in crate::cluster) async fn accept_change_members(
        self: Arc<Self>,
        vhost: &str,
        queue: &str,
        add: bool,
        node: &str,
    ) -> Result<Reply> {
        let q = self.quorum_queue(vhost, queue)?;
        let change = if add { Change::Add(node.to_owned()) } else { Change::Remove(node.to_owned()) };
        self.change_here(&q, &change).await.map(Reply::Changed)
    }

    /// On the leader: makes the change. False when this node does not lead
    /// (any more), so the caller asks the leader.
    async fn change_here(self: &Arc<Self>, q: &Arc<Queue>, change: &Change) -> Result<bool> {
        let _one = self.chosen.changing.lock().await;
        let Some(g) = self.replicas.group_of(q).filter(|g| g.is_leader()) else { return Ok(false) };
        let Some(slot) = self.replicas.slot(g.id) else { return Ok(false) };
        let mut wanted = slot.wanted.lock().clone();
        let voters = g.voters();
        match change {
            Change::Add(n) => {
                if wanted.contains(n) && voters.contains(&node_id(n)) {
                    return Ok(true);
                }
                if !self.is_running(n) {
                    return Err(unavailable(NODE_NOT_RUNNING));
                }
                if !wanted.contains(n) {
                    wanted.push(n.clone());
                }
            }
            Change::Remove(n) => {
                if !wanted.contains(n) && !voters.contains(&node_id(n)) {
                    return Ok(true);
                }
                if wanted.iter().all(|w| w == n) {
                    return Err(unavailable(LAST_NODE));
                }
                if *n == self.me.name {
                    // Hand over first; the new leader removes this node.
                    self.hand_over(&g, q, &wanted).await;
                    return Ok(false);
                }
                wanted.retain(|w| w != n);
            }
        }
        tracing::info!("queue '{}' in vhost '{}': members chosen {}", q.name, q.vhost, wanted.join(", "));
        *slot.wanted.lock() = wanted.clone();
        let choice = DefinitionCommand::SetQueueMembers {
            vhost: q.vhost.to_string(),
            name: q.name.to_string(),
            members: wanted.clone(),
        };
        self.propose(choice).await?;
        let applied = tokio::time::timeout(CHANGE_TIMEOUT, self.apply_members(&g, &wanted)).await;
        match applied {
            Ok(r) => r.map(|_| true),
            Err(_) => Err(unavailable("timeout")),
        }
    }

    /// On the leader: the group's voters become `wanted` (new members
    /// first catch up as learners).
    async fn apply_members(&self, g: &Arc<Group>, wanted: &[String]) -> Result<()> {
        let mut target = BTreeMap::new();
        for name in wanted {
            let addr = if *name == self.me.name { Some(self.me.addr.clone()) } else { self.address_of(name) };
            let addr = addr.ok_or_else(|| unavailable(NODE_NOT_RUNNING))?;
            target.insert(node_id(name), Member { name: name.clone(), addr });
        }
        let current = g.voters();
        for (id, m) in &target {
            if !current.contains(id) {
                g.raft.add_learner(*id, m.clone(), true).await.map_err(raft_err)?;
            }
        }
        let ids: BTreeSet<u64> = target.keys().copied().collect();
        let mut tries = 0;
        loop {
            if g.voters() == ids {
                return Ok(());
            }
            match g.raft.change_membership(ids.clone(), false).await {
                Ok(_) => return Ok(()),
                // Another change (the leader's own grow) may be in flight.
                Err(e) if tries < 20 => {
                    tracing::debug!("group {:x}: changing members: {e}; trying again", g.id);
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(raft_err(e)),
            }
        }
    }

    /// This node leads `g` and is to leave it: another running member is
    /// asked to stand for election, and this waits (a while) until it
    /// leads.
    async fn hand_over(&self, g: &Arc<Group>, q: &Arc<Queue>, wanted: &[String]) {
        let voters = g.voters();
        let next =
            wanted.iter().find(|n| **n != self.me.name && voters.contains(&node_id(n)) && self.is_running(n));
        let Some(next) = next else { return };
        tracing::info!("queue '{}': handing the leadership over to {next}", q.name);
        self.until_leads(q, next, HANDOVER_TIMEOUT).await;
    }

    /// Asks `node` to stand for election in `q`'s group until it leads, or
    /// `limit` passes. Whether it leads.
    async fn until_leads(&self, q: &Arc<Queue>, node: &str, limit: Duration) -> bool {
        let Some(addr) = self.address_of(node) else { return false };
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            let call = Call::Elect { vhost: q.vhost.to_string(), queue: q.name.to_string() };
            if let Err(e) = self.peers().call(&addr, call, CALL_TIMEOUT).await {
                tracing::debug!("queue '{}': {node} cannot stand for election: {e}", q.name);
                return false;
            }
            // An election takes a round trip; one refused because the
            // leader's lease holds is tried again after it.
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.leader_of(q).as_deref() == Some(node) {
                    return true;
                }
            }
        }
        false
    }

    /// This node stands for election in a queue's group.
    pub(in crate::cluster) async fn accept_elect(&self, vhost: &str, queue: &str) -> Result<Reply> {
        let q = self.find_queue(vhost, queue)?;
        let g = self.replicas.group_of(&q).ok_or_else(|| {
            BrokerError::not_found(format!("{} is not a member of the queue", self.me.name))
        })?;
        if !g.is_leader() {
            g.raft.trigger().elect().await.map_err(raft_err)?;
        }
        Ok(Reply::Done)
    }

    // ------------------------------------------------------------ grow and shrink

    /// Quorum queues matching the patterns, in a stable order.
    fn quorum_queues(&self, vhosts: &regex::Regex, queues: &regex::Regex) -> Result<Vec<Arc<Queue>>> {
        let mut out = Vec::new();
        for v in self.broker()?.vhosts() {
            if !vhosts.is_match(&v.name) {
                continue;
            }
            for q in v.queues() {
                if q.config().quorum && q.is_replicated() && queues.is_match(&q.name) {
                    out.push(q);
                }
            }
        }
        out.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        Ok(out)
    }

    /// `grow`: a member on `node` for every matching quorum queue that has
    /// none there (`Even`: only those with an even number of members). No
    /// queue when `node` is not a running member of the cluster.
    pub async fn grow_on(
        self: &Arc<Self>,
        node: &str,
        strategy: Strategy,
        vhosts: &regex::Regex,
        queues: &regex::Regex,
    ) -> Result<Vec<Outcome>> {
        if !self.is_running(node) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for q in self.quorum_queues(vhosts, queues)? {
            let members = self.wanted_of(&q);
            if members.iter().any(|m| m == node)
                || (strategy == Strategy::Even && !members.len().is_multiple_of(2))
            {
                continue;
            }
            tracing::info!("queue '{}' in vhost '{}': adding a member on {node}", q.name, q.vhost);
            let r = self.change_members(&q, Change::Add(node.to_owned())).await;
            out.push(outcome(&q, members.len(), members.len() + 1, r));
        }
        Ok(out)
    }

    /// `shrink`: the member on `node` of every quorum queue that has one
    /// there goes (not a queue's last).
    pub async fn shrink_on(self: &Arc<Self>, node: &str) -> Result<Vec<Outcome>> {
        let any = regex::Regex::new(".*").expect("a valid pattern");
        let mut out = Vec::new();
        for q in self.quorum_queues(&any, &any)? {
            let members = self.wanted_of(&q);
            if !members.iter().any(|m| m == node) {
                continue;
            }
            tracing::info!("queue '{}' in vhost '{}': removing its member on {node}", q.name, q.vhost);
            let r = self.change_members(&q, Change::Remove(node.to_owned())).await;
            out.push(outcome(&q, members.len(), members.len() - 1, r));
        }
        Ok(out)
    }

    // ------------------------------------------------------------ status

    /// This node's member of a queue's group, if it has one.
    pub(in crate::cluster) fn local_replica_status(
        &self,
        vhost: &str,
        queue: &str,
    ) -> Result<Option<ReplicaStatus>> {
        let q = self.find_queue(vhost, queue)?;
        Ok(self.replicas.group_of(&q).map(|g| replica_status(&self.me.name, &g)))
    }

    /// `quorum_status`: every member of a replicated queue's group (each
    /// node asked for its own), by node name. A member that does not answer
    /// is there with its reason and nothing else.
    pub async fn quorum_status(
        &self,
        vhost: &str,
        queue: &str,
    ) -> Result<Vec<std::result::Result<ReplicaStatus, (String, String)>>> {
        let q = self.find_queue(vhost, queue)?;
        if !q.is_replicated() {
            return Err(unavailable(CLASSIC_NOT_SUPPORTED));
        }
        let mut names: BTreeSet<String> = q.members().into_iter().collect();
        if let Some(g) = self.replicas.group_of(&q) {
            let m = g.raft.metrics().borrow().clone();
            names.extend(m.membership_config.membership().nodes().map(|(_, n)| n.name.clone()));
        }
        let asks = names.into_iter().map(|name| {
            let q = q.clone();
            async move {
                if name == self.me.name {
                    return match self.replicas.group_of(&q) {
                        Some(g) => Ok(replica_status(&name, &g)),
                        None => Err((name, "noproc".to_owned())),
                    };
                }
                let Some(addr) = self.address_of(&name).filter(|_| !self.is_down(&name)) else {
                    return Err((name, "nodedown".to_owned()));
                };
                let call = Call::ReplicaStatus { vhost: q.vhost.to_string(), queue: q.name.to_string() };
                match self.peers().call(&addr, call, CALL_TIMEOUT).await {
                    Ok(Reply::ReplicaStatus(Some(s))) => Ok(s),
                    Ok(Reply::ReplicaStatus(None)) => Err((name, "noproc".to_owned())),
                    Ok(_) => Err((name, "unexpected reply".to_owned())),
                    Err(_) => Err((name, "nodedown".to_owned())),
                }
            }
        });
        Ok(futures_util::future::join_all(asks).await)
    }

    // ------------------------------------------------------------ rebalance

    /// `rebalance`: moves leaders of the matching replicated queues so that
    /// each running node leads about as many (at most the average, rounded
    /// up), as RabbitMQ's `rabbit_amqqueue:rebalance` does: from a node
    /// leading more, a queue's leadership goes to its member that leads
    /// the fewest. Then how many each node leads.
    pub async fn rebalance(
        self: &Arc<Self>,
        kind: Kind,
        vhosts: &regex::Regex,
        queues: &regex::Regex,
    ) -> Result<Vec<Leaders>> {
        let mut running: Vec<String> =
            self.other_members().into_iter().map(|m| m.name).filter(|n| !self.is_down(n)).collect();
        running.push(self.me.name.clone());
        running.sort();
        let mut picked = Vec::new();
        for v in self.broker()?.vhosts() {
            if !vhosts.is_match(&v.name) {
                continue;
            }
            for q in v.queues() {
                let quorum = q.config().quorum;
                let wanted = match kind {
                    Kind::All => true,
                    Kind::Quorum => quorum,
                    Kind::Classic => !quorum,
                };
                if q.is_replicated() && wanted && queues.is_match(&q.name) {
                    picked.push(q);
                }
            }
        }
        picked.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        let mut by_node: BTreeMap<String, Vec<Arc<Queue>>> =
            running.iter().map(|n| (n.clone(), Vec::new())).collect();
        for q in &picked {
            if let Some(l) = self.leader_of(q) {
                by_node.entry(l).or_default().push(q.clone());
            }
        }
        let led: usize = by_node.values().map(Vec::len).sum();
        let most = led.div_ceil(running.len().max(1));
        tracing::info!("rebalancing the leaders of {led} replicated queues: at most {most} per node");
        for node in running.clone() {
            let mine = by_node.get(&node).cloned().unwrap_or_default();
            for q in mine {
                if by_node.get(&node).map_or(0, Vec::len) <= most {
                    break;
                }
                let members = q.members();
                let target = running
                    .iter()
                    .filter(|n| **n != node && members.contains(n))
                    .map(|n| (by_node.get(n).map_or(0, Vec::len), n.clone()))
                    .filter(|(count, _)| *count < most)
                    .min();
                let Some((_, target)) = target else { continue };
                if self.until_leads(&q, &target, HANDOVER_TIMEOUT).await {
                    tracing::info!(
                        "queue '{}' in vhost '{}': leader moved from {node} to {target}",
                        q.name,
                        q.vhost
                    );
                    if let Some(v) = by_node.get_mut(&node) {
                        v.retain(|x| !Arc::ptr_eq(x, &q));
                    }
                    by_node.entry(target).or_default().push(q.clone());
                } else {
                    tracing::warn!(
                        "queue '{}' in vhost '{}': its leader did not move to {target}",
                        q.name,
                        q.vhost
                    );
                }
            }
        }
        Ok(by_node
            .into_iter()
            .map(|(node, qs)| {
                let quorum = qs.iter().filter(|q| q.config().quorum).count();
                Leaders { node, quorum, classic: qs.len() - quorum }
            })
            .collect())
    }
}

/// A queue's outcome of `grow` or `shrink`, worded as rabbitmq-queues
/// words it.
fn outcome(q: &Queue, before: usize, after: usize, r: Result<()>) -> Outcome {
    let (size, result) = match r {
        Ok(()) => (after, "ok".to_owned()),
        Err(e) if e.message == LAST_NODE => (before, "error: the last node cannot be removed".to_owned()),
        Err(e) if e.message == "timeout" => {
            (before, "error: the operation timed out and may not have been completed".to_owned())
        }
        Err(e) => (before, format!("error: {}", e.message)),
    };
    Outcome { vhost: q.vhost.to_string(), name: q.name.to_string(), size, result }
}

fn replica_status(node: &str, g: &Group) -> ReplicaStatus {
    let m = g.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voter = membership.voter_ids().any(|id| id == m.id);
    let last_applied = m.last_applied.map_or(0, |l| l.index);
    let state = match m.state {
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Follower | ServerState::Learner => "follower",
        ServerState::Shutdown => "shutdown",
    };
    // The leader's commit index: the highest index a majority of the
    // voters has (itself included).
    let commit_index = match (&m.replication, m.state) {
        (Some(repl), ServerState::Leader) => {
            let mut matched: Vec<u64> = membership
                .voter_ids()
                .map(|id| {
                    if id == m.id {
                        m.last_log_index.unwrap_or(0)
                    } else {
                        repl.get(&id).copied().flatten().map_or(0, |l| l.index)
                    }
                })
                .collect();
            matched.sort_unstable_by(|a, b| b.cmp(a));
            matched.get(matched.len() / 2).copied().unwrap_or(0).max(last_applied)
        }
        _ => last_applied,
    };
    ReplicaStatus {
        node: node.to_owned(),
        id: m.id,
        state: state.to_owned(),
        membership: if voter { "voter" } else { "promotable" }.to_owned(),
        term: m.current_term,
        last_log_index: m.last_log_index.unwrap_or(0),
        last_applied,
        commit_index,
        snapshot_index: m.snapshot.map_or(0, |l| l.index),
        contents: g.machine.summary(),
    }
}
