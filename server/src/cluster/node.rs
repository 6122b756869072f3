//! A node's place in a cluster: its cluster listener, and, once it is
//! clustered, its member of the metadata Raft group.
//!
//! A node starts standalone unless its `definitions.db` holds Raft state
//! (it was clustered before a restart). Standalone, every change goes
//! through `Broker::apply` locally, as on a single node, and the listener
//! only answers `Join` and `Info`. The first `Join` makes it a one-node
//! Raft group whose first snapshot is its current metadata; then every
//! change is proposed to the leader and applied by every node's state
//! machine ([`super::state_machine`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tokio::net::TcpListener;

use super::consume::ReplyFuture;
use super::link::{self, Handler};
use super::log_store::LogStore;
use super::network::{Call, Network, NodeInfo, Peers, Reply};
use super::node_id;
use super::secret::Secret;
use super::state_machine::{StateMachine, unavailable};
use super::types::{Member, NodeId, Proposal, Raft};
use crate::broker::error::{BrokerError, Result};
use crate::broker::{Applied, Broker};
use crate::definitions::DefinitionCommand;
use crate::store::definitions::RaftDb;

/// How long a change may wait for the cluster to commit it.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long joining may take (the joiner receives the whole metadata).
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const INFO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the answer to a change waits for another member to apply it,
/// at most: a member that is slow, or down but not yet found so
/// ([`super::liveness`]), delays changes by no more than this.
const APPLIED_TIMEOUT: Duration = Duration::from_secs(2);
/// How long declaring a replicated queue waits for its group to elect a
/// leader, at most.
const REPLICA_START_TIMEOUT: Duration = Duration::from_secs(5);

/// A member as `cluster_status` and `/api/nodes` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberStatus {
    pub name: String,
    pub addr: String,
    pub voter: bool,
    /// None when the node did not answer.
    pub info: Option<NodeInfo>,
}

/// How this node describes itself (None while it stops).
pub type NodeDescriber = Arc<dyn Fn() -> Option<NodeInfo> + Send + Sync>;

struct Running {
    raft: Raft,
    sm: StateMachine,
}

pub struct Cluster {
    pub me: Member,
    pub id: NodeId,
    broker: Weak<Broker>,
    db: RaftDb,
    peers: Arc<Peers>,
    running: parking_lot::RwLock<Option<Arc<Running>>>,
    /// Serialises forming, joining and leaving.
    forming: tokio::sync::Mutex<()>,
    info: parking_lot::RwLock<Option<NodeDescriber>>,
    pub(super) forwarders: super::forward::Forwarders,
    pub(super) consuming: super::consume::Consuming,
    pub(super) liveness: super::liveness::Liveness,
    pub(super) replicas: super::replicated::Replicas,
    /// The members operators chose for quorum queues (`add_member`...).
    pub(super) chosen: super::replicated::members::Chosen,
    /// Taking back the transient metadata after a restart.
    pub(super) resync: super::resync::Resync,
    /// This cluster, for the tasks it starts.
    this: std::sync::OnceLock<Weak<Cluster>>,
}

fn raft_config(snapshot_every: u64) -> Arc<openraft::Config> {
    let c = openraft::Config {
        cluster_name: "warren".into(),
        heartbeat_interval: 200,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        // Snapshots cover everything applied, so that a node that joins
        // gets one instead of a log that starts after the metadata it
        // needs.
        max_in_snapshot_log_to_keep: 0,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every),
        ..Default::default()
    };
    Arc::new(c.validate().expect("a valid Raft configuration"))
}

impl crate::broker::consensus::Consensus for Cluster {
    fn is_clustered(&self) -> bool {
        Cluster::is_clustered(self)
    }

    fn node_name(&self) -> &str {
        &self.me.name
    }

    fn propose(&self, cmd: DefinitionCommand) -> futures_util::future::BoxFuture<'_, Result<Applied>> {
        Box::pin(Cluster::propose(self, cmd))
    }
}

