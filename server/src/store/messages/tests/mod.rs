//! Unit tests of the message store, run against real files in a fresh
//! directory under the system temp dir that is removed when a test ends.

mod bench;
mod concurrency;
mod failure;
mod reclaim;
mod recovery;
mod roundtrip;
mod torn;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{MessageStore, Recovery, StoreConfig, StoredMessage, files};

/// A temporary directory, deleted on drop.
pub(super) struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("warren-msgs-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TestDir(path)
    }

    pub fn cfg(&self) -> StoreConfig {
        StoreConfig::new(&self.0)
    }

    pub fn open(&self, live: &[u32]) -> (Arc<MessageStore>, Recovery) {
        open_with(self.cfg(), live)
    }

    pub fn seg(&self, segment: u32) -> PathBuf {
        files::seg_path(&self.0, segment)
    }

    pub fn ack(&self, segment: u32) -> PathBuf {
        files::ack_path(&self.0, segment)
    }

    /// Numbers of the segment files present.
    pub fn segments(&self) -> Vec<u32> {
        files::list_dir(&self.0).expect("list").segs.into_iter().collect()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn open_with(cfg: StoreConfig, live: &[u32]) -> (Arc<MessageStore>, Recovery) {
    let live: HashSet<u32> = live.iter().copied().collect();
    MessageStore::open(cfg, &live).expect("open store")
}

pub(super) fn msg(body: &[u8]) -> StoredMessage<'_> {
    StoredMessage {
        exchange: "amq.direct",
        routing_key: "orders.created",
        properties: b"\x90\x00\x0atext/plain",
        body,
    }
}

/// Waits until everything buffered so far is durable and the round that
/// wrote it has also finished its segment deletions.
pub(super) fn settle(store: &MessageStore) {
    store.flush().expect("flush");
    store.flush().expect("flush");
}

pub(super) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Bodies recovered for `queue`, in order.
pub(super) fn bodies(store: &MessageStore, rec: &Recovery, queue: u32) -> Vec<Vec<u8>> {
    rec.queues
        .get(&queue)
        .map(|entries| {
            entries.iter().map(|e| store.read(e.r).expect("read recovered").body.to_vec()).collect()
        })
        .unwrap_or_default()
}
