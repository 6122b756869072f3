//! The WAL's one background thread: group commit.
//!
//! It sleeps until something is pending, takes the whole pending batch under
//! the lock, writes each segment's bytes with one write, fsyncs once, runs
//! the batch's callbacks in submission order and deletes the segments that
//! died. Whatever is submitted meanwhile waits for the next round, so under
//! load one fsync covers many appends from many groups.
//!
//! A plain std::thread rather than a tokio task: fsync blocks for
//! milliseconds and must not stall a runtime worker.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::Inner;
use super::recovery::{seg_path, sync_dir};
use super::state::Pending;

pub(super) struct Writer {
    pub inner: Arc<Inner>,
    pub seg: u64,
    pub file: File,
}

impl Writer {
    pub fn run(mut self) {
        while let Some(batch) = self.next_batch() {
            self.round(batch);
        }
    }

    /// Waits for work and takes the pending batch; `None` at shutdown once
    /// everything has been written.
    fn next_batch(&mut self) -> Option<Pending> {
        let mut st = self.inner.state.lock();
        while st.pending.is_empty() {
            if st.shutdown {
                return None;
            }
            self.inner.work.wait(&mut st);
        }
        let batch = std::mem::take(&mut st.pending);
        self.inner.drained.notify_all();
        Some(batch)
    }

    fn round(&mut self, batch: Pending) {
        let failed = self.inner.state.lock().failure();
        let outcome = match failed {
            Some(e) => Err(e),
            None => self.write(&batch),
        };
        {
            let mut st = self.inner.state.lock();
            match &outcome {
                Ok((fsyncs, bytes)) => {
                    st.counters.fsyncs += fsyncs;
                    st.counters.bytes_written += bytes;
                }
                Err(e) if st.failed.is_none() => {
                    tracing::error!("wal: write failed, refusing further work: {e}");
                    st.failed = Some((e.kind(), e.to_string()));
                }
                Err(_) => {}
            }
        }
        for cb in batch.callbacks {
            let result = match (&cb.error, &outcome) {
                (Some(e), _) | (None, Err(e)) => Err(io::Error::new(e.kind(), e.to_string())),
                (None, Ok(_)) => Ok(()),
            };
            // A panicking callback must not take the WAL's thread down.
            if catch_unwind(AssertUnwindSafe(|| (cb.done)(result))).is_err() {
                tracing::error!("wal: a done callback panicked");
            }
        }
        if outcome.is_ok() {
            self.reclaim(&batch.dead);
        }
    }

    /// Writes and fsyncs one batch; returns the fsyncs and bytes written.
    fn write(&mut self, batch: &Pending) -> io::Result<(u64, u64)> {
        #[cfg(test)]
        if self.inner.fail_writes.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(io::Error::other("injected write failure"));
        }
        let fsync = self.inner.fsync;
        let (mut fsyncs, mut bytes) = (0, 0);
        let mut dirty = false;
        let mut created = false;
        for c in &batch.chunks {
            if c.seg != self.seg {
                // The older segment must be whole on disk before its
                // successor (whose checkpoint speaks for it) exists.
                if fsync && dirty {
                    self.file.sync_data()?;
                    fsyncs += 1;
                }
                let path = seg_path(&self.inner.dir, c.seg);
                self.file = OpenOptions::new().create(true).truncate(true).write(true).open(path)?;
                self.seg = c.seg;
                created = true;
            }
            self.file.write_all(&c.data)?;
            bytes += c.data.len() as u64;
            dirty = true;
        }
        if fsync && dirty {
            self.file.sync_data()?;
            fsyncs += 1;
        }
        if fsync && created {
            sync_dir(&self.inner.dir)?;
            fsyncs += 1;
        }
        Ok((fsyncs, bytes))
    }

    /// Deletes segments whose entries all died; the records that killed them
    /// are durable now.
    fn reclaim(&mut self, dead: &[u64]) {
        for &seg in dead {
            match std::fs::remove_file(seg_path(&self.inner.dir, seg)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!("wal: cannot delete segment {seg}: {e}");
                    continue;
                }
            }
            self.inner.state.lock().segs.map.remove(&seg);
        }
    }
}
