//! Publisher confirms: which publishes of a channel in confirm mode are
//! settled, and the `basic.ack` and `basic.nack` frames that tell the
//! publisher so.
//!
//! The rule clients rely on (pika's blocking channel drops the connection
//! otherwise): every published tag gets exactly one confirm, an ack or a
//! nack, and a confirm with `multiple` set never covers a tag that was
//! already confirmed either way.
//!
//! Transient messages are confirmed as soon as they are routed; persistent
//! ones routed to durable queues once the store has them on disk; messages
//! for a queue homed on another node once that node answered. Acks go out
//! in order, as ranges: a confirm waits behind an older publish still
//! waiting for the disk or another node. A publish that a queue refused
//! (a length limit with `reject-publish`, a home node that is down) is
//! nacked at once, on its own, and later ranges step around it.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::Ordering;

use amq_protocol::protocol::{AMQPClass, confirm};
use smallvec::SmallVec;

use super::Channel;
use crate::amqp::session::Ctx;
use crate::broker::error::{BrokerError, Result};

/// One confirm frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirm {
    pub ack: bool,
    pub tag: u64,
    /// Covers every unconfirmed tag up to `tag`, `count` of them.
    pub multiple: bool,
    pub count: u64,
}

pub type ConfirmFrames = SmallVec<[Confirm; 4]>;

pub struct Confirms {
    next_seq: u64,
    /// Tags waiting for the disk, oldest first.
    pending: VecDeque<u64>,
    /// Tags forwarded to another node of the cluster and not yet answered.
    forwarded: BTreeSet<u64>,
    /// Every tag up to this one has had its confirm.
    settled: u64,
    /// Tags above `settled` that already had their confirm (a nack on its
    /// own): ranges sent later step around them.
    answered: BTreeSet<u64>,
    /// Refused tags whose nack is still to be sent.
    nacks: Vec<u64>,
    /// Everything up to this must be nacked: the store failed to write it.
    /// Nacking is coarse, which may nack a transient message that did get
    /// routed; the publisher then sends it again.
    failed_upto: u64,
    /// The newest tag that needs the disk and whose durability has not been
    /// asked for yet (asked once per batch of frames).
    want_durable: Option<u64>,
}

impl Default for Confirms {
    fn default() -> Self {
        Confirms {
            next_seq: 1,
            pending: VecDeque::new(),
            forwarded: BTreeSet::new(),
            settled: 0,
            answered: BTreeSet::new(),
            nacks: Vec::new(),
            failed_upto: 0,
            want_durable: None,
        }
    }
}

