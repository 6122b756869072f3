//! The persistent message store: one per node, shared by every durable queue.
//! It owns the segment files in its directory, hands out [`StoreRef`] handles
//! for the messages it holds, makes them durable with group commit, rebuilds
//! each queue's message list at start, and deletes segments nothing needs any
//! more. Opened with `fsync: false, wipe: true` it also serves as the paging
//! area for transient messages.
//!
//! Callers: the queues (append, ack, mark_delivered, read), the channel's
//! publisher-confirm path (`on_durable`), and node start-up (`open`).
//!
//! # On-disk format (all integers big-endian)
//!
//! `NNNNNNNN.seg`, a segment: an 8-byte header `"WRNSEG"` + `u16` version (1),
//! then message records back to back:
//!
//! ```text
//! [u32 len: whole record, these 8 bytes included][u32 crc32 of the bytes after it]
//! [u8 kind = 1][u32 queue count n][n x u32 queue id]
//! [u8 len][exchange][u8 len][routing key][u32 len][properties][u32 len][body]
//! ```
//!
//! A [`StoreRef`] is `(segment number, offset of the record, record length)`.
//! The body is stored once however many queues hold the message.
//!
//! `NNNNNNNN.ack`, the segment's ack log: fixed 13-byte records
//! `[u8 kind: 1 = ack, 2 = delivered][u32 record offset][u32 queue id][u32 crc32 of the first 9 bytes]`.
//!
//! Recovery reads each ack log, then scans its segment; the first record with
//! a bad length or checksum ends the scan and the file is truncated there. A
//! corrupt ack record is skipped on its own (fixed size keeps the rest aligned).
//!
//! # Concurrency
//! Appends, acks and marks take one short mutex to copy bytes into the pending
//! batch (no system call); one writer thread (`writer.rs`) writes batches,
//! fsyncs once per batch and runs `on_durable` callbacks.
//!
//! # Failure
//! Any write or fsync error (disk full, I/O error) poisons the store: a
//! failed fsync may have dropped dirty pages, so retrying could report data
//! durable that is not. From then on appends and `flush` return the error,
//! `on_durable_result` callbacks get it, plain `on_durable` callbacks are
//! dropped, and acks are ignored. What was durable before stays readable and
//! comes back at the next open; the broker should raise its disk alarm before
//! the disk fills, and stop or restart the node once the store has failed.

mod files;
mod format;
mod recovery;
mod scan;
mod state;
mod types;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use files::FileTable;
use state::{Callback, State};
pub use types::{ReadMessage, RecoveredEntry, Recovery, StoreConfig, StoreRef, StoreStats, StoredMessage};

/// Appends wait (backpressure) while this many bytes are pending: the disk is
/// not keeping up and memory must not grow without bound.
const MAX_PENDING_BYTES: usize = 256 << 20;

/// Reads at least this long check the segment's length before allocating.
const LARGE_READ: u32 = 1 << 20;

/// What the writer thread shares with the store's handle.
struct Inner {
    dir: PathBuf,
    fsync: bool,
    segment_size: u64,
    state: Mutex<State>,
    /// Wakes the writer.
    work: Condvar,
    /// Wakes appends waiting for the pending batch to drain.
    drained: Condvar,
    files: FileTable,
}

pub struct MessageStore {
    inner: Arc<Inner>,
    writer: Option<JoinHandle<()>>,
    writer_id: ThreadId,
}

impl MessageStore {
    /// Opens or creates the store. Scans every segment, drops a torn or
    /// corrupt tail (truncating the file there, noted in `log`), applies the
    /// ack log, and returns what each queue in `live_queues` holds; records
    /// for other queue ids count as dead.
    pub fn open(cfg: StoreConfig, live_queues: &HashSet<u32>) -> io::Result<(Arc<MessageStore>, Recovery)> {
        std::fs::create_dir_all(&cfg.dir)?;
        if cfg.wipe {
            recovery::wipe(&cfg.dir)?;
        }
        let rec = recovery::recover(&cfg.dir, cfg.fsync, live_queues)?;
        let mut segs = rec.segs;
        segs.insert(rec.next_segment, state::SegInfo::default());
        let state = State {
            cur_seg: rec.next_segment,
            cur_len: 0,
            pending: state::Batch::default(),
            inflight: None,
            segs,
            disk_bytes: rec.disk_bytes,
            spare: None,
            failed: None,
            shutdown: false,
            counters: state::Counters::default(),
        };
        let inner = Arc::new(Inner {
            files: FileTable::new(cfg.dir.clone()),
            dir: cfg.dir,
            fsync: cfg.fsync,
            segment_size: cfg.segment_size.min(u64::from(u32::MAX)),
            state: Mutex::new(state),
            work: Condvar::new(),
            drained: Condvar::new(),
        });
        let for_writer = inner.clone();
        let handle = std::thread::Builder::new()
            .name("warren-msg-store".into())
            .spawn(move || writer::run(for_writer))?;
        let store = MessageStore { inner, writer_id: handle.thread().id(), writer: Some(handle) };
        Ok((Arc::new(store), rec.report))
    }

