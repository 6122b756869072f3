//! The metadata Raft group's storage in `definitions.db`: the log, and single
//! values (vote, committed, purged, applied, snapshot), as JSON text (see
//! `migrations/0002_raft.sql`). `cluster::store` gives them openraft's types.
//!
//! Every write is its own transaction, committed with the database's
//! synchronous=FULL before the call returns: Raft counts on a vote or an
//! appended entry being on disk once the store says so.

use sqlx::{Row, SqlitePool};

use super::{DefinitionStore, StoreError, write};
use crate::definitions::DefinitionCommand;

/// A handle on the Raft tables, sharing the definitions' connection.
#[derive(Clone)]
pub struct RaftDb {
    pool: SqlitePool,
}

impl DefinitionStore {
    pub fn raft(&self) -> RaftDb {
        RaftDb { pool: self.pool.clone() }
    }
}

impl RaftDb {
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM raft_state WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    pub async fn put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO raft_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Appends entries (index, JSON), replacing any at the same index.
    pub async fn append(&self, entries: &[(u64, String)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (idx, entry) in entries {
            sqlx::query("INSERT OR REPLACE INTO raft_log (idx, entry) VALUES (?, ?)")
                .bind(*idx as i64)
                .bind(entry)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the entries at `from` and after.
    pub async fn truncate(&self, from: u64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM raft_log WHERE idx >= ?").bind(from as i64).execute(&self.pool).await?;
        Ok(())
    }

    /// Removes the entries up to `upto` included, and records the last
    /// purged log id, in one transaction.
    pub async fn purge(&self, upto: u64, last_purged: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM raft_log WHERE idx <= ?").bind(upto as i64).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO raft_state (key, value) VALUES ('last_purged', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(last_purged)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The entries with `start <= idx < end`, in order.
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<String>, StoreError> {
        let end = end.min(i64::MAX as u64) as i64;
        let rows = sqlx::query("SELECT entry FROM raft_log WHERE idx >= ? AND idx < ? ORDER BY idx")
            .bind(start.min(i64::MAX as u64) as i64)
            .bind(end)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// The entry with the highest index.
    pub async fn last(&self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT entry FROM raft_log ORDER BY idx DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Writes the durable part of applied commands (those of one committed
    /// entry, or of an installed snapshot; none for an entry that changed no
    /// definition) and the new applied state, in one transaction: after a
    /// crash the two agree. Returns the queue ids as `persist_all` does.
    pub async fn persist_applied(
        &self,
        commands: &[DefinitionCommand],
        applied: &str,
    ) -> Result<Vec<Option<u32>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::with_capacity(commands.len());
        for cmd in commands {
            ids.push(if write::stores_nothing(cmd) {
                None
            } else {
                write::write_command(&mut tx, cmd).await?
            });
        }
        sqlx::query("INSERT INTO raft_state (key, value) VALUES ('applied', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(applied)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Forgets the Raft state and the definitions (a node that joins a
    /// cluster takes the cluster's).
    pub async fn reset(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Deleting the vhosts and users cascades to everything stored under them.
        for sql in [
            "DELETE FROM raft_log",
            "DELETE FROM raft_state",
            "DELETE FROM vhosts",
            "DELETE FROM users",
            "DELETE FROM global_parameters",
        ] {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
