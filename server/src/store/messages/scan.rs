//! Sequential scan of one segment file at open: validates every record,
//! stops at the first torn or corrupt one and truncates the file there, and
//! hands each live (queue, message) pair to the recovery report.
//!
//! Reads go through one large buffer reused across segments, so recovery is
//! a handful of big sequential reads per segment plus a checksum per record.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use rustc_hash::FxHashMap;

use super::format::{self, HeaderCheck, MIN_RECORD_LEN, RECORD_HEADER_LEN, SEG_HEADER_LEN};
use super::{RecoveredEntry, Recovery, StoreRef, files};

/// Bytes read per refill; a record larger than this grows the buffer.
const READ_CHUNK: usize = 8 << 20;

pub(super) const MARK_ACKED: u8 = 1;
pub(super) const MARK_DELIVERED: u8 = 2;

/// Ack-log marks of one segment, keyed by `mark_key(offset, queue)`.
pub(super) type Marks = FxHashMap<u64, u8>;

pub(super) fn mark_key(offset: u32, queue: u32) -> u64 {
    (u64::from(offset) << 32) | u64::from(queue)
}

/// What the scan of one segment found.
pub(super) struct Scanned {
    /// (queue, message) pairs still held by a live queue.
    pub live: u64,
    /// Length of the file after any truncation.
    pub len: u64,
}

/// Reads `[pos, pos + n)` of a file through a reusable buffer.
struct Reader<'b> {
    file: File,
    file_len: u64,
    buf: &'b mut Vec<u8>,
    /// File offset of `buf[0]`.
    buf_off: u64,
}

impl Reader<'_> {
    fn get(&mut self, pos: u64, n: usize) -> io::Result<&[u8]> {
        let buf_end = self.buf_off + self.buf.len() as u64;
        if pos < self.buf_off || pos > buf_end {
            self.buf.clear();
            self.buf_off = pos;
        }
        if pos + n as u64 > self.buf_off + self.buf.len() as u64 {
            // Keep the unread tail, then read at least one large chunk.
            self.buf.drain(..(pos - self.buf_off) as usize);
            self.buf_off = pos;
            let want = n.max(READ_CHUNK) as u64;
            let want = want.min(self.file_len - pos) as usize;
            let have = self.buf.len();
            if want > have {
                self.buf.resize(want, 0);
                files::read_exact_at(&self.file, &mut self.buf[have..], pos + have as u64)?;
            }
        }
        let from = (pos - self.buf_off) as usize;
        self.buf
            .get(from..from + n)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "segment shrank while scanned"))
    }
}

/// Scans segment `seg`, truncating a torn or corrupt tail, and appends its
/// live entries to `report.queues`.
pub(super) fn scan_segment(
    dir: &Path,
    seg: u32,
    fsync: bool,
    marks: &Marks,
    live_queues: &HashSet<u32>,
    report: &mut Recovery,
    buf: &mut Vec<u8>,
) -> io::Result<Scanned> {
    let file = OpenOptions::new().read(true).write(true).open(files::seg_path(dir, seg))?;
    let file_len = file.metadata()?.len();
    buf.clear();
    let mut rd = Reader { file, file_len, buf, buf_off: 0 };
    let mut live = 0u64;
    // A file shorter than its header was cut while being created.
    let header = if file_len < SEG_HEADER_LEN {
        HeaderCheck::Blank
    } else {
        format::check_segment_header(rd.get(0, SEG_HEADER_LEN as usize)?)
    };
    match header {
        HeaderCheck::Valid => {}
        HeaderCheck::Blank => {
            drop_tail(&rd.file, seg, 0, file_len, "incomplete segment header", fsync, report)?;
            return Ok(Scanned { live: 0, len: 0 });
        }
        HeaderCheck::Foreign => {
            let path = files::seg_path(dir, seg);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a Warren segment, or an unsupported format version", path.display()),
            ));
        }
    }
    let mut pos = SEG_HEADER_LEN;
    while pos < file_len {
        let problem = if file_len - pos < RECORD_HEADER_LEN as u64 {
            Some("partial record header")
        } else {
            let len = format::header_len(rd.get(pos, RECORD_HEADER_LEN)?);
            match len {
                Some(len) if (len as usize) < MIN_RECORD_LEN => Some("impossible record length"),
                Some(len) if pos + u64::from(len) > file_len => Some("record runs past the end of the file"),
                Some(len) => {
                    let rec = rd.get(pos, len as usize)?;
                    match format::decode_record(rec) {
                        Err(why) => Some(why),
                        Ok(view) => {
                            let r = StoreRef { segment: seg, offset: pos as u32, len };
                            let body_len = view.body.len() as u32;
                            let mut any = false;
                            for q in view.queue_ids() {
                                if !live_queues.contains(&q) {
                                    continue;
                                }
                                let m = if marks.is_empty() {
                                    0
                                } else {
                                    marks.get(&mark_key(r.offset, q)).copied().unwrap_or(0)
                                };
                                if m & MARK_ACKED != 0 {
                                    continue;
                                }
                                report.queues.entry(q).or_default().push(RecoveredEntry {
                                    r,
                                    redelivered: m & MARK_DELIVERED != 0,
                                    body_len,
                                });
                                live += 1;
                                any = true;
                            }
                            report.messages += u64::from(any);
                            pos += u64::from(len);
                            None
                        }
                    }
                }
                None => Some("unreadable record header"),
            }
        };
        if let Some(why) = problem {
            drop_tail(&rd.file, seg, pos, file_len, why, fsync, report)?;
            return Ok(Scanned { live, len: pos });
        }
    }
    Ok(Scanned { live, len: file_len })
}

/// Truncates a segment at `pos`, the end of its last valid record.
fn drop_tail(
    file: &File,
    seg: u32,
    pos: u64,
    file_len: u64,
    why: &str,
    fsync: bool,
    report: &mut Recovery,
) -> io::Result<()> {
    let dropped = file_len - pos;
    let note =
        format!("segment {seg}: {why} at offset {pos}; dropped {dropped} tail bytes, file truncated there");
    tracing::warn!("message store: {note}");
    report.log.push(note);
    report.dropped_tail_bytes += dropped;
    file.set_len(pos)?;
    if fsync {
        file.sync_all()?;
    }
    Ok(())
}
