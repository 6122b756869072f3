//! The store under stress and failure: reads racing the writer, a callback
//! that panics, and a write error that poisons the store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use super::{TestDir, msg};

#[test]
fn reads_racing_the_writer_always_see_whole_records() {
    let dir = TestDir::new("read-race");
    let (store, _) = dir.open(&[1]);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..1_500u32 {
                    let body: Vec<u8> = (0..(i % 300)).map(|j| (j ^ t) as u8).collect();
                    let r = store.append(&msg(&body), &[1]).expect("append");
                    if i % 7 == 0 {
                        store.on_durable(Box::new(|| {}));
                    }
                    assert_eq!(&store.read(r).expect("read").body[..], &body[..]);
                }
            });
        }
    });
    // Reads may all have been served from the unwritten batch; a flush
    // makes the writer's work certain instead of a matter of timing.
    store.flush().expect("flush");
    assert!(store.stats().writes > 0);
}

#[test]
fn a_panicking_callback_does_not_stop_the_store() {
    let dir = TestDir::new("callback-panic");
    let (store, _) = dir.open(&[1]);
    store.append(&msg(b"a"), &[1]).expect("append");
    store.on_durable(Box::new(|| panic!("callback bug (expected by this test)")));
    let ran = Arc::new(AtomicUsize::new(0));
    let ran2 = ran.clone();
    store.on_durable(Box::new(move || {
        ran2.fetch_add(1, Ordering::Relaxed);
    }));
    store.flush().expect("flush after a panicking callback");
    assert_eq!(ran.load(Ordering::Relaxed), 1);
    let r = store.append(&msg(b"b"), &[1]).expect("append");
    store.flush().expect("flush");
    assert_eq!(&store.read(r).expect("read").body[..], b"b");
}

#[test]
fn a_write_error_fails_callbacks_and_later_appends() {
    let dir = TestDir::new("write-error");
    let (store, _) = dir.open(&[1]);
    // The directory vanishes, so the first segment cannot be created (this
    // stands in for a full or failing disk, which root cannot simulate with
    // permissions).
    std::fs::remove_dir_all(&dir.0).expect("remove dir");
    store.append(&msg(b"lost"), &[1]).expect("buffered append succeeds");
    let plain_ran = Arc::new(AtomicUsize::new(0));
    let plain = plain_ran.clone();
    store.on_durable(Box::new(move || {
        plain.fetch_add(1, Ordering::Relaxed);
    }));
    let (tx, rx) = mpsc::channel();
    store.on_durable_result(Box::new(move |res| {
        let _ = tx.send(res.is_err());
    }));
    assert!(rx.recv().expect("result callback ran"), "reported the failure");
    assert_eq!(plain_ran.load(Ordering::Relaxed), 0, "plain callback dropped");
    assert!(store.append(&msg(b"more"), &[1]).is_err());
    assert!(store.flush().is_err());
    drop(store);
}

#[test]
fn callbacks_may_use_the_store_but_not_flush() {
    let dir = TestDir::new("reentrant");
    let (store, _) = dir.open(&[1]);
    let (tx, rx) = mpsc::channel();
    let inner = store.clone();
    store.append(&msg(b"first"), &[1]).expect("append");
    store.on_durable(Box::new(move || {
        let flushed = inner.flush();
        let r = inner.append(&msg(b"from a callback"), &[1]).expect("append");
        let tx2 = tx.clone();
        inner.on_durable(Box::new(move || {
            let _ = tx2.send(Some(r));
        }));
        let _ = tx.send(flushed.err().map(|_| r));
    }));
    let first = rx.recv().expect("callback ran");
    assert!(first.is_some(), "flush inside a callback is refused, not a deadlock");
    let r = rx.recv().expect("nested callback ran").expect("ref");
    assert_eq!(&store.read(r).expect("read").body[..], b"from a callback");
}
