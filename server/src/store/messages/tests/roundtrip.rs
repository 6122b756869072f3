//! Append then read back: from the unwritten buffer, from the file, after a
//! reopen; and inputs the store must refuse without panicking.

use std::io;

use super::{TestDir, msg};
use crate::store::messages::{StoreRef, StoredMessage};

#[test]
fn reads_from_buffer_file_and_after_reopen() {
    let dir = TestDir::new("roundtrip");
    let bodies: Vec<Vec<u8>> = vec![b"hello".to_vec(), Vec::new(), vec![7u8; 3 << 20], b"last".to_vec()];
    let refs: Vec<StoreRef> = {
        let (store, rec) = dir.open(&[1]);
        assert!(rec.queues.is_empty());
        let refs: Vec<StoreRef> =
            bodies.iter().map(|b| store.append(&msg(b), &[1]).expect("append")).collect();
        // Straight away: most of these are still in the pending buffer or
        // being written.
        for (r, b) in refs.iter().zip(&bodies) {
            let m = store.read(*r).expect("read buffered");
            assert_eq!(&m.body[..], &b[..]);
            assert_eq!(m.exchange, "amq.direct");
            assert_eq!(m.routing_key, "orders.created");
            assert_eq!(&m.properties[..], b"\x90\x00\x0atext/plain");
        }
        store.flush().expect("flush");
        assert_eq!(store.stats().pending_bytes, 0);
        for (r, b) in refs.iter().zip(&bodies) {
            assert_eq!(&store.read(*r).expect("read written").body[..], &b[..]);
        }
        refs
    };
    let (store, rec) = dir.open(&[1]);
    let got: Vec<StoreRef> = rec.queues[&1].iter().map(|e| e.r).collect();
    assert_eq!(got, refs);
    assert_eq!(rec.queues[&1][2].body_len, 3 << 20);
    for (r, b) in refs.iter().zip(&bodies) {
        assert_eq!(&store.read(*r).expect("read after reopen").body[..], &b[..]);
    }
}

#[test]
fn reads_records_that_only_exist_in_memory() {
    let dir = TestDir::new("buffered");
    let (store, _) = dir.open(&[1]);
    // The writer waits up to 20 ms before writing data nobody waits for, so a
    // read right after an append nearly always finds it only in memory; try
    // until that case has been seen for sure.
    let mut seen_unwritten = false;
    for i in 0..100u32 {
        let body = i.to_be_bytes();
        let r = store.append(&msg(&body), &[1]).expect("append");
        let unwritten = super::file_len(&dir.seg(r.segment)) < u64::from(r.offset + r.len);
        assert_eq!(&store.read(r).expect("read").body[..], &body);
        if unwritten {
            seen_unwritten = true;
            break;
        }
        store.flush().expect("flush");
    }
    assert!(seen_unwritten);
}

#[test]
fn refuses_bad_input_without_panicking() {
    let dir = TestDir::new("bad-input");
    let (store, _) = dir.open(&[1]);
    let err = store.append(&msg(b"x"), &[]).expect_err("no queues");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let long = "x".repeat(256);
    let m = StoredMessage { exchange: &long, routing_key: "", properties: b"", body: b"" };
    assert_eq!(store.append(&m, &[1]).expect_err("long name").kind(), io::ErrorKind::InvalidInput);
    let r = store.append(&msg(b"ok"), &[1]).expect("append");
    store.flush().expect("flush");
    // Refs that point at nothing, or at the middle of a record.
    for bogus in [
        StoreRef { segment: 99, ..r },
        StoreRef { offset: r.offset + 1, ..r },
        StoreRef { len: r.len + 100, ..r },
        StoreRef { len: 3, ..r },
        StoreRef { len: u32::MAX, ..r },
    ] {
        assert!(store.read(bogus).is_err(), "{bogus:?}");
    }
    // Acks for unknown segments are ignored.
    store.ack(StoreRef { segment: 99, ..r }, 1);
    assert_eq!(&store.read(r).expect("read").body[..], b"ok");
}

#[test]
fn paging_store_starts_empty_and_never_fsyncs() {
    let dir = TestDir::new("paging");
    {
        let (store, _) = dir.open(&[1]);
        store.append(&msg(b"persisted"), &[1]).expect("append");
        store.flush().expect("flush");
    }
    let (store, rec) = super::open_with(crate::store::messages::StoreConfig::paging(&dir.0), &[1]);
    assert!(rec.queues.is_empty());
    assert_eq!(rec.messages, 0);
    assert!(dir.segments().is_empty());
    let r = store.append(&msg(b"paged"), &[1]).expect("append");
    store.flush().expect("flush");
    assert_eq!(&store.read(r).expect("read").body[..], b"paged");
    assert_eq!(store.stats().fsyncs, 0);
}
