//! Consuming from a queue whose home is another node (docs/cluster.md,
//! slice 2): the client's node (the subscriber) keeps the client's
//! consumer, and the home keeps a stand-in consumer on the real queue whose
//! deliveries travel over the link.
//!
//! - **Subscribe**: the subscriber registers its consumer under a number,
//!   then asks the home to attach a stand-in with the same prefetch,
//!   exclusivity and arguments. The home's queue hands the stand-in
//!   messages as it would any consumer (credit included); a pump task per
//!   stand-in gives each message an id, keeps it until it is settled, and
//!   sends it to the subscriber, which puts it in the client connection's
//!   outbox as a delivery of its local copy of the queue.
//! - **Settle**: the client's acks, rejects and requeues of those
//!   deliveries reach the home as ids (`QueueBackend::settle`), which
//!   settles them on the real queue and gives the stand-in its credit back.
//! - **Unsubscribe**: cancel, channel or connection close detach the
//!   stand-in (`QueueBackend::cancel`); deliveries not yet settled
//!   stay until the subscriber settles them (a closing channel requeues).
//! - A subscriber the home cannot reach, or that no longer knows the
//!   stand-in, loses it: its unsettled messages are requeued. A home that
//!   goes away cancels its subscribers' consumers (basic.cancel).
//!
//! `basic.get` and purge through another node are single calls to the home.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::forward::WireMessage;
use super::network::{Call, Reply};
use super::node::Cluster;
use crate::broker::consumer::{ChannelFlow, Consumer, ConsumerSpec, Outbound, Outbox};
use crate::broker::error::{BrokerError, Result};
use crate::broker::queue::backend::Settle;
use crate::broker::queue::{ConsumeRefusal, Queue, QueuedMessage};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Deserialize)]
pub struct SubscribeRequest {
    pub sub: u64,
    pub vhost: String,
    pub queue: String,
    pub tag: String,
    pub no_ack: bool,
    pub exclusive: bool,
    pub prefetch: u32,
    pub arguments: FieldTable,
    pub priority: i32,
}

/// A message sent to a subscriber: `id` settles it on the home.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireDelivery {
    pub id: u64,
    pub redelivered: bool,
    pub msg: WireMessage,
}

impl WireDelivery {
    fn into_queued(self) -> QueuedMessage {
        QueuedMessage {
            seq: self.id,
            msg: Arc::new(self.msg.into_message()),
            redelivered: self.redelivered,
            stored: None,
            expires: 0,
            deliveries: 0,
        }
    }
}

/// A delivery waiting for the subscriber to settle it.
struct Unsettled {
    node: String,
    /// The subscription it went to; 0 for basic.get.
    sub: u64,
    queue: Arc<Queue>,
    msg: QueuedMessage,
    consumer: Option<Arc<Consumer>>,
}

/// A stand-in consumer on this (home) node for a consumer on `node`.
struct StandIn {
    node: String,
    sub: u64,
    consumer: Arc<Consumer>,
    queue: Arc<Queue>,
}

/// A consumer on this node of a queue homed elsewhere.
struct Subscription {
    home: String,
    consumer: Arc<Consumer>,
    queue: Arc<Queue>,
}

/// Settles waiting for a home's settling task.
type SettleQueue = mpsc::UnboundedSender<(Settle, Vec<u64>)>;

pub struct Consuming {
    next: AtomicU64,
    /// Home side: stand-ins by (subscriber node, subscription number).
    stand_ins: parking_lot::Mutex<HashMap<(String, u64), Arc<StandIn>>>,
    /// Home side: messages sent and not yet settled, by id.
    unsettled: parking_lot::Mutex<HashMap<u64, Unsettled>>,
    /// Subscriber side: this node's consumers of remote queues, by number.
    subscriptions: parking_lot::Mutex<HashMap<u64, Subscription>>,
    /// Subscriber side: the settling task of each home.
    settlers: parking_lot::Mutex<HashMap<String, SettleQueue>>,
    /// Subscriber side: consumers of replicated queues whose leader went,
    /// waiting for the next one.
    orphans: parking_lot::Mutex<Vec<(Arc<Queue>, Arc<Consumer>)>>,
}

