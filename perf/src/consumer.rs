//! A consumer: one connection, one channel, one `basic.consume`, and a loop
//! that reads as much as the socket has, walks every frame in it, and
//! answers with one write of acks per read.
//!
//! Deliveries are read at fixed offsets (see [`crate::wire`]); the body's
//! stamp gives the latency, taken against one clock reading per read, and
//! the producer's sequence number, which must increase per producer on any
//! one consumer (a queue keeps per-publisher order).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::{Result, anyhow, bail};
use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::client::{
    CHANNEL, Connection, Endpoint, Reader, Writer, close_with, closing_error, decode_method, write_out,
};
use crate::stats::{Histogram, Stats};
use crate::wire::{self, FRAME_BODY, FRAME_HEADER, FRAME_METHOD, RawFrame, split_frames};

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub id: u32,
    pub queue: String,
    pub autoack: bool,
    /// basic.qos prefetch count; 0 leaves it unlimited.
    pub prefetch: u16,
    /// Ack with `multiple` every this many messages; 0 or 1 acks each one.
    pub multi_ack_every: u32,
    /// Read buffer size: large for a few fast consumers, small for many.
    pub buffer: usize,
}

/// A consumer whose `basic.consume` the broker has accepted.
pub struct Consumer {
    cfg: ConsumerConfig,
    rd: Reader,
    wr: Writer,
    rbuf: BytesMut,
    stats: Arc<Stats>,
    histogram: Arc<Histogram>,
    state: Assembly,
    /// Highest sequence number seen per producer.
    last_seq: Vec<u32>,
    ack_every: u32,
    unacked: u32,
    acks: Vec<u8>,
}

/// Where we are in the frames of the current delivery.
#[derive(Debug, Clone, Copy)]
enum Assembly {
    Idle,
    /// deliver seen, waiting for the content header.
    Header {
        tag: u64,
    },
    /// body bytes still to come.
    Body {
        tag: u64,
        left: u64,
        stamped: bool,
    },
}

impl Consumer {
    pub async fn connect(ep: &Endpoint, cfg: ConsumerConfig, stats: Arc<Stats>) -> Result<Self> {
        let mut conn = Connection::open(ep, &format!("warren-perf consumer {}", cfg.id)).await?;
        if cfg.prefetch > 0 {
            conn.qos(cfg.prefetch).await?;
        }
        conn.consume(&cfg.queue, &format!("warren-perf-{}", cfg.id), cfg.autoack).await?;
        let Connection { rd, wr, mut rbuf, .. } = conn;
        rbuf.reserve(cfg.buffer);
        // Never wait for more acks than the broker will deliver unacked.
        let mut ack_every = cfg.multi_ack_every.max(1);
        if cfg.prefetch > 0 {
            ack_every = ack_every.min(u32::from(cfg.prefetch));
        }
        let histogram = stats.histogram();
        Ok(Consumer {
            cfg,
            rd,
            wr,
            rbuf,
            stats,
            histogram,
            state: Assembly::Idle,
            last_seq: Vec::new(),
            ack_every,
            unacked: 0,
            acks: Vec::with_capacity(4096),
        })
    }

