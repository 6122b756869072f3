//! Queues: an ordered list of ready messages, the consumers attached to it,
//! and the count of messages delivered but not yet settled.
//!
//! A queue is a struct behind one short `parking_lot` lock rather than an
//! actor task: a publish, a dispatch, an ack or a requeue each take the lock
//! for a few hundred nanoseconds on whichever task causes them, which saves a
//! task switch and a channel hop per message on a 2-core machine. Unacked
//! messages themselves live with the channel that received them; the queue
//! only counts them.
//!
//! Ready messages are in two parts. The `head` holds the oldest ones in
//! memory, each with the queue-local sequence number that lets a requeued
//! message go back to its original position. Beyond a budget, newer
//! messages go to the `tail`, which holds only where each message is on
//! disk (16 bytes each): persistent messages of a durable queue are already
//! in the message store; others are written to the paging store. As the
//! head drains, the oldest tail entries are read back in order. A backlog of
//! millions of messages therefore costs a few bytes per message of RAM.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use amq_protocol::types::FieldTable;
use parking_lot::Mutex;

use super::consumer::{Consumer, Outbound};
use super::message::Message;
use super::stats::QueueStats;
use crate::store::Stores;
use crate::store::messages::{StoreRef, StoredMessage};

/// Ready messages kept in memory per queue before newer ones are paged out.
const HEAD_MAX_MESSAGES: usize = 2048;
const HEAD_MAX_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct QueuedMessage {
    pub seq: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
    /// Where the message is in the persistent store, for a persistent
    /// message in a durable queue.
    pub stored: Option<StoreRef>,
}

/// A ready message that lives only on disk.
#[derive(Clone, Copy, Debug)]
struct Paged {
    r: StoreRef,
    /// True: in the persistent store (the queue's own reference); false: in
    /// the paging store.
    persistent: bool,
    redelivered: bool,
}

#[derive(Default)]
struct Inner {
    head: VecDeque<QueuedMessage>,
    head_bytes: u64,
    tail: VecDeque<Paged>,
    /// Body bytes of all ready messages, head and tail.
    ready_bytes: u64,
    unacked: u64,
    unacked_bytes: u64,
    consumers: Vec<Arc<Consumer>>,
    next_consumer: usize,
    next_seq: u64,
    had_consumers: bool,
}

impl Inner {
    fn ready(&self) -> u64 {
        (self.head.len() + self.tail.len()) as u64
    }
}

pub struct Queue {
    pub name: Arc<str>,
    pub vhost: Arc<str>,
    pub durable: bool,
    pub auto_delete: bool,
    /// The id of the connection that declared an exclusive queue.
    pub exclusive_owner: Option<u64>,
    pub arguments: FieldTable,
    /// The id of a durable queue in the definitions store, which keys its
    /// messages in the message store.
    pub store_id: OnceLock<u32>,
    stores: Option<Arc<Stores>>,
    inner: Mutex<Inner>,
    deleted: AtomicBool,
    pub stats: QueueStats,
}

/// Counts for declare-ok, listings and the management API.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueCounts {
    pub ready: u64,
    pub ready_bytes: u64,
    pub unacked: u64,
    pub unacked_bytes: u64,
    pub consumers: u64,
    /// Ready messages that are on disk only.
    pub paged: u64,
}

/// Why a consumer may not attach.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsumeRefusal {
    ExclusiveInUse,
}

impl Queue {
    pub fn new(
        name: Arc<str>,
        vhost: Arc<str>,
        durable: bool,
        auto_delete: bool,
        exclusive_owner: Option<u64>,
        arguments: FieldTable,
        stores: Option<Arc<Stores>>,
    ) -> Self {
        Queue {
            name,
            vhost,
            durable,
            auto_delete,
            exclusive_owner,
            arguments,
            store_id: OnceLock::new(),
            stores,
            inner: Mutex::new(Inner::default()),
            deleted: AtomicBool::new(false),
            stats: QueueStats::default(),
        }
    }

