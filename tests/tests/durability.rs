//! Durability: definitions and persistent messages survive a restart, a
//! confirm means the message is on disk even across kill -9, and damaged
//! files give a clear log line and a safe start.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind};
use warren_tests::{Server, reply_code, unique};

const T: Duration = Duration::from_secs(10);

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..Default::default() }
}

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions { passive: true, ..Default::default() }
}

/// A body that carries its own number and can be checked byte for byte.
fn body_for(i: u32, size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size.max(8)];
    b[..4].copy_from_slice(&i.to_be_bytes());
    for (j, x) in b.iter_mut().enumerate().skip(4) {
        *x = (i as usize * 31 + j) as u8;
    }
    b
}

fn number_of(body: &[u8]) -> u32 {
    let i = u32::from_be_bytes(body[..4].try_into().unwrap());
    assert_eq!(body, body_for(i, body.len()), "message {i} is corrupted");
    i
}

fn props_for(i: u32) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert("n".into(), AMQPValue::LongLongInt(i64::from(i)));
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/x-test".into())
        .with_correlation_id(ShortString::from(format!("c-{i}")))
        .with_headers(h)
}

async fn count(ch: &Channel, q: &str) -> u32 {
    ch.queue_declare(q.into(), passive(), FieldTable::default()).await.unwrap().message_count()
}

/// Drains a queue with basic.get, checking bodies and properties.
async fn drain(ch: &Channel, q: &str) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    while let Some(m) = ch.basic_get(q.into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        let i = number_of(&m.delivery.data);
        let p = &m.delivery.properties;
        assert_eq!(p.delivery_mode(), &Some(2));
        assert_eq!(p.content_type().as_ref().map(|s| s.as_str()), Some("application/x-test"));
        assert_eq!(p.correlation_id().as_ref().map(|s| s.to_string()), Some(format!("c-{i}")));
        let n = p.headers().as_ref().and_then(|h| h.inner().get("n").cloned());
        assert_eq!(n, Some(AMQPValue::LongLongInt(i64::from(i))));
        out.push((i, m.delivery.redelivered));
    }
    out
}

