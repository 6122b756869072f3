//! The WAL's in-memory side: every group's entries and meta (the index the
//! reads answer from), which segment each live entry is in, and the batch
//! pending for the writer thread.

use std::collections::{BTreeMap, VecDeque};
use std::io;

use bytes::Bytes;
use rustc_hash::{FxHashMap, FxHashSet};

use super::format::{self, GroupCheckpoint, Record};
use super::{Done, MetaKey};

/// One group's state.
#[derive(Default)]
pub(super) struct Group {
    /// Index of `entries[0]`.
    first: u64,
    /// Each entry with the segment it was written to.
    entries: VecDeque<(Bytes, u64)>,
    pub vote: Option<Bytes>,
    pub committed: Option<Bytes>,
    pub purged: Option<(u64, Bytes)>,
}

impl Group {
    pub fn last(&self) -> Option<(u64, Bytes)> {
        let (b, _) = self.entries.back()?;
        Some((self.first + self.entries.len() as u64 - 1, b.clone()))
    }

    fn last_index(&self) -> Option<u64> {
        (!self.entries.is_empty()).then(|| self.first + self.entries.len() as u64 - 1)
    }

    /// Whether entries starting at `first` may be appended: they must follow
    /// the last entry or overwrite some of them (an empty log takes any).
    pub fn accepts(&self, first: u64) -> bool {
        self.last_index().is_none_or(|last| first >= self.first && first <= last + 1)
    }

    pub fn entries(&self, start: u64, end: u64) -> Vec<(u64, Bytes)> {
        let lo = start.max(self.first);
        let hi = end.min(self.first + self.entries.len() as u64);
        (lo..hi).map(|i| (i, self.entries[(i - self.first) as usize].0.clone())).collect()
    }

    pub fn meta(&mut self, key: MetaKey) -> &mut Option<Bytes> {
        match key {
            MetaKey::Vote => &mut self.vote,
            MetaKey::Committed => &mut self.committed,
        }
    }

    /// Appends entries written to `seg`, replacing any at `first` or after.
    /// A gap (only in recovery, where a later record is authoritative)
    /// discards the older entries.
    pub fn append(&mut self, first: u64, data: impl Iterator<Item = Bytes>, seg: u64, segs: &mut Segs) {
        if !self.accepts(first) {
            self.truncate(0, segs);
        }
        self.truncate(first, segs);
        if self.entries.is_empty() {
            self.first = first;
        }
        let before = self.entries.len();
        self.entries.extend(data.map(|b| (b, seg)));
        segs.add(seg, (self.entries.len() - before) as u64);
    }

    /// Removes entries with index >= `from`.
    pub fn truncate(&mut self, from: u64, segs: &mut Segs) {
        while self.last_index().is_some_and(|l| l >= from) {
            let (_, seg) = self.entries.pop_back().expect("an entry");
            segs.dec(seg);
        }
    }

    /// Removes entries with index <= `upto`.
    pub fn purge(&mut self, upto: u64, segs: &mut Segs) {
        while !self.entries.is_empty() && self.first <= upto {
            let (_, seg) = self.entries.pop_front().expect("an entry");
            self.first += 1;
            segs.dec(seg);
        }
    }

    pub fn checkpoint(&self, group: u64) -> GroupCheckpoint {
        GroupCheckpoint {
            group,
            last: self.last_index(),
            vote: self.vote.clone(),
            committed: self.committed.clone(),
            purged: self.purged.clone(),
        }
    }
}

/// A segment's live entry count and size.
#[derive(Default, Clone, Copy)]
pub(super) struct SegInfo {
    pub live: u64,
    pub bytes: u64,
}

/// The segments that exist, the one being written, and those that died.
#[derive(Default)]
pub(super) struct Segs {
    pub map: BTreeMap<u64, SegInfo>,
    pub current: u64,
    /// Older segments whose last live entry went: deleted once the records
    /// that killed their entries are durable.
    pub dead: Vec<u64>,
}

impl Segs {
    fn add(&mut self, seg: u64, n: u64) {
        self.map.entry(seg).or_default().live += n;
    }

    fn dec(&mut self, seg: u64) {
        if let Some(s) = self.map.get_mut(&seg) {
            s.live -= 1;
            if s.live == 0 && seg < self.current {
                self.dead.push(seg);
            }
        }
    }
}

