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
//! Ready messages keep the queue-local sequence number they got at publish,
//! so a requeued message goes back to its original position.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amq_protocol::types::FieldTable;
use parking_lot::Mutex;

use super::consumer::{Consumer, Outbound};
use super::message::Message;
use super::stats::QueueStats;

#[derive(Clone, Debug)]
pub struct QueuedMessage {
    pub seq: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
}

#[derive(Default)]
struct Inner {
    ready: VecDeque<QueuedMessage>,
    ready_bytes: u64,
    unacked: u64,
    unacked_bytes: u64,
    consumers: Vec<Arc<Consumer>>,
    next_consumer: usize,
    next_seq: u64,
    had_consumers: bool,
}

pub struct Queue {
    pub name: Arc<str>,
    pub vhost: Arc<str>,
    pub durable: bool,
    pub auto_delete: bool,
    /// The id of the connection that declared an exclusive queue.
    pub exclusive_owner: Option<u64>,
    pub arguments: FieldTable,
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
    ) -> Self {
        Queue {
            name,
            vhost,
            durable,
            auto_delete,
            exclusive_owner,
            arguments,
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

    pub fn counts(&self) -> QueueCounts {
        let g = self.inner.lock();
        QueueCounts {
            ready: g.ready.len() as u64,
            ready_bytes: g.ready_bytes,
            unacked: g.unacked,
            unacked_bytes: g.unacked_bytes,
            consumers: g.consumers.len() as u64,
        }
    }

    pub fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.inner.lock().consumers.clone()
    }

    /// Appends a routed message and hands it to a consumer if one has credit.
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>) {
        self.stats.publish.incr();
        let mut g = self.inner.lock();
        if self.is_deleted() {
            return;
        }
        let seq = g.next_seq;
        g.next_seq += 1;
        g.ready_bytes += msg.body_size() as u64;
        g.ready.push_back(QueuedMessage { seq, msg, redelivered: false });
        self.dispatch_locked(&mut g);
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
        while refused_in_a_row < n {
            let Some(front) = g.ready.front() else { break };
            let i = g.next_consumer % n;
            g.next_consumer = (i + 1) % n;
            let consumer = &g.consumers[i];
            if !consumer.try_reserve() {
                refused_in_a_row += 1;
                continue;
            }
            refused_in_a_row = 0;
            let size = front.msg.body_size() as u64;
            let consumer = consumer.clone();
            let msg = g.ready.pop_front().expect("front exists");
            g.ready_bytes -= size;
            if consumer.no_ack {
                self.stats.deliver_no_ack.incr();
            } else {
                self.stats.deliver.incr();
                g.unacked += 1;
                g.unacked_bytes += size;
            }
            if msg.redelivered {
                self.stats.redeliver.incr();
            }
            consumer.outbox.clone().push(Outbound::Deliver { consumer, queue: self.clone(), msg });
        }
    }

    /// basic.get: the head message and the number of messages left behind.
    pub fn get(&self, no_ack: bool) -> Option<(QueuedMessage, u64)> {
        let mut g = self.inner.lock();
        let Some(msg) = g.ready.pop_front() else {
            self.stats.get_empty.incr();
            return None;
        };
        let size = msg.msg.body_size() as u64;
        g.ready_bytes -= size;
        if no_ack {
            self.stats.get_no_ack.incr();
        } else {
            self.stats.get.incr();
            g.unacked += 1;
            g.unacked_bytes += size;
        }
        if msg.redelivered {
            self.stats.redeliver.incr();
        }
        Some((msg, g.ready.len() as u64))
    }

    /// Settles delivered messages for good (ack, or reject without requeue).
    pub fn settle<'a>(&self, msgs: impl IntoIterator<Item = &'a QueuedMessage>, acked: bool) {
        let mut count = 0;
        let mut bytes = 0;
        for m in msgs {
            count += 1;
            bytes += m.msg.body_size() as u64;
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
            return;
        }
        for mut m in msgs {
            m.redelivered = true;
            g.ready_bytes += m.msg.body_size() as u64;
            let pos = g.ready.partition_point(|x| x.seq < m.seq);
            if pos == 0 {
                g.ready.push_front(m);
            } else {
                g.ready.insert(pos, m);
            }
        }
        self.dispatch_locked(&mut g);
    }

    /// Puts back messages that were handed to a connection but never written
    /// to its socket (the channel closed first). They keep their flag.
    pub fn return_undelivered(self: &Arc<Self>, m: QueuedMessage, was_acked_delivery: bool) {
        let mut g = self.inner.lock();
        if was_acked_delivery {
            g.unacked = g.unacked.saturating_sub(1);
            g.unacked_bytes = g.unacked_bytes.saturating_sub(m.msg.body_size() as u64);
        }
        if self.is_deleted() {
            return;
        }
        g.ready_bytes += m.msg.body_size() as u64;
        let pos = g.ready.partition_point(|x| x.seq < m.seq);
        g.ready.insert(pos, m);
        self.dispatch_locked(&mut g);
    }

    /// Removes every ready message; returns how many there were.
    pub fn purge(&self) -> u64 {
        let mut g = self.inner.lock();
        let n = g.ready.len() as u64;
        g.ready.clear();
        g.ready_bytes = 0;
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
        let mut g = self.inner.lock();
        self.deleted.store(true, Ordering::Release);
        let n = g.ready.len() as u64;
        g.ready.clear();
        g.ready_bytes = 0;
        (n, std::mem::take(&mut g.consumers))
    }
}