impl Default for Consuming {
    fn default() -> Self {
        Consuming {
            // Ids of deliveries start at a random point, so that a settle
            // meant for another node (a replicated queue's former leader)
            // never names a delivery here.
            next: AtomicU64::new(u64::from(rand::random::<u32>()) << 31),
            stand_ins: Default::default(),
            unsettled: Default::default(),
            subscriptions: Default::default(),
            settlers: Default::default(),
            orphans: Default::default(),
        }
    }
}

impl Consuming {
    fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }
}

pub(super) type ReplyFuture = Pin<Box<dyn Future<Output = Result<Reply>> + Send>>;

/// What a node that is shutting down answers.
pub(super) fn stopping() -> BrokerError {
    BrokerError::unavailable("the node is stopping")
}

fn ready(r: Result<Reply>) -> ReplyFuture {
    Box::pin(async move { r })
}

impl Cluster {
    // ------------------------------------------------------------ subscriber side

    /// Attaches `consumer` (on this node) to the queue `q` homed on `home`.
    pub async fn subscribe(
        self: &Arc<Self>,
        home: &str,
        q: &Arc<Queue>,
        consumer: &Arc<Consumer>,
    ) -> Result<()> {
        let addr = self.address_of(home).ok_or_else(|| queue_down(q, home))?;
        let sub = self.consuming.next_id();
        self.consuming.subscriptions.lock().insert(
            sub,
            Subscription { home: home.to_owned(), consumer: consumer.clone(), queue: q.clone() },
        );
        let req = SubscribeRequest {
            sub,
            vhost: q.vhost.to_string(),
            queue: q.name.to_string(),
            tag: consumer.tag.to_string(),
            no_ack: consumer.no_ack,
            exclusive: consumer.exclusive,
            prefetch: consumer.prefetch,
            arguments: consumer.arguments.clone(),
            priority: consumer.priority,
        };
        let answer = self.peers().call(&addr, Call::Subscribe(req), CALL_TIMEOUT).await;
        match answer {
            Ok(Reply::Done) => Ok(()),
            other => {
                self.consuming.subscriptions.lock().remove(&sub);
                Err(match other {
                    Err(super::link::LinkError::Remote(e)) => e,
                    _ => queue_down(q, home),
                })
            }
        }
    }

    /// Gets one message from the queue `q` homed on `home` (basic.get).
    pub async fn get_remote(
        &self,
        home: &str,
        q: &Queue,
        no_ack: bool,
    ) -> Result<Option<(QueuedMessage, u64)>> {
        let addr = self.address_of(home).ok_or_else(|| queue_down(q, home))?;
        let call = Call::Get { vhost: q.vhost.to_string(), queue: q.name.to_string(), no_ack };
        match self.peers().call(&addr, call, CALL_TIMEOUT).await {
            Ok(Reply::Got(got)) => Ok(got.map(|(d, left)| (d.into_queued(), left))),
            Err(super::link::LinkError::Remote(e)) => Err(e),
            _ => Err(queue_down(q, home)),
        }
    }

    /// Purges the queue `q` homed on `home`; returns how many messages went.
    pub async fn purge_remote(&self, home: &str, q: &Queue) -> Result<u64> {
        let addr = self.address_of(home).ok_or_else(|| queue_down(q, home))?;
        let call = Call::Purge { vhost: q.vhost.to_string(), queue: q.name.to_string() };
        match self.peers().call(&addr, call, CALL_TIMEOUT).await {
            Ok(Reply::Purged(n)) => Ok(n),
            Err(super::link::LinkError::Remote(e)) => Err(e),
            _ => Err(queue_down(q, home)),
        }
    }

    /// The home sent messages for subscription `sub`: they become
    /// deliveries of the local consumer, in order.
    pub(super) fn accept_deliveries(&self, sub: u64, items: Vec<WireDelivery>) -> ReplyFuture {
        let mut subs = self.consuming.subscriptions.lock();
        let Some(s) = subs.get(&sub) else { return ready(Ok(Reply::Known(false))) };
        // A consumer whose channel closed as it subscribed (a reattach
        // racing the close) has no one to take these: the home requeues
        // them and drops its stand-in, which would otherwise hold them
        // unacked for ever.
        if s.consumer.is_gone() {
            subs.remove(&sub);
            return ready(Ok(Reply::Known(false)));
        }
        for d in items {
            s.consumer.note_remote_delivery();
            s.consumer.outbox.push(Outbound::Deliver {
                consumer: s.consumer.clone(),
                queue: s.queue.clone(),
                msg: d.into_queued(),
            });
        }
        ready(Ok(Reply::Known(true)))
    }

