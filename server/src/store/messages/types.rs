//! The message store's public value types: its configuration, the handle of
//! a stored message, what is appended and read back, what recovery reports,
//! and the statistics. Re-exported from `store::messages`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub dir: PathBuf,
    /// Roll to a new segment after this many bytes (default 64 MiB).
    pub segment_size: u64,
    /// False for the transient paging store.
    pub fsync: bool,
    /// Delete everything at open (transient paging store).
    pub wipe: bool,
}

impl StoreConfig {
    /// A persistent store in `dir` with 64 MiB segments.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig { dir: dir.into(), segment_size: 64 << 20, fsync: true, wipe: false }
    }

    /// The paging area for transient messages: no fsync, emptied at open.
    pub fn paging(dir: impl Into<PathBuf>) -> Self {
        StoreConfig { fsync: false, wipe: true, ..StoreConfig::new(dir) }
    }
}

/// Where a message record lives; `len` is the whole record's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreRef {
    pub segment: u32,
    pub offset: u32,
    pub len: u32,
}

pub struct StoredMessage<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub properties: &'a [u8],
    pub body: &'a [u8],
}

/// A message read back; `properties` and `body` share one allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadMessage {
    pub exchange: String,
    pub routing_key: String,
    pub properties: Bytes,
    pub body: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveredEntry {
    pub r: StoreRef,
    pub redelivered: bool,
    pub body_len: u32,
}

#[derive(Debug, Default)]
pub struct Recovery {
    /// Queue id -> entries in append order.
    pub queues: HashMap<u32, Vec<RecoveredEntry>>,
    /// Messages held by at least one live queue.
    pub messages: u64,
    /// Segments kept.
    pub segments: u32,
    pub dropped_tail_bytes: u64,
    pub elapsed: Duration,
    /// Human-readable notes (torn tail truncated at ..., etc.).
    pub log: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Segments in use, the one being written included.
    pub segments: u32,
    /// Bytes in segments and ack logs, buffered bytes included.
    pub bytes: u64,
    /// Bytes appended but not yet handed to the writer.
    pub pending_bytes: u64,
    pub appends: u64,
    pub acks: u64,
    pub delivered: u64,
    /// Batches written by the writer thread.
    pub writes: u64,
    pub fsyncs: u64,
    pub reclaimed_segments: u64,
}
