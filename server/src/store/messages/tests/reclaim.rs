//! Segments nothing lives in any more are deleted, except the one being
//! written; a single unacked message keeps its segment alive.

use super::{TestDir, msg, settle};
use crate::store::messages::{StoreConfig, StoreRef};

fn small(dir: &TestDir) -> StoreConfig {
    StoreConfig { segment_size: 4096, ..dir.cfg() }
}

fn fill(dir: &TestDir, store: &crate::store::messages::MessageStore) -> Vec<StoreRef> {
    let refs: Vec<StoreRef> = (0..100u32)
        .map(|i| {
            let body = vec![i as u8; 400];
            store.append(&msg(&body), &[1, 2]).expect("append")
        })
        .collect();
    settle(store);
    let segs = dir.segments();
    assert!(segs.len() >= 8, "{segs:?}");
    refs
}

#[test]
fn fully_acked_segments_are_deleted() {
    let dir = TestDir::new("reclaim-all");
    let (store, _) = super::open_with(small(&dir), &[1, 2]);
    let refs = fill(&dir, &store);
    let current = refs[refs.len() - 1].segment;
    for r in &refs {
        store.ack(*r, 1);
    }
    settle(&store);
    assert!(dir.segments().len() >= 8, "held by queue 2 still");
    for r in &refs {
        store.ack(*r, 2);
    }
    settle(&store);
    assert_eq!(dir.segments(), vec![current]);
    let stats = store.stats();
    assert!(stats.reclaimed_segments >= 7, "{stats:?}");
    assert_eq!(stats.segments, 1);
    // Ack logs go with their segments.
    assert!(!dir.ack(refs[0].segment).exists());
    // A segment that dies while it is being written goes once the store
    // rolls past it.
    let more: Vec<StoreRef> =
        (0..20u8).map(|i| store.append(&msg(&[i; 400]), &[1]).expect("append")).collect();
    for r in &more {
        store.ack(*r, 1);
    }
    settle(&store);
    assert_eq!(dir.segments(), vec![more[more.len() - 1].segment]);
    drop(store);
    let (_store, rec) = super::open_with(small(&dir), &[1, 2]);
    assert_eq!(rec.messages, 0);
    assert!(dir.segments().is_empty());
}

#[test]
fn one_unacked_message_keeps_only_its_segment() {
    let dir = TestDir::new("reclaim-one");
    let (store, _) = super::open_with(small(&dir), &[1, 2]);
    let refs = fill(&dir, &store);
    let oldest = refs[0].segment;
    let current = refs[refs.len() - 1].segment;
    for r in &refs[1..] {
        store.ack(*r, 1);
        store.ack(*r, 2);
    }
    store.ack(refs[0], 2);
    settle(&store);
    assert_eq!(dir.segments(), vec![oldest, current]);
    drop(store);
    // At reopen the empty former current segment goes as well.
    let (store, rec) = super::open_with(small(&dir), &[1, 2]);
    assert_eq!(dir.segments(), vec![oldest]);
    assert_eq!(rec.queues[&1].len(), 1);
    assert!(!rec.queues.contains_key(&2));
    assert_eq!(&store.read(refs[0]).expect("read").body[..], &[0u8; 400][..]);
    store.ack(refs[0], 1);
    settle(&store);
    assert!(dir.segments().is_empty());
}

#[test]
fn dead_queue_records_do_not_keep_segments() {
    let dir = TestDir::new("reclaim-dead-queue");
    {
        let (store, _) = super::open_with(small(&dir), &[1, 2]);
        fill(&dir, &store);
    }
    // Queue 1 was deleted while the node was down; queue 2 still lives.
    let (_store, rec) = super::open_with(small(&dir), &[2]);
    assert_eq!(rec.queues[&2].len(), 100);
    drop(_store);
    let (_store, rec) = super::open_with(small(&dir), &[]);
    assert!(rec.queues.is_empty());
    assert!(dir.segments().is_empty());
}
