//! Message counters. They are relaxed atomics bumped on the hot path; the
//! management layer samples them to compute rates. Nothing here allocates or
//! takes a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    #[inline]
    pub fn incr(&self) {
        self.add(1)
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Per-queue message statistics (RabbitMQ's `message_stats` names).
#[derive(Default, Debug)]
pub struct QueueStats {
    pub publish: Counter,
    pub deliver: Counter,
    pub deliver_no_ack: Counter,
    pub get: Counter,
    pub get_no_ack: Counter,
    pub get_empty: Counter,
    pub ack: Counter,
    pub redeliver: Counter,
    /// Messages that expired (TTL) and messages dropped by a length limit.
    pub expired: Counter,
    pub dropped: Counter,
}

/// Per-exchange statistics.
#[derive(Default, Debug)]
pub struct ExchangeStats {
    pub publish_in: Counter,
    pub publish_out: Counter,
}
