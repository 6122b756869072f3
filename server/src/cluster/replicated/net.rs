//! The groups' Raft RPCs over the cluster link: each is one call to the
//! target node naming the group, so that every group shares the node's one
//! link to each peer.

use std::sync::Arc;

use openraft::error::{InstallSnapshotError, RPCError, RaftError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::types::{NodeId, QueueTypes};
use crate::cluster::link::Peer;
use crate::cluster::network::{Call, Peers, Reply, rpc_err, unexpected};
use crate::cluster::types::Member;

/// A Raft RPC of one group.
#[derive(Debug, Serialize, Deserialize)]
pub enum GroupRpc {
    Append(AppendEntriesRequest<QueueTypes>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<QueueTypes>),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum GroupReply {
    Append(AppendEntriesResponse<NodeId>),
    Vote(VoteResponse<NodeId>),
    Snapshot(InstallSnapshotResponse<NodeId>),
}

/// openraft's network factory for one group.
#[derive(Clone)]
pub struct GroupNetwork {
    pub peers: Arc<Peers>,
    pub group: u64,
}

pub struct GroupClient {
    peer: Arc<Peer<Call, Reply>>,
    group: u64,
}

impl RaftNetworkFactory<QueueTypes> for GroupNetwork {
    type Network = GroupClient;

    async fn new_client(&mut self, _target: NodeId, node: &Member) -> GroupClient {
        GroupClient { peer: self.peers.to(&node.addr), group: self.group }
    }
}

impl GroupClient {
    async fn call<E: std::error::Error>(
        &self,
        rpc: GroupRpc,
        option: RPCOption,
    ) -> Result<GroupReply, RPCError<NodeId, Member, E>> {
        let call = Call::Group { group: self.group, rpc };
        match self.peer.call(call, option.hard_ttl()).await.map_err(rpc_err)? {
            Reply::Group(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }
}

impl RaftNetwork<QueueTypes> for GroupClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<QueueTypes>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self.call(GroupRpc::Append(rpc), option).await? {
            GroupReply::Append(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<QueueTypes>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self.call(GroupRpc::Snapshot(rpc), option).await? {
            GroupReply::Snapshot(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self.call(GroupRpc::Vote(rpc), option).await? {
            GroupReply::Vote(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }
}
