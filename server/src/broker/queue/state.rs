//! `QueueState`: what a queue decides, apart from how it is carried out.
//! It holds the ready messages, the consumers and the choice among them, the
//! unacked counts and the effective settings, and applies RabbitMQ's rules:
//! length limits with each overflow mode, message and queue TTL, priorities,
//! single active consumer, delivery limits, and which messages to
//! dead-letter.
//!
//! It reads no clock (every operation that needs the time takes `now`, in
//! milliseconds since the Unix epoch) and touches no store: its operations
//! record [`Effects`] for the queue's shell (`mod.rs`) to carry out. The two
//! things it cannot decide alone it asks through small traits: a consumer's
//! credit, which other queues share ([`ConsumerHandle`]), and message bodies
//! beyond the memory budget, which live on disk ([`Pager`]). The shell
//! implements both over the broker; the tests below implement them in
//! memory. Same calls, same effects.

use std::sync::Arc;

use super::config::{Overflow, QueueConfig};
use super::consumers::{ConsumerHandle, Consumers};
use super::ready::{Pager, QueuedMessage, Ready};
use super::{ConsumeRefusal, QueueCounts};
use crate::broker::deadletter::Reason;
use crate::broker::message::Message;
use crate::store::messages::StoreRef;

/// An effect to carry out in order, before the queue does anything else:
/// a consumer must receive its deliveries in the order they were decided,
/// and a message must be marked delivered before its ack can arrive.
#[derive(Debug)]
pub(super) enum Step<C> {
    /// Hands `msg` to `consumer`, which has reserved credit for it.
    Deliver { consumer: C, msg: QueuedMessage },
    /// Records in the store that a stored message was delivered, so that it
    /// comes back redelivered after a restart.
    MarkDelivered(StoreRef),
}

/// A message leaving the queue for good, let go of in any order (the shell
/// does it after releasing its lock).
#[derive(Debug)]
pub(super) enum Leave {
    /// Drops the queue's claim on a stored message.
    Forget(StoreRef),
    /// Dead-letters the message (or drops it without a dead-letter
    /// exchange), then drops the queue's claim on it.
    DeadLetter { msg: QueuedMessage, reason: Reason },
}

/// What operations on a [`QueueState`] decided. The shell keeps one and
/// empties it after each operation, so an operation that decides nothing
/// allocates nothing.
#[derive(Debug)]
pub(super) struct Effects<C> {
    pub steps: Vec<Step<C>>,
    pub leaving: Vec<Leave>,
}

impl<C> Default for Effects<C> {
    fn default() -> Self {
        Effects { steps: Vec::new(), leaving: Vec::new() }
    }
}

impl<C> Effects<C> {
    fn forget(&mut self, stored: Option<StoreRef>) {
        if let Some(r) = stored {
            self.leaving.push(Leave::Forget(r));
        }
    }

    fn dead_letter(&mut self, msg: QueuedMessage, reason: Reason) {
        self.leaving.push(Leave::DeadLetter { msg, reason });
    }

    /// The leaving messages, taken out (the buffer is kept when empty).
    pub fn take_leaving(&mut self) -> Vec<Leave> {
        if self.leaving.is_empty() { Vec::new() } else { std::mem::take(&mut self.leaving) }
    }
}

pub(super) struct QueueState<C> {
    ready: Ready,
    unacked: u64,
    unacked_bytes: u64,
    consumers: Consumers<C>,
    had_consumers: bool,
    deleted: bool,
    /// Whether a sweep may find something to expire: a TTL or `x-expires`
    /// was set, or a message came with its own expiration.
    may_expire: bool,
    config: Arc<QueueConfig>,
}