/// Applies one recovered record of segment `seg`.
pub(super) fn apply(groups: &mut FxHashMap<u64, Group>, segs: &mut Segs, seg: u64, r: Record) {
    match r {
        Record::Entries { group, first, data } => {
            groups.entry(group).or_default().append(first, data.into_iter(), seg, segs)
        }
        Record::Truncate { group, from } => {
            if let Some(g) = groups.get_mut(&group) {
                g.truncate(from, segs);
            }
        }
        Record::Purge { group, upto, marker } => {
            let g = groups.entry(group).or_default();
            g.purge(upto, segs);
            g.purged = Some((upto, marker));
        }
        Record::Meta { group, key, value } => *groups.entry(group).or_default().meta(key) = Some(value),
        Record::Drop { group } => {
            if let Some(mut g) = groups.remove(&group) {
                g.truncate(0, segs);
            }
        }
        Record::Checkpoint(list) => {
            let keep: FxHashSet<u64> = list.iter().map(|c| c.group).collect();
            groups.retain(|id, g| {
                if !keep.contains(id) {
                    g.truncate(0, segs);
                }
                keep.contains(id)
            });
            for c in list {
                let g = groups.entry(c.group).or_default();
                if let Some((upto, _)) = &c.purged {
                    g.purge(*upto, segs);
                }
                g.truncate(c.last.map_or(0, |l| l + 1), segs);
                g.vote = c.vote;
                g.committed = c.committed;
                g.purged = c.purged;
            }
        }
    }
}

/// A `done` callback, or one already failed (an append that was refused).
pub(super) struct Callback {
    pub done: Done,
    pub error: Option<io::Error>,
}

/// Bytes headed for one segment.
pub(super) struct Chunk {
    pub seg: u64,
    pub data: Vec<u8>,
}

/// Everything submitted since the writer last took a batch.
#[derive(Default)]
pub(super) struct Pending {
    pub chunks: Vec<Chunk>,
    pub callbacks: Vec<Callback>,
    pub dead: Vec<u64>,
    pub bytes: usize,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.callbacks.is_empty() && self.dead.is_empty()
    }
}

#[derive(Default, Clone, Copy)]
pub(super) struct Counters {
    pub appends: u64,
    pub entries: u64,
    pub fsyncs: u64,
    pub bytes_written: u64,
}

/// Everything behind the WAL's one mutex.
pub(super) struct State {
    pub groups: FxHashMap<u64, Group>,
    /// Groups with a snapshot file.
    pub snapshots: FxHashSet<u64>,
    pub segs: Segs,
    pub pending: Pending,
    /// Set by the first failed write or fsync; never cleared.
    pub failed: Option<(io::ErrorKind, String)>,
    pub shutdown: bool,
    pub counters: Counters,
    pub segment_bytes: u64,
}

impl State {
    /// Encodes one record into the current segment's pending bytes; returns
    /// that segment.
    pub fn write(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let seg = self.segs.current;
        let p = &mut self.pending;
        if p.chunks.last().is_none_or(|c| c.seg != seg) {
            p.chunks.push(Chunk { seg, data: Vec::new() });
        }
        let data = &mut p.chunks.last_mut().expect("a chunk").data;
        let before = data.len();
        encode(data);
        let n = data.len() - before;
        p.bytes += n;
        self.segs.map.entry(seg).or_default().bytes += n as u64;
        seg
    }

    /// Moves the segments that died to the pending batch, and starts a new
    /// segment (header + checkpoint of every group) once the current one is
    /// full. Called after each change, once memory reflects it.
    pub fn settle(&mut self) {
        if self.segs.map.get(&self.segs.current).is_some_and(|s| s.bytes >= self.segment_bytes) {
            let old = self.segs.current;
            self.segs.current += 1;
            if self.segs.map.get(&old).is_some_and(|s| s.live == 0) {
                self.segs.dead.push(old);
            }
            let mut list: Vec<GroupCheckpoint> =
                self.groups.iter().map(|(id, g)| g.checkpoint(*id)).collect();
            list.sort_unstable_by_key(|c| c.group);
            self.write(|b| {
                b.extend_from_slice(format::HEADER);
                format::encode_checkpoint(b, &list);
            });
        }
        self.pending.dead.append(&mut self.segs.dead);
    }

    pub fn failure(&self) -> Option<io::Error> {
        self.failed.as_ref().map(|(k, m)| io::Error::new(*k, m.clone()))
    }
}
