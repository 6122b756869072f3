//! Durable definitions in SQLite: vhosts, users, permissions, durable
//! exchanges and queues, the bindings between them, policies, parameters and
//! limits. Transient definitions are never stored (design decision 5).
//!
//! The broker owns the truth in memory; this store is its durable mirror.
//! `Broker::apply_committed` changes memory first; when that succeeds, it
//! hands the same `DefinitionCommand` (and the deletions it caused) to its
//! sink: on a single node this store's [`DefinitionStore::persist_all`],
//! which writes their durable part in one transaction; in a cluster
//! [`RaftDb::persist_applied`], which writes it with the Raft applied state. At start-up,
//! [`DefinitionStore::load`] returns a [`Snapshot`] whose
//! [`Snapshot::commands`] replay through `Broker::apply`.
//!
//! The schema lives in `migrations/` at the repository root, embedded at
//! build time and applied by [`DefinitionStore::open`]. A database written by
//! a newer Warren (one with migrations this binary does not know) is refused
//! before anything writes to it.
//!
//! Files: `codec` (argument tables and JSON), `write` (one function per
//! command), `read` (the snapshot), `extras` (policies, parameters, limits,
//! topic permissions), `rows` (the row types), `raft` (the metadata Raft
//! group's log and state), `error`.

mod codec;
mod error;
mod extras;
mod raft;
mod read;
mod rows;
mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::definitions::DefinitionCommand;

pub use error::StoreError;
pub use raft::RaftDb;
pub use rows::*;

/// The file name inside the data directory.
pub const FILE_NAME: &str = "definitions.db";

/// The migrations of `migrations/`, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The highest schema version this binary knows.
pub fn supported_schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

pub struct DefinitionStore {
    // One connection. Definition changes are rare next to messages, and SQLite
    // serialises writers anyway; a single connection makes the order of
    // `persist` calls the order of commits, and spares the deferred
    // transactions (read, then write) the SQLITE_BUSY errors that two
    // connections writing at once would get in WAL mode.
    pool: SqlitePool,
    path: PathBuf,
    is_new: bool,
}

impl DefinitionStore {
    /// Opens `<data_dir>/definitions.db`, creating the directory and the file
    /// if needed, with journal_mode=WAL, synchronous=FULL and foreign_keys=ON,
    /// and applies the pending migrations.
    ///
    /// A database written by a newer Warren (it has applied migrations this
    /// binary does not know) is refused with [`StoreError::NewerSchema`]
    /// and is not modified: it is inspected through a read-only connection
    /// before anything opens it for writing.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join(FILE_NAME);

        let applied = applied_migrations(&path).await?;
        refuse_unknown_migrations(&path, &applied)?;

        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            // WAL: a commit appends to the log instead of rewriting pages in
            // place, and readers never block the writer.
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced at every commit, so a definition that
            // was acknowledged survives a power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        if let Err(source) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(StoreError::Migrate { path, source });
        }
        Ok(DefinitionStore { pool, path, is_new: applied.is_empty() })
    }

    /// True when this `open` created the schema: the broker then seeds the
    /// default vhost and user.
    pub fn is_new(&self) -> bool {
        self.is_new
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every stored definition, read in one transaction.
    pub async fn load(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        let snapshot = read::snapshot(&mut tx).await?;
        tx.commit().await?;
        Ok(snapshot)
    }

    /// Persists the durable part of a command that `Broker::apply` has just
    /// applied in memory, in one transaction. Returns the queue's id when the
    /// command declared a durable queue (new or existing).
    ///
    /// Call it only after `apply` succeeded, and in the order the commands
    /// were applied.
    pub async fn persist(&self, cmd: &DefinitionCommand) -> Result<Option<u32>, StoreError> {
        if write::stores_nothing(cmd) {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        let id = write::write_command(&mut tx, cmd).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Persists several applied commands in one transaction (one fsync), for
    /// definitions import. All or none of them are written. Returns what
    /// `persist` would have returned for each.
    pub async fn persist_all(&self, cmds: &[DefinitionCommand]) -> Result<Vec<Option<u32>>, StoreError> {
        if cmds.iter().all(write::stores_nothing) {
            return Ok(vec![None; cmds.len()]);
        }
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            ids.push(if write::stores_nothing(cmd) {
                None
            } else {
                write::write_command(&mut tx, cmd).await?
            });
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// The id of a stored queue.
    pub async fn queue_id(&self, vhost: &str, name: &str) -> Result<Option<u32>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        write::queue_id(&mut conn, vhost, name).await
    }

    /// Waits for the pending work and closes the database (checkpointing the
    /// WAL into the main file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The migration versions recorded in an existing database, read through a
/// read-only connection so that a database we are going to refuse is never
/// written to (not even its journal mode).
async fn applied_migrations(path: &Path) -> Result<Vec<i64>, StoreError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    // Without a WAL file, every committed transaction is in the main file and
    // no other process has the database open (an open WAL database always
    // has its -wal file). Reading it as immutable then creates no -wal and
    // -shm files beside it, which a read-only connection in WAL mode would.
    // With a WAL file, those files exist already and a read-only connection
    // reads the committed part of the WAL (after a crash, say).
    let wal_exists = wal_path(path).exists();
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(!wal_exists)
        .create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let versions = recorded_versions(&mut conn).await;
    conn.close().await?;
    versions
}

async fn recorded_versions(conn: &mut SqliteConnection) -> Result<Vec<i64>, StoreError> {
    let has_table: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(&mut *conn)
            .await?;
    if has_table.is_none() {
        return Ok(Vec::new());
    }
    let versions =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(conn).await?;
    Ok(versions)
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn refuse_unknown_migrations(path: &Path, applied: &[i64]) -> Result<(), StoreError> {
    let unknown: Vec<i64> = applied.iter().copied().filter(|v| !MIGRATOR.version_exists(*v)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StoreError::NewerSchema {
        path: path.to_owned(),
        found: applied.iter().copied().max().unwrap_or(0),
        supported: supported_schema_version(),
        unknown,
    })
}
