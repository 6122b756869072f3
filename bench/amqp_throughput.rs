//! Broker throughput with the stats sampler on and off.
//!
//! For each setting, starts a warren-server (the binary from
//! `WARREN_SERVER_BIN`, build it with `--release`), creates `QUEUES` idle
//! queues so the sampler has work, and times `MESSAGES` messages from one
//! publisher to one no-ack consumer through one queue. The message
//! counters themselves are always bumped (they are part of the broker);
//! what this compares is the sampler reading them every interval.
//!
//!     cargo build --release -p warren --bin warren-server
//!     WARREN_SERVER_BIN=target/release/warren-server \
//!         cargo run --release -p warren-tests --example amqp_throughput

use std::time::Instant;

use futures_lite::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use warren_tests::Server;
use warren_tests::http::{Api, json};

const MESSAGES: usize = 200_000;
const QUEUES: usize = 10_000;

async fn run(label: &str, args: &[&str]) -> f64 {
    let s = Server::start_with(args);
    let queues: Vec<_> = (0..QUEUES)
        .map(|i| json!({"name": format!("idle-{i}"), "vhost": "/", "durable": false, "auto_delete": false, "arguments": {}}))
        .collect();
    let r = Api::new(&s).post("/api/definitions", json!({ "queues": queues })).await;
    assert_eq!(r.code(), 204, "{:?}", r.body);
    let (_c, ch) = s.channel().await;
    ch.queue_declare("tp".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let (_c2, cch) = s.channel().await;
    let mut consumer = cch
        .basic_consume(
            "tp".into(),
            "".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let body = [7u8; 16];
    let start = Instant::now();
    let publisher = tokio::spawn(async move {
        for _ in 0..MESSAGES {
            ch.basic_publish(
                "".into(),
                "tp".into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            )
            .await
            .unwrap();
        }
        ch
    });
    let mut got = 0;
    while got < MESSAGES {
        consumer.next().await.expect("delivery").expect("ok");
        got += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = publisher.await;
    let rate = MESSAGES as f64 / secs;
    println!("{label:<32} {MESSAGES} messages in {secs:.2} s: {rate:.0} msg/s");
    rate
}

#[tokio::main]
async fn main() {
    let settings = [
        ("sampler off (--stats-interval-ms 0)", "0"),
        ("sampler every 5 s (default)", "5000"),
        ("sampler every 100 ms (stress)", "100"),
    ];
    let mut rates = vec![Vec::new(); settings.len()];
    // Alternate, to spread the machine's noise over every setting.
    for _ in 0..3 {
        for (i, (label, ms)) in settings.iter().enumerate() {
            rates[i].push(run(label, &["--stats-interval-ms", ms]).await);
        }
    }
    for ((label, _), r) in settings.iter().zip(&rates) {
        println!("mean {label:<32} {:.0} msg/s", r.iter().sum::<f64>() / r.len() as f64);
    }
}
