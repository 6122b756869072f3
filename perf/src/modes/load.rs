//! `throughput` and `latency`: producers and consumers running together for
//! a fixed time.
//!
//! The clock starts once every consumer is registered and every producer
//! connected. At the end the producers stop, the counters are read (the
//! rates are over the run time only), and the consumers get up to
//! `--drain-timeout` seconds to receive what is still in flight, so that a
//! lost message shows up as `missing`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Topology, connect_consumers, connect_producers, emit, rate};
use crate::LoadArgs;
use crate::client::{Connection, Endpoint};
use crate::stats::{Reporter, Stats, fmt_us, per_second};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Throughput,
    Latency,
}

pub async fn run(a: LoadArgs, kind: Kind) -> Result<bool> {
    let ep = Endpoint::new(&a.common)?;
    let rate_limit = match kind {
        Kind::Latency => Some(a.rate.unwrap_or(1000.0)),
        Kind::Throughput => a.rate,
    };
    let stats = Arc::new(Stats::default());
    let topo = Topology::from_args(&a);
    let mut ctrl = Connection::open(&ep, "warren-perf control").await?;
    topo.declare(&mut ctrl).await?;

    let consumers = connect_consumers(&a, &topo, &stats).await?;
    let drain_timeout = Duration::from_secs_f64(a.drain_timeout);
    let producers = connect_producers(&a, &topo, &stats, rate_limit, None, drain_timeout).await?;
    let (cstop_tx, cstop) = watch::channel(false);
    let (pstop_tx, pstop) = watch::channel(false);
    let ctasks: Vec<JoinHandle<()>> = consumers
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (stop, stats) = (cstop.clone(), stats.clone());
            tokio::spawn(async move {
                if let Err(e) = c.run(stop).await {
                    stats.error(&format!("consumer {i}"), &e);
                }
            })
        })
        .collect();
    let start = Instant::now();
    let ptasks: Vec<JoinHandle<bool>> = producers
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let (stop, stats) = (pstop.clone(), stats.clone());
            tokio::spawn(async move {
                match p.run(stop).await {
                    Ok(o) => o.closed_cleanly,
                    Err(e) => {
                        stats.error(&format!("producer {i}"), &e);
                        false
                    }
                }
            })
        })
        .collect();

    let mut reporter = Reporter::new(stats.clone(), a.common.json);
    let end = a.time.map(|t| start + Duration::from_secs_f64(t));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut next_tick = start + Duration::from_secs(1);
    loop {
        let wake = end.map_or(next_tick, |e| e.min(next_tick));
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = &mut ctrl_c => break,
        }
        let now = Instant::now();
        if now >= next_tick {
            reporter.tick();
            next_tick += Duration::from_secs(1);
        }
        if end.is_some_and(|e| now >= e) || stats.has_errors() {
            break;
        }
    }
    let _ = pstop_tx.send(true);
    let elapsed = start.elapsed();
    let at_end = stats.counters();
    let latency = stats.latency_snapshot().summary();
    // Each producer waits (up to the drain timeout) for the broker to read
    // what it wrote; if one gives up, what was lost on the way is unknown.
    let mut producers_clean = true;
    for t in ptasks {
        producers_clean &= t.await.unwrap_or(false);
    }

    // Let the consumers take what is in flight, then check the count.
    let published = stats.published.load(Relaxed);
    let expected = topo.copies(a.producers, a.consumers).filter(|_| producers_clean).map(|c| c * published);
    let drain = drain(&stats, expected, a.consumers, drain_timeout).await;
    let _ = cstop_tx.send(true);
    for t in ctasks {
        let _ = t.await;
    }
    let total_consumed = stats.consumed.load(Relaxed);
    let left_in_queues = topo.depth(&mut ctrl).await.ok();
    if !a.keep_queues
        && let Err(e) = topo.delete(&mut ctrl).await
    {
        stats.error("cleanup", &e);
    }
    let _ = ctrl.close().await;

    let secs = elapsed.as_secs_f64();
    let out_of_order = stats.out_of_order.load(Relaxed);
    let missing = expected.map(|e| e as i64 - total_consumed as i64);
    let errors = stats.errors();
    let summary = json!({
        "mode": match kind { Kind::Throughput => "throughput", Kind::Latency => "latency" },
        "producers": a.producers,
        "consumers": a.consumers,
        "queues": topo.queues.len(),
        "size": a.size,
        "persistent": a.persistent(),
        "confirm": a.confirm,
        "autoack": a.autoack,
        "prefetch": a.prefetch,
        "rate_limit": rate_limit,
        "seconds": secs,
        "published": at_end.published,
        "confirmed": at_end.confirmed,
        "nacked": at_end.nacked,
        "returned": at_end.returned,
        "consumed": at_end.consumed,
        "publish_rate": per_second(at_end.published, elapsed),
        "confirm_rate": per_second(at_end.confirmed, elapsed),
        "consume_rate": per_second(at_end.consumed, elapsed),
        "latency": latency,
        "checks": {
            "published_total": published,
            "consumed_total": total_consumed,
            "expected_total": expected,
            "missing": missing,
            "drain": drain,
            "producers_closed_cleanly": producers_clean,
            "out_of_order": out_of_order,
            "redelivered": stats.redelivered.load(Relaxed),
            "left_in_queues": left_in_queues,
        },
        "per_second": reporter.seconds,
        "errors": errors,
    });
    let mut text = format!(
        "\nsummary: {} for {secs:.1} s, {} producer(s), {} consumer(s), {} queue(s), {} B\n",
        summary["mode"].as_str().unwrap_or_default(),
        a.producers,
        a.consumers,
        topo.queues.len(),
        a.size
    );
    text += &format!(
        "  published {} msg/s ({} messages)",
        rate(per_second(at_end.published, elapsed)),
        at_end.published
    );
    if a.confirm.is_some() {
        text += &format!(
            ", confirmed {} msg/s, nacked {}",
            rate(per_second(at_end.confirmed, elapsed)),
            at_end.nacked
        );
    }
    text += &format!(
        "\n  consumed  {} msg/s ({} messages)\n",
        rate(per_second(at_end.consumed, elapsed)),
        at_end.consumed
    );
    if let Some(l) = &latency {
        text += &format!(
            "  latency p50 {}  p75 {}  p95 {}  p99 {}  max {}\n",
            fmt_us(l.p50_us),
            fmt_us(l.p75_us),
            fmt_us(l.p95_us),
            fmt_us(l.p99_us),
            fmt_us(l.max_us)
        );
    }
    if let Some(m) = missing {
        text += &format!(
            "  after the drain ({drain}): consumed {total_consumed} of {} expected (missing {m})\n",
            expected.unwrap_or(0)
        );
    }
    if !producers_clean {
        text +=
            "  the broker had not read all publishes when the producers gave up waiting: no count check\n";
    }
    if out_of_order > 0 {
        text += &format!("  OUT OF ORDER: {out_of_order} messages\n");
    }
    for e in &errors {
        text += &format!("  error: {e}\n");
    }
    emit(a.common.json, &summary, &text);
    // A shortfall after a timed-out drain can be a backlog, not a loss, so
    // only errors and reordering fail the run; `missing` is reported.
    Ok(errors.is_empty() && out_of_order == 0)
}

/// Waits for the consumers to receive what is still in flight. Returns
/// "complete" (every expected delivery arrived), "stalled" (nothing arrived
/// for 2 s: what is missing is lost), "timed_out" (still arriving at the
/// deadline: a backlog, not a loss), "idle" (no count to expect, and
/// nothing arrived for 0.5 s) or "none" (no consumers).
async fn drain(stats: &Stats, expected: Option<u64>, consumers: usize, timeout: Duration) -> &'static str {
    if consumers == 0 {
        return "none";
    }
    let deadline = Instant::now() + timeout;
    let mut last = (stats.consumed.load(Relaxed), Instant::now());
    loop {
        let consumed = stats.consumed.load(Relaxed);
        if expected.is_some_and(|e| consumed >= e) {
            return "complete";
        }
        if consumed != last.0 {
            last = (consumed, Instant::now());
        } else if expected.is_none() && last.1.elapsed() > Duration::from_millis(500) {
            return "idle";
        } else if last.1.elapsed() > Duration::from_secs(2) {
            return "stalled";
        }
        if Instant::now() >= deadline {
            return "timed_out";
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
