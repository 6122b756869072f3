//! The queue's side of replication (`replica.rs` says what a replicated
//! queue is): becoming replicated (at declaration or when a policy with
//! `ha-mode` starts to match), leading (the queue is served here from its
//! group's log) and following (it is served through the leader's node).
//!
//! The cluster decides who leads and calls [`Queue::lead`] and
//! [`Queue::follow`]; the queue only adapts its core.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::backend::QueueBackend;
use super::replica::{self, ReplicaLog, Replicated, Replication};
use super::state::QueueState;
use super::{Queue, QueuedMessage, now_ms};
use crate::broker::consumer::Outbound;
use crate::store::messages::StoreRef;

impl Queue {
    /// How a replicated queue chooses its members; None for a queue kept
    /// by one node.
    pub fn replication(&self) -> Option<Replication> {
        self.replication.read().clone()
    }

    pub fn is_replicated(&self) -> bool {
        self.replicated.load(Ordering::Relaxed)
    }

    /// The log of a replicated queue that this node leads.
    pub fn replica(&self) -> Option<Arc<dyn ReplicaLog>> {
        if !self.is_replicated() {
            return None;
        }
        self.replica.read().clone()
    }

    /// The members an operator chose for the queue, if any: they replace
    /// those its replication computes.
    pub fn chosen_members(&self) -> Option<Vec<String>> {
        self.chosen_members.read().clone()
    }

    /// An operator chose the queue's members: the cluster makes its group
    /// those.
    pub fn choose_members(self: &Arc<Self>, members: Vec<String>) {
        *self.chosen_members.write() = Some(members);
        if self.is_replicated()
            && let Some(b) = self.backends.get().and_then(|h| h.get())
        {
            b.members_chosen(self);
        }
    }

    /// The nodes of a replicated queue's group (set by the cluster).
    pub fn members(&self) -> Vec<String> {
        self.members.read().clone()
    }

    pub fn set_members(&self, members: Vec<String>) {
        *self.members.write() = members;
    }

    /// Makes the queue replicated as `wanted` asks (its arguments or a
    /// policy), in a cluster, and tells the cluster. A queue stays
    /// replicated when the policy goes (see docs/cluster.md).
    pub fn replicate(self: &Arc<Self>, wanted: Option<Replication>) {
        let Some(r) = wanted else { return };
        if self.home.get().is_none() || self.is_exclusive() {
            return;
        }
        {
            let mut cur = self.replication.write();
            if cur.as_ref() == Some(&r) {
                return;
            }
            *cur = Some(r);
        }
        let was = self.replicated.swap(true, Ordering::AcqRel);
        match self.backends.get().and_then(|h| h.get()) {
            Some(b) => b.replicated(self),
            // At start, before the cluster runs: the queue waits for its
            // group to say who leads rather than serve as a classic queue
            // meanwhile.
            None if !was => self.remote.store(true, Ordering::Release),
            None => {}
        }
    }

    /// The node serving the queue's messages now: its home, or for a
    /// replicated queue its leader (None while it has none).
    pub fn serving_node(&self) -> Option<String> {
        if !self.is_remote() {
            return self.here.get().or(self.home.get()).map(|h| h.to_string());
        }
        if !self.is_replicated() {
            return self.home.get().map(|h| h.to_string());
        }
        self.backend.read().as_ref().map(|b| b.node().to_owned())
    }

    /// This node now leads the replicated queue's group: the queue is
    /// served here, from `messages` (what the group's log holds, in id
    /// order). Messages the queue's core holds that are not in the log
    /// yet (it was a classic queue until a policy matched it, or they
    /// were recovered from the message store) join the log behind them.
    pub fn lead(self: &Arc<Self>, log: Arc<dyn ReplicaLog>, messages: Vec<Replicated>) {
        *self.replica.write() = Some(log.clone());
        let now = now_ms();
        let adopted = self.with_state(|s, pager, fx| {
            // What the core holds with ids of the log is stale (the log
            // is the truth); the rest is not in the log yet.
            let legacy: Vec<QueuedMessage> = s
                .take_ready(pager)
                .into_iter()
                .filter(|m| !m.stored.is_some_and(replica::is_replica_ref))
                .collect();
            for m in messages {
                let qm = QueuedMessage {
                    seq: 0,
                    stored: Some(replica::ref_of(m.id, m.msg.body_size())),
                    msg: m.msg,
                    redelivered: m.delivered,
                    expires: 0,
                    deliveries: u32::from(m.delivered),
                };
                s.load(qm, pager);
            }
            let (legacy, adopted) = adopt(&*log, legacy);
            for m in legacy {
                s.load(m, pager);
            }
            *self.backend.write() = None;
            self.remote.store(false, Ordering::Release);
            s.dispatch(now, pager, fx);
            adopted
        });
        self.forget_when_committed(adopted);
    }

