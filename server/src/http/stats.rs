//! The stats sampler: turns the broker's relaxed atomic counters into rates
//! and a short history, on an interval (RabbitMQ's
//! `collect_statistics_interval`, 5 s by default).
//!
//! The hot path only bumps counters (`broker::stats`); all the work here is
//! per object per interval, never per message. One task ([`run`]) reads every
//! queue, exchange, connection and channel, then appends one sample to each
//! object's ring under a single short write lock. Requests read the rings
//! to answer `*_details.rate` and, with `lengths_age`/`msg_rates_age`,
//! `samples`.
//!
//! Objects are keyed by the address of their `Arc`, with a `Weak` kept
//! alongside: the `Weak` keeps the allocation, so an address cannot be
//! reused by a new object while its old entry exists; entries of objects
//! that are gone are dropped at the next tick.
//!
//! Vhost and node message totals accumulate each channel's increase between
//! ticks. Increases a channel makes after its last tick and before it closes
//! are not counted (at most one interval's worth); a broker-level counter
//! would close that gap (see docs/http-api.md).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use warren_api_types::stats::{RateDetails, Sample};

use super::paging::History;
use crate::broker::Broker;
use crate::broker::connections::{ChannelStats, ConnectionInfo};
use crate::broker::exchange::Exchange;
use crate::broker::queue::Queue;

/// Samples kept per queue, exchange, channel and connection: one minute at
/// the default interval, enough for the detail pages' charts.
pub const OBJECT_SAMPLES: usize = 13;
/// Samples kept for vhosts and the node: one hour at the default interval.
pub const TOTAL_SAMPLES: usize = 721;

/// Queue sample: messages, ready, unacked, then the queue counters.
pub const Q_LEN: usize = 11;
/// Channel sample, also the accumulated totals of vhosts and the node.
pub const CH_LEN: usize = 9;
/// Vhost/node sample: messages, ready, unacked, then the channel totals.
pub const TOT_LEN: usize = 3 + CH_LEN;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A ring of (timestamp ms, values) samples, oldest first.
#[derive(Debug, Clone)]
pub struct Series<const N: usize> {
    samples: VecDeque<(u64, [u64; N])>,
    cap: usize,
}

impl<const N: usize> Series<N> {
    pub fn new(cap: usize) -> Self {
        Series { samples: VecDeque::with_capacity(cap.min(16)), cap }
    }

    pub fn push(&mut self, ts: u64, v: [u64; N]) {
        if self.samples.len() == self.cap {
            self.samples.pop_front();
        }
        self.samples.push_back((ts, v));
    }

    /// The element-wise sum of several series sampled on the same ticks,
    /// aligned on their newest samples (younger series are shorter).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Series<N>>) -> Series<N> {
        let mut out: Option<Series<N>> = None;
        for s in all {
            let Some(acc) = out.as_mut() else {
                out = Some(s.clone());
                continue;
            };
            let (la, ls) = (acc.samples.len(), s.samples.len());
            for k in 0..la.min(ls) {
                let (a, b) = (&mut acc.samples[la - 1 - k].1, &s.samples[ls - 1 - k].1);
                for i in 0..N {
                    a[i] += b[i];
                }
            }
        }
        out.unwrap_or_else(|| Series::new(1))
    }

    pub fn last(&self) -> Option<&[u64; N]> {
        self.samples.back().map(|(_, v)| v)
    }

    /// Details of one field (or a sum of fields, via `pick`).
    pub fn details(&self, pick: impl Fn(&[u64; N]) -> u64, hist: Option<History>) -> RateDetails {
        let n = self.samples.len();
        let rate = if n >= 2 {
            let (t1, v1) = &self.samples[n - 1];
            let (t0, v0) = &self.samples[n - 2];
            per_sec(pick(v0), pick(v1), *t0, *t1)
        } else {
            0.0
        };
        let mut d = RateDetails { rate, ..Default::default() };
        if let Some(h) = hist {
            let newest = self.samples.back().map_or(0, |(t, _)| *t);
            let since = newest.saturating_sub(h.age_secs * 1000);
            let step = h.incr_secs * 1000;
            let mut picked: Vec<Sample> = Vec::new();
            for (t, v) in self.samples.iter().rev() {
                if *t < since {
                    break;
                }
                // Keep samples at least `incr` apart (half an interval of slack).
                if picked.last().is_none_or(|p| p.timestamp.saturating_sub(*t) + step / 2 >= step) {
                    picked.push(Sample { sample: pick(v), timestamp: *t });
                }
            }
            if !picked.is_empty() {
                let sum: f64 = picked.iter().map(|s| s.sample as f64).sum();
                d.avg = Some(sum / picked.len() as f64);
                let (first, last) = (picked[picked.len() - 1], picked[0]);
                d.avg_rate = Some(per_sec(first.sample, last.sample, first.timestamp, last.timestamp));
            }
            d.samples = Some(picked);
        }
        d
    }
}