impl Confirms {
    /// The tag of the next publish.
    pub fn next(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    /// A queue refused the publish: it gets a nack, and nothing else.
    pub fn refused(&mut self, seq: u64) {
        if seq > self.settled && !self.answered.contains(&seq) && !self.nacks.contains(&seq) {
            self.nacks.push(seq);
        }
    }

    /// The publish went to the persistent store: its ack waits for the disk.
    pub fn stored(&mut self, seq: u64) {
        self.pending.push_back(seq);
        self.want_durable = Some(seq);
    }

    /// The publish went to another node too: its ack waits for the answer.
    pub fn forwarding(&mut self, seq: u64) {
        self.forwarded.insert(seq);
    }

    /// The other node answered for a forwarded publish.
    pub fn forwarded(&mut self, seq: u64, ok: bool) {
        self.forwarded.remove(&seq);
        if !ok {
            self.refused(seq);
        }
    }

    /// The store has everything up to `upto` on disk, or (`ok` false) could
    /// not write it: those publishes are nacked.
    pub fn durable(&mut self, upto: u64, ok: bool) {
        while self.pending.front().is_some_and(|p| *p <= upto) {
            self.pending.pop_front();
        }
        if !ok {
            self.failed_upto = self.failed_upto.max(upto);
        }
    }

    /// The newest tag whose durability must now be asked of the store.
    pub fn take_durable_request(&mut self) -> Option<u64> {
        self.want_durable.take()
    }

    /// Every tag up to this one may be confirmed.
    fn confirmable_upto(&self) -> u64 {
        let waiting = match (self.pending.front(), self.forwarded.first()) {
            (Some(a), Some(b)) => Some(*a.min(b)),
            (a, b) => a.or(b).copied(),
        };
        waiting.map_or(self.next_seq - 1, |p| p - 1)
    }

    /// The confirms to send now, in the order to send them.
    pub fn take(&mut self) -> ConfirmFrames {
        let mut out = ConfirmFrames::new();
        for seq in std::mem::take(&mut self.nacks) {
            if seq > self.settled && self.answered.insert(seq) {
                out.push(Confirm { ack: false, tag: seq, multiple: false, count: 1 });
            }
        }
        if self.failed_upto > self.settled {
            self.settle_range(false, self.failed_upto, &mut out);
        }
        let upto = self.confirmable_upto();
        if upto > self.settled {
            self.settle_range(true, upto, &mut out);
        }
        out
    }

    /// Confirms every tag from `settled + 1` up to `upto` that has not had
    /// its confirm yet, as few frames as the tags already answered allow.
    fn settle_range(&mut self, ack: bool, upto: u64, out: &mut ConfirmFrames) {
        let mut start = self.settled + 1;
        let mut push = |from: u64, to: u64| {
            out.push(Confirm { ack, tag: to, multiple: to > from, count: to - from + 1 });
        };
        for &done in self.answered.range(start..=upto) {
            if done > start {
                push(start, done - 1);
            }
            start = done + 1;
        }
        if upto >= start {
            push(start, upto);
        }
        self.settled = upto;
        self.answered = self.answered.split_off(&(upto + 1));
    }
}

impl Channel {
    /// confirm.select: the channel's publishes are confirmed from now on.
    pub(super) fn confirm_select(&mut self, ctx: &mut Ctx<'_>, s: confirm::Select) -> Result<()> {
        if self.tx.is_some() {
            return Err(BrokerError::precondition_failed("cannot switch from tx to confirm mode"));
        }
        if self.confirms.is_none() {
            self.confirms = Some(Confirms::default());
            self.stats.confirm.store(true, Ordering::Relaxed);
        }
        if !s.nowait {
            ctx.reply(self.id, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(ack: bool, tag: u64, multiple: bool, count: u64) -> Confirm {
        Confirm { ack, tag, multiple, count }
    }

    /// Checks the rule: each tag from 1 to `n` confirmed exactly once.
    fn each_once(frames: &[Confirm], n: u64) {
        let mut seen = vec![0u32; n as usize + 1];
        let mut settled_before = Vec::new();
        for f in frames {
            if f.multiple {
                // A multiple covers every tag up to `tag` not yet seen.
                let from = f.tag + 1 - f.count;
                for t in from..=f.tag {
                    seen[t as usize] += 1;
                }
                for t in 1..from {
                    assert!(seen[t as usize] == 1, "tag {t} open below a multiple {f:?}");
                }
            } else {
                seen[f.tag as usize] += 1;
            }
            settled_before.push(*f);
        }
        for t in 1..=n {
            assert_eq!(seen[t as usize], 1, "tag {t} in {frames:?}");
        }
    }

    #[test]
    fn a_refused_publish_is_nacked_alone_and_acks_step_around_it() {
        // The x-overflow reject-publish case: 1 and 2 go in, 3 is refused.
        let mut k = Confirms::default();
        for _ in 0..3 {
            k.next();
        }
        k.refused(3);
        let out = k.take();
        assert_eq!(out.as_slice(), [c(false, 3, false, 1), c(true, 2, true, 2)]);
        each_once(&out, 3);
        assert!(k.take().is_empty());
    }

    #[test]
    fn a_refused_publish_between_pending_ones() {
        let mut k = Confirms::default();
        let mut all = Vec::new();
        let (a, b, r, d) = (k.next(), k.next(), k.next(), k.next());
        k.stored(a);
        k.stored(b);
        k.refused(r);
        k.stored(d);
        all.extend(k.take());
        assert_eq!(all.as_slice(), [c(false, r, false, 1)]);
        k.durable(b, true);
        all.extend(k.take());
        k.durable(d, true);
        let last = k.take();
        assert_eq!(last.as_slice(), [c(true, d, false, 1)]);
        all.extend(last);
        each_once(&all, 4);
    }

    #[test]
    fn a_forwarded_publish_that_fails_is_nacked_once() {
        let mut k = Confirms::default();
        let mut all = Vec::new();
        let (a, f, b) = (k.next(), k.next(), k.next());
        k.forwarding(f);
        all.extend(k.take());
        assert_eq!(all.as_slice(), [c(true, a, false, 1)]);
        k.forwarded(f, false);
        all.extend(k.take());
        each_once(&all, 3);
        let _ = b;
        // A late duplicate answer changes nothing.
        k.forwarded(f, false);
        assert!(k.take().is_empty());
    }

    #[test]
    fn a_refused_and_forwarded_publish_gets_one_nack() {
        let mut k = Confirms::default();
        let s = k.next();
        k.refused(s);
        k.forwarding(s);
        let mut all: Vec<Confirm> = k.take().to_vec();
        k.forwarded(s, false);
        all.extend(k.take());
        assert_eq!(all, [c(false, s, false, 1)]);
    }

    #[test]
    fn a_failed_write_nacks_the_range_around_earlier_nacks() {
        let mut k = Confirms::default();
        let mut all = Vec::new();
        let tags: Vec<u64> = (0..5).map(|_| k.next()).collect();
        for &t in &tags {
            if t == 3 {
                k.refused(t);
            } else {
                k.stored(t);
            }
        }
        all.extend(k.take());
        k.durable(5, false);
        let out = k.take();
        assert_eq!(out.as_slice(), [c(false, 2, true, 2), c(false, 5, true, 2)]);
        all.extend(out);
        each_once(&all, 5);
    }

    #[test]
    fn random_histories_confirm_every_tag_exactly_once() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..500 {
            let mut k = Confirms::default();
            let mut all = Vec::new();
            let mut waiting_disk = Vec::new();
            let mut waiting_node = Vec::new();
            let n = rng.random_range(1..60u64);
            for _ in 0..n {
                let t = k.next();
                match rng.random_range(0..5) {
                    0 => k.refused(t),
                    1 => {
                        k.stored(t);
                        waiting_disk.push(t);
                    }
                    2 => {
                        k.forwarding(t);
                        waiting_node.push(t);
                        if rng.random_bool(0.3) {
                            k.refused(t);
                        }
                    }
                    _ => {}
                }
                if rng.random_bool(0.2)
                    && let Some(&upto) = waiting_disk.last()
                {
                    k.durable(upto, rng.random_bool(0.8));
                    waiting_disk.clear();
                }
                if rng.random_bool(0.2) && !waiting_node.is_empty() {
                    let i = rng.random_range(0..waiting_node.len());
                    k.forwarded(waiting_node.swap_remove(i), rng.random_bool(0.7));
                }
                if rng.random_bool(0.3) {
                    all.extend(k.take());
                }
            }
            if let Some(&upto) = waiting_disk.last() {
                k.durable(upto, true);
            }
            for t in waiting_node {
                k.forwarded(t, true);
            }
            all.extend(k.take());
            each_once(&all, n);
        }
    }
}
