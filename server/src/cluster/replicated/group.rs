//! One replicated queue's member on this node: its openraft instance over
//! the shared WAL, its state machine, and, while this node leads, the
//! queue's log as the queue core uses it ([`ReplicaLog`]).
//!
//! The leader batches: publishes, deliveries and removals accumulate in a
//! pending entry while earlier entries are being committed, and one task
//! proposes them in order, at most a few entries in flight. Under load the
//! entries grow, and with them what one replication round and one fsync
//! carry.
//!
//! A watcher follows the group's metrics. When this node becomes leader it
//! waits until everything in its log is applied (then its state machine
//! holds every message a former leader had committed), loads the queue's
//! core from it, and tells the other nodes. When another node leads, the
//! queue is served through that node; with no leader, it is down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use openraft::ServerState;
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore, oneshot};

use super::machine::Machine;
use super::types::{GroupRaft, Ops};
use crate::broker::message::Message;
use crate::broker::queue::Queue;
use crate::broker::queue::backend::Accepted;
use crate::broker::queue::replica::ReplicaLog;
use crate::cluster::forward::WireMessage;
use crate::cluster::node::Cluster;

/// Entries proposed and not yet committed, at most.
const IN_FLIGHT: usize = 4;
/// Bits of a message id below the leader's term: each leadership gives
/// ids of its own.
const ID_TERM_SHIFT: u32 = 40;

/// The first id a leader of `term` gives, above every id the log has held
/// (`next_in_log`). Ids are never given twice, even those a former leader
/// gave to messages that were never committed: a delivery of such a
/// message that is acked later must not remove a newer message that
/// happens to get the same id (a confirmed message would be lost at the
/// next failover).
fn first_id(term: u64, next_in_log: u64) -> u64 {
    (term << ID_TERM_SHIFT).max(next_in_log)
}

/// How long a publisher waits for its message to be committed before it
/// is told no (nack).
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long an election is given before another one is started.
const ELECTION_SETTLE_MS: u64 = 200;

#[derive(Default)]
struct Pending {
    ops: Ops,
    waiting: Vec<oneshot::Sender<bool>>,
}

pub struct Group {
    pub id: u64,
    pub raft: GroupRaft,
    pub machine: Machine,
    pub queue: Weak<Queue>,
    pending: Mutex<Pending>,
    /// The cluster, to know which members answer.
    cluster: std::sync::OnceLock<Weak<Cluster>>,
    /// When this node last looked whether it is cut off, and what it saw.
    cut_off_seen: Mutex<(u64, bool)>,
    wake: Arc<Notify>,
    closed: std::sync::atomic::AtomicBool,
    next_id: AtomicU64,
    /// The term in which this node last loaded the queue as leader.
    led_term: AtomicU64,
    /// When this node may next stand for election (ms since the Unix
    /// epoch).
    next_try: AtomicU64,
    /// Elections this node left to a more up-to-date member, in a row.
    deferred: std::sync::atomic::AtomicU32,
    /// The last term seen, and when it was first seen: an election in a
    /// new term gets time to finish before this node stands itself.
    term_seen: Mutex<(u64, u64)>,
    /// The leader another member named, while this node's group has not
    /// heard from it (no heartbeats: it will when there is something to
    /// replicate).
    pub named: Mutex<Option<String>>,
}

impl Group {
    pub fn new(id: u64, raft: GroupRaft, machine: Machine, queue: Weak<Queue>) -> Arc<Group> {
        Arc::new(Group {
            id,
            raft,
            machine,
            queue,
            pending: Default::default(),
            cluster: Default::default(),
            cut_off_seen: Mutex::new((0, false)),
            wake: Arc::new(Notify::new()),
            closed: Default::default(),
            next_id: AtomicU64::new(0),
            led_term: AtomicU64::new(0),
            next_try: AtomicU64::new(0),
            deferred: Default::default(),
            term_seen: Mutex::new((0, 0)),
            named: Mutex::new(None),
        })
    }

    /// Starts the group's tasks: the proposer and the leadership watcher.
    pub fn start(self: &Arc<Self>, cluster: Weak<Cluster>) {
        let _ = self.cluster.set(cluster.clone());
        tokio::spawn(propose(Arc::downgrade(self), self.wake.clone()));
        tokio::spawn(watch(Arc::downgrade(self), cluster));
    }

