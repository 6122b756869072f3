//! A replicated queue's Raft log and vote, in the node's shared
//! write-ahead log ([`crate::cluster::wal`]) under the group's id, as
//! openraft's [`RaftLogStorage`]. An append is reported flushed from the
//! WAL's writer thread once the fsync that covers it (and whatever other
//! groups appended meanwhile) is done; that is what lets one fsync serve
//! many queues.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use bytes::Bytes;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError};

use super::types::{Entry, LogId, QueueTypes, StorageError, Vote};
use crate::cluster::log_store::index_range;
use crate::cluster::wal::{MetaKey, Wal};

#[derive(Clone)]
pub struct GroupLog {
    wal: Arc<Wal>,
    group: u64,
}

impl GroupLog {
    pub fn new(wal: Arc<Wal>, group: u64) -> GroupLog {
        GroupLog { wal, group }
    }
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_logs(AnyError::error(e.to_string())).into()
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_logs(AnyError::error(e.to_string())).into()
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    rmp_serde::from_slice(b).map_err(read_err)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Bytes, StorageError> {
    rmp_serde::to_vec(v).map(Bytes::from).map_err(write_err)
}

impl RaftLogReader<QueueTypes> for GroupLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_range(&range);
        self.wal.entries(self.group, start, end).iter().map(|(_, b)| decode(b)).collect()
    }
}

impl RaftLogStorage<QueueTypes> for GroupLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<QueueTypes>, StorageError> {
        let purged: Option<LogId> = match self.wal.purged(self.group) {
            Some((_, marker)) => Some(decode(&marker)?),
            None => None,
        };
        let last = match self.wal.last(self.group) {
            Some((_, b)) => Some(decode::<Entry>(&b)?.log_id),
            None => purged,
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wal.set(
            self.group,
            MetaKey::Vote,
            encode(vote)?,
            Some(Box::new(move |r| {
                let _ = tx.send(r);
            })),
        );
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageIOError::write_vote(AnyError::error(e.to_string())).into()),
            Err(_) => Err(StorageIOError::write_vote(AnyError::error("the WAL stopped")).into()),
        }
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.wal.get(self.group, MetaKey::Vote).map(|b| decode(&b)).transpose()
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Need not be durable: it only saves replaying after a restart.
        self.wal.set(self.group, MetaKey::Committed, encode(&committed)?, None);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .wal
            .get(self.group, MetaKey::Committed)
            .map(|b| decode::<Option<LogId>>(&b))
            .transpose()?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<QueueTypes>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let rows: Vec<(u64, Bytes)> =
            entries.into_iter().map(|e| encode(&e).map(|b| (e.log_id.index, b))).collect::<Result<_, _>>()?;
        self.wal.append(
            self.group,
            rows,
            Box::new(move |r| callback.log_io_completed(r.map_err(|e| std::io::Error::other(e.to_string())))),
        );
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.wal.truncate(self.group, log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.wal.purge(self.group, log_id.index, encode(&log_id)?);
        Ok(())
    }
}
