//! Opening a WAL directory: replays every segment in order into the
//! in-memory state, cuts a torn tail off the last one, and deletes the
//! segments no live entry needs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustc_hash::{FxHashMap, FxHashSet};

use super::format::{self, Next};
use super::state::{self, Group, SegInfo, Segs};

pub(super) fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:020}.wal"))
}

pub(super) fn snap_path(dir: &Path, group: u64) -> PathBuf {
    dir.join(format!("{group:020}.snap"))
}

pub(super) fn snap_tmp_path(dir: &Path, group: u64) -> PathBuf {
    dir.join(format!("{group:020}.snap.tmp"))
}

/// Makes new and removed directory entries durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What `open` starts from.
pub(super) struct Recovered {
    pub groups: FxHashMap<u64, Group>,
    pub snapshots: FxHashSet<u64>,
    pub segs: Segs,
    /// The current segment, open for writing at its end.
    pub file: File,
}

/// Segment numbers and snapshot groups found in `dir`; leftover snapshot
/// temporaries are removed.
fn list(dir: &Path) -> io::Result<(Vec<u64>, FxHashSet<u64>)> {
    let mut segs = Vec::new();
    let mut snaps = FxHashSet::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, ext)) = name.split_once('.') else { continue };
        let Ok(n) = stem.parse::<u64>() else { continue };
        match ext {
            "wal" => segs.push(n),
            "snap" => {
                snaps.insert(n);
            }
            "snap.tmp" => fs::remove_file(entry.path())?,
            _ => {}
        }
    }
    segs.sort_unstable();
    Ok((segs, snaps))
}

pub(super) fn recover(dir: &Path, fsync: bool) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    let (found, snapshots) = list(dir)?;
    let mut groups = FxHashMap::default();
    let mut segs = Segs::default();
    let last = found.last().copied();
    let mut valid = 0u64;
    for &seg in &found {
        let path = seg_path(dir, seg);
        let buf = fs::read(&path)?;
        segs.current = seg;
        segs.map.insert(seg, SegInfo::default());
        let is_last = Some(seg) == last;
        let end = if buf.len() < format::HEADER.len() || &buf[..format::HEADER.len()] != format::HEADER {
            if !is_last {
                return Err(corrupt(&path, 0));
            }
            0
        } else {
            scan(&buf, |r| state::apply(&mut groups, &mut segs, seg, r))
        };
        if end < buf.len() {
            if !is_last {
                return Err(corrupt(&path, end));
            }
            tracing::warn!("wal: {} has a torn tail at byte {end} of {}; cut", path.display(), buf.len());
        }
        valid = end as u64;
        segs.map.get_mut(&seg).expect("inserted").bytes = end as u64;
    }
    if let Some(seg) = last {
        let path = seg_path(dir, seg);
        if valid == 0 {
            // Not even a header: created just before a crash.
            fs::remove_file(&path)?;
            segs.map.remove(&seg);
        } else if fs::metadata(&path)?.len() > valid {
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(valid)?;
            if fsync {
                file.sync_all()?;
            }
        }
    }
    // Always a fresh segment, opened by a checkpoint of what was recovered:
    // the older segments then matter only for their live entries, even if
    // the last one was cut in the middle of its own checkpoint.
    let current = last.map_or(1, |s| s + 1);
    let mut list: Vec<_> = groups.iter().map(|(id, g): (&u64, &Group)| g.checkpoint(*id)).collect();
    list.sort_unstable_by_key(|c| c.group);
    let mut head = format::HEADER.to_vec();
    format::encode_checkpoint(&mut head, &list);
    let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(seg_path(dir, current))?;
    file.write_all(&head)?;
    segs.current = current;
    segs.map.insert(current, SegInfo { live: 0, bytes: head.len() as u64 });
    if fsync {
        // What was read may have been in the page cache only; it and the
        // checkpoint must be on disk before segments are deleted on their word.
        // (Older segments were fsynced before their successor was created.)
        if let Some(seg) = last.filter(|_| valid > 0) {
            File::open(seg_path(dir, seg))?.sync_all()?;
        }
        file.sync_all()?;
        sync_dir(dir)?;
    }
    let dead: Vec<u64> =
        segs.map.iter().filter(|&(&s, i)| s != current && i.live == 0).map(|(&s, _)| s).collect();
    for seg in dead {
        fs::remove_file(seg_path(dir, seg))?;
        segs.map.remove(&seg);
    }
    segs.dead.clear();
    Ok(Recovered { groups, snapshots, segs, file })
}

/// Applies the records of one segment; returns where the valid data ends.
fn scan(buf: &[u8], mut apply: impl FnMut(format::Record)) -> usize {
    let mut at = format::HEADER.len();
    loop {
        match format::decode(buf, at) {
            Next::Record(r, next) => {
                apply(r);
                at = next;
            }
            Next::End | Next::Bad => return at,
        }
    }
}

fn corrupt(path: &Path, at: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("wal: {} is corrupt at byte {at} and is not the last segment", path.display()),
    )
}