    /// Requeued messages of a replicated queue led here that the log does
    /// not have yet join it first.
    pub(super) fn adopt_requeued(&self, msgs: Vec<QueuedMessage>) -> Vec<QueuedMessage> {
        let Some(log) = self.replica() else { return msgs };
        if msgs.iter().all(|m| m.stored.is_some_and(replica::is_replica_ref)) {
            return msgs;
        }
        let (msgs, adopted) = adopt(&*log, msgs);
        self.forget_when_committed(adopted);
        msgs
    }

    /// Once the log has the adopted messages, the message store lets go of
    /// them.
    fn forget_when_committed(&self, adopted: Adopted) {
        if adopted.committed.is_empty() {
            return;
        }
        let (Some(stores), Some(id), true) =
            (self.stores.clone(), self.store_id.get().copied(), self.durable)
        else {
            return;
        };
        tokio::spawn(async move {
            for c in adopted.committed {
                if !c.await.unwrap_or(false) {
                    // Not committed: the store keeps them (they come back
                    // after a restart, perhaps twice, never lost).
                    return;
                }
            }
            for r in adopted.stored {
                stores.persistent.ack(r, id);
            }
        });
    }

    /// Another node leads the replicated queue's group now (`leader`), or
    /// none does: the queue is served through `leader`'s backend. When
    /// this node led it, its consumers here are cancelled (they consume
    /// again through the new leader) and what it held is dropped: the
    /// group's log keeps it. A queue still held here as a classic queue
    /// (its group has not elected this node yet) keeps serving until
    /// another node leads.
    pub fn follow(&self, leader: Option<Arc<dyn QueueBackend>>) {
        let consumers = {
            let mut g = self.inner.lock();
            let was_leading = self.replica.read().is_some();
            if !was_leading && !self.is_remote() && leader.is_none() {
                return;
            }
            self.remote.store(true, Ordering::Release);
            *self.backend.write() = leader;
            if self.replica.write().take().is_some() {
                let config = (**g.state.config()).clone();
                let consumers = g.state.consumers().to_vec();
                g.state = QueueState::new(config);
                consumers
            } else {
                Vec::new()
            }
        };
        for c in consumers {
            c.outbox.clone().push(Outbound::Cancelled { consumer: c.clone() });
        }
    }

    /// Waits (up to `limit`) until a replicated queue is served by a
    /// leader with its members in place, so that a client that declared it
    /// can publish at once.
    pub async fn until_served(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let served = || {
            self.replica.read().is_some() && self.replica_ready.load(Ordering::Acquire)
                || self.is_remote() && self.backend.read().as_ref().is_some_and(|b| !b.is_down())
        };
        while self.is_replicated() && !served() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The cluster says whether the group has all its members.
    pub fn set_replica_ready(&self, ready: bool) {
        self.replica_ready.store(ready, Ordering::Release);
    }
}

/// Messages appended to a log on adoption: the answers, and where they
/// were in the message store.
#[derive(Default)]
struct Adopted {
    committed: Vec<super::backend::Accepted>,
    stored: Vec<StoreRef>,
}

/// Appends messages that are not in `log` to it, and gives them their ids.
fn adopt(log: &dyn ReplicaLog, msgs: Vec<QueuedMessage>) -> (Vec<QueuedMessage>, Adopted) {
    let mut adopted = Adopted::default();
    let msgs = msgs
        .into_iter()
        .map(|mut m| {
            if m.stored.is_some_and(replica::is_replica_ref) {
                return m;
            }
            let (id, committed) = log.append(&m.msg);
            adopted.committed.push(committed);
            if let Some(r) = m.stored.replace(replica::ref_of(id, m.msg.body_size())) {
                adopted.stored.push(r);
            }
            m
        })
        .collect();
    (msgs, adopted)
}
