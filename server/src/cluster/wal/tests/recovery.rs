//! What survives a reopen: truncation, purge, drop and meta; and a torn or
//! corrupt tail, which ends the scan.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};

use super::super::{MetaKey, Wal, WalOptions};
use super::{TestDir, b, batch, indexes, noop, size};

#[test]
fn truncate_purge_drop_and_meta_survive_reopen() {
    let dir = TestDir::new("ops");
    {
        let wal = dir.open();
        wal.append(1, batch(1, 1, 10), noop());
        wal.truncate(1, 8);
        wal.append(1, vec![(8, b("new8"))], noop());
        wal.purge(1, 3, b("marker-3"));
        wal.set(1, MetaKey::Vote, b("v1"), None);
        wal.set(1, MetaKey::Vote, b("v2"), None);
        wal.set(1, MetaKey::Committed, b("c7"), None);
        wal.append(2, batch(2, 1, 5), noop());
        wal.set(2, MetaKey::Vote, b("doomed"), None);
        wal.drop_group(2);
        wal.append(3, batch(3, 1, 4), noop());
        wal.purge(3, 10, b("past-the-end"));
        wal.append(3, batch(3, 11, 2), noop());
        wal.flush().expect("flush");
    }
    for _ in 0..2 {
        let wal = dir.open();
        assert_eq!(wal.groups(), vec![1, 3]);
        assert_eq!(indexes(&wal, 1), vec![4, 5, 6, 7, 8]);
        assert_eq!(wal.last(1), Some((8, b("new8"))));
        assert_eq!(wal.purged(1), Some((3, b("marker-3"))));
        assert_eq!(wal.get(1, MetaKey::Vote), Some(b("v2")));
        assert_eq!(wal.get(1, MetaKey::Committed), Some(b("c7")));
        assert_eq!(wal.get(2, MetaKey::Vote), None);
        assert_eq!(indexes(&wal, 2), Vec::<u64>::new());
        assert_eq!(wal.entries(3, 0, 100), batch(3, 11, 2));
        assert_eq!(wal.purged(3), Some((10, b("past-the-end"))));
    }
}

/// Appends entries 1..=10 to group 1, one call each, and returns the
/// segment written and its size after each append.
fn ten_appends(dir: &TestDir) -> (std::path::PathBuf, Vec<u64>) {
    let wal = dir.open();
    let seg = dir.segments().pop().expect("a segment");
    let mut sizes = Vec::new();
    for i in 1..=10 {
        wal.append(1, batch(1, i, 1), noop());
        wal.flush().expect("flush");
        sizes.push(size(&seg));
    }
    (seg, sizes)
}

#[test]
fn torn_tail_recovers_the_prefix() {
    let dir = TestDir::new("torn");
    let (seg, sizes) = ten_appends(&dir);
    // Cut in the middle of the sixth record.
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(sizes[4] + 5).unwrap();
    let wal = dir.open();
    assert_eq!(indexes(&wal, 1), vec![1, 2, 3, 4, 5]);
    assert_eq!(size(&seg), sizes[4], "the torn tail is cut away");
    wal.append(1, batch(1, 6, 1), noop());
    drop(wal);
    // The cut segment is no longer the last one, and is whole.
    let wal = dir.open();
    assert_eq!(indexes(&wal, 1), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn corrupt_byte_ends_the_scan() {
    let dir = TestDir::new("corrupt");
    let (seg, sizes) = ten_appends(&dir);
    // Flip a byte of the seventh record's payload.
    let mut f = OpenOptions::new().read(true).write(true).open(&seg).unwrap();
    let at = sizes[6] - 2;
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[byte[0] ^ 0x40]).unwrap();
    drop(f);
    let wal = dir.open();
    assert_eq!(indexes(&wal, 1), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(size(&seg), sizes[5]);
}

#[test]
fn corruption_before_the_last_segment_is_an_error() {
    let dir = TestDir::new("corrupt-old");
    let (seg, sizes) = ten_appends(&dir);
    drop(dir.open()); // a newer segment now follows `seg`
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(sizes[4] + 5).unwrap();
    let err = Wal::open(&dir.0, WalOptions { fsync: false, ..Default::default() }).err().expect("an error");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn a_segment_created_just_before_a_crash_is_ignored() {
    let dir = TestDir::new("unborn");
    ten_appends(&dir);
    let last = dir.segments().pop().unwrap();
    let stem: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    std::fs::write(dir.0.join(format!("{:020}.wal", stem + 1)), b"WRN").unwrap();
    let wal = dir.open();
    assert_eq!(indexes(&wal, 1), (1..=10).collect::<Vec<_>>());
}