impl<C: ConsumerHandle> QueueState<C> {
    pub fn new(config: QueueConfig) -> Self {
        QueueState {
            ready: Ready::new(config.max_priority),
            unacked: 0,
            unacked_bytes: 0,
            consumers: Consumers::new(config.single_active_consumer),
            had_consumers: false,
            deleted: false,
            may_expire: config.message_ttl.is_some() || config.expires.is_some(),
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &Arc<QueueConfig> {
        &self.config
    }

    pub fn may_expire(&self) -> bool {
        self.may_expire
    }

    pub fn counts(&self) -> QueueCounts {
        QueueCounts {
            ready: self.ready.len(),
            ready_bytes: self.ready.bytes(),
            unacked: self.unacked,
            unacked_bytes: self.unacked_bytes,
            consumers: self.consumers.len() as u64,
            paged: self.ready.paged(),
        }
    }

    pub fn consumers(&self) -> &[C] {
        self.consumers.list()
    }

    /// The consumer receiving messages under single active consumer.
    pub fn active_consumer(&self) -> Option<&C> {
        self.consumers.active()
    }

    /// Applies new effective settings (a policy changed). The priority
    /// levels and single active consumer keep what the queue was declared
    /// with, as in RabbitMQ.
    pub fn set_config(&mut self, config: QueueConfig, now: u64, pager: &impl Pager, out: &mut Effects<C>) {
        self.may_expire |= config.message_ttl.is_some() || config.expires.is_some();
        self.config = Arc::new(config);
        self.enforce_limits(pager, out);
        self.dispatch(now, pager, out);
    }

    /// Appends a routed message and hands it to a consumer if one has
    /// credit. `stored` is its place in the persistent store. Returns false
    /// when the queue refused it (a length limit with `reject-publish` or
    /// `reject-publish-dlx`).
    pub fn publish(
        &mut self,
        msg: Arc<Message>,
        stored: Option<StoreRef>,
        now: u64,
        pager: &impl Pager,
        out: &mut Effects<C>,
    ) -> bool {
        if self.deleted {
            out.forget(stored);
            return true;
        }
        let size = msg.body_size() as u64;
        let cfg = &self.config;
        let full = cfg.max_length.is_some_and(|max| self.ready.len() >= max)
            || cfg.max_length_bytes.is_some_and(|max| self.ready.bytes() + size > max);
        let expires = expiry(&msg, cfg.message_ttl, now);
        let m = QueuedMessage { seq: 0, msg, redelivered: false, stored, expires, deliveries: 0 };
        match (full, cfg.overflow) {
            (true, Overflow::RejectPublish) => {
                out.forget(m.stored);
                return false;
            }
            (true, Overflow::RejectPublishDlx) => {
                out.dead_letter(m, Reason::Maxlen);
                return false;
            }
            _ => {}
        }
        self.may_expire |= expires != 0;
        self.ready.push(m, pager);
        self.enforce_limits(pager, out);
        self.dispatch(now, pager, out);
        if expires != 0 {
            // A message with TTL 0 lives only if a consumer took it.
            self.ready.expire(now, pager, |m| out.dead_letter(m, Reason::Expired));
        }
        true
    }

    /// drop-head: the oldest messages go once a length limit is exceeded.
    fn enforce_limits(&mut self, pager: &impl Pager, out: &mut Effects<C>) {
        let cfg = self.config.clone();
        if cfg.overflow != Overflow::DropHead {
            return;
        }
        while cfg.max_length.is_some_and(|max| self.ready.len() > max)
            || cfg.max_length_bytes.is_some_and(|max| self.ready.bytes() > max)
        {
            match self.ready.drop_one(pager) {
                Some(m) => out.dead_letter(m, Reason::Maxlen),
                None => break,
            }
        }
    }

    /// Gives ready messages to consumers with credit.
    pub fn dispatch(&mut self, now: u64, pager: &impl Pager, out: &mut Effects<C>) {
        if self.consumers.is_empty() {
            return;
        }
        while !self.ready.is_empty() {
            let Some(consumer) = self.consumers.pick() else { break };
            let Some(m) = self.pop_live(now, pager, out) else {
                consumer.release(1);
                break;
            };
            self.track(&m, consumer.no_ack(), out);
            let msg = self.with_delivery_count(m);
            out.steps.push(Step::Deliver { consumer, msg });
        }
    }

    /// The next message that has not expired; expired ones are
    /// dead-lettered.
    fn pop_live(&mut self, now: u64, pager: &impl Pager, out: &mut Effects<C>) -> Option<QueuedMessage> {
        loop {
            let m = self.ready.pop(pager)?;
            if !m.expired(now) {
                return Some(m);
            }
            out.dead_letter(m, Reason::Expired);
        }
    }

    /// Counts a message handed out; one needing an ack and stored is marked
    /// delivered the first time.
    fn track(&mut self, m: &QueuedMessage, no_ack: bool, out: &mut Effects<C>) {
        if no_ack {
            return;
        }
        self.unacked += 1;
        self.unacked_bytes += m.size();
        if let (Some(r), false) = (m.stored, m.redelivered) {
            out.steps.push(Step::MarkDelivered(r));
        }
    }

    /// Quorum queues tell consumers how often a message was delivered.
    fn with_delivery_count(&self, mut m: QueuedMessage) -> QueuedMessage {
        if self.config.quorum && m.deliveries > 0 {
            m.msg = Arc::new(m.msg.with_header("x-delivery-count", i64::from(m.deliveries)));
        }
        m
    }

    /// basic.get: the next live message and how many are left behind. A
    /// message got without ack leaves the queue at once.
    pub fn get(
        &mut self,
        no_ack: bool,
        now: u64,
        pager: &impl Pager,
        out: &mut Effects<C>,
    ) -> Option<(QueuedMessage, u64)> {
        let m = self.pop_live(now, pager, out)?;
        self.track(&m, no_ack, out);
        if no_ack {
            out.forget(m.stored);
        }
        Some((self.with_delivery_count(m), self.ready.len()))
    }

    fn unacked_gone(&mut self, count: u64, bytes: u64) {
        self.unacked = self.unacked.saturating_sub(count);
        self.unacked_bytes = self.unacked_bytes.saturating_sub(bytes);
    }

    /// Delivered messages acked (or let go of): they leave the queue.
    /// Returns how many there were.
    pub fn settle<'a>(&mut self, msgs: impl IntoIterator<Item = &'a QueuedMessage>, out: &mut Effects<C>) -> u64 {
        let (mut count, mut bytes) = (0, 0);
        for m in msgs {
            count += 1;
            bytes += m.size();
            out.forget(m.stored);
        }
        self.unacked_gone(count, bytes);
        count
    }

    /// Delivered messages rejected without requeue: dead-lettered.
    pub fn discard(&mut self, msgs: Vec<QueuedMessage>, out: &mut Effects<C>) {
        self.unacked_gone(msgs.len() as u64, msgs.iter().map(QueuedMessage::size).sum());
        for m in msgs {
            out.dead_letter(m, Reason::Rejected);
        }
    }

    /// Puts delivered messages back, each at its original position, marked
    /// redelivered, and dispatches them again. With a delivery limit, a
    /// message returned too often is dead-lettered instead.
    pub fn requeue(&mut self, msgs: Vec<QueuedMessage>, now: u64, pager: &impl Pager, out: &mut Effects<C>) {
        self.unacked_gone(msgs.len() as u64, msgs.iter().map(QueuedMessage::size).sum());
        if self.deleted {
            for m in msgs {
                out.forget(m.stored);
            }
            return;
        }
        let limit = self.config.delivery_limit;
        for mut m in msgs {
            m.redelivered = true;
            m.deliveries += 1;
            if limit.is_some_and(|l| u64::from(m.deliveries) > l) {
                out.dead_letter(m, Reason::DeliveryLimit);
            } else {
                self.ready.requeue(m);
            }
        }
        self.dispatch(now, pager, out);
    }

    /// Puts back a message handed out but never written to its client. It
    /// keeps its redelivered flag and delivery count.
    pub fn return_undelivered(
        &mut self,
        m: QueuedMessage,
        was_acked_delivery: bool,
        now: u64,
        pager: &impl Pager,
        out: &mut Effects<C>,
    ) {
        if was_acked_delivery {
            self.unacked_gone(1, m.size());
        }
        if self.deleted {
            out.forget(m.stored);
            return;
        }
        self.ready.requeue(m);
        self.dispatch(now, pager, out);
    }

    /// Removes every ready message; returns how many there were. Paged
    /// messages are released through the pager at once.
    pub fn purge(&mut self, pager: &impl Pager, out: &mut Effects<C>) -> u64 {
        let dropped = self.ready.take_all();
        let n = dropped.len() as u64;
        for m in dropped.release(pager) {
            out.forget(m.stored);
        }
        n
    }

    /// Expires messages at the head and reports whether the queue itself
    /// has been unused since `last_used` for longer than `x-expires`.
    pub fn sweep(&mut self, now: u64, last_used: u64, pager: &impl Pager, out: &mut Effects<C>) -> bool {
        if self.deleted {
            return false;
        }
        self.ready.expire(now, pager, |m| out.dead_letter(m, Reason::Expired));
        let unused = self.consumers.is_empty() && self.unacked == 0;
        self.config.expires.is_some_and(|ms| unused && now.saturating_sub(last_used) >= ms)
    }

    pub fn add_consumer(
        &mut self,
        c: C,
        now: u64,
        pager: &impl Pager,
        out: &mut Effects<C>,
    ) -> Result<(), ConsumeRefusal> {
        let list = self.consumers.list();
        if (c.exclusive() && !list.is_empty()) || list.iter().any(ConsumerHandle::exclusive) {
            return Err(ConsumeRefusal::ExclusiveInUse);
        }
        self.consumers.add(c);
        self.had_consumers = true;
        self.dispatch(now, pager, out);
        Ok(())
    }

    /// Detaches a consumer (under single active consumer the next one takes
    /// over now). Returns true when the queue had consumers and now has
    /// none, which deletes an auto-delete queue.
    pub fn remove_consumer(&mut self, c: &C, now: u64, pager: &impl Pager, out: &mut Effects<C>) -> bool {
        self.consumers.remove(c);
        self.dispatch(now, pager, out);
        self.had_consumers && self.consumers.is_empty() && !self.deleted
    }

    /// Marks the queue deleted: it takes nothing more, and what comes back
    /// to it leaves. Returns the consumers, which must be told.
    pub fn delete(&mut self) -> Vec<C> {
        self.deleted = true;
        self.consumers.take_all()
    }

    /// Adds a message recovered from the persistent store at start, after
    /// those recovered before it.
    pub fn recover(&mut self, r: StoreRef, redelivered: bool, body_len: u32, priority: u8) {
        self.ready.recover(r, redelivered, body_len, priority);
    }
}

/// When a message published now expires: the lower of the queue's TTL and
/// the message's own `expiration`; 0 for never.
fn expiry(msg: &Message, queue_ttl: Option<u64>, now: u64) -> u64 {
    match (queue_ttl, msg.expiration_ms()) {
        (None, None) => 0,
        (Some(t), None) | (None, Some(t)) => now + t,
        (Some(a), Some(b)) => now + a.min(b),
    }
}
