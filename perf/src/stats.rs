//! Counters and latency histograms shared by the producer and consumer
//! tasks, and the once-a-second report drawn from them.
//!
//! Counters are relaxed atomics that each task bumps once per batch, not per
//! message. Each consumer owns a [`Histogram`] of its own (one writer, so no
//! contention); the reporter merges them into snapshots and subtracts the
//! previous snapshot to get the last second's percentiles.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Log-linear buckets: values below `SUB` are exact, above that every power
/// of two is cut into `SUB` slices, so a bucket is within 1/16 (6%) of its
/// values. 40 powers of two of nanoseconds reach 18 minutes.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
const POWERS: usize = 40;
const BUCKETS: usize = SUB + (POWERS - SUB_BITS as usize) * SUB;

fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    if exp as usize >= POWERS {
        return BUCKETS - 1;
    }
    let slice = (v >> (exp - SUB_BITS)) as usize & (SUB - 1);
    SUB + (exp - SUB_BITS) as usize * SUB + slice
}

/// The middle of the values that fall into bucket `i`.
fn bucket_value(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let exp = (i - SUB) / SUB + SUB_BITS as usize;
    let slice = ((i - SUB) % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS as usize);
    (1u64 << exp) + slice * width + width / 2
}

/// Latencies in nanoseconds, written by one task and read by the reporter.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(), max: AtomicU64::new(0) }
    }
}

impl Histogram {
    #[inline]
    pub fn record(&self, nanos: u64) {
        // One writer: a load and a store are enough and avoid a locked
        // instruction per message.
        let b = &self.buckets[bucket_of(nanos)];
        b.store(b.load(Relaxed) + 1, Relaxed);
        if nanos > self.max.load(Relaxed) {
            self.max.store(nanos, Relaxed);
        }
    }
}

/// A merged copy of histograms, for percentiles.
#[derive(Clone)]
pub struct Snapshot {
    counts: Vec<u64>,
    pub max: u64,
}

impl Snapshot {
    pub fn empty() -> Self {
        Snapshot { counts: vec![0; BUCKETS], max: 0 }
    }

    pub fn add(&mut self, h: &Histogram) {
        for (c, b) in self.counts.iter_mut().zip(h.buckets.iter()) {
            *c += b.load(Relaxed);
        }
        self.max = self.max.max(h.max.load(Relaxed));
    }

