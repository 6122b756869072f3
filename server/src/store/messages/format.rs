//! The on-disk encoding of the message store: the segment header, message
//! records and ack-log records, as described at the top of `messages/mod.rs`.
//! Everything that knows a byte offset inside a record lives here; the rest of
//! the store handles records as opaque byte ranges.
//!
//! Decoding never trusts its input: every length is checked against the bytes
//! actually present, so a corrupt record yields an error string, never a panic.

use std::io;
use std::ops::Range;

use super::StoredMessage;

/// First bytes of every segment file: magic and format version.
pub(super) const SEG_MAGIC: [u8; 6] = *b"WRNSEG";
pub(super) const SEG_VERSION: u16 = 1;
pub(super) const SEG_HEADER_LEN: u64 = 8;

/// `len` + `crc` in front of every message record.
pub(super) const RECORD_HEADER_LEN: usize = 8;
pub(super) const KIND_MESSAGE: u8 = 1;
/// Header, kind, queue count, and the four length fields with empty values.
pub(super) const MIN_RECORD_LEN: usize = RECORD_HEADER_LEN + 1 + 4 + 1 + 1 + 4 + 4;

/// `[kind u8][offset u32][queue u32][crc u32]`.
pub(super) const ACK_RECORD_LEN: usize = 13;
pub(super) const ACK_KIND_ACK: u8 = 1;
pub(super) const ACK_KIND_DELIVERED: u8 = 2;

pub(super) fn segment_header() -> [u8; SEG_HEADER_LEN as usize] {
    let mut h = [0u8; SEG_HEADER_LEN as usize];
    h[..6].copy_from_slice(&SEG_MAGIC);
    h[6..].copy_from_slice(&SEG_VERSION.to_be_bytes());
    h
}

/// What the first bytes of a segment file say about it.
pub(super) enum HeaderCheck {
    Valid,
    /// All zeros: the file was created but its first write never reached disk.
    Blank,
    Foreign,
}

pub(super) fn check_segment_header(h: &[u8]) -> HeaderCheck {
    if h.len() >= SEG_HEADER_LEN as usize && h[..SEG_HEADER_LEN as usize] == segment_header() {
        HeaderCheck::Valid
    } else if h.iter().all(|&b| b == 0) {
        HeaderCheck::Blank
    } else {
        HeaderCheck::Foreign
    }
}

/// Total record length for `msg` held by `queues`, or `InvalidInput` when a
/// field does not fit its length prefix.
pub(super) fn record_len(msg: &StoredMessage<'_>, queues: &[u32]) -> io::Result<u32> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    if queues.is_empty() {
        return Err(invalid("a stored message must be held by at least one queue"));
    }
    if msg.exchange.len() > 255 || msg.routing_key.len() > 255 {
        return Err(invalid("exchange and routing key are limited to 255 bytes"));
    }
    let total = (MIN_RECORD_LEN as u64)
        + 4 * queues.len() as u64
        + msg.exchange.len() as u64
        + msg.routing_key.len() as u64
        + msg.properties.len() as u64
        + msg.body.len() as u64;
    // Offsets are u32 and a segment starts with its header, so a record must
    // leave room for it.
    if total + SEG_HEADER_LEN > u64::from(u32::MAX) {
        return Err(invalid("message too large for the store"));
    }
    Ok(total as u32)
}

/// Feeds the bytes that follow the crc field, in order, to `sink`. The single
/// description of the record layout, used both to checksum and to write.
fn emit(msg: &StoredMessage<'_>, queues: &[u32], sink: &mut impl FnMut(&[u8])) {
    let mut head = [0u8; 5];
    head[0] = KIND_MESSAGE;
    head[1..].copy_from_slice(&(queues.len() as u32).to_be_bytes());
    sink(&head);
    for q in queues {
        sink(&q.to_be_bytes());
    }
    sink(&[msg.exchange.len() as u8]);
    sink(msg.exchange.as_bytes());
    sink(&[msg.routing_key.len() as u8]);
    sink(msg.routing_key.as_bytes());
    sink(&(msg.properties.len() as u32).to_be_bytes());
    sink(msg.properties);
    sink(&(msg.body.len() as u32).to_be_bytes());
    sink(msg.body);
}

