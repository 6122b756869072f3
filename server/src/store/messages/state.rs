//! The message store's shared state, guarded by one `parking_lot::Mutex`:
//! the pending batch that appends, acks and `on_durable` fill, the batch the
//! writer thread is currently writing, and the per-segment live counts.
//!
//! Every method here runs with the lock held, so each one only copies bytes
//! or updates counters; checksums are computed by callers before locking, and
//! all system calls happen on the writer thread.

use std::io;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::format::{self, SEG_HEADER_LEN};
use super::{StoreRef, StoredMessage};

/// Bytes of one segment appended in one batch, to be written at `start`.
pub(super) struct Chunk {
    pub segment: u32,
    pub start: u32,
    pub data: Vec<u8>,
}

impl Chunk {
    /// The bytes of `r` if this chunk holds all of them.
    pub fn slice(&self, r: StoreRef) -> Option<&[u8]> {
        if r.segment != self.segment || r.offset < self.start {
            return None;
        }
        let from = (r.offset - self.start) as usize;
        self.data.get(from..from.checked_add(r.len as usize)?)
    }
}

pub(super) fn find_in(chunks: &[Chunk], r: StoreRef) -> Option<&[u8]> {
    chunks.iter().rev().find_map(|c| c.slice(r))
}

/// A callback waiting for the next write (and fsync) to finish.
pub(super) enum Callback {
    Durable(Box<dyn FnOnce() + Send>),
    WithResult(Box<dyn FnOnce(io::Result<()>) + Send>),
}

impl Callback {
    /// A plain `on_durable` callback is dropped without running on failure:
    /// the data it waited for will never be durable.
    pub fn run(self, outcome: Result<(), &Failure>) {
        match (self, outcome) {
            (Callback::Durable(f), Ok(())) => f(),
            (Callback::Durable(_), Err(_)) => {}
            (Callback::WithResult(f), outcome) => f(outcome.map_err(Failure::to_io)),
        }
    }
}

/// The first write error; the store refuses work after it (see `mod.rs`).
#[derive(Clone, Debug)]
pub(super) struct Failure {
    pub kind: io::ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn to_io(&self) -> io::Error {
        io::Error::new(self.kind, format!("message store failed: {}", self.message))
    }
}

/// Everything accumulated since the writer last took a batch.
#[derive(Default)]
pub(super) struct Batch {
    pub chunks: Vec<Chunk>,
    /// Ack-log bytes per segment.
    pub acks: FxHashMap<u32, Vec<u8>>,
    pub callbacks: Vec<Callback>,
    /// Segments that no queue needs any more, deleted after this batch's acks
    /// are durable.
    pub reclaim: Vec<u32>,
    pub bytes: usize,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.acks.is_empty() && self.callbacks.is_empty() && self.reclaim.is_empty()
    }
}

#[derive(Default, Clone, Copy)]
pub(super) struct SegInfo {
    /// (queue, message) pairs not yet acked.
    pub live: u64,
    /// Bytes in the segment and its ack log, buffered ones included.
    pub bytes: u64,
}

#[derive(Default, Clone, Copy)]
pub(super) struct Counters {
    pub appends: u64,
    pub acks: u64,
    pub delivered: u64,
    pub writes: u64,
    pub fsyncs: u64,
    pub reclaimed: u64,
}

pub(super) struct State {
    pub cur_seg: u32,
    /// Length of the current segment, buffered bytes included; 0 until its
    /// header has been appended.
    pub cur_len: u64,
    pub pending: Batch,
    /// Chunks the writer took and has not finished writing; `read` looks here.
    pub inflight: Option<Arc<Vec<Chunk>>>,
    pub segs: FxHashMap<u32, SegInfo>,
    pub disk_bytes: u64,
    /// A cleared buffer handed back by the writer, reused for the next chunk.
    pub spare: Option<Vec<u8>>,
    pub failed: Option<Failure>,
    pub shutdown: bool,
    pub counters: Counters,
}

impl State {
    pub fn check_failed(&self) -> io::Result<()> {
        self.failed.as_ref().map_or(Ok(()), |f| Err(f.to_io()))
    }

