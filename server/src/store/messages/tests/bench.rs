//! Throughput figures, ignored by default; run in release with
//! `cargo test --release -p warren --lib store::messages::tests::bench -- --ignored --nocapture`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::{TestDir, msg};
use crate::store::messages::MessageStore;

#[test]
#[ignore]
fn bench_group_commit() {
    let dir = TestDir::new("bench-commit");
    let (store, _) = dir.open(&[1]);
    let (threads, per_thread) = (16, 50_000);
    let done = Arc::new(AtomicUsize::new(0));
    let body = [0x42u8; 100];
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (store, done) = (store.clone(), done.clone());
            s.spawn(move || {
                for _ in 0..per_thread {
                    store.append(&msg(&body), &[1]).expect("append");
                    let done = done.clone();
                    store.on_durable(Box::new(move || {
                        done.fetch_add(1, Ordering::Relaxed);
                    }));
                }
            });
        }
    });
    store.flush().expect("flush");
    let elapsed = started.elapsed();
    let st = store.stats();
    assert_eq!(done.load(Ordering::Relaxed), threads * per_thread);
    println!(
        "group commit: {} appends in {:.2?} = {:.0} appends/s durable; {} writes, {} fsyncs ({:.0} appends per write)",
        st.appends,
        elapsed,
        st.appends as f64 / elapsed.as_secs_f64(),
        st.writes,
        st.fsyncs,
        st.appends as f64 / st.writes as f64
    );
}

/// Publishers that each wait for their confirm before publishing again, as
/// a confirming AMQP client with a small window does: the batch size then
/// follows the number of publishers and the fsync latency.
#[test]
#[ignore]
fn bench_closed_loop_confirms() {
    for publishers in [1usize, 16, 128] {
        let dir = TestDir::new("bench-closed-loop");
        let (store, _) = dir.open(&[1]);
        let per_publisher = 4_000 / publishers.min(8) * 2;
        let body = [0x42u8; 100];
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..publishers {
                let store = store.clone();
                s.spawn(move || {
                    for _ in 0..per_publisher {
                        store.append(&msg(&body), &[1]).expect("append");
                        let (tx, rx) = std::sync::mpsc::sync_channel(1);
                        store.on_durable(Box::new(move || {
                            let _ = tx.send(());
                        }));
                        rx.recv().expect("confirm");
                    }
                });
            }
        });
        let elapsed = started.elapsed();
        let st = store.stats();
        println!(
            "closed loop, {publishers} publishers: {} confirms in {:.2?} = {:.0}/s, mean latency {:.2?}; {} fsyncs ({:.1} appends per write)",
            st.appends,
            elapsed,
            st.appends as f64 / elapsed.as_secs_f64(),
            elapsed / per_publisher as u32,
            st.fsyncs,
            st.appends as f64 / st.writes as f64
        );
    }
}

#[test]
#[ignore]
fn bench_recovery() {
    let n: u32 = 1_000_000;
    let dir = TestDir::new("bench-recovery");
    let queues: Vec<u32> = (1..=10).collect();
    {
        let (store, _) = dir.open(&queues);
        let started = Instant::now();
        for i in 0..n {
            let body = [i as u8; 100];
            let r = store.append(&msg(&body), &[1 + i % 10]).expect("append");
            if i % 10 == 0 {
                store.ack(r, 1 + i % 10);
            } else if i % 10 == 1 {
                store.mark_delivered(r, 1 + i % 10);
            }
        }
        store.flush().expect("flush");
        println!("wrote {n} messages in {:.2?}", started.elapsed());
    }
    let live: HashSet<u32> = queues.into_iter().collect();
    let started = Instant::now();
    let (_store, rec) = MessageStore::open(dir.cfg(), &live).expect("open");
    println!(
        "recovery: {} messages ({} segments) in {:.2?} (open total {:.2?}); {:.0} messages/s",
        rec.messages,
        rec.segments,
        rec.elapsed,
        started.elapsed(),
        f64::from(n) / rec.elapsed.as_secs_f64()
    );
    assert_eq!(rec.messages, u64::from(n) - u64::from(n) / 10);
}
