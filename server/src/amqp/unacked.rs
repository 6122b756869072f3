//! The delivery-tag log of a channel: messages delivered (or got) with
//! acknowledgement required and not yet settled, in tag order.
//!
//! Tags only grow, so the log is a deque sorted by tag. Settling leaves a
//! hole that is popped once it reaches the front; in the common case (acks
//! in delivery order) every operation is O(1), and a lookup by tag is a
//! binary search.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::broker::consumer::Consumer;
use crate::broker::queue::{Queue, QueuedMessage};

pub struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    pub msg: QueuedMessage,
    /// None for basic.get.
    pub consumer: Option<Arc<Consumer>>,
}

#[derive(Default)]
pub struct UnackedLog {
    entries: VecDeque<(u64, Option<Unacked>)>,
    live: usize,
}

impl UnackedLog {
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn push(&mut self, u: Unacked) {
        debug_assert!(self.entries.back().is_none_or(|(t, _)| *t < u.tag));
        self.entries.push_back((u.tag, Some(u)));
        self.live += 1;
    }

    fn compact(&mut self) {
        while matches!(self.entries.front(), Some((_, None))) {
            self.entries.pop_front();
        }
        while matches!(self.entries.back(), Some((_, None))) {
            self.entries.pop_back();
        }
    }

    fn position(&self, tag: u64) -> Option<usize> {
        let i = self.entries.partition_point(|(t, _)| *t < tag);
        match self.entries.get(i) {
            Some((t, Some(_))) if *t == tag => Some(i),
            _ => None,
        }
    }

    /// Takes the entries an ack/nack/reject names, in tag order: the one with
    /// `tag`, or with `multiple` every entry up to and including it (tag 0
    /// with `multiple` means all). None when the tag is unknown, in which
    /// case nothing is taken, as in RabbitMQ.
    pub fn take(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple && tag == 0 {
            return Some(self.take_all());
        }
        let pos = self.position(tag)?;
        let mut out = Vec::new();
        if multiple {
            for (_, slot) in self.entries.iter_mut().take(pos + 1) {
                if let Some(u) = slot.take() {
                    out.push(u);
                }
            }
        } else if let Some(u) = self.entries[pos].1.take() {
            out.push(u);
        }
        self.live -= out.len();
        self.compact();
        Some(out)
    }

    pub fn take_all(&mut self) -> Vec<Unacked> {
        let out: Vec<Unacked> = self.entries.drain(..).filter_map(|(_, u)| u).collect();
        self.live = 0;
        out
    }

    /// Puts entries back (tx.rollback), keeping tag order.
    pub fn restore(&mut self, mut items: Vec<Unacked>) {
        items.sort_by_key(|u| std::cmp::Reverse(u.tag));
        for u in items {
            let i = self.entries.partition_point(|(t, _)| *t < u.tag);
            self.live += 1;
            if i == 0 {
                self.entries.push_front((u.tag, Some(u)));
            } else {
                self.entries.insert(i, (u.tag, Some(u)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::message::Message;
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::FieldTable;

    fn entry(q: &Arc<Queue>, tag: u64) -> Unacked {
        let m = Message::new("".into(), "q", &BasicProperties::default(), bytes::Bytes::new());
        Unacked {
            tag,
            queue: q.clone(),
            msg: QueuedMessage {
                seq: tag,
                msg: Arc::new(m),
                redelivered: false,
                stored: None,
                expires: 0,
                deliveries: 0,
            },
            consumer: None,
        }
    }

    fn tags(v: &[Unacked]) -> Vec<u64> {
        v.iter().map(|u| u.tag).collect()
    }

    #[test]
    fn single_multiple_and_unknown_tags() {
        let q = Arc::new(Queue::new(
            "q".into(),
            "/".into(),
            false,
            false,
            None,
            FieldTable::default(),
            None,
            std::sync::Weak::new(),
            Default::default(),
        ));
        let mut log = UnackedLog::default();
        for t in 1..=5 {
            log.push(entry(&q, t));
        }
        assert_eq!(tags(&log.take(3, false).unwrap()), [3]);
        assert!(log.take(3, false).is_none(), "double ack is unknown");
        assert_eq!(tags(&log.take(4, true).unwrap()), [1, 2, 4]);
        assert!(log.take(9, true).is_none());
        assert_eq!(log.len(), 1);
        let back = log.take(5, false).unwrap();
        assert!(log.is_empty());
        log.restore(back);
        log.push(entry(&q, 6));
        assert_eq!(tags(&log.take(0, true).unwrap()), [5, 6]);
    }
}
