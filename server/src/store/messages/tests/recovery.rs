//! Recovery rebuilds each live queue's list in append order, applies acks
//! and delivered marks, drops unknown queues, and shrugs off corrupt acks.

use std::io::Write;

use super::{TestDir, bodies, msg};
use crate::store::messages::format;

#[test]
fn rebuilds_queues_in_order_with_acks_and_delivered_marks() {
    let dir = TestDir::new("recovery");
    {
        let (store, _) = dir.open(&[1, 2, 3]);
        let a = store.append(&msg(b"a"), &[1]).expect("append");
        let b = store.append(&msg(b"b"), &[1, 2]).expect("append");
        let c = store.append(&msg(b"c"), &[2]).expect("append");
        let d = store.append(&msg(b"d"), &[1]).expect("append");
        let _e = store.append(&msg(b"e"), &[3]).expect("append");
        let f = store.append(&msg(b"f"), &[1, 3]).expect("append");
        store.ack(a, 1);
        store.ack(b, 1); // still held by queue 2
        store.mark_delivered(c, 2);
        store.mark_delivered(d, 1);
        store.mark_delivered(f, 1);
        store.ack(f, 1);
        store.flush().expect("flush");
    }
    // Queue 3 no longer exists: its records count as dead.
    let (store, rec) = dir.open(&[1, 2]);
    assert_eq!(bodies(&store, &rec, 1), vec![b"d".to_vec()]);
    assert_eq!(bodies(&store, &rec, 2), vec![b"b".to_vec(), b"c".to_vec()]);
    assert!(!rec.queues.contains_key(&3));
    let flags = |q: u32| rec.queues[&q].iter().map(|e| e.redelivered).collect::<Vec<_>>();
    assert_eq!(flags(1), vec![true]);
    assert_eq!(flags(2), vec![false, true]);
    assert_eq!(rec.messages, 3);
    assert_eq!(rec.segments, 1);
    assert_eq!(rec.dropped_tail_bytes, 0);
    // Acks keep working across restarts: ack the rest, reopen, all gone.
    for e in rec.queues[&1].iter() {
        store.ack(e.r, 1);
    }
    for e in rec.queues[&2].iter() {
        store.ack(e.r, 2);
    }
    super::settle(&store);
    drop(store);
    let (_store, rec) = dir.open(&[1, 2]);
    assert!(rec.queues.is_empty());
    assert_eq!(rec.messages, 0);
}

#[test]
fn corrupt_ack_records_are_ignored() {
    let dir = TestDir::new("corrupt-acks");
    let (seg, refs) = {
        let (store, _) = dir.open(&[1]);
        let refs: Vec<_> = (0..4u8).map(|i| store.append(&msg(&[i]), &[1]).expect("append")).collect();
        store.ack(refs[0], 1);
        store.ack(refs[1], 1);
        store.flush().expect("flush");
        (refs[0].segment, refs)
    };
    // Flip a byte in the first ack record (it becomes invalid and is
    // skipped), then append garbage, a fake ack with a bad checksum and a
    // partial record.
    let path = dir.ack(seg);
    let mut data = std::fs::read(&path).expect("ack log");
    data[3] ^= 0x40;
    std::fs::write(&path, &data).expect("rewrite");
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open ack");
    f.write_all(&[0xAB; format::ACK_RECORD_LEN]).expect("garbage");
    let mut fake = format::encode_ack(format::ACK_KIND_ACK, refs[3].offset, 1);
    fake[12] ^= 1;
    f.write_all(&fake).expect("bad crc");
    f.write_all(&[1, 2, 3]).expect("partial");
    drop(f);

    let (store, rec) = dir.open(&[1]);
    assert_eq!(bodies(&store, &rec, 1), vec![vec![0u8], vec![2], vec![3]]);
    assert!(rec.log.iter().any(|l| l.contains("3 corrupt ack-log records")), "{:?}", rec.log);
    assert!(rec.log.iter().any(|l| l.contains("partial record")), "{:?}", rec.log);
    assert_eq!(super::file_len(&path) % format::ACK_RECORD_LEN as u64, 0);
    // The log stays usable: new acks land aligned and are applied.
    store.ack(refs[3], 1);
    store.flush().expect("flush");
    drop(store);
    let (store, rec) = dir.open(&[1]);
    assert_eq!(bodies(&store, &rec, 1), vec![vec![0u8], vec![2]]);
}

#[test]
fn removes_orphan_ack_logs_and_starts_a_new_segment() {
    let dir = TestDir::new("orphans");
    std::fs::write(dir.ack(7), [0u8; 13]).expect("orphan");
    let (store, rec) = dir.open(&[1]);
    assert!(rec.log.iter().any(|l| l.contains("orphan")), "{:?}", rec.log);
    assert!(!dir.ack(7).exists());
    let r = store.append(&msg(b"x"), &[1]).expect("append");
    assert_eq!(r.segment, 8);
}
