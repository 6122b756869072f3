//! Queues: the ready messages, the consumers attached, and the count of
//! messages delivered but not yet settled, with RabbitMQ's extensions
//! (TTL, length limits, dead-lettering, priorities, single active consumer,
//! delivery limits).
//!
//! A queue is a struct behind one short `parking_lot` lock rather than an
//! actor task: a publish, a dispatch, an ack or a requeue each take the lock
//! for a few hundred nanoseconds on whichever task causes them, which saves a
//! task switch and a channel hop per message on a 2-core machine. Unacked
//! messages themselves live with the channel that received them; the queue
//! only counts them. Dead-lettering republishes through the vhost, always
//! after the lock is released, so that two queues dead-lettering into each
//! other cannot deadlock.

pub mod backend;
mod config;
mod consumers;
mod ready;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use amq_protocol::types::FieldTable;
use parking_lot::Mutex;

pub use config::{Overflow, QueueConfig};
pub use ready::QueuedMessage;

use self::consumers::Consumers;
use self::ready::{Paging, Ready};
use super::consumer::{Consumer, Outbound};
use super::deadletter::{self, Reason};
use super::error::{BrokerError, Result};
use super::message::Message;
use super::stats::QueueStats;
use super::vhost::VHost;
use crate::store::Stores;
use crate::store::messages::StoreRef;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

struct Inner {
    ready: Ready,
    unacked: u64,
    unacked_bytes: u64,
    consumers: Consumers,
    had_consumers: bool,
    config: Arc<QueueConfig>,
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
    /// In a cluster, the node that holds this queue's messages.
    pub home: OnceLock<Arc<str>>,
    /// Whether `home` is another node: then this node holds no messages
    /// for the queue, and its backend serves it.
    remote: AtomicBool,
    /// A remote queue's counts, as its home node last reported them.
    remote_counts: Mutex<QueueCounts>,
    /// For a remote queue: where its backend comes from, and the backend
    /// once it was asked for.
    backends: OnceLock<backend::BackendsHook>,
    backend: OnceLock<Arc<dyn backend::QueueBackend>>,
    stores: Option<Arc<Stores>>,
    vhost_ref: Weak<VHost>,
    inner: Mutex<Inner>,
    deleted: AtomicBool,
    /// When the queue was last used (declared, consumed from, got from),
    /// for `x-expires`.
    last_used: AtomicU64,
    /// Whether the periodic sweep has anything to do here: messages with an
    /// expiry, or an `x-expires`.
    may_expire: AtomicBool,
    pub stats: QueueStats,
}

/// Counts for declare-ok, listings and the management API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Messages a locked operation decided to dead-letter (or drop), handled
/// once the lock is released.
type Dead = Vec<(QueuedMessage, Reason)>;

