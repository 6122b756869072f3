//! Many threads appending with durability callbacks: every callback runs
//! exactly once, only after its record is in the file, and one fsync covers
//! many appends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::{TestDir, file_len, msg};

const THREADS: usize = 8;
const PER_THREAD: usize = 2_000;

#[test]
fn callbacks_run_once_after_their_data_is_written() {
    let dir = TestDir::new("concurrency");
    let (store, _) = dir.open(&[1, 2]);
    let runs: Arc<Vec<AtomicU32>> = Arc::new((0..THREADS * PER_THREAD).map(|_| AtomicU32::new(0)).collect());
    let early = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (store, runs, early, dir) = (store.clone(), runs.clone(), early.clone(), &dir);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let id = t * PER_THREAD + i;
                    let body = format!("thread {t} message {i}");
                    let r = store.append(&msg(body.as_bytes()), &[1 + (id % 2) as u32]).expect("append");
                    let (runs, early) = (runs.clone(), early.clone());
                    let path = dir.seg(r.segment);
                    store.on_durable(Box::new(move || {
                        if file_len(&path) < u64::from(r.offset + r.len) {
                            early.fetch_add(1, Ordering::Relaxed);
                        }
                        runs[id].fetch_add(1, Ordering::Relaxed);
                    }));
                }
            });
        }
    });
    store.flush().expect("flush");
    assert_eq!(early.load(Ordering::Relaxed), 0, "a callback ran before its record was written");
    for (id, n) in runs.iter().enumerate() {
        assert_eq!(n.load(Ordering::Relaxed), 1, "callback {id}");
    }
    let stats = store.stats();
    assert_eq!(stats.appends, (THREADS * PER_THREAD) as u64);
    println!("{} appends, {} writes, {} fsyncs", stats.appends, stats.writes, stats.fsyncs);
    assert!(stats.fsyncs >= 1);
    // On a real disk an fsync takes far longer than an append, so appends
    // pile up while it runs (a file system without fsync cost, such as tmpfs,
    // would make every round tiny).
    assert!(stats.fsyncs * 10 < stats.appends, "group commit: {stats:?}");
    // Everything is there after a reopen, in per-thread order.
    drop(store);
    let (store, rec) = dir.open(&[1, 2]);
    assert_eq!(rec.messages, (THREADS * PER_THREAD) as u64);
    let q1 = super::bodies(&store, &rec, 1);
    let q2 = super::bodies(&store, &rec, 2);
    assert_eq!(q1.len() + q2.len(), THREADS * PER_THREAD);
    for t in 0..THREADS {
        let prefix = format!("thread {t} message ");
        let seq: Vec<usize> = q1
            .iter()
            .chain(&q2)
            .filter_map(|b| std::str::from_utf8(b).ok()?.strip_prefix(&prefix)?.parse().ok())
            .collect();
        let mut sorted = seq.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..PER_THREAD).collect::<Vec<_>>());
    }
}

#[test]
fn flush_and_drop_from_another_thread_while_appending() {
    let dir = TestDir::new("drop-race");
    let (store, _) = dir.open(&[1]);
    let done = Arc::new(AtomicUsize::new(0));
    let appender = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            for i in 0..500u32 {
                store.append(&msg(&i.to_be_bytes()), &[1]).expect("append");
                let done = done.clone();
                store.on_durable(Box::new(move || {
                    done.fetch_add(1, Ordering::Relaxed);
                }));
            }
        })
    };
    store.flush().expect("flush");
    appender.join().expect("appender");
    // Dropping the last handle drains what is pending and runs its callbacks.
    drop(store);
    assert_eq!(done.load(Ordering::Relaxed), 500);
}
