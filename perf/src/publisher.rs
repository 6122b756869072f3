//! A producer: one connection, one channel, a write loop and a read loop.
//!
//! The write loop encodes a batch of publishes from pre-built templates into
//! one buffer and hands it to the socket in one `write_all`, so a 16-byte
//! message costs a memcpy, not a syscall. A batch is cut short by the rate
//! limit and by the confirm window. The read loop, a task of its own, takes
//! confirms (`basic.ack`/`basic.nack`, single or multiple), returns, blocks
//! and closes, and wakes the write loop when the window opens.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::client::{
    CHANNEL, Connection, Endpoint, Reader, Writer, closing_error, decode_method, encode_method, write_out,
};
use crate::stats::Stats;
use crate::wire::{self, FRAME_METHOD, PublishSpec, PublishTemplate, split_frames};

/// A batch stops growing past this many bytes: big enough to make syscalls
/// rare, small enough to stay in cache.
const BATCH_BYTES: usize = 64 * 1024;
const MAX_BATCH: u64 = 2048;
/// How long the end of a run waits for outstanding confirms.
const CONFIRM_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub id: u32,
    /// `(exchange, routing key)` pairs, used round-robin.
    pub targets: Vec<(String, String)>,
    pub size: usize,
    pub persistent: bool,
    pub mandatory: bool,
    /// Outstanding-confirm window; `None` publishes without confirms.
    pub confirm: Option<u32>,
    /// Messages per second for this producer; `None` is as fast as possible.
    pub rate: Option<f64>,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// At the end, wait until every publish is confirmed.
    pub wait_for_confirms: bool,
    /// How long the end waits for the broker to read what we wrote (a
    /// write stuck after the stop, then close-ok).
    pub close_timeout: Duration,
}

/// How a producer ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Messages written to the socket.
    pub published: u64,
    /// The broker read everything up to our connection.close. When false,
    /// some of `published` may never have reached it.
    pub closed_cleanly: bool,
}

/// What the write loop and the read loop share.
#[derive(Default)]
struct Shared {
    confirmed: AtomicU64,
    window_open: Notify,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, why: String) {
        self.error.lock().unwrap().get_or_insert(why);
        self.failed.store(true, Relaxed);
        self.window_open.notify_one();
    }

    fn check(&self) -> Result<()> {
        match self.failed.load(Relaxed) {
            true => Err(anyhow!(self.error.lock().unwrap().clone().unwrap_or_default())),
            false => Ok(()),
        }
    }
}

/// A producer whose connection is open and channel ready.
pub struct Publisher {
    cfg: PublisherConfig,
    wr: Writer,
    templates: Vec<PublishTemplate>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    stats: Arc<Stats>,
}

