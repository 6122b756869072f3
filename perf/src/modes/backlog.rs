//! `backlog`: publish `--count` messages with no consumer, wait until the
//! queues report them all (a passive declare), optionally hold, then drain
//! them with the consumers and time it.
//!
//! "backlog ready" goes to stderr when the queues are full, so that a
//! benchmark script can sample the broker's memory at that moment.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;
use tokio::sync::watch;

use super::{Topology, connect_consumers, connect_producers, emit, rate};
use crate::LoadArgs;
use crate::client::{Connection, Endpoint};
use crate::stats::{Stats, per_second};

pub async fn run(a: LoadArgs) -> Result<bool> {
    if a.consumers == 0 || a.producers == 0 {
        bail!("backlog needs at least one producer and one consumer");
    }
    let ep = Endpoint::new(&a.common)?;
    let stats = Arc::new(Stats::default());
    let topo = Topology::from_args(&a);
    let mut ctrl = Connection::open(&ep, "warren-perf control").await?;
    topo.declare(&mut ctrl).await?;
    for q in &topo.queues {
        ctrl.queue_purge(q).await?;
    }
    let expected = topo.copies(a.producers, a.consumers).unwrap_or(1) * a.count;
    let timeout = Duration::from_secs_f64(a.drain_timeout);
    let say = |line: String| {
        if a.common.json { eprintln!("{line}") } else { println!("{line}") }
    };

    // 1. Publish, waiting for confirms if asked.
    let producers = connect_producers(&a, &topo, &stats, a.rate, Some(a.count), timeout).await?;
    let (_stop_tx, stop) = watch::channel(false);
    let start = Instant::now();
    let tasks: Vec<_> = producers.into_iter().map(|p| tokio::spawn(p.run(stop.clone()))).collect();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await? {
            Ok(o) if !o.closed_cleanly => stats.error(
                &format!("producer {i}"),
                &anyhow::anyhow!("the broker did not read all our publishes"),
            ),
            Ok(_) => {}
            Err(e) => stats.error(&format!("producer {i}"), &e),
        }
    }
    let publish_time = start.elapsed();
    let published = stats.published.load(Relaxed);
    say(format!("backlog: published {published} messages in {:.2} s", publish_time.as_secs_f64()));

    // 2. Wait until the broker holds them all, or stops taking more.
    let mut depth = 0;
    let mut last = (0, Instant::now());
    while start.elapsed() < publish_time + timeout {
        depth = topo.depth(&mut ctrl).await?;
        if depth >= expected {
            break;
        }
        if depth != last.0 {
            last = (depth, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queued_time = start.elapsed();
    eprintln!("backlog ready: {depth} messages queued after {:.2} s", queued_time.as_secs_f64());
    if depth < expected {
        stats.error("backlog", &anyhow::anyhow!("only {depth} of {expected} messages reached the queues"));
    }
    if a.hold > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(a.hold)).await;
    }

    // 3. Drain.
    let drain_start = Instant::now();
    let consumers = connect_consumers(&a, &topo, &stats).await?;
    let (cstop_tx, cstop) = watch::channel(false);
    let ctasks: Vec<_> = consumers.into_iter().map(|c| tokio::spawn(c.run(cstop.clone()))).collect();
    let mut last = (0, Instant::now());
    loop {
        let consumed = stats.consumed.load(Relaxed);
        if consumed >= depth {
            break;
        }
        if consumed != last.0 {
            last = (consumed, Instant::now());
        } else if last.1.elapsed() > timeout {
            stats.error("backlog", &anyhow::anyhow!("drain stalled at {consumed} of {depth} messages"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain_time = drain_start.elapsed();
    let consumed = stats.consumed.load(Relaxed);
    let _ = cstop_tx.send(true);
    for (i, t) in ctasks.into_iter().enumerate() {
        if let Err(e) = t.await? {
            stats.error(&format!("consumer {i}"), &e);
        }
    }
    let left = topo.depth(&mut ctrl).await.ok();
    if !a.keep_queues
        && let Err(e) = topo.delete(&mut ctrl).await
    {
        stats.error("cleanup", &e);
    }
    let _ = ctrl.close().await;

    let errors = stats.errors();
    let summary = json!({
        "mode": "backlog",
        "producers": a.producers,
        "consumers": a.consumers,
        "queues": topo.queues.len(),
        "size": a.size,
        "persistent": a.persistent(),
        "confirm": a.confirm,
        "count": a.count,
        "published": published,
        "confirmed": stats.confirmed.load(Relaxed),
        "queued": depth,
        "consumed": consumed,
        "left_in_queues": left,
        "publish_seconds": publish_time.as_secs_f64(),
        "queued_seconds": queued_time.as_secs_f64(),
        "drain_seconds": drain_time.as_secs_f64(),
        "publish_rate": per_second(published, publish_time),
        "enqueue_rate": per_second(depth, queued_time),
        "drain_rate": per_second(consumed, drain_time),
        "latency": stats.latency_snapshot().summary(),
        "out_of_order": stats.out_of_order.load(Relaxed),
        "errors": errors,
    });
    let mut text = format!(
        "\nsummary: backlog of {} messages of {} B\n  published {} msg/s, all queued after {:.2} s ({} msg/s)\n  drained {} msg/s ({consumed} messages in {:.2} s)\n",
        a.count,
        a.size,
        rate(per_second(published, publish_time)),
        queued_time.as_secs_f64(),
        rate(per_second(depth, queued_time)),
        rate(per_second(consumed, drain_time)),
        drain_time.as_secs_f64(),
    );
    for e in &errors {
        text += &format!("  error: {e}\n");
    }
    emit(a.common.json, &summary, &text);
    Ok(errors.is_empty())
}