fn per_sec(v0: u64, v1: u64, t0: u64, t1: u64) -> f64 {
    if t1 <= t0 {
        return 0.0;
    }
    (v1 as f64 - v0 as f64) * 1000.0 / (t1 - t0) as f64
}

struct Tracked<T, const N: usize> {
    _keep: Weak<T>,
    series: Series<N>,
    seen: u64,
}

type Map<T, const N: usize> = FxHashMap<usize, Tracked<T, N>>;

fn key<T>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as usize
}

/// A vhost's or the node's accumulated channel counters and their series.
pub struct Totals {
    acc: [u64; CH_LEN],
    pub series: Series<TOT_LEN>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals { acc: [0; CH_LEN], series: Series::new(TOTAL_SAMPLES) }
    }
}

#[derive(Default)]
struct Inner {
    queues: Map<Queue, Q_LEN>,
    exchanges: Map<Exchange, 2>,
    channels: Map<ChannelStats, CH_LEN>,
    connections: Map<ConnectionInfo, 2>,
    vhosts: HashMap<String, Totals>,
    node: Totals,
    tick: u64,
}

/// The sampled statistics of one node.
#[derive(Default)]
pub struct Stats {
    inner: RwLock<Inner>,
    /// One pseudo-channel per vhost counting what the HTTP API itself
    /// publishes and gets, as RabbitMQ counts its management channel.
    api_channels: Mutex<HashMap<String, Arc<ChannelStats>>>,
}

pub fn queue_sample(q: &Queue) -> [u64; Q_LEN] {
    let c = q.counts();
    let s = &q.stats;
    [
        c.ready + c.unacked,
        c.ready,
        c.unacked,
        s.publish.get(),
        s.deliver.get(),
        s.deliver_no_ack.get(),
        s.get.get(),
        s.get_no_ack.get(),
        s.get_empty.get(),
        s.ack.get(),
        s.redeliver.get(),
    ]
}

pub fn channel_sample(c: &ChannelStats) -> [u64; CH_LEN] {
    [
        c.publish.get(),
        c.confirm_sent.get(),
        c.return_unroutable.get(),
        c.deliver.get(),
        c.deliver_no_ack.get(),
        c.get.get(),
        c.get_no_ack.get(),
        c.ack.get(),
        c.redeliver.get(),
    ]
}

fn track<T, const N: usize>(map: &mut Map<T, N>, obj: &Arc<T>, v: [u64; N], ts: u64, tick: u64, cap: usize) {
    let e = map.entry(key(obj)).or_insert_with(|| Tracked {
        _keep: Arc::downgrade(obj),
        series: Series::new(cap),
        seen: tick,
    });
    e.series.push(ts, v);
    e.seen = tick;
}

impl Stats {
    pub fn api_channel(&self, vhost: &str) -> Arc<ChannelStats> {
        self.api_channels.lock().entry(vhost.to_owned()).or_default().clone()
    }