    /// The home cancelled subscription `sub`: its queue was deleted, or,
    /// for a replicated queue, the home no longer leads it.
    pub(super) fn accept_cancel(&self, sub: u64) -> ReplyFuture {
        let s = self.consuming.subscriptions.lock().remove(&sub);
        if let Some(s) = s {
            self.lose_subscription(s, "its queue's leader changed");
        }
        ready(Ok(Reply::Done))
    }

    /// A subscription's home is gone or stopped serving it: the consumer
    /// of a replicated queue waits for the next leader (unless it asked
    /// for `x-cancel-on-ha-failover`); any other is cancelled.
    fn lose_subscription(&self, s: Subscription, why: &str) {
        if s.queue.is_replicated() && !s.queue.is_deleted() && !s.consumer.cancel_on_failover() {
            tracing::info!(
                "consumer '{}' of queue '{}' waits for a new leader: {why}",
                s.consumer.tag,
                s.queue.name
            );
            let moved = s.queue.serving_node().is_some_and(|n| n != s.home);
            let q = s.queue.clone();
            self.consuming.orphans.lock().push((s.queue, s.consumer));
            if moved {
                // A new leader was found before this: go on with it now.
                self.reattach(&q);
            }
            return;
        }
        tracing::warn!("consumer '{}' of queue '{}' cancelled: {why}", s.consumer.tag, s.queue.name);
        s.consumer.outbox.push(Outbound::Cancelled { consumer: s.consumer.clone() });
    }

    /// `q` is served again (by a new leader): its consumers waiting here
    /// consume from it again; those that cannot are cancelled.
    pub(super) fn reattach(&self, q: &Arc<Queue>) {
        // Subscriptions to a former leader that this node has not found
        // gone yet move too.
        let serving = q.serving_node();
        let stale: Vec<Subscription> = {
            let mut subs = self.consuming.subscriptions.lock();
            let keys: Vec<u64> = subs
                .iter()
                .filter(|(_, s)| Arc::ptr_eq(&s.queue, q) && Some(&s.home) != serving.as_ref())
                .map(|(k, _)| *k)
                .collect();
            keys.into_iter().filter_map(|k| subs.remove(&k)).collect()
        };
        for s in stale {
            if s.consumer.cancel_on_failover() {
                s.consumer.outbox.push(Outbound::Cancelled { consumer: s.consumer.clone() });
            } else {
                self.consuming.orphans.lock().push((s.queue, s.consumer));
            }
        }
        let waiting: Vec<Arc<Consumer>> = {
            let mut orphans = self.consuming.orphans.lock();
            let (mine, rest): (Vec<_>, Vec<_>) = orphans.drain(..).partition(|(oq, _)| Arc::ptr_eq(oq, q));
            *orphans = rest;
            mine.into_iter().map(|(_, c)| c).filter(|c| !c.is_gone()).collect()
        };
        if waiting.is_empty() {
            return;
        }
        let q = q.clone();
        let cluster = self.weak_self();
        tokio::spawn(async move {
            for c in waiting {
                match q.consume(&c).await {
                    // Its channel closed meanwhile: the close found nothing
                    // to cancel, so cancel what was just made.
                    Ok(()) if c.is_gone() => {
                        q.remove_consumer(&c);
                    }
                    Ok(()) => tracing::info!(
                        "consumer '{}' of queue '{}' goes on with its new leader",
                        c.tag,
                        q.name
                    ),
                    // The node named leader is not serving yet (or no
                    // more): wait for the next try, as a consumer of a
                    // quorum queue waits in RabbitMQ.
                    Err(e) if q.is_replicated() && !q.is_deleted() => {
                        tracing::debug!("consumer '{}' of queue '{}' still waits: {e}", c.tag, q.name);
                        if let Some(cluster) = cluster.upgrade() {
                            cluster.consuming.orphans.lock().push((q.clone(), c));
                        }
                    }
                    Err(e) => {
                        tracing::warn!("consumer '{}' of queue '{}' cancelled: {e}", c.tag, q.name);
                        c.outbox.push(Outbound::Cancelled { consumer: c.clone() });
                    }
                }
            }
        });
    }