    /// Appends one message held by `queues` (distinct ids; one record, body
    /// stored once). Buffered: only copies under a short lock, unless more
    /// than 256 MiB are pending, in which case it waits for the writer.
    /// Thread-safe. After a write error every append fails with that error.
    pub fn append(&self, msg: &StoredMessage<'_>, queues: &[u32]) -> io::Result<StoreRef> {
        let len = format::record_len(msg, queues)?;
        let crc = format::record_crc(msg, queues);
        let inner = &*self.inner;
        let mut st = inner.state.lock();
        // The writer thread itself (a callback that appends) must never wait
        // for the writer.
        while st.pending.bytes >= MAX_PENDING_BYTES
            && st.failed.is_none()
            && !st.shutdown
            && std::thread::current().id() != self.writer_id
        {
            inner.work.notify_one();
            inner.drained.wait(&mut st);
        }
        st.check_failed()?;
        let r = st.push_record((len, crc), msg, queues, inner.segment_size)?;
        // Wake only on a size threshold (or a reclaimable segment from a
        // roll), so the common append makes no system call at all.
        if st.pending.bytes >= writer::WAKE_BYTES || !st.pending.reclaim.is_empty() {
            inner.work.notify_one();
        }
        Ok(r)
    }

    /// Runs `f` once everything appended before this call is written and
    /// fsynced (or just written, when fsync is off). `f` runs on the store's
    /// thread after the next write, so it must be cheap and must not block
    /// on the store (no `flush` inside it). If the store fails, `f` is
    /// dropped without running; use [`MessageStore::on_durable_result`] to
    /// learn about failures.
    pub fn on_durable(&self, f: Box<dyn FnOnce() + Send>) {
        self.push_callback(Callback::Durable(f));
    }

    /// Like `on_durable`, but `f` also runs, with the error, if the data
    /// could not be made durable (disk full, I/O error).
    pub fn on_durable_result(&self, f: Box<dyn FnOnce(io::Result<()>) + Send>) {
        self.push_callback(Callback::WithResult(f));
    }

    fn push_callback(&self, cb: Callback) {
        self.inner.state.lock().pending.callbacks.push(cb);
        self.inner.work.notify_one();
    }

    /// The queue no longer holds this message. Buffers an ack record; a
    /// segment that no queue needs any more is deleted by the writer thread.
    /// Must be called exactly once per (message, queue) pair.
    pub fn ack(&self, r: StoreRef, queue: u32) {
        let mut st = self.inner.state.lock();
        if st.failed.is_none() && st.push_mark(format::ACK_KIND_ACK, r, queue) {
            self.inner.work.notify_one();
        }
    }

    /// Records the first delivery of the message from this queue, so that it
    /// comes back with `redelivered = true` after a restart. Not fsynced on
    /// its own: it rides on the next batch.
    pub fn mark_delivered(&self, r: StoreRef, queue: u32) {
        let mut st = self.inner.state.lock();
        if st.failed.is_none() {
            st.push_mark(format::ACK_KIND_DELIVERED, r, queue);
        }
    }

    /// Reads a message back, from memory if it is not written yet, else with
    /// a positional read (no seek, so concurrent reads do not interfere).
    pub fn read(&self, r: StoreRef) -> io::Result<ReadMessage> {
        let rec = self.record_bytes(r)?;
        let view = format::decode_record(&rec)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, format!("{r:?}: {why}")))?;
        let (ex, rk, props, body) = (view.exchange, view.routing_key, view.properties, view.body);
        let text = |range: std::ops::Range<usize>| {
            String::from_utf8(rec[range].to_vec()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        };
        let (exchange, routing_key) = (text(ex)?, text(rk)?);
        let all = Bytes::from(rec);
        Ok(ReadMessage { exchange, routing_key, properties: all.slice(props), body: all.slice(body) })
    }

    fn record_bytes(&self, r: StoreRef) -> io::Result<Vec<u8>> {
        if (r.len as usize) < format::MIN_RECORD_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{r:?}: too short for a record"),
            ));
        }
        let inflight = {
            let st = self.inner.state.lock();
            if let Some(bytes) = st.buffered(r) {
                return Ok(bytes);
            }
            st.inflight.clone()
        };
        if let Some(bytes) = inflight.as_deref().and_then(|c| state::find_in(c, r)) {
            return Ok(bytes.to_vec());
        }
        // Not in memory, so the writer has finished writing it.
        let file = self.inner.files.get(r.segment)?;
        // Check a large length against the file before allocating for it, so a
        // bogus ref cannot ask for gigabytes.
        if r.len >= LARGE_READ && u64::from(r.offset) + u64::from(r.len) > file.metadata()?.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{r:?} is past the end of its segment"),
            ));
        }
        let mut buf = vec![0u8; r.len as usize];
        files::read_exact_at(&file, &mut buf, u64::from(r.offset))?;
        Ok(buf)
    }

    /// Writes and fsyncs everything pending; used at shutdown. Blocks, so
    /// never call it from an `on_durable` callback or a tokio worker.
    pub fn flush(&self) -> io::Result<()> {
        if std::thread::current().id() == self.writer_id {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "flush called from an on_durable callback",
            ));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.on_durable_result(Box::new(move |res| {
            let _ = tx.send(res);
        }));
        rx.recv().map_err(|_| io::Error::other("message store writer stopped"))?
    }

    pub fn stats(&self) -> StoreStats {
        let st = self.inner.state.lock();
        let c = st.counters;
        StoreStats {
            segments: st.segs.len() as u32,
            bytes: st.disk_bytes,
            pending_bytes: st.pending.bytes as u64,
            appends: c.appends,
            acks: c.acks,
            delivered: c.delivered,
            writes: c.writes,
            fsyncs: c.fsyncs,
            reclaimed_segments: c.reclaimed,
        }
    }
}

impl Drop for MessageStore {
    /// Lets the writer drain what is pending, then joins it (unless the last
    /// handle is dropped by a callback on the writer thread itself).
    fn drop(&mut self) {
        self.inner.state.lock().shutdown = true;
        self.inner.work.notify_one();
        self.inner.drained.notify_all();
        if std::thread::current().id() != self.writer_id
            && let Some(h) = self.writer.take()
        {
            let _ = h.join();
        }
    }
}
