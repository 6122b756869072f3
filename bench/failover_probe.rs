//! How long a replicated queue stops confirming when its leader dies: a
//! publisher of persistent messages with confirms (a window of 100) to one
//! queue, through the first of the given brokers that answers (reconnecting
//! to the next on failure), for a fixed time. It prints, as JSON, how many
//! messages were confirmed and the longest time between two confirms: the
//! outage a kill of the leader caused, as a client sees it. The bench
//! script kills the leader while it runs.
//!
//!     cargo run --release -p warren-tests --example failover_probe -- \
//!         SECONDS QUEUE URI [URI...]

use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args[1].parse().expect("seconds");
    let queue = args[2].clone();
    let uris = &args[3..];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let body = vec![b'x'; 1024];
    let (mut confirmed, mut nacked, mut reconnects) = (0u64, 0u64, 0u64);
    let mut last_confirm = Instant::now();
    let (mut longest, mut longest_at) = (Duration::ZERO, 0.0f64);
    let mut turn = 0usize;
    'outer: while Instant::now() < end {
        let uri = &uris[turn % uris.len()];
        turn += 1;
        let conn = match Connection::connect(uri, ConnectionProperties::default()).await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        reconnects += 1;
        let Ok(ch) = conn.create_channel().await else { continue };
        if ch.confirm_select(ConfirmSelectOptions::default()).await.is_err() {
            continue;
        }
        while Instant::now() < end {
            let mut window = Vec::with_capacity(100);
            for _ in 0..100 {
                let props = BasicProperties::default().with_delivery_mode(2);
                match ch
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        props,
                    )
                    .await
                {
                    Ok(c) => window.push(c),
                    Err(_) => continue 'outer,
                }
            }
            for c in window {
                match tokio::time::timeout(Duration::from_secs(10), c).await {
                    Ok(Ok(c)) if c.is_ack() => {
                        confirmed += 1;
                        let now = Instant::now();
                        let gap = now - last_confirm;
                        if gap > longest {
                            longest = gap;
                            longest_at = (last_confirm - start).as_secs_f64();
                        }
                        last_confirm = now;
                    }
                    Ok(Ok(_)) => nacked += 1,
                    _ => continue 'outer,
                }
            }
        }
    }
    println!(
        "{{\"confirmed\": {confirmed}, \"nacked\": {nacked}, \"connections\": {reconnects}, \"longest_gap_s\": {:.3}, \"gap_started_at_s\": {longest_at:.3}}}",
        longest.as_secs_f64()
    );
}
