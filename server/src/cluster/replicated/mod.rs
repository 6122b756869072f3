//! Replicated queues (quorum queues, and queues an `ha-mode` policy
//! matches when they are declared): one openraft group per queue, whose
//! members are chosen when the queue is declared
//! (`broker::queue::replica::Replication::members`), all writing to the
//! node's one shared write-ahead log ([`crate::cluster::wal`]).
//!
//! - [`types`]: the groups' entries and openraft types;
//! - [`log`]: a group's log and vote in the shared WAL;
//! - [`machine`]: a group's state machine, the messages it holds;
//! - [`net`]: the groups' RPCs over the cluster link;
//! - [`group`]: one group's member on this node, its proposer and its
//!   leadership watcher.
//!
//! This module keeps the groups of this node by id, starts them when a
//! replicated queue is declared or found at start, routes RPCs to them
//! (starting a member on the first RPC if need be), and stops them when
//! their queue is deleted. A node that is not a member of a queue's group
//! learns its leader from the leader's announcement or by asking a member.

pub mod group;
pub mod log;
pub mod machine;
pub mod members;
pub mod net;
pub mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use self::group::Group;
use self::log::GroupLog;
use self::machine::Machine;
use self::net::{GroupNetwork, GroupReply, GroupRpc};
use self::types::{GroupRaft, group_id};
use super::network::{Call, Reply};
use super::node::Cluster;
use super::node_id;
use super::types::Member;
use super::wal::Wal;
use crate::broker::error::{BrokerError, Result};
use crate::broker::queue::Queue;

const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the failure detector looks for groups without a live leader.
const ELECTION_CHECK: Duration = Duration::from_millis(50);
/// The most a group waits, at random, before standing for election, so
/// that the groups a lost node led do not all elect at the same instant.
const ELECTION_JITTER_MS: u64 = 100;
/// How long a follower keeps faith in the leader it last heard from
/// (openraft's leader lease: it refuses its vote to another meanwhile).
const LEASE_MS: u64 = 200;

/// Idle groups cost nothing: no heartbeats, and no election timers. A
/// leader contacts its followers when it has something to replicate; the
/// node's failure detector ([`elections`]) starts elections for the groups
/// whose leader's node is gone.
fn raft_config() -> Arc<openraft::Config> {
    let c = openraft::Config {
        cluster_name: "warren-queue".into(),
        enable_heartbeat: false,
        enable_elect: false,
        heartbeat_interval: 100,
        // Only how long a follower keeps faith in a leader it heard from
        // (it refuses to vote for another meanwhile): with elections off,
        // no timer runs on them. Short, as only the node's failure
        // detector starts elections, once the leader's node is gone; the
        // lease then mostly delays the failover.
        election_timeout_min: 150,
        election_timeout_max: LEASE_MS,
        // Keep a tail of the log after a snapshot, so that a member that
        // was away briefly catches up from the log.
        max_in_snapshot_log_to_keep: 1000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(4096),
        ..Default::default()
    };
    Arc::new(c.validate().expect("a valid Raft configuration"))
}

/// What a group needs to start, kept until it has.
struct Slot {
    queue: Weak<Queue>,
    /// This node, when it creates the group (it declared the queue).
    initialize: Option<Member>,
    /// The members chosen for the queue, which its leader grows or
    /// shrinks the group to.
    wanted: parking_lot::Mutex<Vec<String>>,
    group: tokio::sync::OnceCell<Arc<Group>>,
}

#[derive(Default)]
pub struct Replicas {
    wal: OnceLock<Arc<Wal>>,
    slots: parking_lot::Mutex<HashMap<u64, Arc<Slot>>>,
}

impl Replicas {
    pub fn set_wal(&self, wal: Arc<Wal>) {
        let _ = self.wal.set(wal);
    }