    /// What was recorded since `earlier` (whose max is not subtractable, so
    /// the window's max is its highest bucket).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let counts: Vec<u64> = self.counts.iter().zip(&earlier.counts).map(|(a, b)| a - b).collect();
        let max = counts.iter().rposition(|&c| c > 0).map_or(0, bucket_value);
        Snapshot { counts, max }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value below which `q` (0..=1) of the samples lie.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(i).min(self.max.max(1)));
            }
        }
        Some(self.max)
    }

    pub fn summary(&self) -> Option<Latency> {
        let us = |q: f64| self.quantile(q).unwrap_or(0) as f64 / 1000.0;
        (self.count() > 0).then(|| Latency {
            samples: self.count(),
            p50_us: us(0.50),
            p75_us: us(0.75),
            p95_us: us(0.95),
            p99_us: us(0.99),
            max_us: self.max as f64 / 1000.0,
        })
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_us: f64,
    pub p75_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// Everything the tasks of one run count.
#[derive(Default)]
pub struct Stats {
    pub published: AtomicU64,
    pub confirmed: AtomicU64,
    pub nacked: AtomicU64,
    pub returned: AtomicU64,
    pub consumed: AtomicU64,
    /// Messages whose producer sequence number did not increase.
    pub out_of_order: AtomicU64,
    pub redelivered: AtomicU64,
    pub blocked: AtomicU64,
    histograms: Mutex<Vec<Arc<Histogram>>>,
    errors: Mutex<Vec<String>>,
}

impl Stats {
    /// A histogram for one consumer, included in every snapshot.
    pub fn histogram(&self) -> Arc<Histogram> {
        let h = Arc::new(Histogram::default());
        self.histograms.lock().unwrap().push(h.clone());
        h
    }

    pub fn latency_snapshot(&self) -> Snapshot {
        let mut s = Snapshot::empty();
        for h in self.histograms.lock().unwrap().iter() {
            s.add(h);
        }
        s
    }

    pub fn error(&self, who: &str, e: &anyhow::Error) {
        let line = format!("{who}: {e:#}");
        eprintln!("error: {line}");
        self.errors.lock().unwrap().push(line);
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.lock().unwrap().is_empty()
    }

    pub fn counters(&self) -> Counters {
        Counters {
            published: self.published.load(Relaxed),
            confirmed: self.confirmed.load(Relaxed),
            nacked: self.nacked.load(Relaxed),
            returned: self.returned.load(Relaxed),
            consumed: self.consumed.load(Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counters {
    pub published: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub returned: u64,
    pub consumed: u64,
}

/// One line of the per-second report.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    pub t: f64,
    pub published: f64,
    pub confirmed: f64,
    pub consumed: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
}

/// Prints a line per second until stopped and keeps the lines.
pub struct Reporter {
    stats: Arc<Stats>,
    start: Instant,
    last: (Instant, Counters, Snapshot),
    pub seconds: Vec<Second>,
    /// Print to stderr (when stdout carries JSON).
    to_stderr: bool,
}

impl Reporter {
    pub fn new(stats: Arc<Stats>, to_stderr: bool) -> Self {
        let now = Instant::now();
        let last = (now, stats.counters(), stats.latency_snapshot());
        Reporter { stats, start: now, last, seconds: Vec::new(), to_stderr }
    }

    /// Takes one sample; call it once a second.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let c = self.stats.counters();
        let snap = self.stats.latency_snapshot();
        let dt = now.duration_since(self.last.0).as_secs_f64().max(1e-9);
        let window = snap.since(&self.last.2);
        let rate = |a: u64, b: u64| (a - b) as f64 / dt;
        let p = |q| window.quantile(q).map(|v| v as f64 / 1000.0);
        let s = Second {
            t: now.duration_since(self.start).as_secs_f64(),
            published: rate(c.published, self.last.1.published),
            confirmed: rate(c.confirmed, self.last.1.confirmed),
            consumed: rate(c.consumed, self.last.1.consumed),
            p50_us: p(0.5),
            p99_us: p(0.99),
        };
        let mut line = format!(
            "time {:6.1}s  sent {:>9.0} msg/s  confirmed {:>9.0} msg/s  received {:>9.0} msg/s",
            s.t, s.published, s.confirmed, s.consumed
        );
        if let (Some(p50), Some(p99)) = (s.p50_us, s.p99_us) {
            line += &format!("  latency p50 {} p99 {}", fmt_us(p50), fmt_us(p99));
        }
        if self.stats.blocked.load(Relaxed) > 0 {
            line += "  (blocked)";
        }
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        self.seconds.push(s);
        self.last = (now, c, snap);
    }
}

/// Microseconds as a short human figure.
pub fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// A rate over a duration, guarding against zero.
pub fn per_second(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in (0..100_000u64).chain((1..40).map(|p| 1u64 << p)).chain([u64::MAX / 3]) {
            let b = bucket_of(v);
            assert!(b >= last || v < 100_000, "bucket of {v}");
            last = last.max(b);
            if v >= 16 && (v as f64) < (1u64 << POWERS) as f64 {
                let mid = bucket_value(b) as f64;
                assert!((mid - v as f64).abs() / (v as f64) < 0.07, "{v} -> {mid}");
            }
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let mut s = Snapshot::empty();
        s.add(&h);
        let p50 = s.quantile(0.5).unwrap() as f64;
        let p99 = s.quantile(0.99).unwrap() as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.07, "{p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.07, "{p99}");
        assert_eq!(s.max, 10_000_000);
        let empty = Snapshot::empty();
        assert_eq!(s.since(&empty).count(), 10_000);
        assert!(s.since(&s).quantile(0.5).is_none());
    }
}
