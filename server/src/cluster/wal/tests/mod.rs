//! Unit tests of the WAL, against real files in a fresh directory under the
//! system temp dir that is removed when a test ends.

mod commit;
mod recovery;
mod segments;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use super::{Done, MetaKey, Wal, WalOptions};

/// A temporary directory, deleted on drop.
pub(super) struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("warren-wal-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TestDir(path)
    }

    /// Opens without fsync and with 64 MiB segments.
    pub fn open(&self) -> Arc<Wal> {
        self.open_with(WalOptions { fsync: false, ..Default::default() })
    }

    pub fn open_with(&self, opts: WalOptions) -> Arc<Wal> {
        Wal::open(&self.0, opts).expect("open")
    }

    /// Segment files present, oldest first.
    pub fn segments(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "wal"))
            .collect();
        v.sort();
        v
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(super) fn noop() -> Done {
    Box::new(|r| r.expect("durable"))
}

/// `n` entries from `first`, each carrying its group and index.
pub(super) fn batch(group: u64, first: u64, n: u64) -> Vec<(u64, Bytes)> {
    (first..first + n).map(|i| (i, b(&format!("g{group}-e{i}")))).collect()
}

pub(super) fn indexes(wal: &Wal, group: u64) -> Vec<u64> {
    wal.entries(group, 0, u64::MAX).into_iter().map(|e| e.0).collect()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).expect("metadata").len()
}

#[test]
fn round_trip_across_reopen_for_several_groups() {
    let dir = TestDir::new("roundtrip");
    {
        let wal = dir.open();
        assert!(wal.groups().is_empty());
        for g in 1..=5u64 {
            wal.append(g, batch(g, 1, 10 * g), noop());
            wal.set(g, MetaKey::Vote, b(&format!("vote{g}")), None);
        }
        // Reads reflect calls at once.
        assert_eq!(wal.last(3), Some((30, b("g3-e30"))));
        assert_eq!(wal.entries(2, 5, 8), batch(2, 5, 3));
        wal.flush().expect("flush");
    }
    let wal = dir.open();
    assert_eq!(wal.groups(), vec![1, 2, 3, 4, 5]);
    for g in 1..=5u64 {
        assert_eq!(wal.entries(g, 0, u64::MAX), batch(g, 1, 10 * g));
        assert_eq!(wal.get(g, MetaKey::Vote), Some(b(&format!("vote{g}"))));
        assert_eq!(wal.get(g, MetaKey::Committed), None);
        assert_eq!(wal.purged(g), None);
    }
    assert_eq!(wal.entries(4, 38, 100), batch(4, 38, 3));
    assert_eq!(wal.entries(9, 0, 10), vec![]);
    assert_eq!(wal.last(9), None);
    // The log goes on where it ended.
    wal.append(1, batch(1, 11, 2), noop());
    assert_eq!(wal.last(1), Some((12, b("g1-e12"))));
}

#[test]
fn append_out_of_order_is_refused_in_turn() {
    let dir = TestDir::new("refuse");
    let wal = dir.open();
    wal.append(1, batch(1, 1, 3), noop());
    let (tx, rx) = std::sync::mpsc::channel();
    let t = tx.clone();
    wal.append(1, batch(1, 6, 1), Box::new(move |r| t.send(("gap", r.is_err())).unwrap()));
    let t = tx.clone();
    wal.append(1, vec![(4, b("x")), (6, b("y"))], Box::new(move |r| t.send(("holes", r.is_err())).unwrap()));
    wal.append(1, batch(1, 4, 1), Box::new(move |r| tx.send(("ok", r.is_err())).unwrap()));
    let got: Vec<_> = rx.iter().take(3).collect();
    assert_eq!(got, vec![("gap", true), ("holes", true), ("ok", false)]);
    assert_eq!(indexes(&wal, 1), vec![1, 2, 3, 4]);
    // An index at or below the last one overwrites (after a truncation).
    wal.append(1, vec![(3, b("new3"))], noop());
    assert_eq!(wal.entries(1, 0, 10), vec![(1, b("g1-e1")), (2, b("g1-e2")), (3, b("new3"))]);
}