/// The record's checksum; computed before taking the store's lock so the
/// lock only covers a memcpy.
pub(super) fn record_crc(msg: &StoredMessage<'_>, queues: &[u32]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    emit(msg, queues, &mut |b| h.update(b));
    h.finalize()
}

/// Appends the whole record to `out`; `len` and `crc` come from
/// [`record_len`] and [`record_crc`].
pub(super) fn write_record(out: &mut Vec<u8>, len: u32, crc: u32, msg: &StoredMessage<'_>, queues: &[u32]) {
    out.reserve(len as usize);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc.to_be_bytes());
    emit(msg, queues, &mut |b| out.extend_from_slice(b));
}

/// Reads the `len` field of a record header.
pub(super) fn header_len(h: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(h.get(..4)?.try_into().ok()?))
}

/// A checked view of one record; ranges index into the record's bytes.
pub(super) struct RecordView<'a> {
    queues: &'a [u8],
    pub exchange: Range<usize>,
    pub routing_key: Range<usize>,
    pub properties: Range<usize>,
    pub body: Range<usize>,
}

impl RecordView<'_> {
    pub fn queue_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.queues.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// Bounds-checked reader over a byte slice.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<Range<usize>, &'static str> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        if end > self.buf.len() {
            return Err("field runs past the end of the record");
        }
        let r = self.pos..end;
        self.pos = end;
        Ok(r)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        let r = self.take(1)?;
        Ok(self.buf[r.start])
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        let r = self.take(4)?;
        let b = &self.buf[r];
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Checks length, checksum and structure of one whole record.
pub(super) fn decode_record(rec: &[u8]) -> Result<RecordView<'_>, &'static str> {
    if rec.len() < MIN_RECORD_LEN {
        return Err("record shorter than the minimum");
    }
    let mut c = Cursor { buf: rec, pos: 0 };
    if c.u32()? as usize != rec.len() {
        return Err("length field does not match the record");
    }
    let crc = c.u32()?;
    if crc32fast::hash(&rec[RECORD_HEADER_LEN..]) != crc {
        return Err("checksum mismatch");
    }
    if c.u8()? != KIND_MESSAGE {
        return Err("unknown record kind");
    }
    let n = c.u32()? as usize;
    let queues = c.take(n.checked_mul(4).ok_or("queue count overflow")?)?;
    let n = c.u8()? as usize;
    let exchange = c.take(n)?;
    let n = c.u8()? as usize;
    let routing_key = c.take(n)?;
    let n = c.u32()? as usize;
    let properties = c.take(n)?;
    let n = c.u32()? as usize;
    let body = c.take(n)?;
    if c.pos != rec.len() {
        return Err("trailing bytes after the body");
    }
    Ok(RecordView { queues: &rec[queues], exchange, routing_key, properties, body })
}

pub(super) fn encode_ack(kind: u8, offset: u32, queue: u32) -> [u8; ACK_RECORD_LEN] {
    let mut a = [0u8; ACK_RECORD_LEN];
    a[0] = kind;
    a[1..5].copy_from_slice(&offset.to_be_bytes());
    a[5..9].copy_from_slice(&queue.to_be_bytes());
    let crc = crc32fast::hash(&a[..9]);
    a[9..].copy_from_slice(&crc.to_be_bytes());
    a
}

/// `(kind, offset, queue)` of a valid ack record, `None` for a corrupt one.
pub(super) fn decode_ack(a: &[u8]) -> Option<(u8, u32, u32)> {
    let a: &[u8; ACK_RECORD_LEN] = a.try_into().ok()?;
    let crc = u32::from_be_bytes([a[9], a[10], a[11], a[12]]);
    if crc32fast::hash(&a[..9]) != crc {
        return None;
    }
    let kind = a[0];
    if kind != ACK_KIND_ACK && kind != ACK_KIND_DELIVERED {
        return None;
    }
    let offset = u32::from_be_bytes([a[1], a[2], a[3], a[4]]);
    let queue = u32::from_be_bytes([a[5], a[6], a[7], a[8]]);
    Some((kind, offset, queue))
}