impl Cluster {
    /// Listens for other nodes on `listener`, and rejoins the cluster when
    /// this node was clustered before a restart.
    pub async fn start(
        broker: &Arc<Broker>,
        listener: TcpListener,
        advertised: String,
        secret: Secret,
        tls: Option<Arc<super::tls::LinkTls>>,
    ) -> Result<Arc<Cluster>> {
        let defs = broker
            .definitions
            .as_ref()
            .ok_or_else(|| BrokerError::internal("a cluster needs a data directory"))?;
        let me = Member { name: broker.config.node_name.clone(), addr: advertised };
        let cluster = Arc::new(Cluster {
            id: node_id(&me.name),
            peers: Arc::new(Peers::new(me.name.clone(), secret.clone(), tls.clone())),
            me,
            broker: Arc::downgrade(broker),
            db: defs.raft(),
            running: Default::default(),
            forming: Default::default(),
            info: Default::default(),
            forwarders: Default::default(),
            consuming: Default::default(),
            liveness: Default::default(),
            replicas: Default::default(),
            chosen: Default::default(),
            resync: Default::default(),
            this: Default::default(),
        });
        let _ = cluster.this.set(Arc::downgrade(&cluster));
        let wal_dir = broker.config.data_dir.join("quorum");
        let wal =
            super::wal::Wal::open(&wal_dir, super::wal::WalOptions { fsync: true, segment_bytes: 64 << 20 })
                .map_err(|e| {
                    BrokerError::internal(format!("cannot open the queue log in {}: {e}", wal_dir.display()))
                })?;
        cluster.replicas.set_wal(wal);
        tokio::spawn(super::liveness::watch(Arc::downgrade(&cluster)));
        tokio::spawn(super::liveness::reap(Arc::downgrade(&cluster)));
        tokio::spawn(super::replicated::elections(Arc::downgrade(&cluster)));
        let backends = super::remote::RemoteBackends::new(Arc::downgrade(&cluster));
        broker.install_cluster(cluster.clone(), Arc::new(backends));
        let was_clustered =
            cluster.db.get("vote").await.map_err(|e| BrokerError::internal(e.to_string()))?.is_some();
        if was_clustered {
            cluster.resync.restarted();
            cluster.start_raft(broker).await?;
            tracing::info!("rejoining the cluster as {}", cluster.me);
            cluster.register_all_replicated();
            tokio::spawn(cluster.clone().announce_restart());
        }
        let weak = Arc::downgrade(&cluster);
        let handler: Handler<Call, Reply> = Arc::new(move |from, call| match weak.upgrade() {
            Some(c) => c.handle(from, call),
            None => Box::pin(async { Err(super::consume::stopping()) }),
        });
        tokio::spawn(link::serve(listener, cluster.me.name.clone(), secret, tls, handler));
        Ok(cluster)
    }

    /// Tells the cluster how to describe this node (its AMQP app's state,
    /// its figures).
    pub fn set_info(&self, f: NodeDescriber) {
        *self.info.write() = Some(f);
    }

    fn local_info(&self) -> NodeInfo {
        let described = self.info.read().as_ref().and_then(|f| f());
        described.unwrap_or_else(|| NodeInfo { name: self.me.name.clone(), ..Default::default() })
    }

    pub(super) fn weak_self(&self) -> Weak<Cluster> {
        self.this.get().cloned().unwrap_or_default()
    }

    pub fn is_clustered(&self) -> bool {
        self.running.read().is_some()
    }

    fn running(&self) -> Option<Arc<Running>> {
        self.running.read().clone()
    }

    async fn start_raft(&self, broker: &Arc<Broker>) -> Result<Arc<Running>> {
        let sm = StateMachine::open(broker, self.weak_self(), self.db.clone(), self.me.name.clone()).await?;
        let raft = Raft::new(
            self.id,
            raft_config(broker.config.metadata_snapshot_every),
            Network(self.peers.clone()),
            LogStore::new(self.db.clone()),
            sm.clone(),
        )
        .await
        .map_err(|e| BrokerError::internal(format!("cannot start the metadata Raft group: {e}")))?;
        tokio::spawn(log_changes(raft.metrics(), self.weak_self()));
        let running = Arc::new(Running { raft, sm });
        *self.running.write() = Some(running.clone());
        Ok(running)
    }