    /// Copies one encoded record into the pending batch, rolling to a new
    /// segment first when it would not fit in the current one.
    pub fn push_record(
        &mut self,
        (len, crc): (u32, u32),
        msg: &StoredMessage<'_>,
        queues: &[u32],
        segment_size: u64,
    ) -> io::Result<StoreRef> {
        let end = self.cur_len + u64::from(len);
        if self.cur_len > SEG_HEADER_LEN && (end > segment_size || end > u64::from(u32::MAX)) {
            self.roll()?;
        }
        if self.cur_len == 0 {
            self.current_chunk().data.extend_from_slice(&format::segment_header());
            self.grow(SEG_HEADER_LEN);
        }
        let r = StoreRef { segment: self.cur_seg, offset: self.cur_len as u32, len };
        format::write_record(&mut self.current_chunk().data, len, crc, msg, queues);
        self.grow(u64::from(len));
        if let Some(s) = self.segs.get_mut(&self.cur_seg) {
            s.live += queues.len() as u64;
        }
        self.counters.appends += 1;
        Ok(r)
    }

    fn grow(&mut self, n: u64) {
        self.cur_len += n;
        self.pending.bytes += n as usize;
        self.disk_bytes += n;
        if let Some(s) = self.segs.get_mut(&self.cur_seg) {
            s.bytes += n;
        }
    }

    fn roll(&mut self) -> io::Result<()> {
        let old = self.cur_seg;
        self.cur_seg = old.checked_add(1).ok_or_else(|| io::Error::other("segment numbers exhausted"))?;
        self.cur_len = 0;
        self.segs.insert(self.cur_seg, SegInfo::default());
        // The old segment may have been fully acked while it was current.
        if self.segs.get(&old).is_some_and(|s| s.live == 0) {
            self.forget_segment(old);
        }
        Ok(())
    }

    fn current_chunk(&mut self) -> &mut Chunk {
        let fresh = self.pending.chunks.last().is_none_or(|c| c.segment != self.cur_seg);
        if fresh {
            let data = self.spare.take().unwrap_or_default();
            self.pending.chunks.push(Chunk { segment: self.cur_seg, start: self.cur_len as u32, data });
        }
        let last = self.pending.chunks.len() - 1;
        &mut self.pending.chunks[last]
    }

    /// Buffers an ack-log record. Returns true when it made a segment
    /// reclaimable (so the caller wakes the writer).
    pub fn push_mark(&mut self, kind: u8, r: StoreRef, queue: u32) -> bool {
        let Some(seg) = self.segs.get_mut(&r.segment) else {
            // Already reclaimed: a second ack of the same pair, or a stale ref.
            tracing::debug!("message store: {kind} mark for unknown segment {}", r.segment);
            return false;
        };
        if kind == format::ACK_KIND_ACK {
            if seg.live == 0 {
                tracing::warn!("message store: ack for segment {} with no live message", r.segment);
                return false;
            }
            seg.live -= 1;
            self.counters.acks += 1;
        } else {
            self.counters.delivered += 1;
        }
        let n = format::ACK_RECORD_LEN as u64;
        seg.bytes += n;
        let now_dead = seg.live == 0;
        self.disk_bytes += n;
        self.pending.bytes += n as usize;
        let rec = format::encode_ack(kind, r.offset, queue);
        self.pending.acks.entry(r.segment).or_default().extend_from_slice(&rec);
        if kind == format::ACK_KIND_ACK && now_dead && r.segment != self.cur_seg {
            self.forget_segment(r.segment);
            return true;
        }
        false
    }

    /// Drops a dead segment from the books and queues its files for deletion.
    fn forget_segment(&mut self, segment: u32) {
        if let Some(s) = self.segs.remove(&segment) {
            self.disk_bytes = self.disk_bytes.saturating_sub(s.bytes);
            self.pending.reclaim.push(segment);
        }
    }

    /// A copy of `r`'s bytes if they are still in memory.
    pub fn buffered(&self, r: StoreRef) -> Option<Vec<u8>> {
        find_in(&self.pending.chunks, r).map(<[u8]>::to_vec)
    }
}
