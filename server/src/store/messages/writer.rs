//! The store's one background thread: group commit and reclamation.
//!
//! It sleeps on a condvar until there is urgent work (a durability callback, a
//! large pending buffer, a segment to delete) or, with only buffered bytes
//! pending, until a short delay has passed. It then swaps the pending batch out
//! under the lock, writes it with positional writes, fsyncs every file it
//! touched once, runs the batch's callbacks, and deletes dead segments.
//! Appends that arrive meanwhile accumulate for the next round, so one fsync
//! covers every publish made while the previous one ran.
//!
//! A plain std::thread rather than a tokio task: fsync blocks for milliseconds
//! and must not stall a runtime worker.

use std::fs::File;
use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::Inner;
use super::files;
use super::state::{Batch, Chunk, Failure};

/// Pending bytes that wake the writer without waiting for a callback.
pub(super) const WAKE_BYTES: usize = 1 << 20;
/// How long buffered bytes without a waiting callback may sit in memory.
const IDLE_WRITE_DELAY: Duration = Duration::from_millis(20);
/// Ack logs kept open; beyond this the cache is emptied (they are reopened).
const MAX_ACK_HANDLES: usize = 64;
/// Largest buffer handed back for reuse by appends.
const MAX_SPARE: usize = 16 << 20;

struct Writer {
    inner: Arc<Inner>,
    /// Handle of the segment being written (at most two around a roll).
    segs: FxHashMap<u32, Arc<File>>,
    acks: FxHashMap<u32, File>,
}

pub(super) fn run(inner: Arc<Inner>) {
    let mut w = Writer { inner, segs: FxHashMap::default(), acks: FxHashMap::default() };
    while let Some((batch, chunks)) = w.next_batch() {
        w.round(batch, chunks);
    }
}

impl Writer {
    /// Waits for work and takes the pending batch; `None` at shutdown once
    /// everything has been written.
    fn next_batch(&mut self) -> Option<(Batch, Arc<Vec<Chunk>>)> {
        let inner = &self.inner;
        let mut st = inner.state.lock();
        loop {
            let p = &st.pending;
            let urgent = !p.callbacks.is_empty() || !p.reclaim.is_empty() || p.bytes >= WAKE_BYTES;
            if urgent || (st.shutdown && !p.is_empty()) {
                break;
            }
            if st.shutdown {
                return None;
            }
            if p.is_empty() {
                inner.work.wait(&mut st);
            } else if inner.work.wait_for(&mut st, IDLE_WRITE_DELAY).timed_out() {
                break;
            }
        }
        let mut batch = std::mem::take(&mut st.pending);
        // `read` finds records that are neither pending nor on disk here.
        let chunks = Arc::new(std::mem::take(&mut batch.chunks));
        st.inflight = Some(chunks.clone());
        inner.drained.notify_all();
        Some((batch, chunks))
    }

    fn round(&mut self, batch: Batch, chunks: Arc<Vec<Chunk>>) {
        let failed = self.inner.state.lock().failed.clone();
        let outcome = match failed {
            Some(f) => Err(f),
            None => {
                self.write(&batch, &chunks).map_err(|e| Failure { kind: e.kind(), message: e.to_string() })
            }
        };
        let fsyncs = *outcome.as_ref().unwrap_or(&0);
        {
            let mut st = self.inner.state.lock();
            st.inflight = None;
            st.counters.writes += 1;
            st.counters.fsyncs += fsyncs;
            if let Err(f) = &outcome
                && st.failed.is_none()
            {
                tracing::error!("message store: write failed, refusing further work: {}", f.message);
                st.failed = Some(f.clone());
            }
            // Hand the batch's buffer back to appends, unless a reader still
            // holds the batch or it grew unusually large.
            if let Ok(mut chunks) = Arc::try_unwrap(chunks)
                && let Some(mut buf) = chunks.pop().map(|c| c.data)
                && buf.capacity() <= MAX_SPARE
            {
                buf.clear();
                st.spare = Some(buf);
            }
        }
        let outcome = outcome.as_ref().map(|_| ());
        for cb in batch.callbacks {
            // A panicking callback must not take the store's thread down.
            if catch_unwind(AssertUnwindSafe(|| cb.run(outcome))).is_err() {
                tracing::error!("message store: an on_durable callback panicked");
            }
        }
        if outcome.is_ok() {
            self.reclaim(&batch.reclaim);
        }
    }