    pub(super) fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// The link's TLS, when `cluster.tls` is on.
    pub fn link_tls(&self) -> Option<&Arc<super::tls::LinkTls>> {
        self.peers.tls()
    }

    /// Where the member called `name` listens, from the membership.
    pub(super) fn address_of(&self, name: &str) -> Option<String> {
        let running = self.running()?;
        let m = running.raft.metrics().borrow().clone();
        m.membership_config.membership().get_node(&node_id(name)).map(|n| n.addr.clone())
    }

    /// The members other than this node (none when not clustered).
    pub(super) fn other_members(&self) -> Vec<Member> {
        let Some(running) = self.running() else { return Vec::new() };
        let m = running.raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != self.id)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// Whether the member called `name` is down (failed its last ping).
    pub fn is_down(&self, name: &str) -> bool {
        self.liveness.is_down(name)
    }

    /// The members that do not answer (failed their last ping).
    pub fn unreachable(&self) -> Vec<String> {
        self.liveness.down()
    }

    /// How many voters answer, this node included, and how many there
    /// are; None when not clustered.
    pub fn reachable_voters(&self) -> Option<(usize, usize)> {
        let running = self.running()?;
        let m = running.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: Vec<&Member> = membership.voter_ids().filter_map(|id| membership.get_node(&id)).collect();
        let up = voters.iter().filter(|v| v.name == self.me.name || !self.liveness.is_down(&v.name)).count();
        Some((up, voters.len()))
    }

    /// Why this node cannot change metadata now, if it cannot: it sees
    /// fewer than a majority of the voters, so nothing it proposes can
    /// commit.
    pub fn minority(&self) -> Option<String> {
        let (up, voters) = self.reachable_voters()?;
        (up * 2 <= voters).then(|| {
            format!(
                "this node is in a minority partition: {up} of {voters} members reachable, \
                 a majority is needed for metadata changes"
            )
        })
    }

    /// Whether this node is the Raft leader.
    pub(super) fn is_leader(&self) -> bool {
        self.running().is_some_and(|r| r.raft.metrics().borrow().current_leader == Some(self.id))
    }

    pub(super) fn broker(&self) -> Result<Arc<Broker>> {
        self.broker.upgrade().ok_or_else(|| BrokerError::internal("the node is stopping"))
    }

    // ------------------------------------------------------------ changes