    /// Stops proposing (the queue was deleted).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        self.fail_pending();
    }

    /// Adds to the pending entry what the queue core of the leadership of
    /// `term` decided; false (nothing added) when that leadership is over.
    /// Checked under the pending lock: a new leadership sets `led_term`
    /// before it clears what is pending, so no stale op slips in after.
    fn push(&self, term: u64, f: impl FnOnce(&mut Pending)) -> bool {
        let mut p = self.pending.lock();
        if self.led_term.load(Ordering::Acquire) != term {
            return false;
        }
        p.ops.term = term;
        f(&mut p);
        drop(p);
        self.wake.notify_one();
        true
    }

    /// Fails everything pending (leadership was lost).
    fn fail_pending(&self) {
        let p = std::mem::take(&mut *self.pending.lock());
        for w in p.waiting {
            let _ = w.send(false);
        }
    }

    /// The node leading the group now, by name.
    pub fn leader_name(&self) -> Option<String> {
        let m = self.raft.metrics().borrow().clone();
        let leader = m.current_leader?;
        m.membership_config.membership().get_node(&leader).map(|n| n.name.clone())
    }

    /// Whether the group has no leader this node can reach, while this
    /// node could lead it (a voter of a group of several).
    pub fn needs_leader(&self, is_down: impl Fn(&str) -> bool) -> bool {
        let m = self.raft.metrics().borrow().clone();
        if m.state == ServerState::Leader {
            return false;
        }
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        if voters.len() < 2 || !voters.contains(&m.id) {
            return false;
        }
        // After a restart, the vote a node kept may name itself as leader
        // while it is not one any more.
        if m.current_leader == Some(m.id) {
            return true;
        }
        match m.current_leader.and_then(|l| membership.get_node(&l)) {
            Some(n) => n.name.is_empty() || is_down(&n.name),
            None => self.named.lock().as_deref().is_none_or(is_down),
        }
    }

    /// Whether this node may stand for election now: not while an
    /// election of a new term (another node's, perhaps) may still be going
    /// on, and not again before a random backoff, so that two followers do
    /// not split the vote again and again. Records the attempt if so.
    pub fn try_election_now(&self) -> bool {
        let now = crate::broker::queue::now_ms();
        let term = self.raft.metrics().borrow().current_term;
        {
            let mut seen = self.term_seen.lock();
            if seen.0 != term {
                *seen = (term, now);
            }
            if seen.1 != 0 && now < seen.1 + ELECTION_SETTLE_MS && self.next_try.load(Ordering::Relaxed) != 0
            {
                return false;
            }
        }
        if now < self.next_try.load(Ordering::Relaxed) {
            return false;
        }
        let backoff = ELECTION_SETTLE_MS + rand::random::<u64>() % ELECTION_SETTLE_MS;
        self.next_try.store(now + backoff, Ordering::Relaxed);
        true
    }

    /// Records that this node let a more up-to-date member stand instead;
    /// false once it has done so a few times in a row (it then stands).
    pub fn defer_election(&self) -> bool {
        let n = self.deferred.fetch_add(1, Ordering::Relaxed);
        if n >= 4 {
            self.deferred.store(0, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether this node, leading, can reach no majority of the group's
    /// voters (itself included): nothing it appends can commit.
    fn cut_off(&self) -> bool {
        // Every publish asks: look at most every 50 ms.
        let now = crate::broker::queue::now_ms();
        let (checked, verdict) = *self.cut_off_seen.lock();
        if now < checked + 50 {
            return verdict;
        }
        let verdict = self.look_cut_off();
        *self.cut_off_seen.lock() = (now, verdict);
        verdict
    }

    fn look_cut_off(&self) -> bool {
        let Some(c) = self.cluster.get().and_then(Weak::upgrade) else { return false };
        let m = self.raft.metrics().borrow().clone();
        let ms = m.membership_config.membership();
        let voters: Vec<u64> = ms.voter_ids().collect();
        let up = voters
            .iter()
            .filter(|id| **id == m.id || ms.get_node(id).is_some_and(|n| !c.is_down(&n.name)))
            .count();
        up * 2 <= voters.len()
    }

    /// The ids of the group's voters.
    pub fn voters(&self) -> std::collections::BTreeSet<u64> {
        self.raft.metrics().borrow().membership_config.membership().voter_ids().collect()
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(m.id)
    }
}

/// The log of a group led here in one term, as the queue core of that
/// leadership uses it. What a core of an earlier leadership still sends
/// is refused (see [`Ops::term`]).
struct LeaderLog {
    group: Arc<Group>,
    term: u64,
}

impl ReplicaLog for LeaderLog {
    fn append(&self, msg: &Arc<Message>) -> (u64, Accepted) {
        let (tx, rx) = oneshot::channel();
        let g = &self.group;
        let id = g.next_id.fetch_add(1, Ordering::Relaxed);
        if g.cut_off() {
            // A leader cut off from the majority says no at once rather
            // than after the commit timeout.
            let _ = tx.send(false);
            return (id, rx);
        }
        let mut tx = Some(tx);
        let pushed = g.push(self.term, |p| {
            p.ops.enqueue.push((id, WireMessage::of(msg)));
            p.waiting.extend(tx.take());
        });
        if !pushed && let Some(tx) = tx {
            let _ = tx.send(false);
        }
        (id, rx)
    }

    // A stale core's deliveries and removals are dropped: the leadership
    // that replaced it loaded the queue from the log without them.
    fn delivered(&self, id: u64) {
        self.group.push(self.term, |p| p.ops.delivered.push(id));
    }

    fn remove(&self, id: u64) {
        self.group.push(self.term, |p| p.ops.remove.push(id));
    }

    fn read(&self, id: u64) -> Option<Arc<Message>> {
        self.group.machine.contents.lock().messages.get(&id).map(|k| k.msg.clone())
    }
}

/// Proposes what accumulated, in order, with a bounded number of entries
/// in flight.
async fn propose(group: Weak<Group>, wake: Arc<Notify>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let woken = wake.notified();
        let Some(g) = group.upgrade() else { return };
        if g.closed.load(Ordering::Acquire) {
            return;
        }
        let p = std::mem::take(&mut *g.pending.lock());
        if p.ops.is_empty() {
            drop(g);
            woken.await;
            continue;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let sent = g.raft.client_write_ff(p.ops).await;
        drop(g);
        match sent {
            Ok(rx) => {
                tokio::spawn(async move {
                    // A group that cannot commit (no majority) answers no
                    // after a while rather than never.
                    // Committed and applied (not refused as stale).
                    let ok =
                        matches!(tokio::time::timeout(COMMIT_TIMEOUT, rx).await, Ok(Ok(Ok(r))) if r.data);
                    for w in p.waiting {
                        let _ = w.send(ok);
                    }
                    drop(slot);
                });
            }
            Err(_) => return,
        }
    }
}

/// Follows the group's leadership and serves the queue accordingly.
async fn watch(group: Weak<Group>, cluster: Weak<Cluster>) {
    let Some(g) = group.upgrade() else { return };
    let mut metrics = g.raft.metrics();
    let me = g.raft.metrics().borrow().id;
    drop(g);
    // What the queue was last told: Some((leader name, term)), or None. A
    // new term with the same leader is news too: the leader's consumers
    // elsewhere were told to wait when it lost its lead.
    let mut told: Option<(Option<String>, u64)> = None;
    loop {
        let m = metrics.borrow_and_update().clone();
        tracing::debug!(
            "group {:x}: {:?} in term {}, leader {:?}, log {:?}, applied {:?}",
            m.id,
            m.state,
            m.current_term,
            m.current_leader,
            m.last_log_index,
            m.last_applied.map(|l| l.index)
        );
        let Some(g) = group.upgrade() else { return };
        let Some(q) = g.queue.upgrade() else { return };
        let Some(c) = cluster.upgrade() else { return };
        // The queue shows its group's voters.
        let voters: Vec<String> = {
            let ms = m.membership_config.membership();
            ms.voter_ids().filter_map(|id| ms.get_node(&id).map(|n| n.name.clone())).collect()
        };
        if !voters.is_empty() && voters != q.members() {
            q.set_members(voters);
        }
        if m.state == ServerState::Leader && m.current_leader == Some(me) {
            let applied = m.last_applied.map_or(0, |l| l.index);
            let last = m.last_log_index.unwrap_or(0);
            let led = g.led_term.load(Ordering::Acquire);
            if applied >= last && led != m.current_term {
                if led != 0 {
                    // It lost the lead and won it again before this saw
                    // it go: the old leadership's core goes first, as it
                    // would have had this seen it go.
                    q.follow(None);
                }
                g.led_term.store(m.current_term, Ordering::Release);
                g.fail_pending();
                let load = {
                    let contents = g.machine.contents.lock();
                    g.next_id.store(first_id(m.current_term, contents.next_id), Ordering::Relaxed);
                    contents.to_load()
                };
                tracing::info!(
                    "leading replicated queue '{}' in vhost '{}' (term {}, {} messages)",
                    q.name,
                    q.vhost,
                    m.current_term,
                    load.len()
                );
                q.lead(Arc::new(LeaderLog { group: g.clone(), term: m.current_term }), load);
                told = Some((Some(c.me.name.clone()), m.current_term));
                c.announce_leader(&q);
                c.reattach(&q);
                c.grow(g.clone(), q.clone());
            }
        } else {
            let leader = m
                .current_leader
                .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.name.clone()));
            let was_leading = g.led_term.load(Ordering::Relaxed) != 0;
            // A member that has not heard from the leader yet (it was just
            // added, or it restarted) keeps the leader it was told of by
            // the leader's announcement rather than have no leader.
            let keep = leader.is_none()
                && !was_leading
                && q.serving_node().is_some_and(|n| n != c.me.name && !c.is_down(&n));
            let news = told.as_ref() != Some(&(leader.clone(), m.current_term));
            if !keep && (news || was_leading) {
                if g.led_term.swap(0, Ordering::Relaxed) != 0 {
                    g.fail_pending();
                }
                c.serve_from(&q, leader.as_deref());
                told = Some((leader, m.current_term));
            }
        }
        drop((g, q, c));
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_leadership_never_gives_an_id_twice() {
        // A leader of term 2 gave ids from 2 << 40 and lost its lead before
        // they were committed; the log holds ids below that.
        let given_in_term_2 = first_id(2, 17);
        assert_eq!(given_in_term_2, 2 << ID_TERM_SHIFT);
        let next = first_id(3, 18);
        assert!(next > given_in_term_2 + 1_000_000);
        // A log that already went beyond the term's start keeps going up.
        assert_eq!(first_id(1, (1 << ID_TERM_SHIFT) + 5), (1 << ID_TERM_SHIFT) + 5);
    }
}