    /// Consumers waiting for a leader whose queue is served by a node
    /// that answers try again. A leader can lose its lead and win it back
    /// in a new term under the same name, which changes nothing a queue
    /// sees, while its consumers here were told to wait; and a try can
    /// reach a leader before it serves.
    pub(super) fn retry_orphans(&self) {
        let queues: Vec<Arc<Queue>> = {
            let orphans = self.consuming.orphans.lock();
            let mut qs: Vec<Arc<Queue>> = Vec::new();
            for (q, _) in orphans.iter() {
                if !qs.iter().any(|x| Arc::ptr_eq(x, q)) {
                    qs.push(q.clone());
                }
            }
            qs
        };
        for q in queues {
            if q.serving_node().is_some_and(|n| n == self.me.name || !self.is_down(&n)) {
                self.reattach(&q);
            }
        }
    }

    /// Cancels this node's consumers of queues homed on `home`, which is
    /// gone (basic.cancel to their clients).
    pub(super) fn home_lost(&self, home: &str) {
        let gone: Vec<Subscription> = {
            let mut subs = self.consuming.subscriptions.lock();
            let keys: Vec<u64> = subs.iter().filter(|(_, s)| s.home == home).map(|(k, _)| *k).collect();
            keys.into_iter().filter_map(|k| subs.remove(&k)).collect()
        };
        for s in gone {
            self.lose_subscription(s, &format!("its node {home} cannot be reached"));
        }
    }

    /// The homes this node's consumers depend on.
    pub(super) fn subscribed_homes(&self) -> Vec<String> {
        let mut homes: Vec<String> =
            self.consuming.subscriptions.lock().values().map(|s| s.home.clone()).collect();
        homes.sort();
        homes.dedup();
        homes
    }

    // ------------------------------------------------------------ home side

