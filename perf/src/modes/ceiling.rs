//! `loopback-ceiling`: what one loopback TCP stream carries when nothing
//! but framing is done at either end.
//!
//! A writer task encodes publishes (method, header and body frames) from
//! the same template and in the same 64 KiB batches as a producer; a reader
//! task reads 256 KiB at a time, walks the frames like a consumer and reads
//! each body's stamp. A broker's end-to-end rate with one producer and one
//! consumer can be stated as a fraction of this figure, measured on the same
//! machine at the same time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::{Buf, BytesMut};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{emit, rate};
use crate::CeilingArgs;
use crate::stats::{Histogram, Snapshot, fmt_us, per_second};
use crate::wire::{self, FRAME_BODY, PublishSpec, PublishTemplate, split_frames};

const FRAME_MAX: u32 = 131_072;

pub async fn run(a: CeilingArgs) -> Result<bool> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let writer = TcpStream::connect(addr).await?;
    let (reader, _) = listener.accept().await?;
    writer.set_nodelay(true)?;
    reader.set_nodelay(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Histogram::default());

    let template = PublishTemplate::new(&PublishSpec {
        channel: 1,
        exchange: "",
        routing_key: "warren-perf",
        mandatory: false,
        persistent: false,
        size: a.size,
        frame_max: FRAME_MAX,
    })?;
    let frame_bytes = template.wire_len();
    let w = tokio::spawn(write_loop(writer, template, stop.clone(), sent.clone()));
    let r = tokio::spawn(read_loop(reader, received.clone(), histogram.clone()));

    let start = Instant::now();
    let mut last = (0, start);
    while start.elapsed().as_secs_f64() < a.time {
        tokio::time::sleep(Duration::from_secs(1).min(Duration::from_secs_f64(a.time))).await;
        let n = received.load(Relaxed);
        let line = format!(
            "time {:6.1}s  received {:>10.0} msg/s",
            start.elapsed().as_secs_f64(),
            per_second(n - last.0, last.1.elapsed())
        );
        if a.json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
        last = (n, Instant::now());
    }
    let elapsed = start.elapsed();
    let n = received.load(Relaxed);
    stop.store(true, Relaxed);
    w.await??;
    r.await??;
    let mut snap = Snapshot::empty();
    snap.add(&histogram);
    let latency = snap.summary();
    let msg_rate = per_second(n, elapsed);
    let wire_bytes = msg_rate * frame_bytes as f64;
    let summary = json!({
        "mode": "loopback-ceiling",
        "size": a.size,
        "seconds": elapsed.as_secs_f64(),
        "sent": sent.load(Relaxed),
        "received": n,
        "rate": msg_rate,
        "mbytes_per_second": wire_bytes / 1e6,
        "latency": latency,
    });
    let mut text = format!(
        "\nsummary: loopback ceiling, {} B bodies: {} msg/s ({:.0} MB/s of frames)\n",
        a.size,
        rate(msg_rate),
        wire_bytes / 1e6
    );
    if let Some(l) = &latency {
        text += &format!("  latency p50 {}  p99 {}\n", fmt_us(l.p50_us), fmt_us(l.p99_us));
    }
    emit(a.json, &summary, &text);
    Ok(true)
}

async fn write_loop(
    mut s: TcpStream,
    t: PublishTemplate,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Result<()> {
    let per_batch = (64 * 1024 / t.wire_len()).clamp(1, 2048) as u64;
    let mut buf = Vec::with_capacity(64 * 1024 + t.wire_len());
    let mut seq = 0u64;
    while !stop.load(Relaxed) {
        buf.clear();
        let nanos = wire::now_nanos();
        for i in seq..seq + per_batch {
            t.append(&mut buf, nanos, 0, (i + 1) as u32);
        }
        s.write_all(&buf).await?;
        seq += per_batch;
        sent.store(seq, Relaxed);
    }
    s.shutdown().await?;
    Ok(())
}

/// Reads until the writer shuts its side down.
async fn read_loop(mut s: TcpStream, received: Arc<AtomicU64>, h: Arc<Histogram>) -> Result<()> {
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut n = 0u64;
    let mut last_seq = 0u32;
    let mut out_of_order = 0u64;
    loop {
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(256 * 1024);
        }
        if s.read_buf(&mut buf).await? == 0 {
            break;
        }
        let now = wire::now_nanos();
        let used = split_frames(&buf, |f| {
            if f.kind == FRAME_BODY {
                if let Some(stamp) = wire::read_stamp(f.payload) {
                    h.record(now.saturating_sub(stamp.nanos));
                    if let Some((_, seq)) = stamp.origin {
                        out_of_order += u64::from(seq <= last_seq);
                        last_seq = seq;
                    }
                }
                n += 1;
            }
            Ok(())
        })?;
        buf.advance(used);
        received.store(n, Relaxed);
    }
    anyhow::ensure!(out_of_order == 0, "{out_of_order} frames out of order on a TCP stream?");
    Ok(())
}
