//! The metadata Raft group's types: what a node is, what a log entry
//! carries, and openraft's type configuration.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::definitions::DefinitionCommand;

/// A cluster member: its node name and where its cluster link listens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub addr: String,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.addr)
    }
}

/// A log entry's payload: a metadata change, and which call on which node
/// proposed it, so that node can hand the caller its own node's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    pub origin: String,
    pub seq: u64,
    pub cmd: DefinitionCommand,
}

/// The leader's result of applying an entry: None, or the error text. The
/// proposing node answers its caller from its own state machine; this is
/// for the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome(pub Option<String>);

openraft::declare_raft_types!(
    /// The metadata Raft group.
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;

/// What a snapshot holds: the commands that rebuild the metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotData {
    pub commands: Vec<DefinitionCommand>,
}