    /// Attaches a stand-in for a consumer on `from` to a queue here.
    pub(super) fn accept_subscribe(self: &Arc<Self>, from: String, req: SubscribeRequest) -> ReplyFuture {
        let Ok(broker) = self.broker() else { return ready(Err(stopping())) };
        let Some(q) = broker.vhost(&req.vhost).and_then(|v| v.queue(&req.queue)).filter(|q| q.is_held_here())
        else {
            return ready(Err(BrokerError::not_found(format!(
                "no queue '{}' in vhost '{}' on {}",
                req.queue, req.vhost, self.me.name
            ))));
        };
        let consumer = Arc::new(Consumer::new(ConsumerSpec {
            tag: req.tag.as_str().into(),
            channel: 0,
            connection_id: broker.next_id(),
            outbox: Arc::new(Outbox::default()),
            flow: Arc::new(ChannelFlow::default()),
            no_ack: req.no_ack,
            exclusive: req.exclusive,
            prefetch: req.prefetch,
            arguments: req.arguments,
            priority: req.priority,
        }));
        let stand_in = Arc::new(StandIn {
            node: from.clone(),
            sub: req.sub,
            consumer: consumer.clone(),
            queue: q.clone(),
        });
        self.consuming.stand_ins.lock().insert((from, req.sub), stand_in.clone());
        if let Err(ConsumeRefusal::ExclusiveInUse) = q.add_consumer(consumer) {
            self.consuming.stand_ins.lock().remove(&(stand_in.node.clone(), stand_in.sub));
            return ready(Err(BrokerError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                q.name, q.vhost
            ))));
        }
        tokio::spawn(pump(Arc::downgrade(self), stand_in));
        ready(Ok(Reply::Done))
    }

    /// Detaches the stand-in of subscription `sub` of `from`.
    pub(super) fn accept_unsubscribe(&self, from: String, sub: u64) -> ReplyFuture {
        if let Some(s) = self.consuming.stand_ins.lock().remove(&(from, sub)) {
            self.detach(&s);
        }
        ready(Ok(Reply::Done))
    }

    fn detach(&self, s: &StandIn) {
        if s.queue.remove_consumer(&s.consumer) {
            // The last consumer of an auto-delete queue left.
            if let Ok(broker) = self.broker() {
                let cmd = crate::definitions::DefinitionCommand::DeleteQueue {
                    vhost: s.queue.vhost.to_string(),
                    name: s.queue.name.to_string(),
                    if_unused: false,
                    if_empty: false,
                    requester: None,
                };
                tokio::spawn(async move {
                    let _ = broker.apply(cmd).await;
                });
            }
        }
    }

    /// Settles messages this node sent to `from`.
    pub(super) fn accept_settle(&self, from: &str, op: Settle, ids: Vec<u64>) -> ReplyFuture {
        let taken: Vec<Unsettled> = {
            let mut u = self.consuming.unsettled.lock();
            let mine: Vec<u64> =
                ids.into_iter().filter(|id| u.get(id).is_some_and(|x| x.node == from)).collect();
            mine.iter().filter_map(|id| u.remove(id)).collect()
        };
        settle_here(taken, op);
        ready(Ok(Reply::Done))
    }

    /// basic.get for a node that is not this queue's home.
    pub(super) fn accept_get(&self, from: String, vhost: &str, queue: &str, no_ack: bool) -> ReplyFuture {
        let Ok(broker) = self.broker() else { return ready(Err(stopping())) };
        let Some(q) = broker.vhost(vhost).and_then(|v| v.queue(queue)).filter(|q| q.is_held_here()) else {
            return ready(Err(BrokerError::not_found(format!(
                "no queue '{queue}' in vhost '{vhost}' on {}",
                self.me.name
            ))));
        };
        let got = q.get_here(no_ack).map(|(m, left)| {
            let id = self.consuming.next_id();
            let wire = WireDelivery { id, redelivered: m.redelivered, msg: WireMessage::of(&m.msg) };
            if no_ack {
                q.delivered_no_ack(&m);
            } else {
                self.consuming
                    .unsettled
                    .lock()
                    .insert(id, Unsettled { node: from, sub: 0, queue: q.clone(), msg: m, consumer: None });
            }
            (wire, left)
        });
        ready(Ok(Reply::Got(got)))
    }

    pub(super) fn accept_purge(&self, vhost: &str, queue: &str) -> ReplyFuture {
        let Ok(broker) = self.broker() else { return ready(Err(stopping())) };
        match broker.vhost(vhost).and_then(|v| v.queue(queue)).filter(|q| q.is_held_here()) {
            Some(q) => ready(Ok(Reply::Purged(q.purge_here()))),
            None => ready(Err(BrokerError::not_found(format!(
                "no queue '{queue}' in vhost '{vhost}' on {}",
                self.me.name
            )))),
        }
    }

    /// Drops the stand-ins of `node` (gone, or it said it no longer has
    /// them) and requeues what they had not settled.
    pub(super) fn subscriber_lost(&self, node: &str) {
        let gone: Vec<Arc<StandIn>> = {
            let mut s = self.consuming.stand_ins.lock();
            let keys: Vec<(String, u64)> = s.keys().filter(|(n, _)| n == node).cloned().collect();
            keys.into_iter().filter_map(|k| s.remove(&k)).collect()
        };
        for s in &gone {
            self.detach(s);
        }
        let taken: Vec<Unsettled> = {
            let mut u = self.consuming.unsettled.lock();
            let ids: Vec<u64> = u.iter().filter(|(_, x)| x.node == node).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| u.remove(&id)).collect()
        };
        if !gone.is_empty() || !taken.is_empty() {
            tracing::warn!(
                "{node} cannot be reached: {} of its consumers detached, {} messages requeued",
                gone.len(),
                taken.len()
            );
        }
        settle_here(taken, Settle::Requeue);
    }

    /// Drops one stand-in whose subscriber no longer has its consumer, and
    /// requeues what it had not settled.
    fn stand_in_lost(&self, key: &(String, u64)) {
        let removed = self.consuming.stand_ins.lock().remove(key);
        if let Some(s) = removed {
            self.detach(&s);
        }
        let taken: Vec<Unsettled> = {
            let mut u = self.consuming.unsettled.lock();
            let ids: Vec<u64> =
                u.iter().filter(|(_, x)| x.node == key.0 && x.sub == key.1).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| u.remove(&id)).collect()
        };
        settle_here(taken, Settle::Requeue);
    }

    /// Checks the nodes this node's consumers depend on, and those that
    /// consume from queues here: one that does not answer loses what
    /// depends on it (cancelled consumers here, requeued messages there).
    pub async fn check_links(&self) {
        for home in self.subscribed_homes() {
            if !self.answers(&home).await {
                self.home_lost(&home);
            }
        }
        for node in self.subscriber_nodes() {
            if !self.answers(&node).await {
                self.subscriber_lost(&node);
            }
        }
    }

    async fn answers(&self, node: &str) -> bool {
        let Some(addr) = self.address_of(node) else { return false };
        matches!(self.peers().call(&addr, Call::Info, Duration::from_secs(2)).await, Ok(Reply::Info(_)))
    }

    /// The nodes that consume from queues here.
    pub(super) fn subscriber_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.consuming.stand_ins.lock().keys().map(|(n, _)| n.clone()).collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }
}

