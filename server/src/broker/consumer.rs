//! Consumers, and the outbox through which queues hand deliveries to the
//! connection that owns a consumer.
//!
//! A queue decides which consumer gets a message (round-robin among those with
//! credit) while holding its own lock, then pushes the delivery into the
//! consumer's connection outbox and wakes the connection task. The connection
//! task assigns the delivery tag, records the unacked message and writes the
//! frames. Credit is two things: the consumer's prefetch (and its channel's
//! global prefetch), and room in the outbox, which is how a slow socket pushes
//! back on queues even for no-ack consumers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use amq_protocol::types::{FieldTable, ShortString};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::queue::{Queue, QueuedMessage};

/// Deliveries waiting in an outbox beyond which queues stop dispatching to
/// that connection until it has written some out.
pub const OUTBOX_LIMIT: usize = 4096;

pub enum Outbound {
    Deliver {
        consumer: Arc<Consumer>,
        queue: Arc<Queue>,
        msg: QueuedMessage,
    },
    /// The broker cancelled a consumer (its queue was deleted).
    Cancelled {
        consumer: Arc<Consumer>,
    },
    /// Close the connection with CONNECTION_FORCED (management, shutdown).
    ForceClose {
        reason: String,
    },
    /// The message store has on disk everything a channel published up to
    /// confirm sequence number `upto`. `instance` tells a reopened channel
    /// with the same number from the one that asked.
    /// `ok` is false when the store could not write it (the publishes are
    /// then nacked).
    Durable {
        channel: u16,
        instance: u64,
        upto: u64,
        ok: bool,
    },
    /// The home nodes of the cluster answered for a publish a channel
    /// forwarded to them: `ok` false nacks it.
    Forwarded {
        channel: u16,
        instance: u64,
        seq: u64,
        ok: bool,
    },
}

pub struct Outbox {
    items: Mutex<Vec<Outbound>>,
    notify: Notify,
    pending: AtomicUsize,
    starved: AtomicBool,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            items: Mutex::new(Vec::with_capacity(64)),
            notify: Notify::new(),
            pending: AtomicUsize::new(0),
            starved: AtomicBool::new(false),
        }
    }
}

impl Outbox {
    pub fn push(&self, item: Outbound) {
        let was_empty = {
            let mut items = self.items.lock();
            items.push(item);
            items.len() == 1
        };
        self.pending.fetch_add(1, Ordering::Relaxed);
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Takes everything queued so far; the caller then reports what it has
    /// written with `written`.
    pub fn take(&self, into: &mut Vec<Outbound>) {
        std::mem::swap(&mut *self.items.lock(), into);
    }

    pub async fn wait(&self) {
        self.notify.notified().await
    }

    pub fn is_full(&self) -> bool {
        self.pending.load(Ordering::Relaxed) >= OUTBOX_LIMIT
    }

    /// Marks `n` items as handled. Returns true when a queue had skipped this
    /// connection for lack of room and should be asked to dispatch again.
    pub fn written(&self, n: usize) -> bool {
        // SeqCst pairs with `has_room`: either the queue sees the room made
        // here, or this sees the queue's starved mark. Never neither.
        self.pending.fetch_sub(n, Ordering::SeqCst);
        self.starved.swap(false, Ordering::SeqCst)
    }

    /// Whether a queue may push more. When it may not, the outbox remembers
    /// that a queue is waiting, so that the connection asks again later.
    fn has_room(&self) -> bool {
        if !self.is_full() {
            return true;
        }
        self.starved.store(true, Ordering::SeqCst);
        self.pending.load(Ordering::SeqCst) < OUTBOX_LIMIT
    }
}

/// Per-channel flow state shared by the channel's consumers: the global
/// (per-channel) prefetch limit and count, and channel.flow.
pub struct ChannelFlow {
    pub global_prefetch: AtomicU32,
    pub in_flight: AtomicU32,
    pub active: AtomicBool,
}

impl Default for ChannelFlow {
    fn default() -> Self {
        ChannelFlow {
            global_prefetch: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            active: AtomicBool::new(true),
        }
    }
}

pub struct Consumer {
    pub tag: ShortString,
    pub channel: u16,
    pub connection_id: u64,
    pub outbox: Arc<Outbox>,
    pub flow: Arc<ChannelFlow>,
    pub no_ack: bool,
    pub exclusive: bool,
    pub prefetch: u32,
    pub arguments: FieldTable,
    pub priority: i32,
    in_flight: AtomicU32,
    /// Cancelled by its client (or its channel closed).
    gone: std::sync::atomic::AtomicBool,
}

/// What a consumer is made of: its tag and settings (basic.consume's), and
/// where its deliveries go (its channel, connection and outbox).
pub struct ConsumerSpec {
    pub tag: ShortString,
    pub channel: u16,
    pub connection_id: u64,
    pub outbox: Arc<Outbox>,
    pub flow: Arc<ChannelFlow>,
    pub no_ack: bool,
    pub exclusive: bool,
    pub prefetch: u32,
    pub arguments: FieldTable,
    pub priority: i32,
}

impl Consumer {
    pub fn new(s: ConsumerSpec) -> Self {
        Consumer {
            tag: s.tag,
            channel: s.channel,
            connection_id: s.connection_id,
            outbox: s.outbox,
            flow: s.flow,
            no_ack: s.no_ack,
            exclusive: s.exclusive,
            prefetch: s.prefetch,
            arguments: s.arguments,
            priority: s.priority,
            in_flight: AtomicU32::new(0),
            gone: Default::default(),
        }
    }

    /// Its client cancelled it, or its channel closed.
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    pub fn set_gone(&self) {
        self.gone.store(true, Ordering::Release);
    }

    /// Whether its client asked to be cancelled when a replicated queue's
    /// leader changes (`x-cancel-on-ha-failover`) rather than go on.
    pub fn cancel_on_failover(&self) -> bool {
        matches!(
            self.arguments.inner().get("x-cancel-on-ha-failover"),
            Some(amq_protocol::types::AMQPValue::Boolean(true))
        )
    }

    /// Claims credit for one delivery. Called by the queue under its lock.
    pub fn try_reserve(&self) -> bool {
        if !self.flow.active.load(Ordering::Relaxed) {
            return false;
        }
        if !self.outbox.has_room() {
            return false;
        }
        if self.no_ack {
            return true;
        }
        if self.prefetch != 0 && self.in_flight.load(Ordering::Relaxed) >= self.prefetch {
            return false;
        }
        let global = self.flow.global_prefetch.load(Ordering::Relaxed);
        let reserved = self.flow.in_flight.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
            (global == 0 || n < global).then_some(n + 1)
        });
        if reserved.is_err() {
            return false;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Counts a delivery that came from another node (whose home queue
    /// claimed the credit), so that settling it gives the credit back.
    pub fn note_remote_delivery(&self) {
        if !self.no_ack {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            self.flow.in_flight.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Gives back credit for `n` settled (acked, rejected or requeued)
    /// deliveries.
    pub fn release(&self, n: u32) {
        if self.no_ack || n == 0 {
            return;
        }
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
        self.flow.in_flight.fetch_sub(n, Ordering::AcqRel);
    }

    pub fn unacked(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}
