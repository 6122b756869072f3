//! A replicated queue's state machine: the messages its group's committed
//! log holds, in id order, each with whether a leader delivered it. Every
//! member applies the same entries and so holds the same messages; the
//! leader's queue core decides (consumers, limits, expiry) and its
//! decisions come back here as entries. A new leader loads its queue core
//! from here.
//!
//! The machine lives in memory; its snapshot (every message it holds) is
//! kept in the node's shared write-ahead log directory, and a restart loads
//! the snapshot and replays the committed entries after it.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::types::{Entry, LogId, Ops, QueueTypes, Snapshot, SnapshotMeta, StorageError, StoredMembership};
use crate::broker::message::Message;
use crate::broker::queue::replica::Replicated;
use crate::cluster::forward::WireMessage;
use crate::cluster::wal::Wal;

/// A message the group holds.
#[derive(Clone)]
pub struct Kept {
    pub msg: Arc<Message>,
    pub delivered: bool,
}

#[derive(Default)]
pub struct Contents {
    pub messages: BTreeMap<u64, Kept>,
    /// The next id a leader gives: above every id the log ever held.
    pub next_id: u64,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl Contents {
    /// Applies the ops of an entry written in `log_term`, unless they are
    /// stale (decided in another term); whether it did.
    fn apply_entry(&mut self, log_term: u64, ops: Ops) -> bool {
        if ops.term != 0 && ops.term != log_term {
            return false;
        }
        self.apply(ops);
        true
    }

    fn apply(&mut self, ops: Ops) {
        for (id, m) in ops.enqueue {
            self.next_id = self.next_id.max(id + 1);
            self.messages.insert(id, Kept { msg: Arc::new(m.into_message()), delivered: false });
        }
        for id in ops.delivered {
            if let Some(k) = self.messages.get_mut(&id) {
                k.delivered = true;
            }
        }
        for id in ops.remove {
            self.messages.remove(&id);
        }
    }

    /// What a new leader's queue core starts from.
    pub fn to_load(&self) -> Vec<Replicated> {
        self.messages
            .iter()
            .map(|(id, k)| Replicated { id: *id, msg: k.msg.clone(), delivered: k.delivered })
            .collect()
    }
}

/// The body of a snapshot, as it travels and as it is kept.
#[derive(Serialize, Deserialize)]
struct Body {
    next_id: u64,
    messages: Vec<(u64, bool, WireMessage)>,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

#[derive(Clone)]
pub struct Machine {
    pub contents: Arc<Mutex<Contents>>,
    wal: Arc<Wal>,
    group: u64,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

fn snap_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_snapshot(None, AnyError::error(e.to_string())).into()
}

impl Machine {
    /// How many messages the machine holds and a digest of them (FNV-1a
    /// over each id, delivered flag and body size, in id order), with the
    /// index they stand at, read under one lock. O(messages): for
    /// `quorum_status`, not for a hot path.
    pub fn summary(&self) -> super::members::ContentsSummary {
        let c = self.contents.lock();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |x: u64| {
            for b in x.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for (id, k) in &c.messages {
            mix(*id);
            mix(u64::from(k.delivered));
            mix(k.msg.body.len() as u64);
        }
        super::members::ContentsSummary {
            applied: c.last_applied.map_or(0, |l| l.index),
            messages: c.messages.len() as u64,
            digest: h,
        }
    }

    /// The machine of `group`, from its last snapshot if it has one.
    pub fn open(wal: Arc<Wal>, group: u64) -> Result<Machine, StorageError> {
        let m = Machine { contents: Default::default(), wal, group };
        if let Some((meta, body)) = m.kept()? {
            m.load(&meta, &body)?;
        }
        Ok(m)
    }

    fn kept(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let Some(bytes) = self.wal.snapshot(self.group).map_err(snap_err)? else { return Ok(None) };
        let k: StoredSnapshot = rmp_serde::from_slice(&bytes).map_err(snap_err)?;
        Ok(Some((k.meta, k.body)))
    }

    fn load(&self, meta: &SnapshotMeta, body: &[u8]) -> Result<(), StorageError> {
        let b: Body = rmp_serde::from_slice(body).map_err(snap_err)?;
        let mut c = self.contents.lock();
        c.messages = b
            .messages
            .into_iter()
            .map(|(id, delivered, m)| (id, Kept { msg: Arc::new(m.into_message()), delivered }))
            .collect();
        c.next_id = b.next_id;
        c.last_applied = meta.last_log_id;
        c.membership = meta.last_membership.clone();
        Ok(())
    }

    fn keep(&self, meta: &SnapshotMeta, body: Vec<u8>) -> Result<(), StorageError> {
        let bytes = rmp_serde::to_vec(&StoredSnapshot { meta: meta.clone(), body }).map_err(sm_err)?;
        self.wal.save_snapshot(self.group, &bytes).map_err(sm_err)
    }
}

impl RaftSnapshotBuilder<QueueTypes> for Machine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // openraft calls the machine one method at a time: nothing is
        // applied while this runs.
        let (meta, body) = {
            let c = self.contents.lock();
            let body = Body {
                next_id: c.next_id,
                messages: c
                    .messages
                    .iter()
                    .map(|(id, k)| (*id, k.delivered, WireMessage::of(&k.msg)))
                    .collect(),
            };
            let meta = SnapshotMeta {
                last_log_id: c.last_applied,
                last_membership: c.membership.clone(),
                snapshot_id: format!("{}-{}", self.group, c.last_applied.map_or(0, |l| l.index)),
            };
            (meta, body)
        };
        let body = rmp_serde::to_vec(&body).map_err(sm_err)?;
        self.keep(&meta, body.clone())?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(body)) })
    }
}

impl RaftStateMachine<QueueTypes> for Machine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let c = self.contents.lock();
        Ok((c.last_applied, c.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<bool>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut c = self.contents.lock();
        let mut out = Vec::new();
        for e in entries {
            c.last_applied = Some(e.log_id);
            let applied = match e.payload {
                EntryPayload::Blank => true,
                EntryPayload::Normal(ops) => c.apply_entry(e.log_id.leader_id.term, ops),
                EntryPayload::Membership(m) => {
                    c.membership = StoredMembership::new(Some(e.log_id), m);
                    true
                }
            };
            out.push(applied);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let body = snapshot.into_inner();
        self.load(meta, &body)?;
        self.keep(meta, body)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.kept()?.map(|(meta, body)| Snapshot { meta, snapshot: Box::new(Cursor::new(body)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enqueue(term: u64, id: u64) -> Ops {
        let msg = Message::new("".into(), "q", &Default::default(), bytes::Bytes::from_static(b"m"));
        Ops { term, enqueue: vec![(id, WireMessage::of(&Arc::new(msg)))], ..Default::default() }
    }

    #[test]
    fn ops_decided_in_another_term_are_not_applied() {
        let mut c = Contents::default();
        // A leader of term 2 lost the lead and won it again in term 5; its
        // term-2 core proposed once more before it was replaced.
        assert!(!c.apply_entry(5, enqueue(2, 7)));
        assert!(c.messages.is_empty(), "a stale enqueue would sit in the log unknown to the new core");
        assert!(c.apply_entry(5, enqueue(5, 8)));
        assert_eq!(c.messages.keys().copied().collect::<Vec<_>>(), vec![8]);
        // Entries written before terms were recorded still apply.
        assert!(c.apply_entry(3, enqueue(0, 9)));
        let stale_remove = Ops { term: 4, remove: vec![8], ..Default::default() };
        assert!(!c.apply_entry(5, stale_remove));
        assert_eq!(c.messages.len(), 2);
    }
}
