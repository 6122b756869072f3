//! The metadata Raft group's state machine: the broker itself. Each
//! committed entry is applied through `Broker::apply_committed`, the
//! function a single node applies a change with, here with a sink that
//! writes its durable part to the node's `definitions.db` together with the
//! new applied position, in one transaction. When the entry was proposed on this node, the caller
//! waiting in [`Pending`] gets this node's result (a declare-ok, a 406).
//!
//! Snapshots are the commands that rebuild the metadata
//! (`Broker::metadata_commands`), as JSON.

use std::collections::HashMap;
use std::future::Future;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use tokio::sync::oneshot;

use super::types::{
    Entry, LogId, Outcome, Snapshot, SnapshotData, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::broker::error::{BrokerError, Result};
use crate::broker::{Applied, Broker, CommitSink};
use crate::definitions::DefinitionCommand;
use crate::store::definitions::{RaftDb, StoreError as DbError};

/// Callers on this node waiting for their proposal to be applied here.
#[derive(Default)]
pub struct Pending {
    next: AtomicU64,
    waiting: parking_lot::Mutex<HashMap<u64, oneshot::Sender<Result<Applied>>>>,
}

impl Pending {
    pub fn register(&self) -> (u64, oneshot::Receiver<Result<Applied>>) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(seq, tx);
        (seq, rx)
    }

    pub fn forget(&self, seq: u64) {
        self.waiting.lock().remove(&seq);
    }

    fn deliver(&self, seq: u64, result: Result<Applied>) {
        if let Some(tx) = self.waiting.lock().remove(&seq) {
            let _ = tx.send(result);
        }
    }
}

/// What the state machine has applied, as stored under 'applied'.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AppliedState {
    pub last: Option<LogId>,
    pub membership: StoredMembership,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: String,
}

pub struct Inner {
    broker: Weak<Broker>,
    /// For what a member's restart asks of the state machine (`resync`).
    cluster: Weak<super::node::Cluster>,
    db: RaftDb,
    me: String,
    pub pending: Pending,
    applied: parking_lot::Mutex<AppliedState>,
    snapshot: parking_lot::Mutex<Option<(SnapshotMeta, Vec<u8>)>>,
    snapshot_count: AtomicU64,
}

/// Where a committed entry's durable part goes: into `definitions.db` in
/// the same transaction as the applied position that includes the entry,
/// so that after a crash the stored definitions are those of the stored
/// position, and the log is replayed from there.
struct AppliedSink<'a> {
    db: &'a RaftDb,
    /// The applied state to store, as JSON.
    applied: String,
}

impl CommitSink for AppliedSink<'_> {
    fn write(
        &self,
        writes: &[DefinitionCommand],
    ) -> impl Future<Output = std::result::Result<Vec<Option<u32>>, DbError>> + Send {
        self.db.persist_applied(writes, &self.applied)
    }
}

/// Cheap to clone: openraft takes the state machine and its snapshot
/// builder by value.
#[derive(Clone)]
pub struct StateMachine(pub Arc<Inner>);

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

fn snap_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_snapshot(None, AnyError::error(e.to_string())).into()
}