    /// Commits a metadata change through the cluster and returns what
    /// applying it did on this node, once every other running member has
    /// applied it too (as RabbitMQ answers once every node has a change):
    /// a client that reads through another node right after the answer
    /// finds what it made. A node in a minority refuses at once, with the
    /// reason; one that sees a majority but cannot commit (no leader yet)
    /// gives up after [`PROPOSE_TIMEOUT`].
    pub async fn propose(&self, mut cmd: DefinitionCommand) -> Result<Applied> {
        let running = self.running().ok_or_else(|| BrokerError::internal("this node is not clustered"))?;
        if let Some(why) = self.minority() {
            return Err(BrokerError::unavailable(why));
        }
        if let DefinitionCommand::DeclareQueue { home, .. } = &mut cmd {
            home.get_or_insert_with(|| self.me.name.clone());
        }
        let (seq, done) = running.sm.0.pending.register();
        let proposal = Proposal { origin: self.me.name.clone(), seq, cmd };
        let deadline = tokio::time::Instant::now() + PROPOSE_TIMEOUT;
        let committed = self.commit(&running, proposal, deadline).await;
        if let Err(e) = committed {
            running.sm.0.pending.forget(seq);
            return Err(e);
        }
        let result = match tokio::time::timeout_at(deadline, done).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => return Err(unavailable("the node stopped")),
            Err(_) => {
                running.sm.0.pending.forget(seq);
                return Err(unavailable("it was committed but not applied on this node in time"));
            }
        };
        // Entries apply in order and the applied position moves before an
        // entry applies: this covers the change, perhaps a few after it.
        if let Some(applied) = running.sm.applied().last {
            self.until_members_applied(applied.index).await;
        }
        // A replicated queue is answered once its group has a leader, so
        // that its declarer can publish at once.
        if let Ok(Applied::Queue(d)) = &result
            && d.created
            && d.queue.is_replicated()
        {
            d.queue.until_served(REPLICA_START_TIMEOUT).await;
        }
        result
    }

    /// Waits until every other member that is not down has applied the log
    /// up to `index`, or for [`APPLIED_TIMEOUT`], whichever comes first.
    async fn until_members_applied(&self, index: u64) {
        let up = self.other_members().into_iter().filter(|m| !self.liveness.is_down(&m.name));
        let asks = up.map(|m| async move {
            match self.peers.call(&m.addr, Call::Applied(index), APPLIED_TIMEOUT).await {
                Ok(Reply::Done) => {}
                Ok(_) => tracing::debug!("{m} answered oddly to Applied({index})"),
                Err(e) => tracing::debug!("{m} did not say it applied up to {index}: {e}"),
            }
        });
        futures_util::future::join_all(asks).await;
    }

    /// Answers once this node has applied the log up to `index`.
    async fn applied(&self, index: u64) -> Result<Reply> {
        let wait = self.raft()?.wait(Some(APPLIED_TIMEOUT));
        wait.applied_index_at_least(Some(index), "a change made through another node")
            .await
            .map(|_| Reply::Done)
            .map_err(unavailable)
    }

    /// Gets `p` committed: by this node's Raft when it leads, else by the
    /// leader it names, retrying while there is none.
    async fn commit(&self, running: &Running, p: Proposal, deadline: tokio::time::Instant) -> Result<()> {
        loop {
            let leader = match running.raft.client_write(p.clone()).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f.leader_node,
                Err(e) => return Err(unavailable(e)),
            };
            if let Some(leader) = leader {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match self.peers.call(&leader.addr, Call::Propose(p.clone()), left).await {
                    Ok(Reply::Proposed(_)) => return Ok(()),
                    Ok(_) => return Err(unavailable("unexpected reply from the leader")),
                    Err(e) => tracing::debug!("proposal to the leader {leader}: {e}"),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(unavailable("no leader with a majority answered in time"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // ------------------------------------------------------------ the listener

    /// Serves a call from `from`. The link calls this in arrival order:
    /// what a call changes on queues happens now, before the next call is
    /// read (forwarded messages keep their order); the answer may wait.
    fn handle(self: Arc<Self>, from: String, call: Call) -> ReplyFuture {
        match call {
            Call::Append(rpc) => Box::pin(async move {
                self.raft()?.append_entries(rpc).await.map(Reply::Append).map_err(unavailable)
            }),
            Call::Vote(rpc) => {
                Box::pin(async move { self.raft()?.vote(rpc).await.map(Reply::Vote).map_err(unavailable) })
            }
            Call::Snapshot(rpc) => Box::pin(async move {
                self.raft()?.install_snapshot(rpc).await.map(Reply::Snapshot).map_err(unavailable)
            }),
            Call::Propose(p) => Box::pin(async move {
                self.raft()?.client_write(p).await.map(|r| Reply::Proposed(r.data)).map_err(unavailable)
            }),
            Call::Applied(index) => Box::pin(async move { self.applied(index).await }),
            Call::Resync { index, commands } => {
                Box::pin(async move { Ok(self.resync.accept(index, commands)) })
            }
            Call::Join(member) => Box::pin(async move {
                tracing::info!("{from} asks to join the cluster");
                self.admit(member).await.map(|_| Reply::Joined)
            }),
            Call::Forget(name) => {
                Box::pin(
                    async move { self.forget(&name).await.map(|_| Reply::Forgotten).map_err(unavailable) },
                )
            }
            Call::Info => Box::pin(async move { Ok(Reply::Info(self.local_info())) }),
            Call::Ping => Box::pin(async { Ok(Reply::Done) }),
            Call::QueueCounts => Box::pin(async move { self.queue_counts().map(Reply::QueueCounts) }),
            Call::Publish(batch) => self.accept_publish(batch),
            Call::Subscribe(req) => self.accept_subscribe(from, req),
            Call::Unsubscribe { sub } => self.accept_unsubscribe(from, sub),
            Call::Deliver { sub, items } => self.accept_deliveries(sub, items),
            Call::SubCancelled { sub } => self.accept_cancel(sub),
            Call::Settle { op, ids } => self.accept_settle(&from, op, ids),
            Call::Get { vhost, queue, no_ack } => self.accept_get(from, &vhost, &queue, no_ack),
            Call::Purge { vhost, queue } => self.accept_purge(&vhost, &queue),
            Call::Group { group, rpc } => Box::pin(self.accept_group(group, rpc)),
            Call::Leads { vhost, queue } => Box::pin(async move { self.accept_leads(&from, &vhost, &queue) }),
            Call::WhoLeads { vhost, queue } => Box::pin(async move { self.who_leads(&vhost, &queue) }),
            Call::LogPosition { group } => {
                Box::pin(async move { Ok(Reply::LogPosition(self.replicas.log_position(group))) })
            }
            Call::ChangeMembers { vhost, queue, add, node } => {
                Box::pin(async move { self.accept_change_members(&vhost, &queue, add, &node).await })
            }
            Call::ReplicaStatus { vhost, queue } => {
                Box::pin(async move { self.local_replica_status(&vhost, &queue).map(Reply::ReplicaStatus) })
            }
            Call::Elect { vhost, queue } => Box::pin(async move { self.accept_elect(&vhost, &queue).await }),
        }
    }

    fn raft(&self) -> Result<Raft> {
        self.running().map(|r| r.raft.clone()).ok_or_else(|| unavailable("this node is not clustered"))
    }

    /// The counts of the queues whose home this node is.
    fn queue_counts(&self) -> Result<Vec<(String, String, crate::broker::queue::QueueCounts)>> {
        let broker = self.broker()?;
        let mut out = Vec::new();
        for v in broker.vhosts() {
            for q in v.queues().into_iter().filter(|q| q.is_held_here()) {
                out.push((v.name.to_string(), q.name.to_string(), q.counts()));
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------ membership

    /// Adds `member` to the cluster: as the leader, or by asking it. A
    /// standalone node first becomes a one-node cluster of its own metadata.
    async fn admit(&self, member: Member) -> Result<()> {
        let running = match self.running() {
            Some(r) => r,
            None => self.form().await?,
        };
        let m = running.raft.metrics().borrow().clone();
        if m.current_leader != Some(self.id) {
            let leader = m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l).cloned())
                .ok_or_else(|| unavailable("the cluster has no leader now"))?;
            return match self.peers.call(&leader.addr, Call::Join(member), JOIN_TIMEOUT).await {
                Ok(_) => Ok(()),
                Err(e) => Err(unavailable(e)),
            };
        }
        let id = node_id(&member.name);
        running.raft.add_learner(id, member.clone(), true).await.map_err(unavailable)?;
        let voters: BTreeSet<NodeId> = [id].into();
        running
            .raft
            .change_membership(ChangeMembers::AddVoterIds(voters), false)
            .await
            .map_err(unavailable)?;
        tracing::info!("{member} joined the cluster");
        Ok(())
    }

    /// Turns this standalone node into a one-node cluster whose first
    /// snapshot is its metadata.
    async fn form(&self) -> Result<Arc<Running>> {
        let _guard = self.forming.lock().await;
        if let Some(r) = self.running() {
            return Ok(r);
        }
        let broker = self.broker()?;
        let running = self.start_raft(&broker).await?;
        let members: BTreeMap<NodeId, Member> = [(self.id, self.me.clone())].into();
        running.raft.initialize(members).await.map_err(unavailable)?;
        let mut metrics = running.raft.metrics();
        let leading = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if metrics.borrow().state == ServerState::Leader && metrics.borrow().last_applied.is_some() {
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        leading.await.map_err(|_| unavailable("this node did not become the leader of its own cluster"))?;
        // A snapshot of everything now, and no log before it: a node that
        // joins must receive the metadata made before the cluster formed.
        running.raft.trigger().snapshot().await.map_err(unavailable)?;
        let applied = metrics.borrow().last_applied;
        let snapshotted = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if metrics.borrow().snapshot >= applied {
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        snapshotted.await.map_err(|_| unavailable("the first snapshot was not taken in time"))?;
        if let Some(a) = applied {
            running.raft.trigger().purge_log(a.index).await.map_err(unavailable)?;
        }
        tracing::info!("formed a cluster of one: {}", self.me);
        Ok(running)
    }

    /// Joins the cluster that the node at `seed` is in (`join_cluster`).
    /// This node's own metadata and messages are discarded first, as
    /// RabbitMQ's `join_cluster` resets the node.
    pub async fn join(&self, seed: &str) -> Result<()> {
        let _guard = self.forming.lock().await;
        if self.is_clustered() {
            return Err(BrokerError::precondition_failed(format!(
                "{} is already a member of a cluster",
                self.me.name
            )));
        }
        let broker = self.broker()?;
        // Reach the seed before resetting anything.
        match self.peers.call(seed, Call::Info, INFO_TIMEOUT).await {
            Ok(Reply::Info(_)) => {}
            Ok(_) => return Err(unavailable(format!("{seed} answered oddly"))),
            Err(e) => return Err(e.into()),
        }
        tracing::info!("resetting {} to join the cluster of {seed}", self.me.name);
        broker.reconcile(&[]);
        self.db.reset().await.map_err(|e| BrokerError::internal(e.to_string()))?;
        let running = self.start_raft(&broker).await?;
        let joined = self.peers.call(seed, Call::Join(self.me.clone()), JOIN_TIMEOUT).await;
        if let Err(e) = joined {
            tracing::error!("joining the cluster of {seed} failed: {e}");
            let _ = running.raft.shutdown().await;
            *self.running.write() = None;
            let _ = self.db.reset().await;
            // Usable again as a fresh standalone node.
            if let Err(e) = broker.seed_defaults().await {
                tracing::error!("cannot restore the default vhost and user: {e}");
            }
            return Err(e.into());
        }
        // Answer once this node has applied what it joined with, so that
        // the next request (start_app, a login) finds the cluster's users.
        let mut metrics = running.raft.metrics();
        let caught_up = tokio::time::timeout(JOIN_TIMEOUT, async {
            loop {
                {
                    let m = metrics.borrow();
                    let voter = m.membership_config.membership().voter_ids().any(|id| id == self.id);
                    if voter && m.last_applied.is_some() && m.last_applied >= *m.membership_config.log_id() {
                        return;
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        if caught_up.await.is_err() {
            tracing::warn!(
                "{} joined the cluster of {seed} but has not applied its metadata yet",
                self.me.name
            );
        }
        tracing::info!("{} joined the cluster of {seed}", self.me.name);
        Ok(())
    }

    /// Removes the node called `name` from the membership
    /// (`forget_cluster_node`), as the leader or by asking it.
    pub async fn forget(&self, name: &str) -> Result<()> {
        let running = self.running().ok_or_else(|| BrokerError::internal("this node is not clustered"))?;
        let m = running.raft.metrics().borrow().clone();
        let id = node_id(name);
        if m.membership_config.membership().get_node(&id).is_none() {
            return Err(BrokerError::not_found(format!("{name} is not a member of the cluster")));
        }
        if id == self.id {
            return Err(BrokerError::precondition_failed(format!(
                "{name} cannot forget itself; run forget_cluster_node on another member"
            )));
        }
        if m.current_leader != Some(self.id) {
            let leader = m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l).cloned())
                .ok_or_else(|| unavailable("the cluster has no leader now"))?;
            return match self.peers.call(&leader.addr, Call::Forget(name.to_owned()), PROPOSE_TIMEOUT).await {
                Ok(_) => Ok(()),
                Err(e) => Err(unavailable(e)),
            };
        }
        let ids: BTreeSet<NodeId> = [id].into();
        running
            .raft
            .change_membership(ChangeMembers::RemoveVoters(ids.clone()), false)
            .await
            .map_err(unavailable)?;
        running.raft.change_membership(ChangeMembers::RemoveNodes(ids), false).await.map_err(unavailable)?;
        tracing::info!("{name} was removed from the cluster");
        Ok(())
    }

    // ------------------------------------------------------------ status

    /// The name of the Raft leader, if there is one.
    pub fn leader(&self) -> Option<String> {
        let running = self.running()?;
        let m = running.raft.metrics().borrow().clone();
        let l = m.current_leader?;
        m.membership_config.membership().get_node(&l).map(|n| n.name.clone())
    }

    /// Every member, asked for its state (this node answers directly).
    pub async fn members(&self) -> Vec<MemberStatus> {
        let Some(running) = self.running() else {
            return vec![MemberStatus {
                name: self.me.name.clone(),
                addr: self.me.addr.clone(),
                voter: true,
                info: Some(self.local_info()),
            }];
        };
        let m = running.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let asks = membership.nodes().map(|(id, node)| {
            let (id, node) = (*id, node.clone());
            let voter = voters.contains(&id);
            async move {
                let info = if id == self.id {
                    Some(self.local_info())
                } else if self.liveness.is_down(&node.name) {
                    None
                } else {
                    match self.peers.call(&node.addr, Call::Info, INFO_TIMEOUT).await {
                        Ok(Reply::Info(i)) => Some(i),
                        _ => None,
                    }
                };
                MemberStatus { name: node.name, addr: node.addr, voter, info }
            }
        });
        let mut out = futures_util::future::join_all(asks).await;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Asks every other member for the counts of the queues it holds, and
    /// records them on this node's copies of those queues, so that listings
    /// and the dashboard show every queue's depth from any node (as of the
    /// last refresh).
    pub async fn refresh_remote_counts(&self) {
        let Some(running) = self.running() else { return };
        let Ok(broker) = self.broker() else { return };
        drop(running);
        for m in self.other_members() {
            if self.liveness.is_down(&m.name) {
                continue;
            }
            let Ok(Reply::QueueCounts(counts)) =
                self.peers.call(&m.addr, Call::QueueCounts, INFO_TIMEOUT).await
            else {
                continue;
            };
            for (vhost, name, c) in counts {
                if let Some(q) =
                    broker.vhost(&vhost).and_then(|v| v.queue(&name)).filter(|q| !q.is_held_here())
                {
                    q.set_remote_counts(c);
                }
            }
        }
    }

    /// Stops this node's Raft member (shutdown).
    pub async fn stop(&self) {
        if let Some(r) = self.running() {
            let _ = r.raft.shutdown().await;
        }
    }
}

/// Logs who leads and who is a member whenever that changes. (openraft's
/// own logging is off by default: it repeats every failed heartbeat while a
/// node is down; `WARREN_LOG=info,openraft=info` shows it.)
/// Logs who leads and who the members are as it changes; when the members
/// change (a node joined or was forgotten), replicated queues choose their
/// members again (an `ha-mode: all` queue grows to a node that joins).
async fn log_changes(
    mut metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, Member>>,
    cluster: Weak<Cluster>,
) {
    let mut last: Option<(Option<String>, Vec<String>)> = None;
    loop {
        let now = {
            let m = metrics.borrow();
            let members = m.membership_config.membership();
            let leader = m.current_leader.and_then(|l| members.get_node(&l)).map(|n| n.name.clone());
            let names = members.nodes().map(|(_, n)| n.name.clone()).collect::<Vec<_>>();
            (leader, names)
        };
        if last.as_ref() != Some(&now) {
            match &now.0 {
                Some(l) => tracing::info!("cluster: members {:?}, leader {l}", now.1),
                None => tracing::info!("cluster: members {:?}, no leader now", now.1),
            }
            let joined_or_left = last.as_ref().is_some_and(|(_, names)| *names != now.1);
            if let (true, Some(c)) = (joined_or_left, cluster.upgrade()) {
                c.register_found();
            }
            last = Some(now);
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