/// Settles deliveries on their queues here, giving their stand-ins credit.
fn settle_here(taken: Vec<Unsettled>, op: Settle) {
    let mut groups: Vec<(Arc<Queue>, Vec<QueuedMessage>)> = Vec::new();
    for u in taken {
        if let Some(c) = &u.consumer {
            c.release(1);
        }
        match groups.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
            Some((_, v)) => v.push(u.msg),
            None => groups.push((u.queue, vec![u.msg])),
        }
    }
    for (q, msgs) in groups {
        match op {
            Settle::Ack => q.settle(&msgs, true),
            Settle::Discard => q.discard(msgs),
            Settle::Requeue => q.requeue(msgs),
        }
        q.dispatch();
    }
}

fn queue_down(q: &Queue, home: &str) -> BrokerError {
    BrokerError::not_found(format!(
        "queue '{}' in vhost '{}' is on node {home}, which cannot be reached",
        q.name, q.vhost
    ))
}

/// At most this many ids in one settle call.
const SETTLE_BATCH: usize = 4096;

/// Sends the settles of deliveries from `home` to it, in batches. Settles
/// of different kinds touch different deliveries (a requeued message comes
/// back under a new id), so each batch can go as one call per kind.
async fn run_settler(
    cluster: Weak<Cluster>,
    home: String,
    mut rx: mpsc::UnboundedReceiver<(Settle, Vec<u64>)>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch: [(Settle, Vec<u64>); 3] =
            [(Settle::Ack, Vec::new()), (Settle::Discard, Vec::new()), (Settle::Requeue, Vec::new())];
        let mut add = |(op, ids): (Settle, Vec<u64>)| {
            let slot = match op {
                Settle::Ack => 0,
                Settle::Discard => 1,
                Settle::Requeue => 2,
            };
            batch[slot].1.extend(ids);
        };
        add(first);
        let mut n = 0;
        while n < SETTLE_BATCH {
            match rx.try_recv() {
                Ok(item) => {
                    n += item.1.len();
                    add(item);
                }
                Err(_) => break,
            }
        }
        let Some(c) = cluster.upgrade() else { return };
        let Some(addr) = c.address_of(&home) else {
            tracing::warn!("cannot settle messages with {home}: not a member of the cluster");
            continue;
        };
        let peer = c.peers().to(&addr);
        for (op, ids) in batch {
            if ids.is_empty() {
                continue;
            }
            // Waits while the link's queue to the home is full.
            match peer.start_call(Call::Settle { op, ids }).await {
                Ok(reply) => {
                    let home = home.clone();
                    tokio::spawn(async move {
                        if let Ok(Err(e)) = reply.await {
                            tracing::warn!("cannot settle messages with {home}: {e}");
                        }
                    });
                }
                Err(e) => tracing::warn!("cannot settle messages with {home}: {e}"),
            }
        }
    }
}

