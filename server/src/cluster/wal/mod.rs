//! The node's shared write-ahead log: one log for the Raft groups of every
//! replicated queue, so that one fsync makes a batch of appends from many
//! groups durable at once (as RabbitMQ's Ra WAL does). The openraft adapter
//! builds each group's `RaftLogStorage` on it; this module only stores
//! bytes: entries by index, two small meta values (vote, committed), a
//! purge marker and a state machine snapshot per group.
//!
//! # Format (integers big-endian)
//! `NNNNNNNNNNNNNNNNNNNN.wal`, a segment: the header `"WRNWAL"` + `u16`
//! version (1), then records `[u32 len][u32 crc32 of the body][body]`, the
//! body `[u8 kind][u64 group]...`: entries (`[u64 first index][u32 n]` and n
//! length-prefixed payloads), truncate (`[u64 from]`), purge (`[u64 upto]`
//! and the marker), meta (`[u8 key]` and the value), drop, and checkpoint.
//! A new segment starts once the current one passes `segment_bytes`, and
//! every segment (one more at each open) begins with a checkpoint: every
//! live group with its meta, purge marker and last index; a group missing
//! from it was dropped. Replaying the segments in order therefore gives the
//! right state even when older segments are gone, and a segment is deleted
//! as soon as it holds no live entry (none purged, truncated away or
//! dropped), once the records that killed its entries are durable.
//! `NNNN.snap` holds a group's snapshot, replaced by writing a temporary,
//! fsync and rename.
//!
//! # Concurrency
//! Every call takes one short mutex: it updates the in-memory index (reads
//! answer from it at once, before durability) and copies the record into
//! the pending batch; no system call. One writer thread (`writer.rs`) takes
//! the whole batch, writes it, fsyncs once and runs the `done` callbacks in
//! submission order. Callers wait while more than 256 MiB are pending.
//! Entries stay in memory until purged, truncated or dropped: the Raft layer
//! bounds them by snapshotting and purging.
//!
//! # Failure
//! A failed write or fsync poisons the WAL (a failed fsync may have lost
//! pages, so nothing after it may be reported durable): every pending and
//! later callback gets an error and nothing more is written. Recovery stops
//! at the first torn or corrupt record of the last segment and cuts the file
//! there; corruption in an older segment (which was fsynced before its
//! successor was created) is an error.

mod format;
mod recovery;
mod state;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::{JoinHandle, ThreadId};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use state::{Callback, State};

/// Callers wait while this many bytes are pending: the disk is behind.
const MAX_PENDING_BYTES: usize = 256 << 20;

#[derive(Clone, Copy, Debug)]
pub struct WalOptions {
    /// fsync each batch (off only for tests and throwaway data).
    pub fsync: bool,
    /// A new segment starts once the current one is this large.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { fsync: true, segment_bytes: 64 << 20 }
    }
}

/// Runs on the writer thread once a record is durable, or with the error
/// that poisoned the WAL.
pub type Done = Box<dyn FnOnce(io::Result<()>) + Send + 'static>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaKey {
    Vote,
    Committed,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// `append` calls.
    pub appends: u64,
    /// Entries appended.
    pub entries: u64,
    pub fsyncs: u64,
    pub bytes_written: u64,
    /// Segment files.
    pub segments: u64,
    /// Their bytes (pending ones included).
    pub disk_bytes: u64,
}

/// What the writer thread shares with the handle.
struct Inner {
    dir: PathBuf,
    fsync: bool,
    state: Mutex<State>,
    /// Wakes the writer.
    work: Condvar,
    /// Wakes callers waiting for the pending batch to shrink.
    drained: Condvar,
    /// Serialises snapshot file changes.
    snap: Mutex<()>,
    #[cfg(test)]
    fail_writes: std::sync::atomic::AtomicBool,
}

pub struct Wal {
    inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
    writer_id: ThreadId,
}

