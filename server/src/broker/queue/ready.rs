//! The ready messages of a queue, oldest first, in one level per priority
//! (one level for a queue without `x-max-priority`).
//!
//! Each level has two parts. The `head` holds the oldest messages in
//! memory, each with the sequence number that lets a requeued message go
//! back to its original position. Beyond a budget, newer messages go to the
//! `tail`, which holds only where each message is on disk (24 bytes each):
//! persistent messages of a durable queue are already in the message store;
//! others are written to the paging store. As the head drains, the oldest
//! tail entries are read back in order. A backlog of millions of messages
//! therefore costs a few bytes per message of RAM. `Ready` decides when to
//! page; a [`Pager`] does the writing and reading (over the stores in the
//! queue's shell, in memory in tests).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::broker::message::Message;
use crate::store::messages::StoreRef;

/// Ready messages kept in memory per level before newer ones are paged out.
const HEAD_MAX_MESSAGES: usize = 2048;
const HEAD_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// A message on its way through a queue: ready, or delivered and unacked.
#[derive(Clone, Debug)]
pub struct QueuedMessage {
    pub seq: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
    /// Where the message is in the persistent store, for a persistent
    /// message in a durable queue.
    pub stored: Option<StoreRef>,
    /// When it expires, in milliseconds since the Unix epoch; 0 for never.
    pub expires: u64,
    /// Times it was delivered before (for quorum queues' delivery limit).
    pub deliveries: u32,
}

impl QueuedMessage {
    pub fn size(&self) -> u64 {
        self.msg.body_size() as u64
    }

    pub fn expired(&self, now: u64) -> bool {
        self.expires != 0 && self.expires < now
    }
}

/// A ready message that lives only on disk.
#[derive(Clone, Copy, Debug)]
pub(super) struct Paged {
    pub r: StoreRef,
    /// True: in the persistent store (the queue's own reference); false: in
    /// the paging store.
    pub persistent: bool,
    pub redelivered: bool,
    pub expires: u64,
}

#[derive(Default)]
struct Level {
    head: VecDeque<QueuedMessage>,
    head_bytes: u64,
    tail: VecDeque<Paged>,
}

impl Level {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
}

/// Where `Ready` pages message bodies out to and reads them back from.
/// The queue's shell implements it over the stores (`paging.rs`); unit
/// tests implement it in memory.
pub(super) trait Pager {
    /// Puts a message on disk; None when it cannot (it then stays in
    /// memory).
    fn page_out(&self, m: &QueuedMessage) -> Option<Paged>;
    /// Reads a paged message back with sequence number `seq`; None when it
    /// is unreadable (it is then gone, and released).
    fn page_in(&self, p: Paged, seq: u64) -> Option<QueuedMessage>;
    /// Lets go of a paged message's place on disk.
    fn release(&self, p: Paged);
}

/// Stored references of dropped messages, for the caller to release.
pub(super) struct Dropped {
    pub in_memory: Vec<QueuedMessage>,
    paged: Vec<Paged>,
}

impl Dropped {
    pub fn len(&self) -> usize {
        self.in_memory.len() + self.paged.len()
    }

    pub fn release(self, paging: &impl Pager) -> Vec<QueuedMessage> {
        for p in self.paged {
            paging.release(p);
        }
        self.in_memory
    }
}

pub(super) struct Ready {
    levels: Vec<Level>,
    count: u64,
    bytes: u64,
    next_seq: u64,
}

