//! Committing a definition change: applying it to memory, then persisting
//! what it made durable. [`Broker::apply_committed`] is the one function
//! that does both; its caller says where the durable part goes, through a
//! [`CommitSink`]:
//!
//! - a single node, from [`Broker::apply`]: the definitions store, one
//!   transaction per change;
//! - a cluster member, from the metadata Raft group's state machine, for
//!   each committed entry: the same rows and the new applied log position,
//!   in one transaction (`cluster::state_machine`).
//!
//! A change's durable part is the command itself, unless it left nothing on
//! disk to change (a transient queue's deletion), and the deletions it
//! caused besides: the auto-delete exchanges that went with a queue or a
//! binding. [`Broker::apply_all`] (definitions import) applies many changes
//! and writes their durable parts a chunk at a time, with the same rules.

use std::future::Future;

use super::error::{BrokerError, Result};
use super::{Applied, Broker};
use crate::definitions::DefinitionCommand;
use crate::store::definitions::{DefinitionStore, StoreError};

/// Where the durable part of committed changes is written.
pub trait CommitSink {
    /// Writes `writes` in order, in one transaction, and returns for each
    /// what [`DefinitionStore::persist`] returns (a stored queue's row id).
    /// It is called for every change, with nothing to write when the change
    /// was refused or left nothing durable: a sink may have bookkeeping of
    /// its own to record either way.
    fn write(
        &self,
        writes: &[DefinitionCommand],
    ) -> impl Future<Output = std::result::Result<Vec<Option<u32>>, StoreError>> + Send;
}

/// A single node writes straight to its definitions store.
impl CommitSink for DefinitionStore {
    fn write(
        &self,
        writes: &[DefinitionCommand],
    ) -> impl Future<Output = std::result::Result<Vec<Option<u32>>, StoreError>> + Send {
        self.persist_all(writes)
    }
}

impl Broker {
    /// Applies a metadata change and, when it touches something durable,
    /// writes it to the definitions store before returning. This is the one
    /// path for every change: AMQP, HTTP, definitions import. In a cluster
    /// the change is proposed to the metadata Raft group, whose state
    /// machine commits it on every member.
    pub async fn apply(&self, cmd: DefinitionCommand) -> Result<Applied> {
        if let Some(consensus) = self.consensus() {
            return consensus.propose(cmd).await;
        }
        let Some(defs) = &self.definitions else {
            return self.apply_in_memory(cmd);
        };
        let _order = self.apply_lock.lock().await;
        self.apply_committed(cmd, defs).await.map_err(store_failed)?
    }

    /// Applies a change to memory, then hands its durable part to `sink`.
    /// The inner result is the change's own (what it did, or why it was
    /// refused: a 404, a 406); the outer error is the sink's, in which case
    /// the change is applied in memory but not stored.
    ///
    /// Callers apply one change at a time, in commit order: the single
    /// node under its apply lock, the Raft state machine as openraft calls
    /// it.
    pub async fn apply_committed(
        &self,
        cmd: DefinitionCommand,
        sink: &impl CommitSink,
    ) -> std::result::Result<Result<Applied>, StoreError> {
        let copy = cmd.clone();
        let result = self.apply_in_memory(cmd);
        let writes = match &result {
            Ok(applied) => durable_writes(copy, applied),
            Err(_) => Vec::new(),
        };
        let ids = sink.write(&writes).await?;
        if let Ok(applied) = &result {
            note_stored(ids.first().copied().flatten(), applied);
        }
        Ok(result)
    }

