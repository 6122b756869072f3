//! Bringing a node back from its data directory: lock it, open the message
//! stores, replay the stored definitions, and hand each durable queue the
//! messages the store recovered for it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::Broker;
use super::error::{BrokerError, Result};
use crate::config::Config;
use crate::store::Stores;
use crate::store::definitions::Snapshot;
use crate::store::messages::{MessageStore, RecoveredEntry, StoreConfig};

/// Takes an exclusive lock on `<data_dir>/.lock`, so that two nodes never
/// write the same files.
pub fn lock_data_dir(dir: &Path) -> Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    std::fs::create_dir_all(dir)
        .map_err(|e| BrokerError::internal(format!("cannot create the data dir {}: {e}", dir.display())))?;
    let path = dir.join(".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| BrokerError::internal(format!("cannot open {}: {e}", path.display())))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(BrokerError::internal(format!(
            "the data dir {} is in use by another warren-server",
            dir.display()
        )));
    }
    Ok(f)
}

/// Opens the persistent store (recovering the messages of the durable
/// queues in the snapshot) and a fresh paging store.
pub fn open_stores(
    config: &Config,
    snapshot: &Snapshot,
) -> Result<(Stores, HashMap<u32, Vec<RecoveredEntry>>)> {
    let live: HashSet<u32> = snapshot.queues.iter().map(|q| q.id).collect();
    let io = |what: &str, e: std::io::Error| {
        BrokerError::internal(format!("cannot open the {what} in {}: {e}", config.data_dir.display()))
    };
    let (persistent, recovery) = MessageStore::open(StoreConfig::new(config.data_dir.join("msgs")), &live)
        .map_err(|e| io("message store", e))?;
    for line in &recovery.log {
        tracing::warn!("message store: {line}");
    }
    tracing::info!(
        "message store: recovered {} messages from {} segments in {:?}",
        recovery.messages,
        recovery.segments,
        recovery.elapsed
    );
    let (paging, _) =
        MessageStore::open(StoreConfig::paging(config.data_dir.join("paging")), &HashSet::new())
            .map_err(|e| io("paging store", e))?;
    Ok((Stores { persistent, paging }, recovery.queues))
}

/// Rebuilds memory from the stored definitions, then gives each durable
/// queue its recovered messages.
pub fn replay(broker: &Broker, snapshot: &Snapshot, mut messages: HashMap<u32, Vec<RecoveredEntry>>) {
    for cmd in snapshot.commands() {
        if let Err(e) = broker.apply_in_memory(cmd.clone()) {
            tracing::error!("cannot restore {cmd:?}: {e}");
        }
    }
    let mut queues = 0;
    for row in &snapshot.queues {
        let Some(q) = broker.vhost(&row.vhost).and_then(|v| v.queue(&row.name)) else { continue };
        let _ = q.store_id.set(row.id);
        queues += 1;
        if let Some(entries) = messages.remove(&row.id) {
            q.recover(entries.into_iter().map(|e| (e.r, e.redelivered, e.body_len)));
        }
    }
    tracing::info!(
        "restored {} vhosts, {} users, {} exchanges, {queues} queues and {} bindings",
        snapshot.vhosts.len(),
        snapshot.users.len(),
        snapshot.exchanges.len(),
        snapshot.bindings.len()
    );
}
