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

use smallvec::SmallVec;

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
    /// exchange), then drops the queue's claim on it. Boxed: the rare case
    /// should not make every `Leave` (and every [`Leaving`], moved out of
    /// the lock after each operation) as large as a message.
    DeadLetter { msg: Box<QueuedMessage>, reason: Reason },
}

/// Messages leaving the queue, taken out of [`Effects`] to be let go of
/// after the lock; a few fit without allocating.
pub(super) type Leaving = SmallVec<[Leave; 8]>;

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
        self.leaving.push(Leave::DeadLetter { msg: Box::new(msg), reason });
    }

    /// The leaving messages, taken out; the buffer keeps its capacity.
    pub fn take_leaving(&mut self) -> Leaving {
        // Most operations let nothing go: no iterator, no copy.
        if self.leaving.is_empty() {
            return Leaving::new();
        }
        self.leaving.drain(..).collect()
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
            // What is due now goes now: a message with TTL 0 lives only if
            // a consumer took it just above, as in RabbitMQ.
            self.ready.expire(now + 1, pager, |m| out.dead_letter(m, Reason::Expired));
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
    pub fn settle<'a>(
        &mut self,
        msgs: impl IntoIterator<Item = &'a QueuedMessage>,
        out: &mut Effects<C>,
    ) -> u64 {
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
    /// Takes every ready message out, oldest first per priority, read back
    /// from disk where paged (a replicated queue's new leader sorts them).
    pub fn take_ready(&mut self, pager: &impl Pager) -> Vec<QueuedMessage> {
        let mut out = Vec::with_capacity(self.ready.len() as usize);
        while let Some(m) = self.ready.pop(pager) {
            out.push(m);
        }
        out
    }

    /// Adds a message a replicated queue's new leader found in its log,
    /// behind the others.
    pub fn load(&mut self, m: QueuedMessage, pager: &impl Pager) {
        self.ready.push(m, pager);
    }

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

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use amq_protocol::protocol::BasicProperties;
    use bytes::Bytes;

    use super::*;
    use crate::broker::queue::ready::Paged;

    /// A consumer whose only credit is its prefetch.
    struct TestConsumer {
        tag: &'static str,
        priority: i32,
        exclusive: bool,
        prefetch: u32,
        in_flight: Cell<u32>,
    }

    type C = Rc<TestConsumer>;

    impl ConsumerHandle for C {
        fn priority(&self) -> i32 {
            self.priority
        }

        fn exclusive(&self) -> bool {
            self.exclusive
        }

        fn no_ack(&self) -> bool {
            false
        }

        fn try_reserve(&self) -> bool {
            let n = self.in_flight.get();
            if self.prefetch != 0 && n >= self.prefetch {
                return false;
            }
            self.in_flight.set(n + 1);
            true
        }

        fn release(&self, n: u32) {
            self.in_flight.set(self.in_flight.get() - n);
        }

        fn same(&self, other: &Self) -> bool {
            Rc::ptr_eq(self, other)
        }
    }

    fn consumer(tag: &'static str, prefetch: u32, priority: i32) -> C {
        Rc::new(TestConsumer { tag, priority, exclusive: false, prefetch, in_flight: Cell::new(0) })
    }

    /// Pages messages out to a map.
    #[derive(Default)]
    struct MemPager {
        disk: RefCell<BTreeMap<StoreRef, QueuedMessage>>,
        next: Cell<u32>,
    }

    impl Pager for MemPager {
        fn page_out(&self, m: &QueuedMessage) -> Option<Paged> {
            let r = m.stored.unwrap_or_else(|| {
                self.next.set(self.next.get() + 1);
                StoreRef { segment: 1, offset: self.next.get(), len: 0 }
            });
            self.disk.borrow_mut().insert(r, m.clone());
            Some(Paged { r, persistent: m.stored.is_some(), redelivered: m.redelivered, expires: m.expires })
        }

        fn page_in(&self, p: Paged, seq: u64) -> Option<QueuedMessage> {
            let m = self.disk.borrow_mut().remove(&p.r)?;
            Some(QueuedMessage { seq, deliveries: 0, ..m })
        }

        fn release(&self, p: Paged) {
            self.disk.borrow_mut().remove(&p.r);
        }
    }

    /// A queue with an in-memory pager, and what it decided, as text.
    struct Fixture {
        q: QueueState<C>,
        pager: MemPager,
        fx: Effects<C>,
        /// Messages handed to consumers, by body.
        delivered: BTreeMap<String, QueuedMessage>,
    }

    fn queue(config: QueueConfig) -> Fixture {
        Fixture {
            q: QueueState::new(config),
            pager: MemPager::default(),
            fx: Effects::default(),
            delivered: BTreeMap::new(),
        }
    }

    fn message(body: &str, priority: u8, expiration: Option<u64>) -> Arc<Message> {
        let mut m =
            Message::new("ex".into(), "rk", &BasicProperties::default(), Bytes::from(body.to_owned()));
        m.priority = priority;
        m.expiration = expiration;
        Arc::new(m)
    }

    fn body(m: &QueuedMessage) -> String {
        String::from_utf8_lossy(&m.msg.body).into_owned()
    }

    fn stored(offset: u32) -> Option<StoreRef> {
        Some(StoreRef { segment: 0, offset, len: 0 })
    }

    impl Fixture {
        fn publish(&mut self, body: &str, now: u64) -> bool {
            self.publish_msg(message(body, 0, None), None, now)
        }

        fn publish_msg(&mut self, msg: Arc<Message>, r: Option<StoreRef>, now: u64) -> bool {
            self.q.publish(msg, r, now, &self.pager, &mut self.fx)
        }

        fn add(&mut self, c: &C, now: u64) {
            self.q.add_consumer(c.clone(), now, &self.pager, &mut self.fx).unwrap();
        }

        fn get(&mut self, now: u64) -> Option<QueuedMessage> {
            self.q.get(false, now, &self.pager, &mut self.fx).map(|(m, _)| m)
        }

        fn taken(&mut self, body: &str) -> QueuedMessage {
            self.delivered.remove(body).expect("delivered")
        }

        /// The effects decided since last asked, as text.
        fn effects(&mut self) -> Vec<String> {
            let mut out = Vec::new();
            for step in self.fx.steps.drain(..) {
                match step {
                    Step::Deliver { consumer, msg } => {
                        out.push(format!("deliver {} {}", consumer.tag, body(&msg)));
                        self.delivered.insert(body(&msg), msg);
                    }
                    Step::MarkDelivered(r) => out.push(format!("mark {}", r.offset)),
                }
            }
            for l in self.fx.leaving.drain(..) {
                match l {
                    Leave::Forget(r) => out.push(format!("forget {}", r.offset)),
                    Leave::DeadLetter { msg, reason } => out.push(format!("dead {} {reason:?}", body(&msg))),
                }
            }
            out
        }
    }

    #[test]
    fn dispatch_respects_consumer_credit() {
        let mut f = queue(QueueConfig::default());
        let a = consumer("a", 2, 0);
        f.add(&a, 0);
        for b in ["m1", "m2", "m3"] {
            assert!(f.publish(b, 0));
        }
        assert_eq!(f.effects(), ["deliver a m1", "deliver a m2"]);
        assert_eq!((f.q.counts().ready, f.q.counts().unacked), (1, 2));
        // An ack gives the credit back (the channel releases it), and the
        // next dispatch fills it.
        let m1 = f.taken("m1");
        a.release(1);
        assert_eq!(f.q.settle([&m1], &mut f.fx), 1);
        f.q.dispatch(0, &f.pager, &mut f.fx);
        assert_eq!(f.effects(), ["deliver a m3"]);
        assert_eq!((f.q.counts().ready, f.q.counts().unacked), (0, 2));
    }

    #[test]
    fn stored_messages_are_marked_delivered_once_and_forgotten_when_settled() {
        let mut f = queue(QueueConfig::default());
        f.add(&consumer("a", 0, 0), 0);
        f.publish_msg(message("m1", 0, None), stored(7), 0);
        assert_eq!(f.effects(), ["mark 7", "deliver a m1"]);
        let m1 = f.taken("m1");
        f.q.requeue(vec![m1], 0, &f.pager, &mut f.fx);
        // Redelivered: the store knows already.
        assert_eq!(f.effects(), ["deliver a m1"]);
        let m1 = f.taken("m1");
        f.q.settle([&m1], &mut f.fx);
        assert_eq!(f.effects(), ["forget 7"]);
    }

    #[test]
    fn max_length_drop_head_drops_the_oldest() {
        let mut f = queue(QueueConfig { max_length: Some(2), ..Default::default() });
        for b in ["m1", "m2", "m3"] {
            assert!(f.publish(b, 0));
        }
        assert_eq!(f.effects(), ["dead m1 Maxlen"]);
        assert_eq!(f.get(0).map(|m| body(&m)).as_deref(), Some("m2"));
        let mut f = queue(QueueConfig { max_length_bytes: Some(5), ..Default::default() });
        f.publish("aaa", 0);
        f.publish("bbb", 0);
        assert_eq!(f.effects(), ["dead aaa Maxlen"]);
    }

    #[test]
    fn max_length_reject_publish_refuses_the_newest() {
        let config =
            QueueConfig { max_length: Some(2), overflow: Overflow::RejectPublish, ..Default::default() };
        let mut f = queue(config);
        f.publish("m1", 0);
        f.publish("m2", 0);
        assert!(!f.publish_msg(message("m3", 0, None), stored(3), 0));
        assert_eq!(f.effects(), ["forget 3"]);
        assert_eq!(f.q.counts().ready, 2);
    }

    #[test]
    fn max_length_reject_publish_dlx_dead_letters_the_newest() {
        let config =
            QueueConfig { max_length: Some(1), overflow: Overflow::RejectPublishDlx, ..Default::default() };
        let mut f = queue(config);
        assert!(f.publish("m1", 0));
        assert!(!f.publish("m2", 0));
        assert_eq!(f.effects(), ["dead m2 Maxlen"]);
        assert_eq!(f.q.counts().ready, 1);
    }

    #[test]
    fn messages_expire_at_the_given_times() {
        let mut f = queue(QueueConfig { message_ttl: Some(100), ..Default::default() });
        f.publish("m1", 0);
        f.publish("m2", 50);
        // Its own expiration is lower than the queue's TTL.
        f.publish_msg(message("m3", 0, Some(10)), None, 60);
        assert!(f.q.may_expire());
        // Deliverable up to its expiry time, gone after it.
        assert!(!f.q.sweep(100, 0, &f.pager, &mut f.fx));
        assert!(f.effects().is_empty());
        f.q.sweep(101, 0, &f.pager, &mut f.fx);
        assert_eq!(f.effects(), ["dead m1 Expired"]);
        // m3 expired at 70 but waits behind m2, as in RabbitMQ; a get
        // skips both once they are due.
        assert!(f.get(151).is_none());
        assert_eq!(f.effects(), ["dead m2 Expired", "dead m3 Expired"]);
    }

    #[test]
    fn ttl_zero_expires_at_once_without_a_consumer() {
        let mut f = queue(QueueConfig { message_ttl: Some(0), ..Default::default() });
        f.publish("alone", 5);
        assert_eq!(f.effects(), ["dead alone Expired"]);
        assert_eq!(f.q.counts().ready, 0);
    }

    #[test]
    fn ttl_zero_reaches_a_consumer_ready_for_it() {
        let mut f = queue(QueueConfig { message_ttl: Some(0), ..Default::default() });
        let a = consumer("a", 1, 0);
        f.add(&a, 5);
        f.publish("taken", 5);
        // a has no credit left: the next one expires at once.
        f.publish("late", 5);
        assert_eq!(f.effects(), ["deliver a taken", "dead late Expired"]);
    }

    #[test]
    fn an_unused_queue_expires() {
        let mut f = queue(QueueConfig { expires: Some(1000), ..Default::default() });
        assert!(!f.q.sweep(999, 0, &f.pager, &mut f.fx));
        assert!(f.q.sweep(1000, 0, &f.pager, &mut f.fx));
        f.add(&consumer("a", 0, 0), 1000);
        assert!(!f.q.sweep(5000, 0, &f.pager, &mut f.fx));
    }

    #[test]
    fn higher_priorities_go_first_in_order() {
        let mut f = queue(QueueConfig { max_priority: Some(5), ..Default::default() });
        for (b, p) in [("p1", 1), ("p5a", 5), ("p3", 3), ("p9", 9), ("p5b", 5)] {
            f.publish_msg(message(b, p, None), None, 0);
        }
        let order: Vec<String> = std::iter::from_fn(|| f.get(0)).map(|m| body(&m)).collect();
        // Above the maximum counts as the maximum.
        assert_eq!(order, ["p5a", "p9", "p5b", "p3", "p1"]);
    }

    #[test]
    fn single_active_consumer_hands_over_when_it_goes() {
        let mut f = queue(QueueConfig { single_active_consumer: true, ..Default::default() });
        let (a, b) = (consumer("a", 1, 0), consumer("b", 1, 0));
        f.add(&a, 0);
        f.add(&b, 0);
        for m in ["m1", "m2", "m3"] {
            f.publish(m, 0);
        }
        assert_eq!(f.effects(), ["deliver a m1"]);
        assert!(f.q.active_consumer().is_some_and(|c| c.same(&a)));
        // a goes; its channel requeues what it held.
        assert!(!f.q.remove_consumer(&a, 0, &f.pager, &mut f.fx));
        assert_eq!(f.effects(), ["deliver b m2"]);
        let m1 = f.taken("m1");
        f.q.requeue(vec![m1], 0, &f.pager, &mut f.fx);
        assert!(f.effects().is_empty());
        let m2 = f.taken("m2");
        b.release(1);
        f.q.settle([&m2], &mut f.fx);
        f.q.dispatch(0, &f.pager, &mut f.fx);
        assert_eq!(f.effects(), ["deliver b m1"]);
        assert!(f.taken("m1").redelivered);
        assert!(f.q.remove_consumer(&b, 0, &f.pager, &mut f.fx), "the last consumer went");
    }

    #[test]
    fn an_exclusive_consumer_is_alone() {
        let mut f = queue(QueueConfig::default());
        let x = Rc::new(TestConsumer {
            tag: "x",
            priority: 0,
            exclusive: true,
            prefetch: 0,
            in_flight: Cell::new(0),
        });
        f.add(&x, 0);
        let refused = f.q.add_consumer(consumer("a", 0, 0), 0, &f.pager, &mut f.fx);
        assert_eq!(refused, Err(ConsumeRefusal::ExclusiveInUse));
    }

    #[test]
    fn requeued_too_often_is_dead_lettered() {
        let mut f = queue(QueueConfig { delivery_limit: Some(1), ..Default::default() });
        f.add(&consumer("a", 0, 0), 0);
        f.publish("m1", 0);
        assert_eq!(f.effects(), ["deliver a m1"]);
        let m1 = f.taken("m1");
        f.q.requeue(vec![m1], 0, &f.pager, &mut f.fx);
        assert_eq!(f.effects(), ["deliver a m1"]);
        let m1 = f.taken("m1");
        assert_eq!((m1.redelivered, m1.deliveries), (true, 1));
        f.q.requeue(vec![m1], 0, &f.pager, &mut f.fx);
        assert_eq!(f.effects(), ["dead m1 DeliveryLimit"]);
        assert_eq!(f.q.counts(), QueueCounts::default().with_consumers(1));
    }

    impl QueueCounts {
        fn with_consumers(self, consumers: u64) -> Self {
            QueueCounts { consumers, ..self }
        }
    }

    #[test]
    fn requeued_messages_go_back_to_their_original_position() {
        let mut f = queue(QueueConfig::default());
        for b in ["m1", "m2", "m3", "m4"] {
            f.publish(b, 0);
        }
        let got: Vec<QueuedMessage> = (0..3).filter_map(|_| f.get(0)).collect();
        assert_eq!(f.q.counts().unacked, 3);
        f.q.settle([&got[1]], &mut f.fx);
        f.q.requeue(vec![got[2].clone()], 0, &f.pager, &mut f.fx);
        f.q.requeue(vec![got[0].clone()], 0, &f.pager, &mut f.fx);
        let order: Vec<(String, bool)> =
            std::iter::from_fn(|| f.get(0)).map(|m| (body(&m), m.redelivered)).collect();
        assert_eq!(order, [("m1".into(), true), ("m3".into(), true), ("m4".into(), false)]);
    }

    #[test]
    fn a_backlog_beyond_the_budget_is_paged_out_and_back_in_order() {
        let mut f = queue(QueueConfig::default());
        let n = 3000;
        for i in 0..n {
            f.publish(&format!("m{i}"), 0);
        }
        let paged = f.q.counts().paged;
        assert!(paged > 0 && paged < n, "{paged} of {n} paged");
        assert_eq!(f.pager.disk.borrow().len() as u64, paged);
        let order: Vec<String> = std::iter::from_fn(|| f.get(0)).map(|m| body(&m)).collect();
        assert_eq!(order, (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>());
        assert!(f.pager.disk.borrow().is_empty());
        // Purging releases what is on disk.
        for i in 0..n {
            f.publish(&format!("m{i}"), 0);
        }
        assert_eq!(f.q.purge(&f.pager, &mut f.fx), n);
        assert!(f.pager.disk.borrow().is_empty());
        assert_eq!(f.q.counts().ready, 0);
    }

    #[test]
    fn the_same_calls_decide_the_same_effects() {
        fn script() -> Vec<String> {
            let config = QueueConfig { message_ttl: Some(100), max_length: Some(3), ..Default::default() };
            let mut f = queue(config);
            let mut log = Vec::new();
            for i in 0..6 {
                f.publish(&format!("m{i}"), i * 30);
            }
            log.extend(f.effects());
            f.add(&consumer("lo", 1, 0), 120);
            f.add(&consumer("hi", 1, 5), 120);
            log.extend(f.effects());
            f.publish("late", 130);
            f.q.sweep(400, 0, &f.pager, &mut f.fx);
            log.extend(f.effects());
            log
        }
        let first = script();
        assert!(!first.is_empty());
        assert_eq!(first, script());
    }
}