impl Wal {
    /// Opens (creating) the directory, recovers every group's state from the segments.
    pub fn open(dir: &Path, opts: WalOptions) -> io::Result<Arc<Wal>> {
        let r = recovery::recover(dir, opts.fsync)?;
        let seg = r.segs.current;
        let state = State {
            groups: r.groups,
            snapshots: r.snapshots,
            segs: r.segs,
            pending: Default::default(),
            failed: None,
            shutdown: false,
            counters: Default::default(),
            segment_bytes: opts.segment_bytes.max(1),
        };
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            fsync: opts.fsync,
            state: Mutex::new(state),
            work: Condvar::new(),
            drained: Condvar::new(),
            snap: Mutex::new(()),
            #[cfg(test)]
            fail_writes: Default::default(),
        });
        let w = writer::Writer { inner: inner.clone(), seg, file: r.file };
        let handle = std::thread::Builder::new().name("wal-writer".into()).spawn(move || w.run())?;
        let writer_id = handle.thread().id();
        Ok(Arc::new(Wal { inner, writer: Mutex::new(Some(handle)), writer_id }))
    }

    /// Groups that have anything stored (entries, meta, purge marker or snapshot).
    pub fn groups(&self) -> Vec<u64> {
        let st = self.inner.state.lock();
        let mut v: Vec<u64> = st.groups.keys().chain(st.snapshots.iter()).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Appends entries (index, bytes) of `group`; indexes are consecutive and
    /// follow the group's last entry (or its purge point). `done` runs on the
    /// writer thread after one fsync covering these and everything submitted
    /// before them. An index at or below the last entry replaces the entries
    /// from there on; a gap after the last entry, or indexes that are not
    /// consecutive, are refused: nothing is stored and `done` gets
    /// `InvalidInput` (in its turn).
    pub fn append(&self, group: u64, entries: Vec<(u64, Bytes)>, done: Done) {
        let mut st = self.lock_for_write();
        st.counters.appends += 1;
        let first = entries.first().map_or(0, |e| e.0);
        let consecutive = entries.iter().enumerate().all(|(i, e)| e.0 == first + i as u64);
        if !consecutive || !st.groups.get(&group).is_none_or(|g| g.accepts(first)) {
            let msg = format!("wal: group {group}: entries from {first} do not follow the log");
            let error = Some(io::Error::new(io::ErrorKind::InvalidInput, msg));
            st.pending.callbacks.push(Callback { done, error });
            return self.wake();
        }
        if !entries.is_empty() {
            st.counters.entries += entries.len() as u64;
            let seg = st.write(|b| format::encode_entries(b, group, &entries));
            let State { groups, segs, .. } = &mut *st;
            groups.entry(group).or_default().append(first, entries.into_iter().map(|e| e.1), seg, segs);
            st.settle();
        }
        st.pending.callbacks.push(Callback { done, error: None });
        self.wake();
    }

    /// Deletes the group's entries with index >= from (Raft conflict
    /// truncation). Durable with the next fsync; ordered before later appends.
    pub fn truncate(&self, group: u64, from: u64) {
        let mut st = self.lock_for_write();
        st.write(|b| format::encode_truncate(b, group, from));
        let State { groups, segs, .. } = &mut *st;
        if let Some(g) = groups.get_mut(&group) {
            g.truncate(from, segs);
        }
        st.settle();
        self.wake();
    }

    /// Deletes entries with index <= upto, and stores `marker` (the caller's
    /// encoded last-purged log id) as the group's purge marker, atomically with it.
    pub fn purge(&self, group: u64, upto: u64, marker: Bytes) {
        let mut st = self.lock_for_write();
        st.write(|b| format::encode_purge(b, group, upto, &marker));
        let State { groups, segs, .. } = &mut *st;
        let g = groups.entry(group).or_default();
        g.purge(upto, segs);
        g.purged = Some((upto, marker));
        st.settle();
        self.wake();
    }

    pub fn purged(&self, group: u64) -> Option<(u64, Bytes)> {
        self.inner.state.lock().groups.get(&group)?.purged.clone()
    }

    /// Stores a small value; `done` (if any) runs after it is durable.
    pub fn set(&self, group: u64, key: MetaKey, value: Bytes, done: Option<Done>) {
        let mut st = self.lock_for_write();
        st.write(|b| format::encode_meta(b, group, key, &value));
        *st.groups.entry(group).or_default().meta(key) = Some(value);
        st.settle();
        if let Some(done) = done {
            st.pending.callbacks.push(Callback { done, error: None });
        }
        self.wake();
    }

    pub fn get(&self, group: u64, key: MetaKey) -> Option<Bytes> {
        self.inner.state.lock().groups.get_mut(&group)?.meta(key).clone()
    }

    /// Entries with start <= index < end, in order (from memory).
    pub fn entries(&self, group: u64, start: u64, end: u64) -> Vec<(u64, Bytes)> {
        let st = self.inner.state.lock();
        st.groups.get(&group).map(|g| g.entries(start, end)).unwrap_or_default()
    }

    pub fn last(&self, group: u64) -> Option<(u64, Bytes)> {
        self.inner.state.lock().groups.get(&group)?.last()
    }

    /// Forgets everything of a group (its queue was deleted): entries, meta,
    /// marker, snapshot file. The snapshot file goes at once; the rest is
    /// durable with the next fsync.
    pub fn drop_group(&self, group: u64) {
        let _snap = self.inner.snap.lock();
        {
            let mut st = self.lock_for_write();
            st.write(|b| format::encode_drop(b, group));
            let State { groups, segs, .. } = &mut *st;
            if let Some(mut g) = groups.remove(&group) {
                g.truncate(0, segs);
            }
            st.snapshots.remove(&group);
            st.settle();
            self.wake();
        }
        match std::fs::remove_file(recovery::snap_path(&self.inner.dir, group)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!("wal: cannot delete the snapshot of group {group}: {e}")
            }
            _ => {}
        }
    }

    /// A group's state machine snapshot: one file per group, replaced
    /// atomically (write tmp, fsync, rename, fsync dir).
    pub fn save_snapshot(&self, group: u64, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let _snap = self.inner.snap.lock();
        let dir = &self.inner.dir;
        let tmp = recovery::snap_tmp_path(dir, group);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        if self.inner.fsync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, recovery::snap_path(dir, group))?;
        if self.inner.fsync {
            recovery::sync_dir(dir)?;
        }
        self.inner.state.lock().snapshots.insert(group);
        Ok(())
    }

    pub fn snapshot(&self, group: u64) -> io::Result<Option<Vec<u8>>> {
        let _snap = self.inner.snap.lock();
        match std::fs::read(recovery::snap_path(&self.inner.dir, group)) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Blocks until everything submitted so far is durable. Not to be called
    /// from a `done` callback (the writer thread would wait for itself).
    pub fn flush(&self) -> io::Result<()> {
        let (tx, rx) = mpsc::channel();
        {
            let mut st = self.inner.state.lock();
            let done: Done = Box::new(move |r| {
                let _ = tx.send(r);
            });
            st.pending.callbacks.push(Callback { done, error: None });
            self.wake();
        }
        rx.recv().unwrap_or_else(|_| Err(io::Error::other("wal: the writer thread stopped")))
    }

    pub fn stats(&self) -> WalStats {
        let st = self.inner.state.lock();
        let c = st.counters;
        WalStats {
            appends: c.appends,
            entries: c.entries,
            fsyncs: c.fsyncs,
            bytes_written: c.bytes_written,
            segments: st.segs.map.len() as u64,
            disk_bytes: st.segs.map.values().map(|s| s.bytes).sum(),
        }
    }

    /// The state lock, once the pending batch is below its bound (never
    /// waited for on the writer thread, which alone can shrink it).
    fn lock_for_write(&self) -> parking_lot::MutexGuard<'_, State> {
        let mut st = self.inner.state.lock();
        if std::thread::current().id() != self.writer_id {
            while st.pending.bytes >= MAX_PENDING_BYTES && st.failed.is_none() {
                self.inner.drained.wait(&mut st);
            }
        }
        st
    }

    fn wake(&self) {
        self.inner.work.notify_one();
    }
}

impl Drop for Wal {
    /// Writes what is pending and stops the writer thread.
    fn drop(&mut self) {
        self.inner.state.lock().shutdown = true;
        self.inner.work.notify_one();
        if std::thread::current().id() != self.writer_id
            && let Some(h) = self.writer.lock().take()
        {
            let _ = h.join();
        }
    }
}