    pub fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.get()
    }

    fn slot(&self, id: u64) -> Option<Arc<Slot>> {
        self.slots.lock().get(&id).cloned()
    }

    /// The term and index of this node's last entry in a group's log.
    pub fn log_position(&self, id: u64) -> Option<(u64, u64)> {
        let (_, bytes) = self.wal()?.last(id)?;
        let e: types::Entry = rmp_serde::from_slice(&bytes).ok()?;
        Some((e.log_id.leader_id.term, e.log_id.index))
    }

    /// The group of a queue, when this node is a member and it runs.
    pub fn group_of(&self, q: &Queue) -> Option<Arc<Group>> {
        self.slot(group_id(q)).and_then(|s| s.group.get().cloned())
    }
}

impl Cluster {
    /// A replicated queue exists (declared now, made replicated by a
    /// policy, or found at start), or how it chooses its members changed:
    /// starts this node's member of its group, or, on a node that is not a
    /// member, finds its leader. The node that declared the queue creates
    /// the group with itself as its only member (so it leads at once,
    /// with the queue's current messages), and as leader grows it to the
    /// members chosen ([`Cluster::grow`]).
    pub fn register_replicated(self: &Arc<Self>, q: &Arc<Queue>) {
        let Some(replication) = q.replication() else { return };
        let id = group_id(q);
        let home = q.home.get().map(|h| h.to_string()).unwrap_or_else(|| self.me.name.clone());
        let mut all: Vec<Member> = self.other_members();
        all.push(self.me.clone());
        let names: Vec<String> = all.iter().map(|m| m.name.clone()).collect();
        // Members an operator chose (add_member...) replace the computed
        // ones; a node forgotten since is no longer one of them, as
        // RabbitMQ's forget_cluster_node shrinks its quorum queues.
        let operated = self
            .chosen_for(q)
            .map(|m| m.into_iter().filter(|n| names.contains(n)).collect::<Vec<_>>())
            .filter(|m| !m.is_empty());
        let chosen = operated.clone().unwrap_or_else(|| replication.members(&home, &names));
        let member = chosen.contains(&self.me.name);
        if let Some(slot) = self.replicas.slot(id) {
            *slot.wanted.lock() = chosen;
            match (member, slot.group.get()) {
                (true, Some(g)) if g.is_leader() => self.grow(g.clone(), q.clone()),
                (false, _) => self.leave_group(q),
                _ => {}
            }
            return;
        }
        if !member {
            // Not a member: it shows the members chosen.
            q.set_members(chosen);
            tokio::spawn(find_leader(Arc::downgrade(self), Arc::downgrade(q)));
            return;
        }
        let wal = self.replicas.wal();
        let fresh =
            wal.is_some_and(|w| w.get(id, super::wal::MetaKey::Vote).is_none() && w.last(id).is_none());
        let slot = Arc::new(Slot {
            queue: Arc::downgrade(q),
            wanted: parking_lot::Mutex::new(chosen),
            initialize: (fresh && home == self.me.name && operated.is_none()).then(|| self.me.clone()),
            group: Default::default(),
        });
        self.replicas.slots.lock().insert(id, slot.clone());
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Some(c) = me.upgrade()
                && let Err(e) = c.start_group(id, &slot).await
            {
                tracing::error!("cannot start the group of a replicated queue: {e}");
            }
        });
    }

    /// On the leader: makes the group's voters the members chosen for its
    /// queue (new members first catch up as learners), then says the
    /// queue is ready.
    pub(super) fn grow(self: &Arc<Self>, g: Arc<Group>, q: Arc<Queue>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let Some(c) = me.upgrade() else { return };
            let Some(slot) = c.replicas.slot(g.id) else { return };
            let chosen = slot.wanted.lock().clone();
            let mut wanted = BTreeMap::new();
            for name in &chosen {
                let addr = if *name == c.me.name { Some(c.me.addr.clone()) } else { c.address_of(name) };
                match addr {
                    Some(addr) => {
                        wanted.insert(node_id(name), Member { name: name.clone(), addr });
                    }
                    None => tracing::warn!("queue '{}': member {name} is not in the cluster", q.name),
                }
            }
            let current = g.voters();
            if current == wanted.keys().copied().collect() {
                q.set_replica_ready(true);
                return;
            }
            for (id, m) in &wanted {
                if !current.contains(id)
                    && let Err(e) = g.raft.add_learner(*id, m.clone(), false).await
                {
                    tracing::warn!("queue '{}': cannot add {} to its group: {e}", q.name, m.name);
                    return;
                }
            }
            match g.raft.change_membership(wanted.keys().copied().collect::<BTreeSet<u64>>(), false).await {
                Ok(_) => {
                    tracing::info!(
                        "queue '{}' in vhost '{}' replicated on {}",
                        q.name,
                        q.vhost,
                        chosen.join(", ")
                    );
                    q.set_replica_ready(true);
                }
                Err(e) => tracing::warn!("queue '{}': cannot change its members: {e}", q.name),
            }
        });
    }

    /// This node is no longer a member of a queue's group (its policy
    /// changed): a moment later, once the leader has committed that, its
    /// copy goes.
    fn leave_group(self: &Arc<Self>, q: &Arc<Queue>) {
        let me = Arc::downgrade(self);
        let q = Arc::downgrade(q);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let (Some(c), Some(q)) = (me.upgrade(), q.upgrade()) else { return };
            let wanted = c.replicas.slot(group_id(&q)).map(|s| s.wanted.lock().clone());
            let Some(wanted) = wanted.filter(|w| !w.contains(&c.me.name)) else { return };
            let group = c.replicas.group_of(&q);
            c.drop_replicated(&q);
            // Its group never hears the final members: once the group has
            // stopped (its watcher last showed the old voters), the queue
            // shows the members chosen.
            if let Some(g) = group {
                let mut metrics = g.raft.metrics();
                drop(g);
                while metrics.changed().await.is_ok() {}
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            q.set_members(wanted);
            tokio::spawn(find_leader(Arc::downgrade(&c), Arc::downgrade(&q)));
        });
    }

    /// Starts (once) the group in `slot`.
    async fn start_group(self: &Arc<Self>, id: u64, slot: &Arc<Slot>) -> Result<Arc<Group>> {
        let g = slot
            .group
            .get_or_try_init(|| async {
                let wal = self.replicas.wal().cloned().ok_or_else(|| BrokerError::internal("no WAL"))?;
                let machine =
                    Machine::open(wal.clone(), id).map_err(|e| BrokerError::internal(e.to_string()))?;
                let network = GroupNetwork { peers: self.peers().clone(), group: id };
                let raft =
                    GroupRaft::new(self.id, raft_config(), network, GroupLog::new(wal, id), machine.clone())
                        .await
                        .map_err(|e| BrokerError::internal(format!("cannot start a queue's group: {e}")))?;
                let group = Group::new(id, raft, machine, slot.queue.clone());
                group.start(Arc::downgrade(self));
                if let Some(me) = &slot.initialize {
                    let only_me = BTreeMap::from([(self.id, me.clone())]);
                    match group.raft.initialize(only_me).await {
                        // Elect at once rather than after a timeout: the
                        // declarer waits for a leader.
                        Ok(()) => {
                            let _ = group.raft.trigger().elect().await;
                        }
                        Err(e) => tracing::debug!("group {id:x} already initialized: {e}"),
                    }
                }
                Ok::<_, BrokerError>(group)
            })
            .await?;
        Ok(g.clone())
    }

    /// A replicated queue was deleted: its group stops and its log goes.
    pub fn drop_replicated(&self, q: &Queue) {
        let id = group_id(q);
        let Some(slot) = self.replicas.slots.lock().remove(&id) else { return };
        let wal = self.replicas.wal().cloned();
        tokio::spawn(async move {
            if let Some(g) = slot.group.get() {
                g.close();
                let _ = g.raft.shutdown().await;
            }
            if let Some(w) = wal {
                w.drop_group(id);
            }
        });
    }

    /// Starts the members of the replicated queues this node has (at
    /// start, once the broker's queues and the cluster's members are
    /// known: members are chosen among them).
    pub fn register_all_replicated(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            for _ in 0..200 {
                let Some(c) = me.upgrade() else { return };
                if !c.other_members().is_empty() {
                    c.register_found();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    pub(super) fn register_found(self: &Arc<Self>) {
        let Ok(broker) = self.broker() else { return };
        for v in broker.vhosts() {
            for q in v.queues() {
                if q.is_replicated() {
                    self.register_replicated(&q);
                }
            }
        }
    }

    /// Serves `q` from `leader`'s node (None: it has no leader now).
    pub(super) fn serve_from(&self, q: &Arc<Queue>, leader: Option<&str>) {
        let backend = match (leader, self.broker().ok().and_then(|b| b.backends.get().cloned())) {
            (Some(l), Some(f)) if l != self.me.name => Some(f.remote(l)),
            _ => None,
        };
        let served = backend.is_some();
        q.follow(backend);
        if served {
            self.reattach(q);
        }
    }

    /// Tells every other node that this node leads `q` now.
    pub(super) fn announce_leader(self: &Arc<Self>, q: &Queue) {
        for m in self.other_members() {
            let c = self.clone();
            let call = Call::Leads { vhost: q.vhost.to_string(), queue: q.name.to_string() };
            tokio::spawn(async move {
                let _ = c.peers().call(&m.addr, call, CALL_TIMEOUT).await;
            });
        }
    }

    /// A Raft RPC for one of this node's groups.
    pub(super) async fn accept_group(self: Arc<Self>, id: u64, rpc: GroupRpc) -> Result<Reply> {
        let slot = match self.replicas.slot(id) {
            Some(s) => s,
            None => {
                // The queue may have been declared an instant ago and not
                // applied here yet: look once more after a moment.
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.register_found();
                self.replicas
                    .slot(id)
                    .ok_or_else(|| BrokerError::not_found(format!("no group {id:x} here")))?
            }
        };
        let g = self.start_group(id, &slot).await?;
        let reply = match rpc {
            GroupRpc::Append(r) => GroupReply::Append(g.raft.append_entries(r).await.map_err(raft_err)?),
            GroupRpc::Vote(r) => GroupReply::Vote(g.raft.vote(r).await.map_err(raft_err)?),
            GroupRpc::Snapshot(r) => {
                GroupReply::Snapshot(g.raft.install_snapshot(r).await.map_err(raft_err)?)
            }
        };
        Ok(Reply::Group(reply))
    }

    /// `from` says it leads the group of a queue: a node that is not a
    /// member serves the queue through it (a member follows its own group).
    pub(super) fn accept_leads(&self, from: &str, vhost: &str, queue: &str) -> Result<Reply> {
        let q = self.broker()?.vhost(vhost).and_then(|v| v.queue(queue));
        if let Some(q) = q.filter(|q| q.is_replicated()) {
            // A member whose group knows its leader follows the group.
            let knows = self.replicas.group_of(&q).is_some_and(|g| g.leader_name().is_some());
            if !knows {
                self.serve_from(&q, Some(from));
            }
        }
        Ok(Reply::Done)
    }

    /// Which node leads a queue's group, as far as this node knows.
    pub(super) fn who_leads(&self, vhost: &str, queue: &str) -> Result<Reply> {
        let q = self.broker()?.vhost(vhost).and_then(|v| v.queue(queue));
        let leader = match q {
            Some(q) => match self.replicas.group_of(&q) {
                Some(g) => g.leader_name(),
                None => q.serving_node(),
            },
            None => None,
        };
        Ok(Reply::Leader(leader))
    }
}

/// The node's failure detector for its groups: a group of which this node
/// is a voter, whose leader is unknown or on a node that does not answer
/// ([`super::liveness`]), first asks the other nodes who leads (a node
/// that restarted learns it so, without disturbing a leader that is
/// fine), and otherwise stands for election after a random delay.
pub(super) async fn elections(cluster: Weak<Cluster>) {
    let mut round: u32 = 0;
    loop {
        tokio::time::sleep(ELECTION_CHECK).await;
        let Some(c) = cluster.upgrade() else { return };
        // About once a second, consumers waiting for a leader try again.
        round = round.wrapping_add(1);
        if round % 10 == 0 {
            c.retry_orphans();
        }
        let groups: Vec<Arc<Group>> =
            c.replicas.slots.lock().values().filter_map(|s| s.group.get().cloned()).collect();
        for g in groups {
            if !g.needs_leader(|name| c.is_down(name)) || !g.try_election_now() {
                continue;
            }
            let c = c.clone();
            tokio::spawn(async move {
                let Some(q) = g.queue.upgrade() else { return };
                if let Some(l) = c.ask_leader(&q).await {
                    *g.named.lock() = Some(l.clone());
                    c.serve_from(&q, Some(&l));
                    return;
                }
                // One of them stands: it can win, this node cannot; unless
                // it has not for a while (it may not see the leader gone).
                if c.others_more_up_to_date(&g, &q).await && g.defer_election() {
                    return;
                }
                // The other voters heard from the leader at the latest when
                // its node went down: standing before their lease ran out
                // would only be refused.
                let down_for = g.leader_name().and_then(|l| c.liveness.down_for(&l)).unwrap_or_default();
                let lease_left = Duration::from_millis(LEASE_MS).saturating_sub(down_for);
                let jitter = Duration::from_millis(rand::random::<u64>() % ELECTION_JITTER_MS);
                tokio::time::sleep(lease_left + jitter).await;
                if g.needs_leader(|name| c.is_down(name)) {
                    tracing::debug!("queue '{}': standing for election", q.name);
                    let _ = g.raft.trigger().elect().await;
                }
            });
        }
    }
}

impl Cluster {
    /// Whether a reachable member of `q`'s group has a more up-to-date log
    /// than this node, or one as up to date and a smaller id: such a member
    /// would refuse this node its vote, or stands too, so only one of the
    /// most up-to-date members stands (as Raft's pre-vote would have it),
    /// and two followers do not split the vote.
    async fn others_more_up_to_date(&self, g: &Group, q: &Queue) -> bool {
        let mine = self.replicas.log_position(g.id).unwrap_or((0, 0));
        for m in self.other_members() {
            if self.is_down(&m.name) || !q.members().contains(&m.name) {
                continue;
            }
            if let Ok(Reply::LogPosition(Some(theirs))) =
                self.peers().call(&m.addr, Call::LogPosition { group: g.id }, CALL_TIMEOUT).await
            {
                if theirs > mine || (theirs == mine && super::node_id(&m.name) < self.id) {
                    return true;
                }
            }
        }
        false
    }

    /// A live leader of `q`'s group that another member knows of.
    async fn ask_leader(&self, q: &Queue) -> Option<String> {
        for m in self.other_members() {
            if self.is_down(&m.name) || !q.members().contains(&m.name) {
                continue;
            }
            let call = Call::WhoLeads { vhost: q.vhost.to_string(), queue: q.name.to_string() };
            if let Ok(Reply::Leader(Some(l))) = self.peers().call(&m.addr, call, CALL_TIMEOUT).await
                && l != self.me.name
                && !self.is_down(&l)
            {
                return Some(l);
            }
        }
        None
    }
}

fn raft_err<E: std::fmt::Display>(e: E) -> BrokerError {
    BrokerError::unavailable(e.to_string())
}

/// On a node that is not a member of a queue's group: asks the members
/// who leads whenever the queue has no live leader here, until the queue
/// goes.
async fn find_leader(cluster: Weak<Cluster>, queue: Weak<Queue>) {
    loop {
        {
            let (Some(c), Some(q)) = (cluster.upgrade(), queue.upgrade()) else { return };
            if q.is_deleted() {
                return;
            }
            if q.is_home_down() {
                for m in c.other_members() {
                    let call = Call::WhoLeads { vhost: q.vhost.to_string(), queue: q.name.to_string() };
                    if let Ok(Reply::Leader(Some(l))) = c.peers().call(&m.addr, call, CALL_TIMEOUT).await
                        && !c.is_down(&l)
                    {
                        c.serve_from(&q, Some(&l));
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
