//! The metadata Raft group's log and vote, in the node's `definitions.db`
//! (`store::definitions::RaftDb`), as openraft's [`RaftLogStorage`].
//!
//! Every write is committed (synchronous=FULL) before it returns or reports
//! itself flushed, which is what Raft's safety rests on. Writes are
//! serialised by openraft, which calls one method at a time.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError};

use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::store::definitions::{RaftDb, StoreError};

#[derive(Clone)]
pub struct LogStore {
    db: RaftDb,
}

impl LogStore {
    pub fn new(db: RaftDb) -> LogStore {
        LogStore { db }
    }
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt { what: "Raft record", detail: e.to_string() }
}

impl LogStore {
    async fn value<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.db.get(key).await? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s).map(Some).map_err(json_err),
        }
    }

    async fn set<T: serde::Serialize>(&self, key: &str, v: &T) -> Result<(), StoreError> {
        let s = serde_json::to_string(v).map_err(json_err)?;
        self.db.put(key, &s).await
    }
}

/// A range of log indexes as `start..end` (end exclusive), as openraft's
/// log readers are asked for them.
pub(super) fn index_range(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_range(&range);
        let rows = self.db.entries(start, end).await.map_err(read_err)?;
        rows.iter().map(|r| serde_json::from_str(r).map_err(read_err)).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.value("last_purged").await.map_err(read_err)?;
        let last = match self.db.last().await.map_err(read_err)? {
            Some(s) => Some(serde_json::from_str::<Entry>(&s).map_err(read_err)?.log_id),
            None => last_purged,
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.set("vote", vote).await.map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.value("vote").await.map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.set("committed", &committed).await.map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.value::<Option<LogId>>("committed").await.map_err(read_err)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let rows: Vec<(u64, String)> = entries
            .into_iter()
            .map(|e| serde_json::to_string(&e).map(|s| (e.log_id.index, s)))
            .collect::<Result<_, _>>()
            .map_err(write_err)?;
        match self.db.append(&rows).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.db.truncate(log_id.index).await.map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let s = serde_json::to_string(&log_id).map_err(write_err)?;
        self.db.purge(log_id.index, &s).await.map_err(write_err)
    }
}
