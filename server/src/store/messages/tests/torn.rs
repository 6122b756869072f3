//! A torn or corrupt tail in the last segment: earlier records survive, the
//! broken one is dropped and cut off the file, and the store keeps working.

use super::{TestDir, bodies, file_len, msg};
use crate::store::messages::StoreRef;

/// Writes three messages and returns their refs.
fn three(dir: &TestDir) -> Vec<StoreRef> {
    let (store, _) = dir.open(&[1]);
    let refs: Vec<StoreRef> = [&b"first"[..], b"second", &[9u8; 1000]]
        .iter()
        .map(|b| store.append(&msg(b), &[1]).expect("append"))
        .collect();
    store.flush().expect("flush");
    refs
}

/// Reopens, checks the first two survived, the third is gone and the file
/// ends where it started, then appends and reopens once more.
fn check_recovers(dir: &TestDir, refs: &[StoreRef], expect_note: &str) {
    let last = refs[2];
    {
        let (store, rec) = dir.open(&[1]);
        assert_eq!(bodies(&store, &rec, 1), vec![b"first".to_vec(), b"second".to_vec()]);
        assert!(rec.dropped_tail_bytes > 0);
        assert!(rec.log.iter().any(|l| l.contains(expect_note) && l.contains("truncated")), "{:?}", rec.log);
        assert_eq!(file_len(&dir.seg(last.segment)), u64::from(last.offset));
        let r = store.append(&msg(b"after"), &[1]).expect("append after recovery");
        assert_ne!(r.segment, last.segment, "never appends to an old segment");
        store.flush().expect("flush");
    }
    let (store, rec) = dir.open(&[1]);
    assert_eq!(bodies(&store, &rec, 1), vec![b"first".to_vec(), b"second".to_vec(), b"after".to_vec()]);
    assert_eq!(rec.dropped_tail_bytes, 0);
}

#[test]
fn truncated_last_record_is_dropped() {
    let dir = TestDir::new("torn-truncate");
    let refs = three(&dir);
    let last = refs[2];
    let f = std::fs::OpenOptions::new().write(true).open(dir.seg(last.segment)).expect("open");
    f.set_len(u64::from(last.offset + last.len / 2)).expect("truncate");
    drop(f);
    check_recovers(&dir, &refs, "past the end");
}

#[test]
fn truncated_inside_record_header_is_dropped() {
    let dir = TestDir::new("torn-header");
    let refs = three(&dir);
    let last = refs[2];
    let f = std::fs::OpenOptions::new().write(true).open(dir.seg(last.segment)).expect("open");
    f.set_len(u64::from(last.offset + 5)).expect("truncate");
    drop(f);
    check_recovers(&dir, &refs, "partial record header");
}

#[test]
fn flipped_byte_in_last_record_is_dropped() {
    let dir = TestDir::new("torn-flip");
    let refs = three(&dir);
    let last = refs[2];
    let path = dir.seg(last.segment);
    let mut data = std::fs::read(&path).expect("read");
    data[(last.offset + last.len - 10) as usize] ^= 0x01;
    std::fs::write(&path, &data).expect("write");
    check_recovers(&dir, &refs, "checksum mismatch");
}

#[test]
fn zeroed_tail_and_garbage_length_are_dropped() {
    let dir = TestDir::new("torn-zero");
    let refs = three(&dir);
    let last = refs[2];
    let path = dir.seg(last.segment);
    let mut data = std::fs::read(&path).expect("read");
    // What a file system may leave after a crash: the size grew, the data
    // never arrived.
    data[last.offset as usize..].fill(0);
    std::fs::write(&path, &data).expect("write");
    check_recovers(&dir, &refs, "impossible record length");

    let dir = TestDir::new("torn-huge");
    let refs = three(&dir);
    let last = refs[2];
    let path = dir.seg(last.segment);
    let mut data = std::fs::read(&path).expect("read");
    data[last.offset as usize..last.offset as usize + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&path, &data).expect("write");
    check_recovers(&dir, &refs, "past the end");
}

#[test]
fn segment_cut_inside_its_header_is_discarded() {
    let dir = TestDir::new("torn-seg-header");
    let refs = three(&dir);
    std::fs::write(dir.seg(refs[0].segment + 1), b"WRN").expect("partial header");
    let (store, rec) = dir.open(&[1]);
    assert_eq!(bodies(&store, &rec, 1).len(), 3);
    assert!(!dir.seg(refs[0].segment + 1).exists());
    // A file that is not a segment at all is refused, not overwritten.
    drop(store);
    std::fs::write(dir.seg(50), b"definitely not a segment").expect("foreign");
    let live = [1u32].into_iter().collect();
    let err = crate::store::messages::MessageStore::open(dir.cfg(), &live).err().expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}