impl Queue {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: Arc<str>,
        vhost: Arc<str>,
        durable: bool,
        auto_delete: bool,
        exclusive_owner: Option<u64>,
        arguments: FieldTable,
        stores: Option<Arc<Stores>>,
        vhost_ref: Weak<VHost>,
        config: QueueConfig,
    ) -> Self {
        let consumers = Consumers::new(config.single_active_consumer);
        let may_expire = config.message_ttl.is_some() || config.expires.is_some();
        Queue {
            name,
            vhost,
            durable,
            auto_delete,
            exclusive_owner,
            arguments,
            store_id: OnceLock::new(),
            home: OnceLock::new(),
            remote: Default::default(),
            remote_counts: Default::default(),
            backends: OnceLock::new(),
            backend: OnceLock::new(),
            stores,
            vhost_ref,
            inner: Mutex::new(Inner {
                ready: Ready::new(config.max_priority),
                unacked: 0,
                unacked_bytes: 0,
                consumers,
                had_consumers: false,
                config: Arc::new(config),
            }),
            deleted: AtomicBool::new(false),
            last_used: AtomicU64::new(now_ms()),
            may_expire: AtomicBool::new(may_expire),
            stats: QueueStats::default(),
        }
    }

    pub fn is_exclusive(&self) -> bool {
        self.exclusive_owner.is_some()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn config(&self) -> Arc<QueueConfig> {
        self.inner.lock().config.clone()
    }

    /// The store id when this queue keeps persistent messages on disk.
    pub fn persistent_id(&self) -> Option<u32> {
        if self.durable { self.store_id.get().copied() } else { None }
    }

    fn paging(&self) -> Paging<'_> {
        Paging { stores: self.stores.as_ref(), store_id: self.persistent_id(), queue: &self.name }
    }

    pub fn counts(&self) -> QueueCounts {
        if self.is_remote() {
            return *self.remote_counts.lock();
        }
        let g = self.inner.lock();
        QueueCounts {
            ready: g.ready.len(),
            ready_bytes: g.ready.bytes(),
            unacked: g.unacked,
            unacked_bytes: g.unacked_bytes,
            consumers: g.consumers.len() as u64,
            paged: g.ready.paged(),
        }
    }

    /// Records the queue's home node, and whether that is another node. A
    /// queue's home never moves: declaring an existing queue again through
    /// another node (which proposes itself as the home) leaves it where its
    /// messages are.
    pub fn set_home(&self, home: &str, this_node: &str, backends: &backend::BackendsHook) {
        let home = self.home.get_or_init(|| home.into());
        let remote = **home != *this_node;
        if remote {
            let _ = self.backends.set(backends.clone());
        }
        self.remote.store(remote, Ordering::Relaxed);
    }

    /// The backend of a queue whose messages this node does not hold;
    /// None for a queue held here. Err while the backends are not installed
    /// (the cluster side is not running).
    fn backend(&self) -> Option<Result<&Arc<dyn backend::QueueBackend>>> {
        if !self.is_remote() {
            return None;
        }
        if let Some(b) = self.backend.get() {
            return Some(Ok(b));
        }
        let home = self.home.get().map(|h| h.to_string()).unwrap_or_default();
        let Some(factory) = self.backends.get().and_then(|h| h.get()) else {
            return Some(Err(BrokerError::unavailable(format!(
                "queue '{}' in vhost '{}' lives on node {home}, and this node's cluster side is not running",
                self.name, self.vhost
            ))));
        };
        Some(Ok(self.backend.get_or_init(|| factory.remote(&home))))
    }

    /// For a queue served by a backend, hands a settle to it and returns
    /// true.
    fn settle_elsewhere<'a>(
        &self,
        op: backend::Settle,
        msgs: impl IntoIterator<Item = &'a QueuedMessage>,
    ) -> bool {
        match self.backend() {
            None => false,
            Some(Ok(b)) => {
                b.settle(self, op, msgs.into_iter().map(|m| m.seq).collect());
                true
            }
            Some(Err(e)) => {
                tracing::warn!("cannot settle messages of queue '{}': {e}", self.name);
                true
            }
        }
    }

    /// What the home node says of a remote queue's contents.
    pub fn set_remote_counts(&self, c: QueueCounts) {
        *self.remote_counts.lock() = c;
    }

    /// Whether this node holds the queue's messages (always on a single
    /// node; in a cluster, on the queue's home).
    pub fn is_held_here(&self) -> bool {
        !self.is_remote()
    }

    fn is_remote(&self) -> bool {
        self.remote.load(Ordering::Relaxed)
    }

    /// Whether the node holding the queue's messages is another node that
    /// is down: nothing can be done with the queue until it is back.
    pub fn is_home_down(&self) -> bool {
        matches!(self.backend(), Some(Ok(b)) if b.is_down())
    }

    /// RabbitMQ's 404 for a queue whose home is down, which every
    /// operation on the queue through another node gets.
    pub fn check_available(&self) -> Result<()> {
        if !self.is_home_down() {
            return Ok(());
        }
        let home = self.home.get().map(|h| h.to_string()).unwrap_or_default();
        let kind = if self.durable { "durable queue" } else { "queue" };
        Err(BrokerError::not_found(format!(
            "home node '{home}' of {kind} '{}' in vhost '{}' is down or inaccessible",
            self.name, self.vhost
        )))
    }

    /// Attaches a consumer on this node (basic.consume), wherever the
    /// queue's messages are.
    pub async fn consume(self: &Arc<Self>, c: &Arc<Consumer>) -> Result<()> {
        self.check_available()?;
        if let Some(b) = self.backend() {
            return b?.consume(self, c).await;
        }
        self.add_consumer(c.clone()).map_err(|ConsumeRefusal::ExclusiveInUse| {
            BrokerError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.name, self.vhost
            ))
        })
    }

    /// basic.get, wherever the queue's messages are: the next message and
    /// the number of messages left behind.
    pub async fn get(self: &Arc<Self>, no_ack: bool) -> Result<Option<(QueuedMessage, u64)>> {
        self.check_available()?;
        match self.backend() {
            Some(b) => b?.get(self, no_ack).await,
            None => Ok(self.get_here(no_ack)),
        }
    }

    /// Removes every ready message, wherever they are; returns how many
    /// there were.
    pub async fn purge(&self) -> Result<u64> {
        self.check_available()?;
        match self.backend() {
            Some(b) => b?.purge(self).await,
            None => Ok(self.purge_here()),
        }
    }

    pub fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.inner.lock().consumers.list().to_vec()
    }

    /// The consumer receiving messages under single active consumer.
    pub fn active_consumer(&self) -> Option<Arc<Consumer>> {
        self.inner.lock().consumers.active().cloned()
    }

    pub fn touch(&self) {
        self.last_used.store(now_ms(), Ordering::Relaxed);
    }

    pub fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Applies new effective settings (a policy changed).
    pub fn set_config(self: &Arc<Self>, config: QueueConfig) {
        let mut dead = Dead::new();
        {
            let mut g = self.inner.lock();
            if config.message_ttl.is_some() || config.expires.is_some() {
                self.may_expire.store(true, Ordering::Relaxed);
            }
            g.config = Arc::new(config);
            self.enforce_limits(&mut g, &mut dead);
            self.dispatch_locked(&mut g, &mut dead);
        }
        self.handle_dead(dead);
    }

    /// Appends a routed message and hands it to a consumer if one has
    /// credit. `stored` is its place in the persistent store when it is
    /// persistent and this queue is durable. Returns false when the queue
    /// refused it (a length limit with `reject-publish`).
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>, stored: Option<StoreRef>) -> bool {
        self.stats.publish.incr();
        let now = now_ms();
        let mut dead = Dead::new();
        let accepted = {
            let mut g = self.inner.lock();
            if self.is_deleted() {
                drop(g);
                self.forget(stored);
                return true;
            }
            let cfg = g.config.clone();
            let size = msg.body_size() as u64;
            let full = cfg.max_length.is_some_and(|max| g.ready.len() >= max)
                || cfg.max_length_bytes.is_some_and(|max| g.ready.bytes() + size > max);
            let expires = expiry(&msg, cfg.message_ttl, now);
            let m = QueuedMessage { seq: 0, msg, redelivered: false, stored, expires, deliveries: 0 };
            if full && cfg.overflow != Overflow::DropHead {
                if cfg.overflow == Overflow::RejectPublishDlx {
                    dead.push((m, Reason::Maxlen));
                } else {
                    drop(g);
                    self.forget(m.stored);
                    return false;
                }
                false
            } else {
                if expires != 0 {
                    self.may_expire.store(true, Ordering::Relaxed);
                }
                g.ready.push(m, &self.paging());
                self.enforce_limits(&mut g, &mut dead);
                self.dispatch_locked(&mut g, &mut dead);
                if expires != 0 {
                    // A message with TTL 0 lives only if a consumer took it.
                    let mut expired = Vec::new();
                    g.ready.expire(now, &self.paging(), &mut expired);
                    dead.extend(expired.into_iter().map(|m| (m, Reason::Expired)));
                }
                true
            }
        };
        self.handle_dead(dead);
        accepted
    }

    /// drop-head: the oldest messages go once a length limit is exceeded.
    fn enforce_limits(&self, g: &mut Inner, dead: &mut Dead) {
        let cfg = g.config.clone();
        if cfg.overflow != Overflow::DropHead {
            return;
        }
        while cfg.max_length.is_some_and(|max| g.ready.len() > max)
            || cfg.max_length_bytes.is_some_and(|max| g.ready.bytes() > max)
        {
            match g.ready.drop_one(&self.paging()) {
                Some(m) => dead.push((m, Reason::Maxlen)),
                None => break,
            }
        }
    }

    /// Gives ready messages to consumers with credit.
    pub fn dispatch(self: &Arc<Self>) {
        let mut dead = Dead::new();
        {
            let mut g = self.inner.lock();
            self.dispatch_locked(&mut g, &mut dead);
        }
        self.handle_dead(dead);
    }

    fn dispatch_locked(self: &Arc<Self>, g: &mut Inner, dead: &mut Dead) {
        if g.consumers.is_empty() {
            return;
        }
        let now = now_ms();
        while !g.ready.is_empty() {
            let Some(consumer) = g.consumers.pick() else { break };
            let Some(m) = self.pop_live(g, now, dead) else {
                consumer.release(1);
                break;
            };
            self.note_delivered(g, &m, consumer.no_ack);
            let m = self.with_delivery_count(g, m);
            consumer.outbox.clone().push(Outbound::Deliver { consumer, queue: self.clone(), msg: m });
        }
    }

    /// The next message that has not expired; expired ones are set aside
    /// for dead-lettering.
    fn pop_live(&self, g: &mut Inner, now: u64, dead: &mut Dead) -> Option<QueuedMessage> {
        loop {
            let m = g.ready.pop(&self.paging())?;
            if m.expired(now) {
                dead.push((m, Reason::Expired));
                continue;
            }
            return Some(m);
        }
    }

    /// Quorum queues tell consumers how often a message was delivered.
    fn with_delivery_count(&self, g: &Inner, mut m: QueuedMessage) -> QueuedMessage {
        if g.config.quorum && m.deliveries > 0 {
            m.msg = Arc::new(m.msg.with_header("x-delivery-count", i64::from(m.deliveries)));
        }
        m
    }

    fn note_delivered(&self, g: &mut Inner, m: &QueuedMessage, no_ack: bool) {
        if no_ack {
            self.stats.deliver_no_ack.incr();
        } else {
            self.stats.deliver.incr();
        }
        self.track(g, m, no_ack);
    }

    /// Counts a message handed out; one needing an ack is recorded as
    /// delivered in the store, so that it comes back redelivered after a
    /// restart.
    fn track(&self, g: &mut Inner, m: &QueuedMessage, no_ack: bool) {
        if !no_ack {
            g.unacked += 1;
            g.unacked_bytes += m.size();
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

    /// basic.get from the messages held here.
    pub fn get_here(self: &Arc<Self>, no_ack: bool) -> Option<(QueuedMessage, u64)> {
        self.touch();
        let mut dead = Dead::new();
        let got = {
            let mut g = self.inner.lock();
            match self.pop_live(&mut g, now_ms(), &mut dead) {
                None => {
                    self.stats.get_empty.incr();
                    None
                }
                Some(m) => {
                    if no_ack {
                        self.stats.get_no_ack.incr();
                    } else {
                        self.stats.get.incr();
                    }
                    self.track(&mut g, &m, no_ack);
                    let m = self.with_delivery_count(&g, m);
                    Some((m, g.ready.len()))
                }
            }
        };
        if let Some((m, _)) = &got {
            if no_ack {
                self.forget(m.stored);
            }
        }
        self.handle_dead(dead);
        got
    }

    /// Drops this queue's claim on a stored message.
    fn forget(&self, stored: Option<StoreRef>) {
        if let (Some(r), Some(s), Some(id)) = (stored, &self.stores, self.persistent_id()) {
            s.persistent.ack(r, id);
        }
    }

    /// A message delivered without acknowledgement has been written to the
    /// client: the queue lets go of it on disk too.
    pub fn delivered_no_ack(&self, m: &QueuedMessage) {
        // A remote queue's home let go of it when it sent it.
        if !self.is_remote() {
            self.forget(m.stored);
        }
    }

    /// Settles delivered messages for good with an ack.
    pub fn settle<'a>(&self, msgs: impl IntoIterator<Item = &'a QueuedMessage> + Clone, acked: bool) {
        if self.settle_elsewhere(backend::Settle::Ack, msgs.clone()) {
            return;
        }
        let mut count = 0;
        let mut bytes = 0;
        for m in msgs {
            count += 1;
            bytes += m.size();
            self.forget(m.stored);
        }
        if acked {
            self.stats.ack.add(count);
        }
        let mut g = self.inner.lock();
        g.unacked = g.unacked.saturating_sub(count);
        g.unacked_bytes = g.unacked_bytes.saturating_sub(bytes);
    }

    /// Rejected without requeue (basic.reject, basic.nack): dead-lettered
    /// when the queue has a dead-letter exchange, dropped otherwise.
    pub fn discard(self: &Arc<Self>, msgs: Vec<QueuedMessage>) {
        if self.settle_elsewhere(backend::Settle::Discard, &msgs) {
            return;
        }
        {
            let mut g = self.inner.lock();
            g.unacked = g.unacked.saturating_sub(msgs.len() as u64);
            g.unacked_bytes = g.unacked_bytes.saturating_sub(msgs.iter().map(QueuedMessage::size).sum());
        }
        self.handle_dead(msgs.into_iter().map(|m| (m, Reason::Rejected)).collect());
    }

    /// Puts delivered messages back, each at its original position, marked
    /// redelivered, and dispatches them again. With a delivery limit, a
    /// message returned too often is dead-lettered instead.
    pub fn requeue(self: &Arc<Self>, msgs: Vec<QueuedMessage>) {
        if msgs.is_empty() || self.settle_elsewhere(backend::Settle::Requeue, &msgs) {
            return;
        }
        let mut dead = Dead::new();
        {
            let mut g = self.inner.lock();
            g.unacked = g.unacked.saturating_sub(msgs.len() as u64);
            g.unacked_bytes = g.unacked_bytes.saturating_sub(msgs.iter().map(QueuedMessage::size).sum());
            if self.is_deleted() {
                drop(g);
                for m in msgs {
                    self.forget(m.stored);
                }
                return;
            }
            let limit = g.config.delivery_limit;
            for mut m in msgs {
                m.redelivered = true;
                m.deliveries += 1;
                if limit.is_some_and(|l| u64::from(m.deliveries) > l) {
                    dead.push((m, Reason::DeliveryLimit));
                } else {
                    g.ready.requeue(m);
                }
            }
            self.dispatch_locked(&mut g, &mut dead);
        }
        self.handle_dead(dead);
    }

    /// Puts back a message handed to a connection but never written to its
    /// socket (the channel closed first). It keeps its redelivered flag.
    pub fn return_undelivered(self: &Arc<Self>, m: QueuedMessage, was_acked_delivery: bool) {
        if self.is_remote() {
            // A no-ack delivery was let go of by the home when it sent it.
            if was_acked_delivery {
                self.settle_elsewhere(backend::Settle::Requeue, std::iter::once(&m));
            }
            return;
        }
        let mut dead = Dead::new();
        {
            let mut g = self.inner.lock();
            if was_acked_delivery {
                g.unacked = g.unacked.saturating_sub(1);
                g.unacked_bytes = g.unacked_bytes.saturating_sub(m.size());
            }
            if self.is_deleted() {
                drop(g);
                self.forget(m.stored);
                return;
            }
            g.ready.requeue(m);
            self.dispatch_locked(&mut g, &mut dead);
        }
        self.handle_dead(dead);
    }

    /// Removes every ready message held here; returns how many there were.
    pub fn purge_here(&self) -> u64 {
        let dropped = self.inner.lock().ready.take_all();
        let n = dropped.len() as u64;
        for m in dropped.release(&self.paging()) {
            self.forget(m.stored);
        }
        n
    }

    /// Expires messages at the head and reports whether the queue itself
    /// has been unused for longer than `x-expires`. Called periodically.
    pub fn sweep(self: &Arc<Self>, now: u64) -> bool {
        if !self.may_expire.load(Ordering::Relaxed) || self.is_deleted() {
            return false;
        }
        let mut expired = Vec::new();
        let unused_too_long = {
            let mut g = self.inner.lock();
            g.ready.expire(now, &self.paging(), &mut expired);
            let unused = g.consumers.is_empty() && g.unacked == 0;
            g.config.expires.is_some_and(|ms| unused && now.saturating_sub(self.last_used()) >= ms)
        };
        self.handle_dead(expired.into_iter().map(|m| (m, Reason::Expired)).collect());
        unused_too_long
    }

    pub fn add_consumer(self: &Arc<Self>, c: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        self.touch();
        let mut dead = Dead::new();
        {
            let mut g = self.inner.lock();
            let list = g.consumers.list();
            if (c.exclusive && !list.is_empty()) || list.iter().any(|x| x.exclusive) {
                return Err(ConsumeRefusal::ExclusiveInUse);
            }
            g.consumers.add(c);
            g.had_consumers = true;
            self.dispatch_locked(&mut g, &mut dead);
        }
        self.handle_dead(dead);
        Ok(())
    }

    /// Detaches a consumer. Returns true when this was the last consumer of
    /// an auto-delete queue, which must now be deleted.
    pub fn remove_consumer(self: &Arc<Self>, c: &Arc<Consumer>) -> bool {
        if let Some(b) = self.backend() {
            // The home detaches it, and deletes an auto-delete queue.
            match b {
                Ok(b) => b.cancel(self, c),
                Err(e) => tracing::warn!("cannot detach consumer '{}': {e}", c.tag),
            }
            return false;
        }
        self.touch();
        let mut dead = Dead::new();
        let last = {
            let mut g = self.inner.lock();
            g.consumers.remove(c);
            // Under single active consumer the next one takes over now.
            self.dispatch_locked(&mut g, &mut dead);
            self.auto_delete && g.had_consumers && g.consumers.is_empty() && !self.is_deleted()
        };
        self.handle_dead(dead);
        last
    }

    /// Marks the queue deleted and empties it. Returns the number of ready
    /// messages dropped and the consumers that must be told.
    pub fn delete(&self) -> (u64, Vec<Arc<Consumer>>) {
        let consumers = {
            let mut g = self.inner.lock();
            self.deleted.store(true, Ordering::Release);
            g.consumers.take_all()
        };
        (self.purge_here(), consumers)
    }

    /// Loads messages recovered from the store at start, in their original
    /// order. A priority queue reads each message to learn its priority.
    pub fn recover(&self, entries: impl IntoIterator<Item = (StoreRef, bool, u32)>) {
        let mut g = self.inner.lock();
        let prioritised = g.config.max_priority.is_some();
        for (r, redelivered, body_len) in entries {
            let priority = match (&self.stores, prioritised) {
                (Some(s), true) => s.persistent.read(r).map(|m| Message::from_store(m).priority).unwrap_or(0),
                _ => 0,
            };
            g.ready.recover(r, redelivered, body_len, priority);
        }
    }

    /// Dead-letters (or drops) what a locked operation set aside.
    fn handle_dead(self: &Arc<Self>, dead: Dead) {
        if dead.is_empty() {
            return;
        }
        let cfg = self.config();
        let vhost = self.vhost_ref.upgrade();
        let now = now_ms();
        for (m, reason) in dead {
            match reason {
                Reason::Expired => self.stats.expired.incr(),
                Reason::Maxlen => self.stats.dropped.incr(),
                _ => {}
            }
            if let (Some(dlx), Some(v)) = (&cfg.dead_letter_exchange, &vhost) {
                let d = deadletter::build(
                    &m.msg,
                    reason,
                    &self.name,
                    dlx,
                    cfg.dead_letter_routing_key.as_deref(),
                    now,
                );
                v.dead_letter(dlx, d, reason, self.stores.as_ref());
            }
            self.forget(m.stored);
        }
    }
}

/// When a message published now expires: the lower of the queue's TTL and
/// the message's own `expiration`.
fn expiry(msg: &Message, queue_ttl: Option<u64>, now: u64) -> u64 {
    let own = msg.expiration_ms();
    match (queue_ttl, own) {
        (None, None) => 0,
        (Some(t), None) | (None, Some(t)) => now + t,
        (Some(a), Some(b)) => now + a.min(b),
    }
}
