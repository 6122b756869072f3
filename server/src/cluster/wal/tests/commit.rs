//! Group commit, callback order, and poisoning after a failed write.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::super::{MetaKey, WalOptions};
use super::{TestDir, b, batch, noop};

#[test]
fn group_commit_batches_many_appends_per_fsync() {
    let dir = TestDir::new("commit");
    let wal = dir.open_with(WalOptions { fsync: true, ..Default::default() });
    const THREADS: u64 = 8;
    const APPENDS: u64 = 500;
    let seen: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let threads: Vec<_> = (0..THREADS)
        .map(|g| {
            let (wal, seen) = (wal.clone(), seen.clone());
            std::thread::spawn(move || {
                for i in 1..=APPENDS {
                    let seen = seen.clone();
                    wal.append(
                        g,
                        batch(g, i, 1),
                        Box::new(move |r| {
                            r.expect("durable");
                            seen.lock().push((g, i));
                        }),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    wal.flush().expect("flush");
    let seen = seen.lock();
    assert_eq!(seen.len() as u64, THREADS * APPENDS, "every callback ran");
    for g in 0..THREADS {
        let order: Vec<u64> = seen.iter().filter(|s| s.0 == g).map(|s| s.1).collect();
        assert_eq!(order, (1..=APPENDS).collect::<Vec<_>>(), "group {g} in order");
        assert_eq!(wal.last(g).map(|e| e.0), Some(APPENDS));
    }
    let stats = wal.stats();
    assert_eq!(stats.appends, THREADS * APPENDS);
    assert_eq!(stats.entries, THREADS * APPENDS);
    assert!(stats.fsyncs > 0);
    assert!(stats.fsyncs * 4 < stats.appends, "one fsync covers many appends: {stats:?}");
}

#[test]
fn callbacks_run_in_submission_order_across_groups() {
    let dir = TestDir::new("order");
    let wal = dir.open();
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    for n in 0..300u64 {
        let s = seen.clone();
        let done = Box::new(move |r: std::io::Result<()>| {
            r.expect("durable");
            s.lock().push(n);
        });
        let group = n % 7;
        if n % 5 == 0 {
            wal.set(group, MetaKey::Committed, b(&n.to_string()), Some(done));
        } else {
            wal.append(group, batch(group, wal.last(group).map_or(1, |e| e.0 + 1), 1), done);
        }
    }
    wal.flush().expect("flush");
    assert_eq!(*seen.lock(), (0..300).collect::<Vec<_>>());
}

#[test]
fn a_failed_write_poisons_the_wal() {
    let dir = TestDir::new("poison");
    let wal = dir.open();
    wal.append(1, batch(1, 1, 1), noop());
    wal.flush().expect("healthy");
    wal.inner.fail_writes.store(true, Ordering::Relaxed);
    let errors: Arc<Mutex<Vec<u64>>> = Arc::default();
    for i in 2..=4 {
        let e = errors.clone();
        wal.append(1, batch(1, i, 1), Box::new(move |r| e.lock().extend(r.err().map(|_| i))));
    }
    assert!(wal.flush().is_err());
    // Even once writes would succeed again, nothing is reported durable.
    wal.inner.fail_writes.store(false, Ordering::Relaxed);
    let e = errors.clone();
    wal.set(1, MetaKey::Vote, b("v"), Some(Box::new(move |r| e.lock().extend(r.err().map(|_| 5)))));
    assert!(wal.flush().is_err());
    assert_eq!(*errors.lock(), vec![2, 3, 4, 5]);
    // Reads still answer from memory.
    assert_eq!(wal.last(1).map(|e| e.0), Some(4));
    drop(wal);
    // What was durable before the failure comes back.
    let wal = dir.open();
    assert_eq!(wal.last(1).map(|e| e.0), Some(1));
}
