//! `connection-churn` and `queue-churn`: one operation after another, each
//! timed, reported as a rate and latency percentiles.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{emit, rate};
use crate::ChurnArgs;
use crate::client::{Connection, Endpoint, QueueOptions};
use crate::stats::{Histogram, Snapshot, fmt_us, per_second};

/// Connects (handshake through connection.open-ok) and closes (close,
/// close-ok), `--count` times in sequence.
pub async fn connections(a: ChurnArgs) -> Result<bool> {
    let ep = Endpoint::new(&a.common)?;
    let h = Histogram::default();
    let start = Instant::now();
    let mut errors = Vec::new();
    for i in 0..a.count {
        let t = Instant::now();
        let r = async {
            let c = Connection::connect(&ep, "warren-perf churn").await?;
            c.close().await
        }
        .await;
        if let Err(e) = r {
            errors.push(format!("connection {i}: {e:#}"));
            if errors.len() >= 10 {
                break;
            }
        }
        h.record(t.elapsed().as_nanos() as u64);
    }
    report(&a, "connection-churn", "connections", start, &h, errors)
}

/// Declares and deletes `--count` queues in sequence on one channel (or
/// only declares them with `--keep-queues`).
pub async fn queues(a: ChurnArgs) -> Result<bool> {
    let ep = Endpoint::new(&a.common)?;
    let mut c = Connection::open(&ep, "warren-perf queue churn").await?;
    let opts = QueueOptions { durable: a.durable, ..QueueOptions::default() };
    let h = Histogram::default();
    let start = Instant::now();
    let mut errors = Vec::new();
    for i in 0..a.count {
        let name = format!("{}{i}", a.queue_prefix);
        let t = Instant::now();
        let r = async {
            c.queue_declare(&name, &opts).await?;
            if !a.keep_queues {
                c.queue_delete(&name).await?;
            }
            anyhow::Ok(())
        }
        .await;
        h.record(t.elapsed().as_nanos() as u64);
        if let Err(e) = r {
            // The channel is closed after an error; stop rather than cascade.
            errors.push(format!("queue {name}: {e:#}"));
            break;
        }
    }
    let what = if a.keep_queues { "queues declared" } else { "queues declared and deleted" };
    let ok = report(&a, "queue-churn", what, start, &h, errors);
    let _ = c.close().await;
    ok
}

fn report(
    a: &ChurnArgs,
    mode: &str,
    what: &str,
    start: Instant,
    h: &Histogram,
    errors: Vec<String>,
) -> Result<bool> {
    let elapsed = start.elapsed();
    let mut snap = Snapshot::empty();
    snap.add(h);
    let done = snap.count();
    let latency = snap.summary();
    let summary = json!({
        "mode": mode,
        "count": done,
        "seconds": elapsed.as_secs_f64(),
        "rate": per_second(done, elapsed),
        "latency": latency,
        "errors": errors,
    });
    let mut text = format!(
        "summary: {done} {what} in {:.2} s: {} per second\n",
        elapsed.as_secs_f64(),
        rate(per_second(done, elapsed))
    );
    if let Some(l) = &latency {
        text += &format!(
            "  each: p50 {}  p99 {}  max {}\n",
            fmt_us(l.p50_us),
            fmt_us(l.p99_us),
            fmt_us(l.max_us)
        );
    }
    for e in &errors {
        text += &format!("  error: {e}\n");
    }
    emit(a.common.json, &summary, &text);
    Ok(errors.is_empty())
}
