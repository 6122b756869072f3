//! What travels between nodes, and openraft's network over the link: each
//! Raft RPC is one call on the authenticated link to the target node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::link::{LinkError, Peer};
use super::secret::Secret;
use super::tls::LinkTls;
use super::types::{Member, NodeId, Outcome, Proposal, TypeConfig};

/// A call from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Call {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A metadata change, for the leader to commit.
    Propose(Proposal),
    /// Answer (`Reply::Done`) once you have applied the metadata log up to
    /// this index: the caller made a change there and answers its client
    /// only when every running member has it.
    Applied(u64),
    /// The caller wants to join the cluster this node is in.
    Join(Member),
    /// Remove a node from the membership (`forget_cluster_node`).
    Forget(String),
    /// The node's state, for `cluster_status` and `/api/nodes`.
    Info,
    /// The counts of the queues whose home the node is.
    QueueCounts,
    /// Are you there? (`Reply::Done`; [`super::liveness`])
    Ping,
    /// Messages for queues homed on the called node, in publish order.
    Publish(Vec<super::forward::ForwardedPublish>),
    /// Attach a stand-in consumer for a consumer on the caller.
    Subscribe(super::consume::SubscribeRequest),
    Unsubscribe {
        sub: u64,
    },
    /// Messages for the caller's subscription `sub` (home to subscriber).
    Deliver {
        sub: u64,
        items: Vec<super::consume::WireDelivery>,
    },
    /// The home cancelled subscription `sub` (its queue was deleted).
    SubCancelled {
        sub: u64,
    },
    /// Settle messages the called node delivered to the caller.
    Settle {
        op: crate::broker::queue::backend::Settle,
        ids: Vec<u64>,
    },
    Get {
        vhost: String,
        queue: String,
        no_ack: bool,
    },
    Purge {
        vhost: String,
        queue: String,
    },
    /// A Raft RPC of a replicated queue's group.
    Group {
        group: u64,
        rpc: super::replicated::net::GroupRpc,
    },
    /// The caller leads this replicated queue's group now.
    Leads {
        vhost: String,
        queue: String,
    },
    /// Which node leads this replicated queue's group, as far as you know?
    WhoLeads {
        vhost: String,
        queue: String,
    },
    /// The term and index of your last entry in this group's log.
    LogPosition {
        group: u64,
    },
    /// To the leader of a quorum queue's group: add (or remove) the member
    /// on `node` (`add_member`, `delete_member`; `replicated::members`).
    ChangeMembers {
        vhost: String,
        queue: String,
        add: bool,
        node: String,
    },
    /// This node's member of a queue's group: its Raft state.
    ReplicaStatus {
        vhost: String,
        queue: String,
    },
    /// Stand for election in this queue's group (`rebalance`).
    Elect {
        vhost: String,
        queue: String,
    },
    /// To a member that restarted: the sender's whole metadata as of the
    /// log index of the restart's marker (`resync`).
    Resync {
        index: u64,
        commands: Vec<crate::definitions::DefinitionCommand>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Append(AppendEntriesResponse<NodeId>),
    Vote(VoteResponse<NodeId>),
    Snapshot(InstallSnapshotResponse<NodeId>),
    Proposed(Outcome),
    Joined,
    Forgotten,
    Info(NodeInfo),
    /// (vhost, queue, counts) for each queue homed on the node.
    QueueCounts(Vec<(String, String, crate::broker::queue::QueueCounts)>),
    /// Whether each forwarded message was enqueued (and on disk when
    /// stored), in the order of the call.
    Published(Vec<bool>),
    Done,
    /// Whether the subscriber knows the subscription it was sent messages for.
    Known(bool),
    /// A message and how many are left, or none.
    Got(Option<(super::consume::WireDelivery, u64)>),
    Purged(u64),
    Group(super::replicated::net::GroupReply),
    Leader(Option<String>),
    LogPosition(Option<(u64, u64)>),
    /// A change of members was made (true), or the called node does not
    /// lead the group (any more): ask the leader.
    Changed(bool),
    ReplicaStatus(Option<super::replicated::members::ReplicaStatus>),
}

