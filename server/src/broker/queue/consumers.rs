//! The consumers of a queue and the choice of who gets the next message.
//!
//! Consumers are kept sorted by priority (`x-priority`, highest first),
//! in arrival order within a priority. A message goes to the first consumer
//! with credit in the highest priority group, round-robin within the group;
//! a lower group is served only when the higher ones have no credit. With
//! single active consumer only the first consumer is served; when it goes,
//! the next one takes over.
//!
//! A consumer's credit (its prefetch, its channel's global prefetch, room in
//! its connection's outbox) is shared with other queues, so the queue asks
//! the consumer through [`ConsumerHandle`] rather than counting it itself;
//! the broker's [`Consumer`] implements it, and unit tests implement it with
//! a plain counter.

use std::sync::Arc;

use crate::broker::consumer::Consumer;

/// What a queue needs to know of a consumer to choose it.
pub trait ConsumerHandle: Clone {
    fn priority(&self) -> i32;
    fn exclusive(&self) -> bool;
    fn no_ack(&self) -> bool;
    /// Claims credit for one delivery; false when the consumer has none.
    fn try_reserve(&self) -> bool;
    /// Gives back credit claimed for deliveries that did not happen.
    fn release(&self, n: u32);
    /// Whether both handles are the same consumer.
    fn same(&self, other: &Self) -> bool;
}

impl ConsumerHandle for Arc<Consumer> {
    fn priority(&self) -> i32 {
        self.priority
    }

    fn exclusive(&self) -> bool {
        self.exclusive
    }

    fn no_ack(&self) -> bool {
        self.no_ack
    }

    fn try_reserve(&self) -> bool {
        Consumer::try_reserve(self)
    }

    fn release(&self, n: u32) {
        Consumer::release(self, n)
    }

    fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(self, other)
    }
}

pub(super) struct Consumers<C> {
    list: Vec<C>,
    /// Index of the consumer served last, for round-robin.
    last: Option<usize>,
    pub single_active: bool,
}

impl<C: ConsumerHandle> Consumers<C> {
    pub fn new(single_active: bool) -> Self {
        Consumers { list: Vec::new(), last: None, single_active }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn list(&self) -> &[C] {
        &self.list
    }

    /// The consumer receiving messages under single active consumer.
    pub fn active(&self) -> Option<&C> {
        if self.single_active { self.list.first() } else { None }
    }

    pub fn add(&mut self, c: C) {
        let pos = self.list.partition_point(|x| x.priority() >= c.priority());
        if let Some(last) = self.last.as_mut().filter(|l| pos <= **l) {
            *last += 1;
        }
        self.list.insert(pos, c);
    }

    pub fn remove(&mut self, c: &C) -> bool {
        let Some(pos) = self.list.iter().position(|x| x.same(c)) else { return false };
        self.list.remove(pos);
        self.last = match self.last {
            Some(l) if l > pos => Some(l - 1),
            Some(l) if l == pos => pos.checked_sub(1),
            other => other,
        };
        true
    }

    pub fn take_all(&mut self) -> Vec<C> {
        self.last = None;
        std::mem::take(&mut self.list)
    }

    /// A consumer that has just reserved credit for one delivery, if any.
    pub fn pick(&mut self) -> Option<C> {
        if self.single_active {
            let c = self.list.first()?;
            return c.try_reserve().then(|| c.clone());
        }
        let n = self.list.len();
        let mut start = 0;
        while start < n {
            let prio = self.list[start].priority();
            let len = self.list[start..].iter().take_while(|c| c.priority() == prio).count();
            // Continue after the last one served if it is in this group.
            let first = match self.last {
                Some(l) if (start..start + len).contains(&l) => l + 1 - start,
                _ => 0,
            };
            for k in 0..len {
                let i = start + (first + k) % len;
                if self.list[i].try_reserve() {
                    self.last = Some(i);
                    return Some(self.list[i].clone());
                }
            }
            start += len;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::consumer::{ChannelFlow, ConsumerSpec, Outbox};
    use amq_protocol::types::FieldTable;

    fn consumer(tag: &str, priority: i32) -> Arc<Consumer> {
        Arc::new(Consumer::new(ConsumerSpec {
            tag: tag.into(),
            channel: 1,
            connection_id: 1,
            outbox: Arc::new(Outbox::default()),
            flow: Arc::new(ChannelFlow::default()),
            no_ack: true,
            exclusive: false,
            prefetch: 0,
            arguments: FieldTable::default(),
            priority,
        }))
    }

    fn picks(c: &mut Consumers<Arc<Consumer>>, n: usize) -> Vec<String> {
        (0..n).map(|_| c.pick().map(|c| c.tag.to_string()).unwrap_or_default()).collect()
    }

    #[test]
    fn round_robin_in_arrival_order() {
        let mut c = Consumers::new(false);
        c.add(consumer("a", 0));
        c.add(consumer("b", 0));
        assert_eq!(picks(&mut c, 4), ["a", "b", "a", "b"]);
        c.add(consumer("c", 0));
        assert_eq!(picks(&mut c, 3), ["c", "a", "b"]);
    }

    #[test]
    fn higher_priority_first_and_single_active() {
        let mut c = Consumers::new(false);
        c.add(consumer("low", 0));
        c.add(consumer("high", 5));
        assert_eq!(picks(&mut c, 2), ["high", "high"]);
        let mut s = Consumers::new(true);
        let first = consumer("first", 0);
        s.add(first.clone());
        s.add(consumer("second", 0));
        assert_eq!(picks(&mut s, 2), ["first", "first"]);
        s.remove(&first);
        assert_eq!(picks(&mut s, 1), ["second"]);
    }
}