impl StateMachine {
    /// The state machine of the broker, as last stored in `db`.
    pub async fn open(
        broker: &Arc<Broker>,
        cluster: Weak<super::node::Cluster>,
        db: RaftDb,
        me: String,
    ) -> std::result::Result<StateMachine, BrokerError> {
        let applied = match db.get("applied").await.map_err(|e| BrokerError::internal(e.to_string()))? {
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| BrokerError::internal(format!("the stored Raft applied state: {e}")))?,
            None => AppliedState::default(),
        };
        let snapshot = match db.get("snapshot").await.map_err(|e| BrokerError::internal(e.to_string()))? {
            Some(s) => {
                let s: StoredSnapshot = serde_json::from_str(&s)
                    .map_err(|e| BrokerError::internal(format!("the stored Raft snapshot: {e}")))?;
                Some((s.meta, s.data.into_bytes()))
            }
            None => None,
        };
        Ok(StateMachine(Arc::new(Inner {
            broker: Arc::downgrade(broker),
            cluster,
            db,
            me,
            pending: Pending::default(),
            applied: parking_lot::Mutex::new(applied),
            snapshot: parking_lot::Mutex::new(snapshot),
            snapshot_count: AtomicU64::new(0),
        })))
    }

    pub fn applied(&self) -> AppliedState {
        self.0.applied.lock().clone()
    }

    fn broker(&self) -> std::result::Result<Arc<Broker>, StorageError> {
        self.0.broker.upgrade().ok_or_else(|| sm_err("the broker is gone"))
    }

    /// What is applied, as stored under 'applied'.
    fn applied_json(&self) -> std::result::Result<String, StorageError> {
        serde_json::to_string(&*self.0.applied.lock()).map_err(sm_err)
    }

    /// Stores the applied position of an entry that changed no definition.
    async fn store_applied(&self) -> std::result::Result<(), StorageError> {
        let state = self.applied_json()?;
        self.0.db.persist_applied(&[], &state).await.map_err(sm_err)?;
        Ok(())
    }

    async fn apply_one(&self, entry: Entry) -> std::result::Result<Outcome, StorageError> {
        self.0.applied.lock().last = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => {
                self.store_applied().await?;
                Ok(Outcome(None))
            }
            EntryPayload::Membership(m) => {
                self.0.applied.lock().membership = StoredMembership::new(Some(entry.log_id), m);
                self.store_applied().await?;
                Ok(Outcome(None))
            }
            EntryPayload::Normal(p) => {
                let broker = self.broker()?;
                let restarted = match &p.cmd {
                    DefinitionCommand::NodeRestarted { node } => Some(node.clone()),
                    _ => None,
                };
                let mut cmd = p.cmd;
                if let DefinitionCommand::DeclareQueue { incarnation, .. } = &mut cmd {
                    // Every node applies the entry at the same index.
                    *incarnation = entry.log_id.index;
                }
                let sink = AppliedSink { db: &self.0.db, applied: self.applied_json()? };
                let result = broker.apply_committed(cmd, &sink).await.map_err(sm_err)?;
                if let (Some(node), Some(cluster)) = (restarted, self.0.cluster.upgrade())
                    && let Some(copy) = cluster.restart_applied(&broker, &node, entry.log_id.index).await
                {
                    self.reconcile(&broker, &copy).await?;
                }
                let outcome = Outcome(result.as_ref().err().map(|e| e.to_string()));
                if p.origin == self.0.me {
                    self.0.pending.deliver(p.seq, result);
                }
                Ok(outcome)
            }
        }
    }

    /// Replaces the broker's metadata with a snapshot's.
    async fn install(&self, meta: &SnapshotMeta, data: &[u8]) -> std::result::Result<(), StorageError> {
        let snap: SnapshotData = serde_json::from_slice(data).map_err(snap_err)?;
        let broker = self.broker()?;
        {
            let mut a = self.0.applied.lock();
            a.last = meta.last_log_id;
            a.membership = meta.last_membership.clone();
        }
        self.reconcile(&broker, &snap.commands).await?;
        self.keep_snapshot(meta.clone(), data.to_vec()).await
    }

    /// Makes the broker's metadata `commands`' (a snapshot, or a member's
    /// copy after this node restarted), storing what that changed with
    /// the applied position.
    async fn reconcile(
        &self,
        broker: &Arc<Broker>,
        commands: &[DefinitionCommand],
    ) -> std::result::Result<(), StorageError> {
        let applied = broker.reconcile(commands);
        let state = self.applied_json()?;
        let ids = self.0.db.persist_applied(&applied, &state).await.map_err(sm_err)?;
        for (cmd, id) in applied.iter().zip(ids) {
            if let (DefinitionCommand::DeclareQueue { vhost, name, .. }, Some(id)) = (cmd, id)
                && let Some(q) = broker.vhost(vhost).and_then(|v| v.queue(name))
            {
                let _ = q.store_id.set(id);
            }
        }
        Ok(())
    }

    async fn keep_snapshot(
        &self,
        meta: SnapshotMeta,
        data: Vec<u8>,
    ) -> std::result::Result<(), StorageError> {
        let stored =
            StoredSnapshot { meta: meta.clone(), data: String::from_utf8(data.clone()).map_err(sm_err)? };
        let json = serde_json::to_string(&stored).map_err(sm_err)?;
        self.0.db.put("snapshot", &json).await.map_err(sm_err)?;
        *self.0.snapshot.lock() = Some((meta, data));
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> std::result::Result<Snapshot, StorageError> {
        let broker = self.broker()?;
        // Openraft calls the state machine one method at a time, so what is
        // applied cannot move while the snapshot is taken.
        let applied = self.applied();
        let data =
            serde_json::to_vec(&SnapshotData { commands: broker.metadata_commands() }).map_err(sm_err)?;
        let n = self.0.snapshot_count.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot_id = match applied.last {
            Some(l) => format!("{}-{}-{n}", l.leader_id, l.index),
            None => format!("--{n}"),
        };
        let meta =
            SnapshotMeta { last_log_id: applied.last, last_membership: applied.membership, snapshot_id };
        self.keep_snapshot(meta.clone(), data.clone()).await?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> std::result::Result<(Option<LogId>, StoredMembership), StorageError> {
        let a = self.applied();
        Ok((a.last, a.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> std::result::Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for e in entries {
            out.push(self.apply_one(e).await?);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> std::result::Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> std::result::Result<(), StorageError> {
        tracing::info!("installing the cluster's metadata snapshot {}", meta.snapshot_id);
        self.install(meta, &snapshot.into_inner()).await
    }

    async fn get_current_snapshot(&mut self) -> std::result::Result<Option<Snapshot>, StorageError> {
        Ok(self.0.snapshot.lock().as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

/// A broker error for a proposal that could not be committed (541
/// INTERNAL_ERROR over AMQP, 503 over HTTP).
pub fn unavailable(why: impl std::fmt::Display) -> BrokerError {
    BrokerError::unavailable(format!("the cluster cannot apply the change: {why}"))
}