#[tokio::test]
async fn definitions_and_persistent_messages_survive_a_restart() {
    let mut s = Server::start();
    let (q, tq, x) = (unique("lqz1"), unique("transient"), unique("x"));
    {
        let (_c, ch) = s.channel().await;
        ch.confirm_select(Default::default()).await.unwrap();
        ch.queue_declare(q.as_str().into(), durable(), FieldTable::default()).await.unwrap();
        ch.queue_declare(tq.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            q.as_str().into(),
            x.as_str().into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        for i in 0..50 {
            ch.basic_publish(
                x.as_str().into(),
                "k".into(),
                Default::default(),
                &body_for(i, 100),
                props_for(i),
            )
            .await
            .unwrap();
        }
        // A transient message in the durable queue does not survive.
        ch.basic_publish(
            "".into(),
            q.as_str().into(),
            Default::default(),
            b"transient",
            BasicProperties::default(),
        )
        .await
        .unwrap();
        ch.wait_for_confirms().await.unwrap();
    }
    s.restart();
    let (_c, ch) = s.channel().await;
    let got = drain(&ch, &q).await;
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
    assert!(got.iter().all(|(_, r)| !r), "never delivered, so not redelivered");
    // The durable exchange and its binding are back.
    ch.basic_publish(x.as_str().into(), "k".into(), Default::default(), &body_for(7, 10), props_for(7))
        .await
        .unwrap();
    assert_eq!(count(&ch, &q).await, 1);
    // The transient queue is gone.
    let err = ch.queue_declare(tq.as_str().into(), passive(), FieldTable::default()).await.unwrap_err();
    assert_eq!(reply_code(&err), Some(404));
}

#[tokio::test]
async fn kill_9_during_a_confirmed_publish_stream_loses_no_confirmed_message() {
    let mut s = Server::start();
    let q = unique("stream");
    let confirmed = Arc::new(parking_lot_free::Set::default());
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (_c, ch) = s.channel().await;
        ch.queue_declare(q.as_str().into(), durable(), FieldTable::default()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        let (ch2, q2, confirmed2, stop2) = (ch.clone(), q.clone(), confirmed.clone(), stop.clone());
        let publisher = tokio::spawn(async move {
            let mut window = Vec::new();
            let mut i = 0u32;
            while !stop2.load(Ordering::Relaxed) {
                let body = body_for(i, 512);
                let pc =
                    ch2.basic_publish("".into(), q2.as_str().into(), Default::default(), &body, props_for(i));
                match pc.await {
                    Ok(c) => window.push((i, c)),
                    Err(_) => break,
                }
                i += 1;
                if window.len() >= 200 {
                    for (n, c) in window.drain(..) {
                        match c.await {
                            Ok(Confirmation::Ack(_)) => confirmed2.insert(n),
                            _ => return,
                        }
                    }
                }
            }
        });
        // Let the stream run until a good number are confirmed, then crash.
        let until = std::time::Instant::now() + T;
        while confirmed.len() < 3000 && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(confirmed.len() >= 3000, "only {} confirms in time", confirmed.len());
        s.crash_and_restart();
        stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(T, publisher).await;
    }
    let (_c, ch) = s.channel().await;
    let got: BTreeSet<u32> = drain(&ch, &q).await.into_iter().map(|(i, _)| i).collect();
    let confirmed = confirmed.snapshot();
    let lost: Vec<u32> = confirmed.difference(&got).copied().collect();
    assert!(
        lost.is_empty(),
        "{} confirmed messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let extra = got.len() - confirmed.len();
    println!(
        "kill -9 during publish: {} confirmed, {} recovered, {extra} unconfirmed extras",
        confirmed.len(),
        got.len()
    );
}

#[tokio::test]
async fn kill_9_while_consuming_with_manual_acks_loses_nothing() {
    let mut s = Server::start();
    let q = unique("consume");
    let n = 600u32;
    {
        let (c, ch) = s.channel().await;
        ch.queue_declare(q.as_str().into(), durable(), FieldTable::default()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for i in 0..n {
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                &body_for(i, 64),
                props_for(i),
            )
            .await
            .unwrap();
        }
        ch.wait_for_confirms().await.unwrap();
        let cch = c.create_channel().await.unwrap();
        cch.basic_qos(300, Default::default()).await.unwrap();
        let mut cons = cch
            .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
            .await
            .unwrap();
        // Receive 300 (the prefetch), stop the consumer so that acks do not
        // let more in, then ack the first 200.
        let mut held = Vec::new();
        for _ in 0..300 {
            held.push(tokio::time::timeout(T, cons.next()).await.unwrap().unwrap().unwrap());
        }
        cch.basic_cancel(cons.tag(), Default::default()).await.unwrap();
        for d in &held[..200] {
            d.ack(Default::default()).await.unwrap();
        }
        // A confirmed publish on another channel makes the store write out
        // everything recorded before it, acks and delivery marks included.
        let q2 = unique("sync");
        ch.queue_declare(q2.as_str().into(), durable(), FieldTable::default()).await.unwrap();
        ch.basic_publish(
            "".into(),
            q2.as_str().into(),
            Default::default(),
            b"sync",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
        s.crash_and_restart();
    }
    let (_c, ch) = s.channel().await;
    let got = drain(&ch, &q).await;
    let numbers: Vec<u32> = got.iter().map(|(i, _)| *i).collect();
    assert_eq!(numbers, (200..n).collect::<Vec<_>>(), "acked ones gone, the rest back in order");
    for (i, redelivered) in got {
        assert_eq!(redelivered, i < 300, "message {i}: redelivered flag");
    }
}

fn segment_files(data: &PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data.join("msgs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn torn_or_corrupt_segment_tail_is_dropped_with_a_log_line() {
    let mut s = Server::start();
    let q = unique("torn");
    {
        let (_c, ch) = s.channel().await;
        ch.queue_declare(q.as_str().into(), durable(), FieldTable::default()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for i in 0..100 {
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                &body_for(i, 200),
                props_for(i),
            )
            .await
            .unwrap();
        }
        ch.wait_for_confirms().await.unwrap();
    }
    s.stop();
    // Cut the last record in half, as a power loss during a write would.
    let last = segment_files(&s.data_dir).pop().expect("a segment");
    let len = std::fs::metadata(&last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(len - 100).unwrap();
    drop(f);
    s.start_again();
    assert!(s.wait_for_log("truncat", T), "no log line about the torn tail:\n{}", s.log_text());
    let (_c, ch) = s.channel().await;
    let got: Vec<u32> = drain(&ch, &q).await.into_iter().map(|(i, _)| i).collect();
    assert_eq!(got, (0..99).collect::<Vec<_>>());

    // Now flip a byte inside the (new) last record: its checksum fails.
    {
        let (_c, ch) = s.channel().await;
        ch.confirm_select(Default::default()).await.unwrap();
        for i in 0..10 {
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                &body_for(i, 200),
                props_for(i),
            )
            .await
            .unwrap();
        }
        ch.wait_for_confirms().await.unwrap();
    }
    s.stop();
    let last = segment_files(&s.data_dir).pop().expect("a segment");
    let mut bytes = std::fs::read(&last).unwrap();
    let at = bytes.len() - 50;
    bytes[at] ^= 0xFF;
    std::fs::write(&last, bytes).unwrap();
    s.start_again();
    let (_c, ch) = s.channel().await;
    let got: Vec<u32> = drain(&ch, &q).await.into_iter().map(|(i, _)| i).collect();
    assert_eq!(got, (0..9).collect::<Vec<_>>(), "the corrupt record is dropped, never delivered");
}

#[tokio::test]
async fn a_data_dir_from_a_newer_warren_is_refused_clearly() {
    let mut s = Server::start();
    s.stop();
    let db = s.data_dir.join("definitions.db");
    assert!(db.exists());
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"insert into _sqlx_migrations(version, description, success, checksum, execution_time) values (99999, 'from the future', 1, x'00', 0)\"); \
             c.commit()",
        ])
        .arg(&db)
        .status()
        .unwrap();
    assert!(status.success());
    let (status, log) = s.start_expecting_failure();
    assert!(!status.success(), "must refuse to start");
    assert!(log.contains("newer"), "log should say the data dir is newer:\n{log}");
}

#[tokio::test]
async fn kill_9_during_declarations_leaves_a_consistent_store() {
    let mut s = Server::start();
    let mut declared = Vec::new();
    {
        let (_c, ch) = s.channel().await;
        for i in 0..40 {
            let q = unique(&format!("decl{i}"));
            ch.queue_declare(q.as_str().into(), durable(), FieldTable::default()).await.unwrap();
            declared.push(q);
        }
        // Crash with more declarations in flight.
        let ch2 = ch.clone();
        let flood = tokio::spawn(async move {
            for i in 0..1000 {
                let q = format!("flood-{i}");
                if ch2.queue_declare(q.as_str().into(), durable(), FieldTable::default()).await.is_err() {
                    break;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.crash_and_restart();
        let _ = tokio::time::timeout(T, flood).await;
    }
    let (_c, ch) = s.channel().await;
    for q in declared {
        ch.queue_declare(q.as_str().into(), passive(), FieldTable::default()).await.unwrap();
    }
}

/// A tiny thread-safe set, so the test needs no extra dependency.
mod parking_lot_free {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Set(Mutex<BTreeSet<u32>>);

    impl Set {
        pub fn insert(&self, v: u32) {
            self.0.lock().unwrap().insert(v);
        }
        pub fn len(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        pub fn snapshot(&self) -> BTreeSet<u32> {
            self.0.lock().unwrap().clone()
        }
    }
}

#[tokio::test]
async fn sigterm_closes_clients_with_connection_forced_and_restarts_cleanly() {
    let mut s = Server::start();
    let q = unique("term");
    let (c, ch) = s.channel().await;
    ch.queue_declare(q.as_str().into(), durable(), FieldTable::default()).await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    ch.basic_publish("".into(), q.as_str().into(), Default::default(), &body_for(1, 10), props_for(1))
        .await
        .unwrap()
        .await
        .unwrap();
    s.stop();
    assert!(
        s.log_text().contains("CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
    );
    let closed = warren_tests::eventually(T, || async { (!c.status().connected()).then_some(()) }).await;
    assert!(closed.is_some(), "the client should have been told to go");
    s.start_again();
    // A clean stop needs no repair at the next start.
    assert!(!s.log_text().contains("truncat"));
    let (_c, ch) = s.channel().await;
    assert_eq!(drain(&ch, &q).await, vec![(1, false)]);
}

#[tokio::test]
async fn a_large_import_is_stored_in_chunks_and_a_refused_item_keeps_what_came_before() {
    use warren_tests::http::{Api, json};
    let mut s = Server::start();
    let api = Api::new(&s);
    assert_eq!(api.put("/api/queues/%2F/clash", json!({"durable": true})).await.code(), 201);
    // More queues than one chunk of the store's writes, then one that
    // contradicts an existing queue.
    let mut queues: Vec<_> = (0..2500)
        .map(|i| json!({"name": format!("imp-{i}"), "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}))
        .collect();
    queues.push(json!({"name": "clash", "vhost": "/", "durable": true, "auto_delete": false,
                       "arguments": {"x-max-length": 5}}));
    queues.push(
        json!({"name": "after-clash", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}),
    );
    let r = api.post("/api/definitions", json!({ "queues": queues })).await;
    assert!(r.code() >= 400, "{}", r.body);
    assert!(r.reason().contains("inequivalent arg 'x-max-length'"), "{}", r.body);

    s.restart();
    let api = Api::new(&s);
    let page = api.ok("/api/queues?page=1&page_size=1&name=imp-").await;
    assert_eq!(page["filtered_count"], 2500, "every queue before the refused one survives a restart");
    assert_eq!(api.get("/api/queues/%2F/imp-2499").await.code(), 200);
    assert_eq!(api.ok("/api/queues/%2F/clash").await["arguments"], json!({}));
    assert_eq!(api.get("/api/queues/%2F/after-clash").await.code(), 404);
}

/// The harness itself: a restart on the same ports waits while another
/// socket holds one of them for a moment (as another test's outgoing
/// connection can, by chance), instead of failing the test.
#[tokio::test]
async fn a_restart_waits_for_a_port_held_for_a_moment() {
    let mut s = Server::start();
    let http = s.http_port;
    s.stop();
    let holder = std::net::TcpListener::bind(("127.0.0.1", http)).expect("hold the port");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(holder);
    });
    s.start_again();
    release.join().unwrap();
    assert_eq!(s.http_port, http);
    let (_c, _ch) = s.channel().await;
}
