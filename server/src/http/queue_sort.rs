//! Sorting a list of queues on a number without building every queue's
//! object: the dashboard sorts 100,000 queues by depth or rate on each
//! refresh, and building them all to read one field cost most of a second.
//!
//! [`QueueSort::parse`] recognises the numeric fields of a queue object
//! (lengths, byte counts, consumers, `message_stats` counts and their
//! `_details.rate`); [`QueueSort::value`] reads that one field from the
//! queue's live counters or the sampler's series, as `queues::item` would
//! show it. Any other field is left to the general path, which builds every
//! item.

use std::sync::Arc;

use crate::broker::queue::Queue;
use crate::http::stats::{Q_LEN, Stats, queue_sample};

/// The names of a queue sample's fields after the three lengths, in
/// sample order (see `stats::queue_sample`).
const MESSAGE_STATS: [&str; 8] =
    ["publish", "deliver", "deliver_no_ack", "get", "get_no_ack", "get_empty", "ack", "redeliver"];

/// `deliver_get` is the sum of these sample positions.
const DELIVER_GET: &[usize] = &[4, 5, 6, 7];

pub enum QueueSort {
    /// The sum of these positions of the live sample.
    Count(Vec<usize>),
    /// The sampler's current rate of the sum of these positions.
    Rate(Vec<usize>),
    Consumers,
    Bytes,
    BytesReady,
    BytesUnacked,
    PagedOut,
}

impl QueueSort {
    pub fn parse(field: &str) -> Option<QueueSort> {
        let (base, rate) = match field.strip_suffix("_details.rate") {
            Some(b) => (b, true),
            None => (field, false),
        };
        let positions = match base {
            "messages" => vec![0],
            "messages_ready" => vec![1],
            "messages_unacknowledged" => vec![2],
            "message_stats.deliver_get" => DELIVER_GET.to_vec(),
            _ => match base.strip_prefix("message_stats.") {
                Some(name) => vec![3 + MESSAGE_STATS.iter().position(|n| *n == name)?],
                None if rate => return None,
                None => {
                    return Some(match field {
                        "consumers" => QueueSort::Consumers,
                        "message_bytes" => QueueSort::Bytes,
                        "message_bytes_ready" => QueueSort::BytesReady,
                        "message_bytes_unacknowledged" => QueueSort::BytesUnacked,
                        "messages_paged_out" => QueueSort::PagedOut,
                        _ => return None,
                    });
                }
            },
        };
        Some(if rate { QueueSort::Rate(positions) } else { QueueSort::Count(positions) })
    }

    pub fn value(&self, stats: &Stats, q: &Arc<Queue>) -> f64 {
        let sum = |v: &[u64; Q_LEN], at: &[usize]| at.iter().map(|i| v[*i]).sum::<u64>();
        match self {
            QueueSort::Count(at) => sum(&queue_sample(q), at) as f64,
            QueueSort::Rate(at) => {
                stats.with_queue(q, |s| s.map_or(0.0, |s| s.details(|v| sum(v, at), None).rate))
            }
            QueueSort::Consumers => q.counts().consumers as f64,
            QueueSort::Bytes => {
                let c = q.counts();
                (c.ready_bytes + c.unacked_bytes) as f64
            }
            QueueSort::BytesReady => q.counts().ready_bytes as f64,
            QueueSort::BytesUnacked => q.counts().unacked_bytes as f64,
            QueueSort::PagedOut => q.counts().paged as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(field: &str) -> Option<(bool, Vec<usize>)> {
        match QueueSort::parse(field)? {
            QueueSort::Count(p) => Some((false, p)),
            QueueSort::Rate(p) => Some((true, p)),
            _ => Some((false, vec![])),
        }
    }

    #[test]
    fn fields_map_to_their_sample_positions() {
        assert_eq!(positions("messages"), Some((false, vec![0])));
        assert_eq!(positions("messages_unacknowledged_details.rate"), Some((true, vec![2])));
        assert_eq!(positions("message_stats.publish_details.rate"), Some((true, vec![3])));
        assert_eq!(positions("message_stats.redeliver"), Some((false, vec![10])));
        assert_eq!(positions("message_stats.deliver_get_details.rate"), Some((true, vec![4, 5, 6, 7])));
        assert_eq!(positions("consumers"), Some((false, vec![])));
        assert!(QueueSort::parse("message_stats.nope").is_none());
        assert!(QueueSort::parse("consumers_details.rate").is_none());
        assert!(QueueSort::parse("arguments.x-max-length").is_none());
        assert!(QueueSort::parse("durable").is_none());
    }
}