impl Ready {
    pub fn new(max_priority: Option<u8>) -> Self {
        let n = max_priority.map_or(1, |p| usize::from(p) + 1);
        Ready { levels: (0..n).map(|_| Level::default()).collect(), count: 0, bytes: 0, next_seq: 0 }
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn paged(&self) -> u64 {
        self.levels.iter().map(|l| l.tail.len() as u64).sum()
    }

    fn level_of(&self, msg: &Message) -> usize {
        usize::from(msg.priority).min(self.levels.len() - 1)
    }

    pub fn next_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Appends a newly published message, in memory or paged out.
    pub fn push(&mut self, mut m: QueuedMessage, paging: &impl Pager) {
        let size = m.size();
        self.count += 1;
        self.bytes += size;
        let i = self.level_of(&m.msg);
        // FIFO: once anything is paged, newer messages are paged too.
        let fits = {
            let l = &self.levels[i];
            l.tail.is_empty() && l.head.len() < HEAD_MAX_MESSAGES && l.head_bytes + size <= HEAD_MAX_BYTES
        };
        if !fits && let Some(p) = paging.page_out(&m) {
            self.levels[i].tail.push_back(p);
            return;
        }
        // Paging failed (disk full?): keep it in memory rather than lose it.
        m.seq = self.next_seq();
        let l = &mut self.levels[i];
        l.head_bytes += size;
        l.head.push_back(m);
    }

    /// Brings tail entries of a level back into memory as its head drains.
    fn refill(&mut self, i: usize, paging: &impl Pager) {
        if self.levels[i].tail.is_empty() || self.levels[i].head.len() >= HEAD_MAX_MESSAGES / 2 {
            return;
        }
        while self.levels[i].head.len() < HEAD_MAX_MESSAGES && self.levels[i].head_bytes < HEAD_MAX_BYTES {
            let Some(p) = self.levels[i].tail.pop_front() else { break };
            let seq = self.next_seq();
            match paging.page_in(p, seq) {
                Some(m) => {
                    let l = &mut self.levels[i];
                    l.head_bytes += m.size();
                    l.head.push_back(m);
                }
                None => {
                    // Unreadable: it is gone; keep the counts right.
                    self.count -= 1;
                }
            }
        }
    }

    /// The highest non-empty level.
    fn top(&self) -> Option<usize> {
        self.levels.iter().rposition(|l| l.len() > 0)
    }

    /// Takes the next message to deliver: the oldest of the highest
    /// priority, read back from disk if needed.
    pub fn pop(&mut self, paging: &impl Pager) -> Option<QueuedMessage> {
        loop {
            let i = self.top()?;
            self.refill(i, paging);
            if let Some(m) = self.take_head(i) {
                self.refill(i, paging);
                return Some(m);
            }
        }
    }

    fn take_head(&mut self, i: usize) -> Option<QueuedMessage> {
        let l = &mut self.levels[i];
        let m = l.head.pop_front()?;
        let size = m.size();
        l.head_bytes -= size;
        self.count -= 1;
        self.bytes = self.bytes.saturating_sub(size);
        Some(m)
    }

    /// Removes expired messages from the front of each level (RabbitMQ
    /// expires messages when they reach the head).
    pub fn expire(&mut self, now: u64, paging: &impl Pager, mut expired: impl FnMut(QueuedMessage)) {
        for i in 0..self.levels.len() {
            loop {
                self.refill(i, paging);
                if !self.levels[i].head.front().is_some_and(|m| m.expired(now)) {
                    break;
                }
                if let Some(m) = self.take_head(i) {
                    expired(m);
                }
            }
        }
    }

    /// Drops the oldest message of the lowest non-empty priority (length
    /// limits with drop-head).
    pub fn drop_one(&mut self, paging: &impl Pager) -> Option<QueuedMessage> {
        let i = self.levels.iter().position(|l| l.len() > 0)?;
        self.refill(i, paging);
        self.take_head(i)
    }

    /// Puts a delivered message back at its original position. Requeued
    /// messages are older than anything in the tail, so they always go into
    /// the head, by sequence number.
    pub fn requeue(&mut self, m: QueuedMessage) {
        let size = m.size();
        self.count += 1;
        self.bytes += size;
        let i = self.level_of(&m.msg);
        let l = &mut self.levels[i];
        l.head_bytes += size;
        let pos = l.head.partition_point(|x| x.seq < m.seq);
        if pos == 0 {
            l.head.push_front(m);
        } else {
            l.head.insert(pos, m);
        }
    }

    /// Empties the queue; the caller releases what was stored.
    pub fn take_all(&mut self) -> Dropped {
        let mut d = Dropped { in_memory: Vec::new(), paged: Vec::new() };
        for l in &mut self.levels {
            d.in_memory.extend(l.head.drain(..));
            d.paged.extend(l.tail.drain(..));
            l.head_bytes = 0;
        }
        self.count = 0;
        self.bytes = 0;
        d
    }

    /// Adds messages recovered from the persistent store at start.
    pub fn recover(&mut self, r: StoreRef, redelivered: bool, body_len: u32, priority: u8) {
        let i = usize::from(priority).min(self.levels.len() - 1);
        self.count += 1;
        self.bytes += u64::from(body_len);
        self.levels[i].tail.push_back(Paged { r, persistent: true, redelivered, expires: 0 });
    }
}
