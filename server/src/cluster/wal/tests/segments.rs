//! Segment rolling and deletion, and snapshot files.

use bytes::Bytes;

use super::super::{MetaKey, WalOptions};
use super::{TestDir, b, indexes, noop};

fn small(dir: &TestDir) -> std::sync::Arc<super::super::Wal> {
    dir.open_with(WalOptions { fsync: true, segment_bytes: 4096 })
}

fn payload(group: u64, i: u64) -> Bytes {
    Bytes::from(format!("{group}-{i}-{}", "x".repeat(100)))
}

/// Waits until everything is durable and the segments that died with it
/// are deleted (the writer deletes them after running the callbacks; the
/// second flush's round starts once that is done).
fn settle(wal: &super::super::Wal) {
    wal.flush().unwrap();
    wal.flush().unwrap();
}

fn fill(wal: &super::super::Wal, group: u64, from: u64, to: u64) {
    for i in from..=to {
        wal.append(group, vec![(i, payload(group, i))], noop());
    }
}

#[test]
fn segments_roll_and_go_once_purged_with_meta_kept() {
    let dir = TestDir::new("roll");
    {
        let wal = small(&dir);
        wal.set(1, MetaKey::Vote, b("vote-1"), None);
        wal.set(2, MetaKey::Committed, b("committed-2"), None);
        for i in 1..=200 {
            fill(&wal, 1, i, i);
            fill(&wal, 2, i, i);
        }
        settle(&wal);
        let stats = wal.stats();
        assert!(stats.segments >= 10, "{stats:?}");
        assert_eq!(stats.segments as usize, dir.segments().len());
        let before = stats.disk_bytes;

        wal.purge(1, 200, b("purged-1"));
        wal.purge(2, 195, b("purged-2"));
        settle(&wal);
        let stats = wal.stats();
        assert!(stats.segments <= 3, "only the live tail and the current segment stay: {stats:?}");
        assert_eq!(stats.segments as usize, dir.segments().len());
        assert!(stats.disk_bytes * 4 < before);
        assert_eq!(indexes(&wal, 2), vec![196, 197, 198, 199, 200]);
    }
    let wal = small(&dir);
    assert_eq!(wal.groups(), vec![1, 2]);
    assert_eq!(wal.get(1, MetaKey::Vote), Some(b("vote-1")));
    assert_eq!(wal.get(2, MetaKey::Committed), Some(b("committed-2")));
    assert_eq!(wal.purged(1), Some((200, b("purged-1"))));
    assert_eq!(wal.purged(2), Some((195, b("purged-2"))));
    assert_eq!(indexes(&wal, 1), Vec::<u64>::new());
    assert_eq!(wal.entries(2, 0, 1000), (196..=200).map(|i| (i, payload(2, i))).collect::<Vec<_>>());
}

#[test]
fn dead_segments_go_out_of_order_and_dropped_groups_stay_dropped() {
    let dir = TestDir::new("holes");
    {
        let wal = small(&dir);
        // Group 1 keeps the first segment alive; group 3 is dropped later.
        fill(&wal, 1, 1, 3);
        fill(&wal, 3, 1, 3);
        wal.set(3, MetaKey::Vote, b("gone"), None);
        fill(&wal, 2, 1, 60);
        wal.drop_group(3);
        wal.truncate(1, 3);
        fill(&wal, 2, 61, 120);
        settle(&wal);
        let n = dir.segments().len();
        assert!(n >= 4, "{n}");
        // Every segment after the first dies, the one holding the drop and
        // the truncation included.
        wal.truncate(2, 1);
        settle(&wal);
        assert_eq!(dir.segments().len(), 2, "the first and the current one");
    }
    for _ in 0..3 {
        let wal = small(&dir);
        assert_eq!(wal.groups(), vec![1, 2]);
        assert_eq!(indexes(&wal, 1), vec![1, 2]);
        assert_eq!(indexes(&wal, 2), Vec::<u64>::new());
        assert_eq!(indexes(&wal, 3), Vec::<u64>::new());
        assert_eq!(wal.get(3, MetaKey::Vote), None);
        // Reopening does not pile up segments.
        assert_eq!(dir.segments().len(), 2);
    }
}

#[test]
fn snapshots_save_replace_read_and_drop() {
    let dir = TestDir::new("snap");
    {
        let wal = dir.open();
        assert_eq!(wal.snapshot(7).unwrap(), None);
        wal.save_snapshot(7, b"first").unwrap();
        assert_eq!(wal.snapshot(7).unwrap().as_deref(), Some(&b"first"[..]));
        wal.save_snapshot(7, b"second, longer").unwrap();
        assert_eq!(wal.snapshot(7).unwrap().as_deref(), Some(&b"second, longer"[..]));
        wal.save_snapshot(8, b"eight").unwrap();
        wal.append(8, vec![(1, b("e"))], noop());
        assert_eq!(wal.groups(), vec![7, 8]);
    }
    let wal = dir.open();
    assert_eq!(wal.groups(), vec![7, 8], "a snapshot alone makes a group");
    assert_eq!(wal.snapshot(7).unwrap().as_deref(), Some(&b"second, longer"[..]));
    wal.drop_group(8);
    assert_eq!(wal.snapshot(8).unwrap(), None);
    assert_eq!(wal.groups(), vec![7]);
    drop(wal);
    let wal = dir.open();
    assert_eq!(wal.groups(), vec![7]);
    assert_eq!(wal.last(8), None);
    let leftovers = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().ends_with(".tmp"));
    assert_eq!(leftovers.count(), 0);
}
