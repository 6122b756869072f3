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
//!
//! The `Queue` here is the shell around that lock. What the queue decides
//! is `QueueState` (`state.rs`), a pure state machine: each operation
//! takes the lock, calls the state with the time, and carries out the
//! effects it returns: deliveries pushed to consumers' outboxes and store
//! marks while still holding the lock (they must happen in the order
//! decided), messages leaving the queue (store acks, dead-lettering) after
//! releasing it.

pub mod backend;
mod config;
mod consumers;
mod paging;
mod ready;
pub mod replica;
mod replication;
mod state;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use amq_protocol::types::FieldTable;
use parking_lot::{Mutex, RwLock};

pub use config::{Overflow, QueueConfig};
pub use ready::QueuedMessage;

use self::paging::StorePager;
use self::state::{Effects, Leave, Leaving, QueueState, Step};
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

/// What the lock guards: the queue's state, and the buffer its operations
/// record their effects in (kept, so that the hot path does not allocate).
struct Inner {
    state: QueueState<Arc<Consumer>>,
    effects: Effects<Arc<Consumer>>,
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
    /// In a cluster, which declaration of its name this queue is
    /// (`DefinitionCommand::DeclareQueue::incarnation`); unset is 0.
    pub incarnation: OnceLock<u64>,
    /// In a cluster, this node's name.
    here: OnceLock<Arc<str>>,
    /// Whether `home` is another node: then this node holds no messages
    /// for the queue, and its backend serves it.
    remote: AtomicBool,
    /// A remote queue's counts, as its home node last reported them.
    remote_counts: Mutex<QueueCounts>,
    /// For a remote queue: where its backend comes from, and the backend
    /// once it was asked for (for a replicated queue, the backend of its
    /// leader's node, set by the cluster as leaders change).
    backends: OnceLock<backend::BackendsHook>,
    backend: RwLock<Option<Arc<dyn backend::QueueBackend>>>,
    /// For a replicated queue (in a cluster): how its members are chosen
    /// (`replication.rs`), and a flag to ask that quickly.
    replication: RwLock<Option<replica::Replication>>,
    replicated: AtomicBool,
    /// Whether the cluster has given the group every member it wants.
    replica_ready: AtomicBool,
    /// Its log, while this node leads its group and serves it.
    replica: RwLock<Option<Arc<dyn replica::ReplicaLog>>>,
    /// The nodes of a replicated queue's group.
    members: RwLock<Vec<String>>,
    /// The members an operator chose (`DefinitionCommand::SetQueueMembers`).
    chosen_members: RwLock<Option<Vec<String>>>,
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
        let state = QueueState::new(config);
        let may_expire = state.may_expire();
        Queue {
            name,
            vhost,
            durable,
            auto_delete,
            exclusive_owner,
            arguments,
            store_id: OnceLock::new(),
            home: OnceLock::new(),
            incarnation: OnceLock::new(),
            here: OnceLock::new(),
            remote: Default::default(),
            remote_counts: Default::default(),
            backends: OnceLock::new(),
            backend: RwLock::new(None),
            replication: RwLock::new(None),
            replicated: AtomicBool::new(false),
            replica_ready: AtomicBool::new(false),
            replica: RwLock::new(None),
            members: RwLock::new(Vec::new()),
            chosen_members: RwLock::new(None),
            stores,
            vhost_ref,
            inner: Mutex::new(Inner { state, effects: Effects::default() }),
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
        self.inner.lock().state.config().clone()
    }

    /// The store id when this queue keeps persistent messages in the
    /// node's message store (a replicated queue led here keeps them in its
    /// log).
    pub fn persistent_id(&self) -> Option<u32> {
        if !self.durable || (self.is_replicated() && self.replica.read().is_some()) {
            return None;
        }
        self.store_id.get().copied()
    }