/// Sends a stand-in's deliveries to its subscriber, in order, until the
/// stand-in goes.
async fn pump(cluster: Weak<Cluster>, s: Arc<StandIn>) {
    let mut items: Vec<Outbound> = Vec::new();
    loop {
        s.consumer.outbox.wait().await;
        let Some(c) = cluster.upgrade() else { return };
        if !c.consuming.stand_ins.lock().contains_key(&(s.node.clone(), s.sub)) {
            // Detached: whatever the queue handed over since goes back.
            s.consumer.outbox.take(&mut items);
            for item in items.drain(..) {
                if let Outbound::Deliver { consumer, queue, msg } = item {
                    consumer.release(1);
                    queue.return_undelivered(msg, !consumer.no_ack);
                }
            }
            return;
        }
        s.consumer.outbox.take(&mut items);
        let n = items.len();
        let mut deliveries = Vec::with_capacity(n);
        let mut cancelled = false;
        for item in items.drain(..) {
            match item {
                Outbound::Deliver { consumer, queue, msg } => {
                    let id = c.consuming.next_id();
                    deliveries.push(WireDelivery {
                        id,
                        redelivered: msg.redelivered,
                        msg: WireMessage::of(&msg.msg),
                    });
                    if consumer.no_ack {
                        queue.delivered_no_ack(&msg);
                    } else {
                        c.consuming.unsettled.lock().insert(
                            id,
                            Unsettled {
                                node: s.node.clone(),
                                sub: s.sub,
                                queue,
                                msg,
                                consumer: Some(consumer),
                            },
                        );
                    }
                }
                Outbound::Cancelled { .. } => cancelled = true,
                _ => {}
            }
        }
        if n > 0 && s.consumer.outbox.written(n) {
            s.queue.dispatch();
        }
        let Some(addr) = c.address_of(&s.node) else {
            c.subscriber_lost(&s.node);
            return;
        };
        if !deliveries.is_empty() {
            match c.peers().to(&addr).start_call(Call::Deliver { sub: s.sub, items: deliveries }).await {
                Ok(reply) => {
                    let (weak, key) = (cluster.clone(), (s.node.clone(), s.sub));
                    tokio::spawn(async move {
                        let known = matches!(reply.await, Ok(Ok(Reply::Known(true))));
                        if !known && let Some(c) = weak.upgrade() {
                            // The subscriber does not have this consumer
                            // (gone, or restarted): detach and requeue.
                            c.stand_in_lost(&key);
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("cannot send deliveries to {}: {e}", s.node);
                    c.subscriber_lost(&s.node);
                    return;
                }
            }
        }
        if cancelled {
            c.consuming.stand_ins.lock().remove(&(s.node.clone(), s.sub));
            let _ = c.peers().to(&addr).start_call(Call::SubCancelled { sub: s.sub }).await;
            return;
        }
    }
}

impl Cluster {
    /// Settles deliveries of `q` (homed on `home`) by their ids there,
    /// through the home's settling task, which sends what queued up since
    /// its last call in one call per kind of settle.
    pub(super) fn settle(self: &Arc<Self>, home: &str, q: &Queue, op: Settle, ids: Vec<u64>) {
        if ids.is_empty() {
            return;
        }
        let tx = {
            let mut settlers = self.consuming.settlers.lock();
            match settlers.get(home) {
                Some(tx) => tx.clone(),
                None => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(run_settler(Arc::downgrade(self), home.to_owned(), rx));
                    settlers.insert(home.to_owned(), tx.clone());
                    tx
                }
            }
        };
        if tx.send((op, ids)).is_err() {
            tracing::warn!("cannot settle messages of queue '{}': the node is stopping", q.name);
        }
    }

    /// Detaches this node's consumer `c` of `q` from the home.
    pub(super) fn unsubscribe(&self, q: &Queue, c: &Arc<Consumer>) {
        let sub = {
            let mut subs = self.consuming.subscriptions.lock();
            let key = subs.iter().find(|(_, s)| Arc::ptr_eq(&s.consumer, c)).map(|(k, _)| *k);
            key.and_then(|k| subs.remove(&k).map(|s| (k, s.home)))
        };
        let Some((sub, home)) = sub else { return };
        let Some(addr) = self.address_of(&home) else { return };
        let peers = self.peers().clone();
        tracing::debug!("consumer '{}' of remote queue '{}' goes", c.tag, q.name);
        tokio::spawn(async move {
            let _ = peers.call(&addr, Call::Unsubscribe { sub }, CALL_TIMEOUT).await;
        });
    }
}