    /// Applies many changes in order, as [`Broker::apply`] would one by
    /// one, but writes each chunk of them to the definitions store in one
    /// transaction: one fsync per chunk rather than per command, which is
    /// what makes importing 100,000 queues take seconds, not minutes. The
    /// chunks bound how long other changes wait for the lock. At the first
    /// refused command, what was applied before it is stored and the error
    /// is returned.
    pub async fn apply_all(&self, cmds: Vec<DefinitionCommand>) -> Result<()> {
        const CHUNK: usize = 1024;
        if self.consensus().is_some() {
            for cmd in cmds {
                self.apply(cmd).await?;
            }
            return Ok(());
        }
        let Some(defs) = &self.definitions else {
            for cmd in cmds {
                self.apply_in_memory(cmd)?;
            }
            return Ok(());
        };
        let mut cmds = cmds.into_iter().peekable();
        while cmds.peek().is_some() {
            let _order = self.apply_lock.lock().await;
            let mut writes = Vec::with_capacity(CHUNK);
            // Each change that writes something, with where its writes start.
            let mut stored = Vec::with_capacity(CHUNK);
            let mut refused = None;
            for cmd in cmds.by_ref().take(CHUNK) {
                let copy = cmd.clone();
                match self.apply_in_memory(cmd) {
                    Ok(applied) => {
                        let own = durable_writes(copy, &applied);
                        if !own.is_empty() {
                            stored.push((writes.len(), applied));
                            writes.extend(own);
                        }
                    }
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            let ids = defs.persist_all(&writes).await.map_err(store_failed)?;
            for (first, applied) in &stored {
                note_stored(ids.get(*first).copied().flatten(), applied);
            }
            if let Some(e) = refused {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The durable part of an applied change, in the order to write it: the
/// command itself, unless it left nothing on disk to change, then the
/// deletions of the auto-delete exchanges that went with it. When it is not
/// empty, it starts with the command.
fn durable_writes(cmd: DefinitionCommand, applied: &Applied) -> Vec<DefinitionCommand> {
    // A restarted node's sweep stores nothing itself: only the durable
    // auto-delete exchanges that went with its transient queues.
    if let Applied::Swept(exchanges) = applied {
        return exchanges
            .iter()
            .map(|(vhost, x)| DefinitionCommand::DeleteExchange {
                vhost: vhost.clone(),
                name: x.to_string(),
                if_unused: false,
            })
            .collect();
    }
    let side_deletions: Vec<DefinitionCommand> = match &cmd {
        DefinitionCommand::DeleteQueue { vhost, .. } | DefinitionCommand::Unbind { vhost, .. } => applied
            .exchanges_deleted()
            .iter()
            .map(|x| DefinitionCommand::DeleteExchange {
                vhost: vhost.clone(),
                name: x.to_string(),
                if_unused: false,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut writes = Vec::with_capacity(1 + side_deletions.len());
    if stores_something(applied) {
        writes.push(cmd);
    }
    writes.extend(side_deletions);
    writes
}

/// Whether an applied change has something durable to write: a transient
/// queue's deletion has nothing on disk to delete.
fn stores_something(applied: &Applied) -> bool {
    !matches!(applied, Applied::QueueDeleted(q, _, gone)
        if gone.is_empty() && q.as_ref().is_none_or(|q| !q.durable))
}

/// A stored queue learns its row id, which its messages are filed under.
fn note_stored(id: Option<u32>, applied: &Applied) {
    if let (Some(id), Applied::Queue(d)) = (id, applied) {
        let _ = d.queue.store_id.set(id);
    }
}

fn store_failed(e: StoreError) -> BrokerError {
    tracing::error!("cannot store a definition change: {e}");
    BrokerError::internal(format!("cannot store the change: {e}"))
}

#[cfg(test)]
mod tests {
    use amq_protocol::types::FieldTable;

    use super::*;
    use crate::definitions::ExchangeType;

    fn delete_queue() -> DefinitionCommand {
        DefinitionCommand::DeleteQueue {
            vhost: "v".into(),
            name: "q".into(),
            if_unused: false,
            if_empty: false,
            requester: None,
        }
    }

    #[test]
    fn a_transient_queue_deletion_writes_nothing() {
        let applied = Applied::QueueDeleted(None, 0, Vec::new());
        assert!(durable_writes(delete_queue(), &applied).is_empty());
    }

    #[test]
    fn exchanges_that_went_with_a_queue_are_deleted_after_it() {
        let applied = Applied::QueueDeleted(None, 0, vec!["x1".into(), "x2".into()]);
        let writes: Vec<String> =
            durable_writes(delete_queue(), &applied).iter().map(|c| format!("{c:?}")).collect();
        assert_eq!(writes.len(), 3);
        assert!(writes[0].starts_with("DeleteQueue"));
        assert!(writes[1].contains("DeleteExchange") && writes[1].contains("\"x1\""));
        assert!(writes[2].contains("DeleteExchange") && writes[2].contains("\"x2\""));
        assert!(writes[1..].iter().all(|w| w.contains("vhost: \"v\"")));
    }

    #[test]
    fn other_changes_write_themselves() {
        let cmd = DefinitionCommand::DeleteUser { name: "u".into() };
        assert_eq!(durable_writes(cmd, &Applied::Done).len(), 1);
    }

    /// The single node's path, against a real definitions store: what a
    /// change made durable is stored, with what it deleted besides.
    #[tokio::test]
    async fn a_committed_change_and_its_side_deletions_reach_the_store() {
        let dir = std::env::temp_dir().join(format!("warren-commit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let defs = DefinitionStore::open(&dir).await.unwrap();
        let broker = Broker::in_memory();
        let commit = |cmd| broker.apply_committed(cmd, &defs);
        let vhost = || "v".to_string();
        commit(DefinitionCommand::AddVhost { name: vhost(), description: String::new(), tags: vec![] })
            .await
            .unwrap()
            .unwrap();
        commit(DefinitionCommand::DeclareExchange {
            vhost: vhost(),
            name: "x".into(),
            kind: ExchangeType::Direct,
            durable: true,
            auto_delete: true,
            internal: false,
            arguments: FieldTable::default(),
        })
        .await
        .unwrap()
        .unwrap();
        let declared = commit(DefinitionCommand::DeclareQueue {
            vhost: vhost(),
            name: "q".into(),
            durable: true,
            auto_delete: false,
            exclusive_owner: None,
            arguments: FieldTable::default(),
            home: None,
            incarnation: 0,
        })
        .await
        .unwrap()
        .unwrap();
        let Applied::Queue(declared) = declared else { panic!("a queue is declared") };
        assert!(declared.queue.store_id.get().is_some(), "a stored queue learns its row id");
        commit(DefinitionCommand::Bind {
            vhost: vhost(),
            source: "x".into(),
            destination_kind: "queue".into(),
            destination: "q".into(),
            routing_key: "k".into(),
            arguments: FieldTable::default(),
            requester: None,
        })
        .await
        .unwrap()
        .unwrap();
        let stored = defs.load().await.unwrap();
        assert_eq!((stored.exchanges.len(), stored.queues.len(), stored.bindings.len()), (1, 1, 1));

        let refused = commit(DefinitionCommand::DeleteUser { name: "nobody".into() }).await.unwrap();
        assert!(refused.is_err(), "a refused change is the inner error");

        commit(DefinitionCommand::DeleteQueue {
            vhost: vhost(),
            name: "q".into(),
            if_unused: false,
            if_empty: false,
            requester: None,
        })
        .await
        .unwrap()
        .unwrap();
        assert!(broker.vhost("v").unwrap().exchange("x").is_none(), "x went with its last binding");
        let stored = defs.load().await.unwrap();
        assert_eq!((stored.exchanges.len(), stored.queues.len(), stored.bindings.len()), (0, 0, 0));
        defs.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