    pub fn is_exclusive(&self) -> bool {
        self.exclusive_owner.is_some()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// The store id when this queue keeps persistent messages on disk.
    pub fn persistent_id(&self) -> Option<u32> {
        if self.durable { self.store_id.get().copied() } else { None }
    }

    pub fn counts(&self) -> QueueCounts {
        let g = self.inner.lock();
        QueueCounts {
            ready: g.ready(),
            ready_bytes: g.ready_bytes,
            unacked: g.unacked,
            unacked_bytes: g.unacked_bytes,
            consumers: g.consumers.len() as u64,
            paged: g.tail.len() as u64,
        }
    }

    pub fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.inner.lock().consumers.clone()
    }

    /// Appends a routed message and hands it to a consumer if one has credit.
    /// `stored` is its place in the persistent store when it is persistent
    /// and this queue is durable.
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>, stored: Option<StoreRef>) {
        self.stats.publish.incr();
        let mut g = self.inner.lock();
        if self.is_deleted() {
            drop(g);
            self.forget(stored);
            return;
        }
        let size = msg.body_size() as u64;
        g.ready_bytes += size;
        // FIFO: once anything is paged, newer messages are paged too.
        let fits =
            g.tail.is_empty() && g.head.len() < HEAD_MAX_MESSAGES && g.head_bytes + size <= HEAD_MAX_BYTES;
        if fits {
            let seq = g.next_seq;
            g.next_seq += 1;
            g.head_bytes += size;
            g.head.push_back(QueuedMessage { seq, msg, redelivered: false, stored });
        } else {
            match self.page_out(&msg, stored) {
                Some(p) => g.tail.push_back(p),
                None => {
                    // Paging failed (disk full?): keep it in memory rather
                    // than lose it.
                    let seq = g.next_seq;
                    g.next_seq += 1;
                    g.head_bytes += size;
                    g.head.push_back(QueuedMessage { seq, msg, redelivered: false, stored });
                }
            }
        }
        self.dispatch_locked(&mut g);
    }

    fn page_out(&self, msg: &Message, stored: Option<StoreRef>) -> Option<Paged> {
        if let Some(r) = stored {
            return Some(Paged { r, persistent: true, redelivered: false });
        }
        let stores = self.stores.as_ref()?;
        let m = StoredMessage {
            exchange: &msg.exchange,
            routing_key: &msg.routing_key,
            properties: &msg.properties,
            body: &msg.body,
        };
        match stores.paging.append(&m, &[0]) {
            Ok(r) => Some(Paged { r, persistent: false, redelivered: false }),
            Err(e) => {
                tracing::error!("cannot page out a message of queue '{}': {e}", self.name);
                None
            }
        }
    }

    /// Brings tail entries back into memory as the head drains, in order.
    fn refill(&self, g: &mut Inner) {
        if g.tail.is_empty() || g.head.len() >= HEAD_MAX_MESSAGES / 2 {
            return;
        }
        let Some(stores) = self.stores.as_ref() else { return };
        while g.head.len() < HEAD_MAX_MESSAGES && g.head_bytes < HEAD_MAX_BYTES {
            let Some(p) = g.tail.pop_front() else { break };
            let store = if p.persistent { &stores.persistent } else { &stores.paging };
            match store.read(p.r) {
                Ok(m) => {
                    let msg = Arc::new(Message::from_store(m));
                    if !p.persistent {
                        stores.paging.ack(p.r, 0);
                    }
                    let seq = g.next_seq;
                    g.next_seq += 1;
                    g.head_bytes += msg.body_size() as u64;
                    g.head.push_back(QueuedMessage {
                        seq,
                        msg,
                        redelivered: p.redelivered,
                        stored: p.persistent.then_some(p.r),
                    });
                }
                Err(e) => {
                    tracing::error!(
                        "queue '{}': cannot read a paged message back, dropping it: {e}",
                        self.name
                    );
                    self.forget_paged(p);
                }
            }
        }
    }

    /// Takes the oldest ready message, reading it back from disk if needed.
    fn pop(&self, g: &mut Inner) -> Option<QueuedMessage> {
        if g.head.is_empty() {
            self.refill(g);
        }
        let m = g.head.pop_front()?;
        let size = m.msg.body_size() as u64;
        g.head_bytes -= size;
        g.ready_bytes = g.ready_bytes.saturating_sub(size);
        self.refill(g);
        Some(m)
    }

    /// Gives ready messages to consumers with credit, round-robin.
    pub fn dispatch(self: &Arc<Self>) {
        let mut g = self.inner.lock();
        self.dispatch_locked(&mut g);
    }

    fn dispatch_locked(self: &Arc<Self>, g: &mut Inner) {
        let n = g.consumers.len();
        if n == 0 {
            return;
        }
        let mut refused_in_a_row = 0;
        while refused_in_a_row < n && g.ready() > 0 {
            let i = g.next_consumer % n;
            g.next_consumer = (i + 1) % n;
            let consumer = g.consumers[i].clone();
            if !consumer.try_reserve() {
                refused_in_a_row += 1;
                continue;
            }
            refused_in_a_row = 0;
            let Some(msg) = self.pop(g) else {
                consumer.release(1);
                break;
            };
            self.note_delivered(g, &msg, consumer.no_ack);
            consumer.outbox.clone().push(Outbound::Deliver { consumer, queue: self.clone(), msg });
        }
    }

    fn note_delivered(&self, g: &mut Inner, m: &QueuedMessage, no_ack: bool) {
        if no_ack {
            self.stats.deliver_no_ack.incr();
        } else {
            self.stats.deliver.incr();
            g.unacked += 1;
            g.unacked_bytes += m.msg.body_size() as u64;
            if let (Some(r), false) = (m.stored, m.redelivered) {
                if let (Some(s), Some(id)) = (&self.stores, self.persistent_id()) {
                    s.persistent.mark_delivered(r, id);
                }
            }
        }
        if m.redelivered {
            self.stats.redeliver.incr();
        }
    }

    /// basic.get: the head message and the number of messages left behind.
    pub fn get(&self, no_ack: bool) -> Option<(QueuedMessage, u64)> {
        let mut g = self.inner.lock();
        let Some(msg) = self.pop(&mut g) else {
            self.stats.get_empty.incr();
            return None;
        };
        if no_ack {
            self.stats.get_no_ack.incr();
            self.forget(msg.stored);
        } else {
            self.stats.get.incr();
            g.unacked += 1;
            g.unacked_bytes += msg.msg.body_size() as u64;
            if let (Some(r), false) = (msg.stored, msg.redelivered) {
                if let (Some(s), Some(id)) = (&self.stores, self.persistent_id()) {
                    s.persistent.mark_delivered(r, id);
                }
            }
        }
        if msg.redelivered {
            self.stats.redeliver.incr();
        }
        let left = g.ready();
        Some((msg, left))
    }

    /// Drops this queue's claim on a stored message.
    fn forget(&self, stored: Option<StoreRef>) {
        if let (Some(r), Some(s), Some(id)) = (stored, &self.stores, self.persistent_id()) {
            s.persistent.ack(r, id);
        }
    }

    fn forget_paged(&self, p: Paged) {
        let Some(s) = &self.stores else { return };
        if p.persistent {
            if let Some(id) = self.persistent_id() {
                s.persistent.ack(p.r, id);
            }
        } else {
            s.paging.ack(p.r, 0);
        }
    }

    /// A message delivered without acknowledgement has been written to the
    /// client: the queue lets go of it on disk too.
    pub fn delivered_no_ack(&self, m: &QueuedMessage) {
        self.forget(m.stored);
    }

    /// Settles delivered messages for good (ack, or reject without requeue).
    pub fn settle<'a>(&self, msgs: impl IntoIterator<Item = &'a QueuedMessage>, acked: bool) {
        let mut count = 0;
        let mut bytes = 0;
        for m in msgs {
            count += 1;
            bytes += m.msg.body_size() as u64;
            self.forget(m.stored);
        }
        if acked {
            self.stats.ack.add(count);
        }
        let mut g = self.inner.lock();
        g.unacked = g.unacked.saturating_sub(count);
        g.unacked_bytes = g.unacked_bytes.saturating_sub(bytes);
    }

    /// Puts delivered messages back, each at its original position, marked
    /// redelivered, and dispatches them again.
    pub fn requeue(self: &Arc<Self>, mut msgs: Vec<QueuedMessage>) {
        if msgs.is_empty() {
            return;
        }
        // Inserting from the newest down makes the usual case (everything
        // older than the current head) a series of push_front calls.
        msgs.sort_unstable_by(|a, b| b.seq.cmp(&a.seq));
        let mut g = self.inner.lock();
        let n = msgs.len() as u64;
        let bytes: u64 = msgs.iter().map(|m| m.msg.body_size() as u64).sum();
        g.unacked = g.unacked.saturating_sub(n);
        g.unacked_bytes = g.unacked_bytes.saturating_sub(bytes);
        if self.is_deleted() {
            drop(g);
            for m in msgs {
                self.forget(m.stored);
            }
            return;
        }
        for mut m in msgs {
            m.redelivered = true;
            self.insert_head(&mut g, m);
        }
        self.dispatch_locked(&mut g);
    }

    /// Requeued messages are older than everything in the tail, so they
    /// always go into the head, by sequence number.
    fn insert_head(&self, g: &mut Inner, m: QueuedMessage) {
        let size = m.msg.body_size() as u64;
        g.head_bytes += size;
        g.ready_bytes += size;
        let pos = g.head.partition_point(|x| x.seq < m.seq);
        if pos == 0 {
            g.head.push_front(m);
        } else {
            g.head.insert(pos, m);
        }
    }

    /// Puts back a message handed to a connection but never written to its
    /// socket (the channel closed first). It keeps its redelivered flag.
    pub fn return_undelivered(self: &Arc<Self>, m: QueuedMessage, was_acked_delivery: bool) {
        let mut g = self.inner.lock();
        if was_acked_delivery {
            g.unacked = g.unacked.saturating_sub(1);
            g.unacked_bytes = g.unacked_bytes.saturating_sub(m.msg.body_size() as u64);
        }
        if self.is_deleted() {
            drop(g);
            self.forget(m.stored);
            return;
        }
        self.insert_head(&mut g, m);
        self.dispatch_locked(&mut g);
    }

    /// Removes every ready message; returns how many there were.
    pub fn purge(&self) -> u64 {
        let mut g = self.inner.lock();
        let n = g.ready();
        let head = std::mem::take(&mut g.head);
        let tail = std::mem::take(&mut g.tail);
        g.head_bytes = 0;
        g.ready_bytes = 0;
        drop(g);
        for m in head {
            self.forget(m.stored);
        }
        for p in tail {
            self.forget_paged(p);
        }
        n
    }

    pub fn add_consumer(self: &Arc<Self>, c: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        let mut g = self.inner.lock();
        if (c.exclusive && !g.consumers.is_empty()) || g.consumers.iter().any(|x| x.exclusive) {
            return Err(ConsumeRefusal::ExclusiveInUse);
        }
        g.consumers.push(c);
        g.had_consumers = true;
        self.dispatch_locked(&mut g);
        Ok(())
    }

    /// Detaches a consumer. Returns true when this was the last consumer of
    /// an auto-delete queue, which must now be deleted.
    pub fn remove_consumer(&self, c: &Arc<Consumer>) -> bool {
        let mut g = self.inner.lock();
        if let Some(pos) = g.consumers.iter().position(|x| Arc::ptr_eq(x, c)) {
            g.consumers.remove(pos);
            if g.next_consumer > pos {
                g.next_consumer -= 1;
            }
        }
        self.auto_delete && g.had_consumers && g.consumers.is_empty() && !self.is_deleted()
    }

    /// Marks the queue deleted and empties it. Returns the number of ready
    /// messages dropped and the consumers that must be told.
    pub fn delete(&self) -> (u64, Vec<Arc<Consumer>>) {
        let consumers = {
            let mut g = self.inner.lock();
            self.deleted.store(true, Ordering::Release);
            std::mem::take(&mut g.consumers)
        };
        (self.purge(), consumers)
    }

    /// Loads messages recovered from the store at start: they become the
    /// tail, in their original order.
    pub fn recover(&self, entries: impl IntoIterator<Item = (StoreRef, bool, u32)>) {
        let mut g = self.inner.lock();
        for (r, redelivered, body_len) in entries {
            g.ready_bytes += u64::from(body_len);
            g.tail.push_back(Paged { r, persistent: true, redelivered });
        }
    }
}