impl Publisher {
    pub async fn connect(ep: &Endpoint, cfg: PublisherConfig, stats: Arc<Stats>) -> Result<Self> {
        if cfg.targets.is_empty() {
            bail!("producer {} has nowhere to publish", cfg.id);
        }
        let mut conn = Connection::open(ep, &format!("warren-perf producer {}", cfg.id)).await?;
        if cfg.confirm.is_some() {
            conn.confirm_select().await?;
        }
        let templates = cfg
            .targets
            .iter()
            .map(|(exchange, key)| {
                PublishTemplate::new(&PublishSpec {
                    channel: CHANNEL,
                    exchange,
                    routing_key: key,
                    mandatory: cfg.mandatory,
                    persistent: cfg.persistent,
                    size: cfg.size,
                    frame_max: conn.frame_max,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let shared = Arc::new(Shared::default());
        let Connection { rd, wr, rbuf, .. } = conn;
        let reader = tokio::spawn(read_loop(rd, rbuf, shared.clone(), stats.clone()));
        Ok(Publisher { cfg, wr, templates, shared, reader, stats })
    }

    /// Publishes until `stop` turns true or `count` is reached, then closes
    /// the connection.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<Outcome> {
        let result = self.publish(&mut stop).await;
        let mut outcome = Outcome { published: 0, closed_cleanly: false };
        if let Ok((published, finished)) = result {
            outcome.published = published;
            if finished && !self.shared.failed.load(Relaxed) {
                if self.cfg.wait_for_confirms {
                    self.await_confirms(published).await?;
                }
                outcome.closed_cleanly = self.close().await;
            }
        }
        self.reader.abort();
        result?;
        self.shared.check()?;
        Ok(outcome)
    }

    /// Sends connection.close and waits for close-ok. Until then the broker
    /// may still be reading our publishes, and closing the socket with its
    /// frames unread would make the kernel send a reset and the broker drop
    /// what it had not read yet.
    async fn close(&mut self) -> bool {
        let mut out = Vec::new();
        encode_method(&mut out, 0, crate::client::connection_close());
        if write_out(&mut self.wr, &out).await.is_err() {
            return false;
        }
        tokio::time::timeout(self.cfg.close_timeout, &mut self.reader).await.is_ok()
    }

    /// Returns how many messages went out, and false if a write stuck after
    /// the stop had to be abandoned half-way (the connection is then
    /// unusable).
    async fn publish(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(u64, bool)> {
        let per_batch =
            (BATCH_BYTES / self.templates[0].wire_len().max(1)).clamp(1, MAX_BATCH as usize) as u64;
        let mut buf = Vec::with_capacity(BATCH_BYTES + self.templates[0].wire_len());
        let mut seq: u64 = 0;
        let start = Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            self.shared.check()?;
            let mut n = per_batch;
            if let Some(limit) = self.cfg.count {
                n = n.min(limit - seq);
                if n == 0 {
                    break;
                }
            }
            if let Some(rate) = self.cfg.rate {
                let due = (start.elapsed().as_secs_f64() * rate) as u64 + 1;
                if due <= seq {
                    let at = start + Duration::from_secs_f64(seq as f64 / rate);
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                n = n.min(due - seq);
            }
            if let Some(window) = self.cfg.confirm {
                let outstanding = seq - self.shared.confirmed.load(Relaxed);
                if outstanding >= u64::from(window) {
                    tokio::select! {
                        _ = self.shared.window_open.notified() => {}
                        _ = stop.changed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
                n = n.min(u64::from(window) - outstanding);
            }
            buf.clear();
            let nanos = wire::now_nanos();
            let id = self.cfg.id;
            for i in seq..seq + n {
                let t = &self.templates[(i % self.templates.len() as u64) as usize];
                t.append(&mut buf, nanos, id, (i + 1) as u32);
            }
            // A write cut short would leave half a frame on the wire, so a
            // stop only interrupts a write that is stuck.
            tokio::select! {
                r = write_out(&mut self.wr, &buf) => r?,
                _ = wait_stuck(stop, self.cfg.close_timeout) => return Ok((seq, false)),
            }
            seq += n;
            self.stats.published.fetch_add(n, Relaxed);
        }
        Ok((seq, true))
    }

    async fn await_confirms(&self, published: u64) -> Result<()> {
        let deadline = Instant::now() + CONFIRM_WAIT;
        while self.shared.confirmed.load(Relaxed) < published {
            self.shared.check()?;
            if Instant::now() > deadline {
                bail!(
                    "{} of {published} publishes still unconfirmed after {CONFIRM_WAIT:?}",
                    published - self.shared.confirmed.load(Relaxed)
                );
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(100), self.shared.window_open.notified()).await;
        }
        Ok(())
    }
}

/// Resolves `patience` after `stop` turns true.
async fn wait_stuck(stop: &mut watch::Receiver<bool>, patience: Duration) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    tokio::time::sleep(patience).await;
}

async fn read_loop(mut rd: Reader, mut rbuf: BytesMut, shared: Arc<Shared>, stats: Arc<Stats>) {
    let mut tracker = ConfirmTracker::default();
    loop {
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(32 * 1024);
        }
        match rd.read_buf(&mut rbuf).await {
            Ok(0) => return shared.fail("the broker closed the connection".into()),
            Ok(_) => {}
            Err(e) => return shared.fail(format!("read error: {e}")),
        }
        let mut done = false;
        let parsed = split_frames(&rbuf, |f| {
            if f.kind != FRAME_METHOD {
                return Ok(()); // heartbeats, and the content of returns
            }
            match f.method_id() {
                Some((wire::CLASS_BASIC, m @ (wire::BASIC_ACK | wire::BASIC_NACK))) => {
                    let (tag, multiple) = wire::ack_fields(f.payload).ok_or_else(|| anyhow!("short ack"))?;
                    let n = tracker.settle(tag, multiple);
                    shared.confirmed.fetch_add(n, Relaxed);
                    stats.confirmed.fetch_add(n, Relaxed);
                    if m == wire::BASIC_NACK {
                        stats.nacked.fetch_add(n, Relaxed);
                    }
                }
                Some((wire::CLASS_BASIC, wire::BASIC_RETURN)) => {
                    stats.returned.fetch_add(1, Relaxed);
                }
                Some((10, 60)) => {
                    eprintln!("warren-perf: the broker blocked a producer");
                    stats.blocked.store(1, Relaxed);
                }
                Some((10, 61)) => stats.blocked.store(0, Relaxed),
                Some((10, 51)) => done = true,
                _ => {
                    if let Some(closed) = closing_error(&decode_method(&f)?) {
                        return Err(closed.into());
                    }
                }
            }
            Ok(())
        });
        match parsed {
            Ok(n) => rbuf.advance(n),
            Err(e) => return shared.fail(format!("{e:#}")),
        }
        shared.window_open.notify_one();
        if done {
            return;
        }
    }
}

/// Counts confirmed publishes from acks that may be single or multiple and
/// arrive in any order.
#[derive(Default)]
struct ConfirmTracker {
    /// Every tag up to here is settled.
    low: u64,
    /// Settled tags above `low`.
    above: BTreeSet<u64>,
}

impl ConfirmTracker {
    /// Settles `tag` (and everything below it when `multiple`); returns how
    /// many publishes this newly settles.
    fn settle(&mut self, tag: u64, multiple: bool) -> u64 {
        if tag <= self.low {
            return 0;
        }
        if multiple {
            let rest = self.above.split_off(&(tag + 1));
            let already = self.above.len() as u64;
            self.above = rest;
            let n = tag - self.low - already;
            self.low = tag;
            while self.above.remove(&(self.low + 1)) {
                self.low += 1;
            }
            return n;
        }
        if !self.above.insert(tag) {
            return 0;
        }
        while self.above.remove(&(self.low + 1)) {
            self.low += 1;
        }
        1
    }
}

#[cfg(test)]
mod tests {
    use super::ConfirmTracker;

    #[test]
    fn single_and_multiple_acks_count_each_tag_once() {
        let mut t = ConfirmTracker::default();
        assert_eq!(t.settle(3, false), 1);
        assert_eq!(t.settle(5, false), 1);
        assert_eq!(t.settle(4, true), 3); // 1, 2 and 4; 3 was settled
        assert_eq!(t.low, 5);
        assert_eq!(t.settle(5, true), 0);
        assert_eq!(t.settle(10, true), 5);
        assert_eq!(t.settle(12, false), 1);
        assert_eq!(t.settle(11, false), 1);
        assert_eq!(t.low, 12);
        assert!(t.above.is_empty());
    }
}