    fn pager(&self) -> StorePager<'_> {
        StorePager {
            stores: self.stores.as_ref(),
            store_id: if self.durable { self.store_id.get().copied() } else { None },
            replica: self.replica(),
            queue: &self.name,
        }
    }

    /// Runs `op` on the state under the lock and carries out its effects:
    /// the steps while still holding it, the messages leaving after.
    fn with_state<R>(
        self: &Arc<Self>,
        op: impl FnOnce(&mut QueueState<Arc<Consumer>>, &StorePager<'_>, &mut Effects<Arc<Consumer>>) -> R,
    ) -> R {
        self.run(op, |steps| self.carry_out(steps))
    }

    /// `with_state` for the operations that hand nothing out (settling,
    /// purging), which need no `Arc` of the queue.
    fn with_state_quiet<R>(
        &self,
        op: impl FnOnce(&mut QueueState<Arc<Consumer>>, &StorePager<'_>, &mut Effects<Arc<Consumer>>) -> R,
    ) -> R {
        self.run(op, |steps| debug_assert!(steps.is_empty(), "a quiet queue operation handed messages out"))
    }

    fn run<R>(
        &self,
        op: impl FnOnce(&mut QueueState<Arc<Consumer>>, &StorePager<'_>, &mut Effects<Arc<Consumer>>) -> R,
        steps: impl FnOnce(&mut Vec<Step<Arc<Consumer>>>),
    ) -> R {
        let pager = self.pager();
        let (r, leaving) = {
            let mut g = self.inner.lock();
            let Inner { state, effects } = &mut *g;
            let r = op(state, &pager, effects);
            steps(&mut effects.steps);
            if state.may_expire() && !self.may_expire.load(Ordering::Relaxed) {
                self.may_expire.store(true, Ordering::Relaxed);
            }
            (r, effects.take_leaving())
        };
        self.let_go(leaving);
        r
    }

    /// Carries out the steps an operation decided, in order, under the lock.
    fn carry_out(self: &Arc<Self>, steps: &mut Vec<Step<Arc<Consumer>>>) {
        for step in steps.drain(..) {
            match step {
                Step::Deliver { consumer, msg } => {
                    if consumer.no_ack {
                        self.stats.deliver_no_ack.incr();
                    } else {
                        self.stats.deliver.incr();
                    }
                    self.count_redelivery(&msg);
                    consumer.outbox.clone().push(Outbound::Deliver { consumer, queue: self.clone(), msg });
                }
                Step::MarkDelivered(r) => {
                    if replica::is_replica_ref(r) {
                        if let Some(log) = self.replica() {
                            log.delivered(replica::id_of(r));
                        }
                    } else if let (Some(s), Some(id), true) =
                        (&self.stores, self.store_id.get(), self.durable)
                    {
                        s.persistent.mark_delivered(r, *id);
                    }
                }
            }
        }
    }

    fn count_redelivery(&self, m: &QueuedMessage) {
        if m.redelivered {
            self.stats.redeliver.incr();
        }
    }

    pub fn counts(&self) -> QueueCounts {
        if self.is_remote() {
            return *self.remote_counts.lock();
        }
        self.inner.lock().state.counts()
    }

    /// Records the queue's home node (the node that declared it), and
    /// whether that is another node. A queue's home never moves: declaring
    /// an existing queue again through another node (which proposes itself
    /// as the home) leaves it where its messages are.
    /// Which declaration of its name this queue is (0: not recorded).
    pub fn incarnation(&self) -> u64 {
        self.incarnation.get().copied().unwrap_or(0)
    }

    pub fn set_home(&self, home: &str, this_node: &str, backends: &backend::BackendsHook) {
        let home = self.home.get_or_init(|| home.into());
        let _ = self.here.set(this_node.into());
        let _ = self.backends.set(backends.clone());
        if !self.is_replicated() {
            self.remote.store(**home != *this_node, Ordering::Relaxed);
        }
    }

    /// The backend of a queue whose messages this node does not hold;
    /// None for a queue held here. Err while the backends are not installed
    /// (the cluster side is not running), or while a replicated queue has
    /// no leader.
    fn backend(&self) -> Option<Result<Arc<dyn backend::QueueBackend>>> {
        if !self.is_remote() {
            return None;
        }
        if let Some(b) = &*self.backend.read() {
            return Some(Ok(b.clone()));
        }
        if self.is_replicated() {
            return Some(Err(BrokerError::unavailable(format!(
                "queue '{}' in vhost '{}' has no leader at the moment; try again",
                self.name, self.vhost
            ))));
        }
        let home = self.home.get().map(|h| h.to_string()).unwrap_or_default();
        let Some(factory) = self.backends.get().and_then(|h| h.get()) else {
            return Some(Err(BrokerError::unavailable(format!(
                "queue '{}' in vhost '{}' lives on node {home}, and this node's cluster side is not running",
                self.name, self.vhost
            ))));
        };
        let b = factory.remote(&home);
        *self.backend.write() = Some(b.clone());
        Some(Ok(b))
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
    /// is down (or a replicated queue has no leader): nothing can be done
    /// with the queue until it is back.
    pub fn is_home_down(&self) -> bool {
        match self.backend() {
            Some(Ok(b)) => b.is_down(),
            Some(Err(_)) => self.is_replicated(),
            None => false,
        }
    }

    /// RabbitMQ's 404 for a queue whose home is down, which every
    /// operation on the queue through another node gets.
    pub fn check_available(&self) -> Result<()> {
        if !self.is_home_down() {
            return Ok(());
        }
        if self.is_replicated() {
            return Err(BrokerError::not_found(format!(
                "queue '{}' in vhost '{}' does not have a running leader",
                self.name, self.vhost
            )));
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
        self.inner.lock().state.consumers().to_vec()
    }

    /// The consumer receiving messages under single active consumer.
    pub fn active_consumer(&self) -> Option<Arc<Consumer>> {
        self.inner.lock().state.active_consumer().cloned()
    }

    pub fn touch(&self) {
        self.last_used.store(now_ms(), Ordering::Relaxed);
    }

    pub fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Applies new effective settings (a policy changed); a policy with
    /// `ha-mode` makes the queue replicated.
    pub fn set_config(self: &Arc<Self>, config: QueueConfig) {
        let now = now_ms();
        let replication = config.replication.clone();
        self.with_state(|s, pager, fx| s.set_config(config, now, pager, fx));
        self.replicate(replication);
    }

    /// Appends a routed message and hands it to a consumer if one has
    /// credit. `stored` is its place in the persistent store when it is
    /// persistent and this queue is durable. Returns false when the queue
    /// refused it (a length limit with `reject-publish`).
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>, stored: Option<StoreRef>) -> bool {
        self.stats.publish.incr();
        let now = now_ms();
        self.with_state(|s, pager, fx| s.publish(msg, stored, now, pager, fx))
    }

    /// Gives ready messages to consumers with credit.
    pub fn dispatch(self: &Arc<Self>) {
        let now = now_ms();
        self.with_state(|s, pager, fx| s.dispatch(now, pager, fx));
    }

    /// basic.get from the messages held here.
    pub fn get_here(self: &Arc<Self>, no_ack: bool) -> Option<(QueuedMessage, u64)> {
        self.touch();
        let now = now_ms();
        let got = self.with_state(|s, pager, fx| s.get(no_ack, now, pager, fx));
        match &got {
            None => self.stats.get_empty.incr(),
            Some((m, _)) => {
                if no_ack {
                    self.stats.get_no_ack.incr();
                } else {
                    self.stats.get.incr();
                }
                self.count_redelivery(m);
            }
        }
        got
    }

    /// Drops this queue's claim on a stored message (for a replicated
    /// queue, removes it from its log).
    fn forget(&self, stored: Option<StoreRef>) {
        let Some(r) = stored else { return };
        if replica::is_replica_ref(r) {
            if let Some(log) = self.replica() {
                log.remove(replica::id_of(r));
            }
        } else if let (Some(s), Some(id), true) = (&self.stores, self.store_id.get(), self.durable) {
            s.persistent.ack(r, *id);
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
        let count = self.with_state_quiet(|s, _, fx| s.settle(msgs, fx));
        if acked {
            self.stats.ack.add(count);
        }
    }

    /// Rejected without requeue (basic.reject, basic.nack): dead-lettered
    /// when the queue has a dead-letter exchange, dropped otherwise.
    pub fn discard(self: &Arc<Self>, msgs: Vec<QueuedMessage>) {
        if self.settle_elsewhere(backend::Settle::Discard, &msgs) {
            return;
        }
        self.with_state_quiet(|s, _, fx| s.discard(msgs, fx));
    }

    /// Puts delivered messages back, each at its original position, marked
    /// redelivered, and dispatches them again. With a delivery limit, a
    /// message returned too often is dead-lettered instead.
    pub fn requeue(self: &Arc<Self>, msgs: Vec<QueuedMessage>) {
        if msgs.is_empty() || self.settle_elsewhere(backend::Settle::Requeue, &msgs) {
            return;
        }
        let msgs = self.adopt_requeued(msgs);
        let now = now_ms();
        self.with_state(|s, pager, fx| s.requeue(msgs, now, pager, fx));
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
        let Some(m) = self.adopt_requeued(vec![m]).pop() else { return };
        let now = now_ms();
        self.with_state(|s, pager, fx| s.return_undelivered(m, was_acked_delivery, now, pager, fx));
    }

    /// Removes every ready message held here; returns how many there were.
    pub fn purge_here(&self) -> u64 {
        self.with_state_quiet(|s, pager, fx| s.purge(pager, fx))
    }

    /// Expires messages at the head and reports whether the queue itself
    /// has been unused for longer than `x-expires`. Called periodically.
    pub fn sweep(self: &Arc<Self>, now: u64) -> bool {
        if !self.may_expire.load(Ordering::Relaxed) || self.is_deleted() {
            return false;
        }
        let last_used = self.last_used();
        self.with_state(|s, pager, fx| s.sweep(now, last_used, pager, fx))
    }

    pub fn add_consumer(self: &Arc<Self>, c: Arc<Consumer>) -> Result<(), ConsumeRefusal> {
        self.touch();
        let now = now_ms();
        self.with_state(|s, pager, fx| s.add_consumer(c, now, pager, fx))
    }

    /// Detaches a consumer. Returns true when this was the last consumer of
    /// an auto-delete queue, which must now be deleted.
    pub fn remove_consumer(self: &Arc<Self>, c: &Arc<Consumer>) -> bool {
        c.set_gone();
        if let Some(b) = self.backend() {
            // The home detaches it, and deletes an auto-delete queue.
            match b {
                Ok(b) => b.cancel(self, c),
                Err(e) => tracing::warn!("cannot detach consumer '{}': {e}", c.tag),
            }
            return false;
        }
        self.touch();
        let now = now_ms();
        let last = self.with_state(|s, pager, fx| s.remove_consumer(c, now, pager, fx));
        self.auto_delete && last
    }

    /// Marks the queue deleted and empties it. Returns the number of ready
    /// messages dropped and the consumers that must be told.
    pub fn delete(&self) -> (u64, Vec<Arc<Consumer>>) {
        let consumers = {
            let mut g = self.inner.lock();
            self.deleted.store(true, Ordering::Release);
            g.state.delete()
        };
        (self.purge_here(), consumers)
    }

    /// Loads messages recovered from the store at start, in their original
    /// order. A priority queue reads each message to learn its priority.
    pub fn recover(&self, entries: impl IntoIterator<Item = (StoreRef, bool, u32)>) {
        let mut g = self.inner.lock();
        let prioritised = g.state.config().max_priority.is_some();
        for (r, redelivered, body_len) in entries {
            let priority = match (&self.stores, prioritised) {
                (Some(s), true) => s.persistent.read(r).map(|m| Message::from_store(m).priority).unwrap_or(0),
                _ => 0,
            };
            g.state.recover(r, redelivered, body_len, priority);
        }
    }

    /// Lets go of the messages an operation decided leave the queue, once
    /// the lock is released: dead-letters them (or drops them) and drops
    /// their claim in the store.
    fn let_go(&self, leaving: Leaving) {
        // The settings and vhost, read once and only when dead-lettering.
        let mut dlx = None;
        for l in leaving {
            match l {
                Leave::Forget(r) => self.forget(Some(r)),
                Leave::DeadLetter { msg, reason } => {
                    let (cfg, vhost, now) =
                        dlx.get_or_insert_with(|| (self.config(), self.vhost_ref.upgrade(), now_ms()));
                    self.dead_letter(&msg, reason, cfg, vhost.as_ref(), *now);
                    self.forget(msg.stored);
                }
            }
        }
    }

    /// Republishes a message through the dead-letter exchange, if the queue
    /// has one.
    fn dead_letter(
        &self,
        m: &QueuedMessage,
        reason: Reason,
        cfg: &QueueConfig,
        vhost: Option<&Arc<VHost>>,
        now: u64,
    ) {
        match reason {
            Reason::Expired => self.stats.expired.incr(),
            Reason::Maxlen => self.stats.dropped.incr(),
            _ => {}
        }
        if let (Some(dlx), Some(v)) = (&cfg.dead_letter_exchange, vhost) {
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
    }
}
