//! Opening a store directory: wiping it (paging store), removing leftovers of
//! an interrupted reclamation, reading each segment's ack log, scanning the
//! segments in order and deleting those nothing lives in any more.
//!
//! Storage decision: the store never appends to a segment written by an
//! earlier run; it always starts a new one. A torn record at the old tail may
//! already have an ack record (ack logs and segments are fsynced separately,
//! and a crash can keep one but not the other), and writing a new message at
//! that offset would let the stale ack delete it at the next recovery.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::format::{self, ACK_RECORD_LEN};
use super::scan::{self, MARK_ACKED, MARK_DELIVERED, Marks};
use super::state::SegInfo;
use super::{Recovery, files};

/// What `open` needs besides the report.
pub(super) struct Recovered {
    pub report: Recovery,
    pub segs: FxHashMap<u32, SegInfo>,
    pub next_segment: u32,
    pub disk_bytes: u64,
}

/// Deletes every segment and ack log in `dir` (the paging store starts empty).
pub(super) fn wipe(dir: &Path) -> io::Result<()> {
    let listing = files::list_dir(dir)?;
    for &seg in &listing.segs {
        files::remove_if_present(&files::seg_path(dir, seg))?;
    }
    for &seg in &listing.acks {
        files::remove_if_present(&files::ack_path(dir, seg))?;
    }
    Ok(())
}

pub(super) fn recover(dir: &Path, fsync: bool, live_queues: &HashSet<u32>) -> io::Result<Recovered> {
    let started = Instant::now();
    let listing = files::list_dir(dir)?;
    let mut report = Recovery::default();
    // An ack log without its segment is what a crash during reclamation
    // leaves behind (the segment is deleted first).
    for &seg in listing.acks.difference(&listing.segs) {
        files::remove_if_present(&files::ack_path(dir, seg))?;
        report.log.push(format!("segment {seg}: removed an orphan ack log"));
    }
    let mut segs = FxHashMap::default();
    let mut disk_bytes = 0;
    let mut buf = Vec::new();
    for &seg in &listing.segs {
        let (marks, ack_len) = read_ack_log(dir, seg, fsync, &mut report)?;
        let scanned = scan::scan_segment(dir, seg, fsync, &marks, live_queues, &mut report, &mut buf)?;
        if scanned.live == 0 {
            files::remove_if_present(&files::seg_path(dir, seg))?;
            files::remove_if_present(&files::ack_path(dir, seg))?;
            report.log.push(format!("segment {seg}: nothing live, deleted"));
            continue;
        }
        report.segments += 1;
        let bytes = scanned.len + ack_len;
        disk_bytes += bytes;
        segs.insert(seg, SegInfo { live: scanned.live, bytes });
    }
    let highest = listing.segs.iter().chain(&listing.acks).max().copied();
    let next_segment =
        highest.unwrap_or(0).checked_add(1).ok_or_else(|| io::Error::other("segment numbers exhausted"))?;
    report.elapsed = started.elapsed();
    Ok(Recovered { report, segs, next_segment, disk_bytes })
}

/// Reads a segment's ack log into marks. A partial record at the end (torn
/// write) is cut off so later appends stay aligned; records failing their
/// checksum are skipped and counted in the log.
fn read_ack_log(dir: &Path, seg: u32, fsync: bool, report: &mut Recovery) -> io::Result<(Marks, u64)> {
    let path = files::ack_path(dir, seg);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Marks::default(), 0)),
        Err(e) => return Err(e),
    };
    let whole = data.len() / ACK_RECORD_LEN * ACK_RECORD_LEN;
    if whole != data.len() {
        let f = OpenOptions::new().write(true).open(&path)?;
        f.set_len(whole as u64)?;
        if fsync {
            f.sync_all()?;
        }
        report
            .log
            .push(format!("segment {seg}: ack log ended with a partial record; truncated to {whole} bytes"));
    }
    let mut marks = Marks::default();
    let mut corrupt = 0u64;
    for a in data[..whole].chunks_exact(ACK_RECORD_LEN) {
        match format::decode_ack(a) {
            Some((kind, offset, queue)) => {
                let bit = if kind == format::ACK_KIND_ACK { MARK_ACKED } else { MARK_DELIVERED };
                *marks.entry(scan::mark_key(offset, queue)).or_default() |= bit;
            }
            None => corrupt += 1,
        }
    }
    if corrupt > 0 {
        let note = format!("segment {seg}: ignored {corrupt} corrupt ack-log records");
        tracing::warn!("message store: {note}");
        report.log.push(note);
    }
    Ok((marks, whole as u64))
}