/// What a node says about itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    /// Whether its AMQP listeners are open (`stop_app` closes them).
    pub app_running: bool,
    pub amqp_listeners: Vec<String>,
    pub http_listeners: Vec<String>,
    pub uptime_ms: u64,
    /// The queues whose home the node is, and their messages.
    #[serde(default)]
    pub queue_totals: Option<warren_api_types::objects::NodeQueueTotals>,
    /// The node's own `/api/nodes` entry (memory, disk, descriptors,
    /// sockets, alarms and the rest), which another member shows as is.
    /// (Boxed: it is large, and every reply on the link is a `Reply`.)
    #[serde(default)]
    pub node: Option<Box<warren_api_types::objects::Node>>,
}

/// Links to the other nodes, one per address, shared by Raft's replication
/// and the node's own calls.
pub struct Peers {
    me: String,
    secret: Secret,
    tls: Option<Arc<LinkTls>>,
    links: parking_lot::Mutex<HashMap<String, Arc<Peer<Call, Reply>>>>,
}

impl Peers {
    pub fn new(me: String, secret: Secret, tls: Option<Arc<LinkTls>>) -> Peers {
        Peers { me, secret, tls, links: Default::default() }
    }

    pub fn tls(&self) -> Option<&Arc<LinkTls>> {
        self.tls.as_ref()
    }

    pub fn to(&self, addr: &str) -> Arc<Peer<Call, Reply>> {
        self.links
            .lock()
            .entry(addr.to_owned())
            .or_insert_with(|| {
                Arc::new(Peer::new(addr, self.me.clone(), self.secret.clone(), self.tls.clone()))
            })
            .clone()
    }

    /// Gives up the link to `addr` (its node was found down): the calls
    /// waiting on it fail at once.
    pub fn abandon(&self, addr: &str) {
        let peer = self.links.lock().get(addr).cloned();
        if let Some(p) = peer {
            p.abandon();
        }
    }

    pub async fn call(&self, addr: &str, call: Call, timeout: Duration) -> Result<Reply, LinkError> {
        self.to(addr).call(call, timeout).await
    }
}

/// openraft's network factory: a client per target node.
#[derive(Clone)]
pub struct Network(pub Arc<Peers>);

pub struct Client {
    peer: Arc<Peer<Call, Reply>>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Client;

    async fn new_client(&mut self, _target: NodeId, node: &Member) -> Client {
        Client { peer: self.0.to(&node.addr) }
    }
}

/// A link failure as openraft's RPC error (shared by every group's network).
pub(super) fn rpc_err<E: std::error::Error>(e: LinkError) -> RPCError<NodeId, Member, E> {
    match e {
        LinkError::Unreachable(_) | LinkError::Refused(..) => RPCError::Unreachable(Unreachable::new(&e)),
        _ => RPCError::Network(NetworkError::new(&e)),
    }
}

pub(super) fn unexpected<E: std::error::Error>() -> RPCError<NodeId, Member, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other("unexpected reply")))
}

impl RaftNetwork<TypeConfig> for Client {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self.peer.call(Call::Append(rpc), option.hard_ttl()).await.map_err(rpc_err)? {
            Reply::Append(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self.peer.call(Call::Snapshot(rpc), option.hard_ttl()).await.map_err(rpc_err)? {
            Reply::Snapshot(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self.peer.call(Call::Vote(rpc), option.hard_ttl()).await.map_err(rpc_err)? {
            Reply::Vote(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use warren_api_types::objects::{Node, NodeDetails};

    use super::*;

    /// A node's entry crosses the link whole: its flattened details and the
    /// figures left out when unknown come back as they left.
    #[test]
    fn node_info_crosses_the_link_unchanged() {
        let node = Node {
            name: "warren@a".into(),
            running: true,
            uptime: 7,
            mem_used: Some(1 << 30),
            mem_alarm: true,
            fd_used: Some(12),
            disk_free: None,
            details: NodeDetails {
                proc_used: Some(3),
                io_read_avg_time: Some(0.5),
                ra_open_file_metrics: Some([("ra_log_wal".to_owned(), 0)].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let info = NodeInfo { name: "warren@a".into(), node: Some(Box::new(node)), ..Default::default() };
        let bytes = rmp_serde::to_vec_named(&info).unwrap();
        let back: NodeInfo = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.node, info.node);
    }
}