    /// Consumes until `stop` turns true, then closes the connection.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<()> {
        loop {
            if *stop.borrow() {
                break;
            }
            if self.rbuf.capacity() - self.rbuf.len() < self.cfg.buffer / 4 {
                self.rbuf.reserve(self.cfg.buffer);
            }
            let n = tokio::select! {
                r = self.rd.read_buf(&mut self.rbuf) => r?,
                _ = stop.changed() => break,
            };
            if n == 0 {
                bail!("the broker closed the connection");
            }
            self.process().await?;
        }
        // Deliveries may still be in flight; close_with skips them.
        let Consumer { mut rd, mut wr, mut rbuf, .. } = self;
        close_with(&mut rd, &mut wr, &mut rbuf).await
    }

    /// Handles every complete frame in the read buffer, then sends the acks
    /// they earned in one write.
    async fn process(&mut self) -> Result<()> {
        let now = wire::now_nanos();
        let mut delivered = 0u64;
        let buf = std::mem::take(&mut self.rbuf);
        let parsed = split_frames(&buf, |f| {
            if self.frame(f, now)? {
                delivered += 1;
            }
            Ok(())
        });
        self.rbuf = buf;
        self.rbuf.advance(parsed?);
        if let Some(need) = wire::frame_len(&self.rbuf)
            && need > self.rbuf.capacity()
        {
            self.rbuf.reserve(need - self.rbuf.len());
        }
        self.stats.consumed.fetch_add(delivered, Relaxed);
        if !self.acks.is_empty() {
            write_out(&mut self.wr, &self.acks).await?;
            self.acks.clear();
        }
        Ok(())
    }

    /// One frame; true when it completes a message.
    fn frame(&mut self, f: RawFrame<'_>, now: u64) -> Result<bool> {
        match (f.kind, self.state) {
            (FRAME_METHOD, _) => {
                if f.method_id() == Some((wire::CLASS_BASIC, wire::BASIC_DELIVER)) {
                    let tag = wire::deliver_tag(f.payload).ok_or_else(|| anyhow!("short basic.deliver"))?;
                    if f.payload.get(5 + f.payload[4] as usize + 8).is_some_and(|b| b & 1 != 0) {
                        self.stats.redelivered.fetch_add(1, Relaxed);
                    }
                    self.state = Assembly::Header { tag };
                    return Ok(false);
                }
                self.other_method(&f)?;
                Ok(false)
            }
            (FRAME_HEADER, Assembly::Header { tag }) => {
                let left =
                    wire::header_body_size(f.payload).ok_or_else(|| anyhow!("short content header"))?;
                if left == 0 {
                    self.delivered(tag);
                    return Ok(true);
                }
                self.state = Assembly::Body { tag, left, stamped: false };
                Ok(false)
            }
            (FRAME_BODY, Assembly::Body { tag, left, stamped }) => {
                if !stamped {
                    self.stamp(f.payload, now);
                }
                let left = left.saturating_sub(f.payload.len() as u64);
                if left == 0 {
                    self.delivered(tag);
                    return Ok(true);
                }
                self.state = Assembly::Body { tag, left, stamped: true };
                Ok(false)
            }
            (wire::FRAME_HEARTBEAT, _) => Ok(false),
            (kind, state) => bail!("unexpected frame of type {kind} while in {state:?}"),
        }
    }

    fn other_method(&mut self, f: &RawFrame<'_>) -> Result<()> {
        let m = decode_method(f)?;
        if let Some(closed) = closing_error(&m) {
            return Err(closed.into());
        }
        if f.method_id() == Some((wire::CLASS_BASIC, 30)) {
            bail!("the broker cancelled consumer {} on queue {}", self.cfg.id, self.cfg.queue);
        }
        Ok(())
    }

    fn stamp(&mut self, body: &[u8], now: u64) {
        let Some(stamp) = wire::read_stamp(body) else { return };
        self.histogram.record(now.saturating_sub(stamp.nanos));
        if let Some((producer, seq)) = stamp.origin {
            let p = producer as usize;
            if p >= self.last_seq.len() {
                self.last_seq.resize(p + 1, 0);
            }
            if seq <= self.last_seq[p] {
                self.stats.out_of_order.fetch_add(1, Relaxed);
            }
            self.last_seq[p] = seq;
        }
    }

    fn delivered(&mut self, tag: u64) {
        self.state = Assembly::Idle;
        if self.cfg.autoack {
            return;
        }
        self.unacked += 1;
        if self.unacked >= self.ack_every {
            wire::push_ack(&mut self.acks, CHANNEL, tag, self.ack_every > 1);
            self.unacked = 0;
        }
    }
}
