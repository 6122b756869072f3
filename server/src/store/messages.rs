//! TEMPORARY stand-in with the message store's API, kept in memory, so the
//! broker can be wired while the real store is written. Replaced at merge.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

pub struct StoreConfig {
    pub dir: PathBuf,
    pub segment_size: u64,
    pub fsync: bool,
    pub wipe: bool,
}

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

pub struct ReadMessage {
    pub exchange: String,
    pub routing_key: String,
    pub properties: Bytes,
    pub body: Bytes,
}

pub struct RecoveredEntry {
    pub r: StoreRef,
    pub redelivered: bool,
    pub body_len: u32,
}

#[derive(Default)]
pub struct Recovery {
    pub queues: HashMap<u32, Vec<RecoveredEntry>>,
    pub messages: u64,
    pub segments: u32,
    pub dropped_tail_bytes: u64,
    pub elapsed: Duration,
    pub log: Vec<String>,
}

#[derive(Default, Debug, Clone, Copy)]
pub struct StoreStats {
    pub segments: u64,
    pub bytes: u64,
    pub appends: u64,
    pub fsyncs: u64,
    pub acks: u64,
}

#[derive(Default)]
pub struct MessageStore {
    data: Mutex<HashMap<StoreRef, (String, String, Bytes, Bytes)>>,
    next: Mutex<u32>,
}

impl MessageStore {
    pub fn open(_cfg: StoreConfig, _live: &HashSet<u32>) -> io::Result<(Arc<MessageStore>, Recovery)> {
        Ok((Arc::new(MessageStore::default()), Recovery::default()))
    }
    pub fn append(&self, m: &StoredMessage<'_>, _queues: &[u32]) -> io::Result<StoreRef> {
        let mut n = self.next.lock();
        *n += 1;
        let r = StoreRef { segment: 1, offset: *n, len: m.body.len() as u32 };
        self.data.lock().insert(
            r,
            (
                m.exchange.into(),
                m.routing_key.into(),
                Bytes::copy_from_slice(m.properties),
                Bytes::copy_from_slice(m.body),
            ),
        );
        Ok(r)
    }
    pub fn on_durable(&self, f: Box<dyn FnOnce() + Send>) {
        f()
    }
    pub fn ack(&self, _r: StoreRef, _queue: u32) {}
    pub fn mark_delivered(&self, _r: StoreRef, _queue: u32) {}
    pub fn read(&self, r: StoreRef) -> io::Result<ReadMessage> {
        let g = self.data.lock();
        let (e, k, p, b) = g.get(&r).ok_or_else(|| io::Error::other("missing"))?;
        Ok(ReadMessage {
            exchange: e.clone(),
            routing_key: k.clone(),
            properties: p.clone(),
            body: b.clone(),
        })
    }
    pub fn flush(&self) -> io::Result<()> {
        Ok(())
    }
    pub fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}