    /// Writes and fsyncs one batch; returns the number of fsyncs.
    fn write(&mut self, batch: &Batch, chunks: &[Chunk]) -> io::Result<u64> {
        let dir = self.inner.dir.clone();
        let mut touched: Vec<Arc<File>> = Vec::new();
        let mut new_entries = false;
        // A segment that died before its first byte was written (typical of
        // the paging store) never touches the disk, ack log included.
        let unborn: Vec<u32> = chunks
            .iter()
            .filter(|c| c.start == 0 && batch.reclaim.contains(&c.segment))
            .map(|c| c.segment)
            .collect();
        for c in chunks {
            // A dead segment's remaining bytes are never needed: its records
            // are all acked, and the file is deleted after this round.
            if batch.reclaim.contains(&c.segment) {
                continue;
            }
            let f = match self.segs.get(&c.segment) {
                Some(f) => f.clone(),
                None if c.start == 0 => {
                    let f = Arc::new(files::create_segment(&dir, c.segment)?);
                    self.inner.files.insert(c.segment, f.clone());
                    self.segs.insert(c.segment, f.clone());
                    new_entries = true;
                    f
                }
                None => {
                    return Err(io::Error::other(format!("segment {} is not open", c.segment)));
                }
            };
            files::write_all_at(&f, &c.data, u64::from(c.start))?;
            if !touched.iter().any(|t| Arc::ptr_eq(t, &f)) {
                touched.push(f);
            }
        }
        // Only the newest segment can receive more data.
        if let Some(&newest) = self.segs.keys().max() {
            self.segs.retain(|&s, _| s == newest);
        }
        let mut ack_segs: Vec<u32> = batch.acks.keys().copied().filter(|s| !unborn.contains(s)).collect();
        ack_segs.sort_unstable();
        if self.acks.len() + ack_segs.len() > MAX_ACK_HANDLES {
            self.acks.clear();
        }
        for &seg in &ack_segs {
            let f = match self.acks.entry(seg) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let f = files::open_ack_for_append(&dir, seg)?;
                    new_entries |= f.metadata()?.len() == 0;
                    e.insert(f)
                }
            };
            f.write_all(&batch.acks[&seg])?;
        }
        if !self.inner.fsync {
            return Ok(0);
        }
        let mut fsyncs = 0;
        for f in &touched {
            f.sync_data()?;
            fsyncs += 1;
        }
        for seg in &ack_segs {
            if let Some(f) = self.acks.get(seg) {
                f.sync_data()?;
                fsyncs += 1;
            }
        }
        if new_entries {
            files::sync_dir(&dir)?;
            fsyncs += 1;
        }
        Ok(fsyncs)
    }

    /// Deletes dead segments: the data file first, so that a crash in between
    /// leaves an orphan ack log (removed at open), never a segment whose acks
    /// are gone.
    fn reclaim(&mut self, segments: &[u32]) {
        let dir = &self.inner.dir;
        for &seg in segments {
            self.inner.files.remove(seg);
            self.segs.remove(&seg);
            self.acks.remove(&seg);
            let removed = files::remove_if_present(&files::seg_path(dir, seg))
                .and_then(|()| files::remove_if_present(&files::ack_path(dir, seg)));
            match removed {
                Ok(()) => self.inner.state.lock().counters.reclaimed += 1,
                Err(e) => tracing::warn!("message store: cannot delete segment {seg}: {e}"),
            }
        }
    }
}
