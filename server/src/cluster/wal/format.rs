//! The WAL's bytes: the segment header and the framed records (all integers
//! big-endian). See the module documentation for the layout.

use bytes::Bytes;

use super::MetaKey;

/// `"WRNWAL"` + `u16` version 1, at the start of every segment.
pub(super) const HEADER: &[u8; 8] = b"WRNWAL\x00\x01";
/// Length + CRC32 in front of every record's body.
pub(super) const FRAME: usize = 8;
/// A body longer than this is taken for garbage (a torn length field).
const MAX_BODY: usize = 1 << 31;

const ENTRIES: u8 = 1;
const TRUNCATE: u8 = 2;
const PURGE: u8 = 3;
const META: u8 = 4;
const DROP: u8 = 5;
const CHECKPOINT: u8 = 6;

/// One group's state as restated by a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GroupCheckpoint {
    pub group: u64,
    /// Index of the group's last entry, if it has any.
    pub last: Option<u64>,
    pub vote: Option<Bytes>,
    pub committed: Option<Bytes>,
    pub purged: Option<(u64, Bytes)>,
}

/// A decoded record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Record {
    Entries {
        group: u64,
        first: u64,
        data: Vec<Bytes>,
    },
    Truncate {
        group: u64,
        from: u64,
    },
    Purge {
        group: u64,
        upto: u64,
        marker: Bytes,
    },
    Meta {
        group: u64,
        key: MetaKey,
        value: Bytes,
    },
    Drop {
        group: u64,
    },
    /// Every live group's meta and last index when a segment starts; a
    /// group missing from it had been dropped.
    Checkpoint(Vec<GroupCheckpoint>),
}

/// Appends one framed record to `out`; the body is written by `body`.
fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME]);
    body(out);
    let len = out.len() - start - FRAME;
    let crc = crc32fast::hash(&out[start + FRAME..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

fn head(out: &mut Vec<u8>, kind: u8, group: u64) {
    out.push(kind);
    out.extend_from_slice(&group.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_opt(out: &mut Vec<u8>, b: Option<&Bytes>) {
    match b {
        Some(b) => {
            out.push(1);
            put_bytes(out, b);
        }
        None => out.push(0),
    }
}

pub(super) fn encode_entries(out: &mut Vec<u8>, group: u64, entries: &[(u64, Bytes)]) {
    frame(out, |o| {
        head(o, ENTRIES, group);
        o.extend_from_slice(&entries.first().map_or(0, |e| e.0).to_be_bytes());
        o.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (_, b) in entries {
            put_bytes(o, b);
        }
    });
}

pub(super) fn encode_truncate(out: &mut Vec<u8>, group: u64, from: u64) {
    frame(out, |o| {
        head(o, TRUNCATE, group);
        o.extend_from_slice(&from.to_be_bytes());
    });
}

pub(super) fn encode_purge(out: &mut Vec<u8>, group: u64, upto: u64, marker: &[u8]) {
    frame(out, |o| {
        head(o, PURGE, group);
        o.extend_from_slice(&upto.to_be_bytes());
        o.extend_from_slice(marker);
    });
}

pub(super) fn encode_meta(out: &mut Vec<u8>, group: u64, key: MetaKey, value: &[u8]) {
    frame(out, |o| {
        head(o, META, group);
        o.push(match key {
            MetaKey::Vote => 1,
            MetaKey::Committed => 2,
        });
        o.extend_from_slice(value);
    });
}

pub(super) fn encode_drop(out: &mut Vec<u8>, group: u64) {
    frame(out, |o| head(o, DROP, group));
}

pub(super) fn encode_checkpoint(out: &mut Vec<u8>, groups: &[GroupCheckpoint]) {
    frame(out, |o| {
        head(o, CHECKPOINT, 0);
        o.extend_from_slice(&(groups.len() as u32).to_be_bytes());
        for g in groups {
            o.extend_from_slice(&g.group.to_be_bytes());
            o.push(u8::from(g.last.is_some()));
            o.extend_from_slice(&g.last.unwrap_or(0).to_be_bytes());
            put_opt(o, g.vote.as_ref());
            put_opt(o, g.committed.as_ref());
            o.push(u8::from(g.purged.is_some()));
            if let Some((upto, marker)) = &g.purged {
                o.extend_from_slice(&upto.to_be_bytes());
                put_bytes(o, marker);
            }
        }
    });
}

/// What is at an offset of a segment.
pub(super) enum Next {
    Record(Record, usize),
    /// Clean end of the data.
    End,
    /// A torn or corrupt record: the valid data ends here.
    Bad,
}

/// Decodes the record at `buf[at..]`; `Next::Record` carries the offset
/// after it.
pub(super) fn decode(buf: &[u8], at: usize) -> Next {
    let rest = &buf[at..];
    if rest.is_empty() {
        return Next::End;
    }
    if rest.len() < FRAME {
        return Next::Bad;
    }
    let len = u32::from_be_bytes(rest[..4].try_into().expect("4")) as usize;
    let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4"));
    if len > MAX_BODY || rest.len() - FRAME < len {
        return Next::Bad;
    }
    let body = &rest[FRAME..FRAME + len];
    if crc32fast::hash(body) != crc {
        return Next::Bad;
    }
    match parse(body) {
        Some(r) => Next::Record(r, at + FRAME + len),
        None => Next::Bad,
    }
}

/// A cursor over a record body; every getter fails on a short body.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes(b.try_into().expect("4")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_be_bytes(b.try_into().expect("8")))
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        self.take(n).map(Bytes::copy_from_slice)
    }
    fn opt(&mut self) -> Option<Option<Bytes>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.bytes().map(Some),
            _ => None,
        }
    }
    fn rest(&mut self) -> Bytes {
        Bytes::copy_from_slice(std::mem::take(&mut self.0))
    }
}

fn parse(body: &[u8]) -> Option<Record> {
    let mut c = Cur(body);
    let kind = c.u8()?;
    let group = c.u64()?;
    let r = match kind {
        ENTRIES => {
            let first = c.u64()?;
            let n = c.u32()? as usize;
            let mut data = Vec::with_capacity(n.min(c.0.len() / 4));
            for _ in 0..n {
                data.push(c.bytes()?);
            }
            Record::Entries { group, first, data }
        }
        TRUNCATE => Record::Truncate { group, from: c.u64()? },
        PURGE => Record::Purge { group, upto: c.u64()?, marker: c.rest() },
        META => {
            let key = match c.u8()? {
                1 => MetaKey::Vote,
                2 => MetaKey::Committed,
                _ => return None,
            };
            Record::Meta { group, key, value: c.rest() }
        }
        DROP => Record::Drop { group },
        CHECKPOINT => {
            let n = c.u32()? as usize;
            let mut groups = Vec::with_capacity(n.min(c.0.len() / 8));
            for _ in 0..n {
                let group = c.u64()?;
                let has_last = c.u8()?;
                let last = c.u64()?;
                let vote = c.opt()?;
                let committed = c.opt()?;
                let purged = match c.u8()? {
                    0 => None,
                    1 => Some((c.u64()?, c.bytes()?)),
                    _ => return None,
                };
                let last = (has_last == 1).then_some(last);
                groups.push(GroupCheckpoint { group, last, vote, committed, purged });
            }
            Record::Checkpoint(groups)
        }
        _ => return None,
    };
    Some(r)
}