    /// Takes one sample of everything.
    pub fn sample(&self, broker: &Broker) {
        let ts = now_ms();
        // Read the counters before taking the lock: the queues' own locks
        // are taken here, and requests must not wait behind them.
        let vhosts = broker.vhosts();
        let mut queues = Vec::new();
        let mut exchanges = Vec::new();
        let mut lengths: HashMap<String, [u64; 3]> = HashMap::new();
        for v in &vhosts {
            let len = lengths.entry(v.name.to_string()).or_default();
            for q in v.queues() {
                let s = queue_sample(&q);
                len[0] += s[0];
                len[1] += s[1];
                len[2] += s[2];
                queues.push((q, s));
            }
            for x in v.exchanges() {
                let s = [x.stats.publish_in.get(), x.stats.publish_out.get()];
                exchanges.push((x, s));
            }
        }
        let conns = broker.connections.list();
        let mut channels: Vec<(String, Arc<ChannelStats>, [u64; CH_LEN])> = Vec::new();
        for c in &conns {
            for ch in c.channels() {
                let s = channel_sample(&ch);
                channels.push((c.vhost.clone(), ch, s));
            }
        }
        {
            let mut api = self.api_channels.lock();
            api.retain(|v, _| broker.vhost(v).is_some());
            for (v, ch) in api.iter() {
                channels.push((v.clone(), ch.clone(), channel_sample(ch)));
            }
        }

        let mut g = self.inner.write();
        g.tick += 1;
        let tick = g.tick;
        for (q, s) in &queues {
            track(&mut g.queues, q, *s, ts, tick, OBJECT_SAMPLES);
        }
        for (x, s) in &exchanges {
            track(&mut g.exchanges, x, *s, ts, tick, OBJECT_SAMPLES);
        }
        for c in &conns {
            let s = [
                c.recv_oct.load(std::sync::atomic::Ordering::Relaxed),
                c.send_oct.load(std::sync::atomic::Ordering::Relaxed),
            ];
            track(&mut g.connections, c, s, ts, tick, OBJECT_SAMPLES);
        }
        let mut deltas: HashMap<String, [u64; CH_LEN]> = HashMap::new();
        for (vhost, ch, s) in &channels {
            let prev = g.channels.get(&key(ch)).and_then(|t| t.series.last().copied()).unwrap_or([0; CH_LEN]);
            let d = deltas.entry(vhost.clone()).or_default();
            for i in 0..CH_LEN {
                d[i] += s[i].saturating_sub(prev[i]);
            }
            track(&mut g.channels, ch, *s, ts, tick, OBJECT_SAMPLES);
        }
        g.queues.retain(|_, t| t.seen == tick);
        g.exchanges.retain(|_, t| t.seen == tick);
        g.channels.retain(|_, t| t.seen == tick);
        g.connections.retain(|_, t| t.seen == tick);
        g.vhosts.retain(|v, _| lengths.contains_key(v));
        let mut node_len = [0u64; 3];
        let mut node_delta = [0u64; CH_LEN];
        for (vhost, len) in &lengths {
            let d = deltas.get(vhost).copied().unwrap_or([0; CH_LEN]);
            let t = g.vhosts.entry(vhost.clone()).or_default();
            push_total(t, ts, *len, d);
            for i in 0..3 {
                node_len[i] += len[i];
            }
            for i in 0..CH_LEN {
                node_delta[i] += d[i];
            }
        }
        push_total(&mut g.node, ts, node_len, node_delta);
    }

    /// Runs `f` on a queue's series under the read lock, without copying
    /// it: listings of many queues call this once per queue.
    pub fn with_queue<R>(&self, q: &Arc<Queue>, f: impl FnOnce(Option<&Series<Q_LEN>>) -> R) -> R {
        f(self.inner.read().queues.get(&key(q)).map(|t| &t.series))
    }
    pub fn with_exchange<R>(&self, x: &Arc<Exchange>, f: impl FnOnce(Option<&Series<2>>) -> R) -> R {
        f(self.inner.read().exchanges.get(&key(x)).map(|t| &t.series))
    }
    pub fn channel(&self, c: &Arc<ChannelStats>) -> Option<Series<CH_LEN>> {
        self.inner.read().channels.get(&key(c)).map(|t| t.series.clone())
    }
    pub fn connection(&self, c: &Arc<ConnectionInfo>) -> Option<Series<2>> {
        self.inner.read().connections.get(&key(c)).map(|t| t.series.clone())
    }
    pub fn vhost(&self, name: &str) -> Option<Series<TOT_LEN>> {
        self.inner.read().vhosts.get(name).map(|t| t.series.clone())
    }
    pub fn node(&self) -> Series<TOT_LEN> {
        self.inner.read().node.series.clone()
    }
}

fn push_total(t: &mut Totals, ts: u64, len: [u64; 3], delta: [u64; CH_LEN]) {
    for (a, d) in t.acc.iter_mut().zip(delta) {
        *a += d;
    }
    let mut v = [0u64; TOT_LEN];
    v[..3].copy_from_slice(&len);
    v[3..].copy_from_slice(&t.acc);
    t.series.push(ts, v);
}

/// The sampler task: one sample now, then one per interval, until the
/// node stops (the task is aborted with the listeners).
pub async fn run(broker: Arc<Broker>, stats: Arc<Stats>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = std::time::Instant::now();
        stats.sample(&broker);
        tracing::debug!("stats sample took {:?}", started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_history() {
        let mut s: Series<1> = Series::new(4);
        for i in 0..6u64 {
            s.push(i * 5000, [i * 10]);
        }
        let d = s.details(|v| v[0], Some(History { age_secs: 10, incr_secs: 5 }));
        assert_eq!(d.rate, 2.0);
        let samples = d.samples.unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].sample, 50);
        assert_eq!(d.avg_rate, Some(2.0));
    }
}
