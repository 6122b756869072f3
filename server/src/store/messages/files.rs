//! File-system plumbing for the message store: file names in the store's
//! directory, positional reads and writes, and the table of open segment
//! handles that `read` shares with the writer thread.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

pub(super) fn seg_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:08}.seg"))
}

pub(super) fn ack_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:08}.ack"))
}

/// Segment numbers of the `.seg` and `.ack` files found in `dir`. Other files
/// are left alone.
pub(super) struct Listing {
    pub segs: BTreeSet<u32>,
    pub acks: BTreeSet<u32>,
}

pub(super) fn list_dir(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing { segs: BTreeSet::new(), acks: BTreeSet::new() };
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(n) = stem.parse::<u32>() else { continue };
        match ext {
            "seg" => listing.segs.insert(n),
            "ack" => listing.acks.insert(n),
            _ => continue,
        };
    }
    Ok(listing)
}

/// Removes a file, treating "already gone" as success.
pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes new directory entries durable (a new segment must survive a crash
/// together with its fsynced contents).
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(unix)]
pub(super) fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(unix)]
pub(super) fn write_all_at(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

#[cfg(windows)]
pub(super) fn read_exact_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
pub(super) fn write_all_at(f: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_write(buf, offset)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Beyond this many cached read handles the cache is emptied; handles are
/// reopened on demand, so this only bounds descriptors.
const MAX_CACHED_HANDLES: usize = 256;

/// Open segment files for positional reads, shared by `read` callers and the
/// writer. A read/write lock because lookups vastly outnumber inserts.
pub(super) struct FileTable {
    dir: PathBuf,
    files: RwLock<FxHashMap<u32, Arc<File>>>,
}

impl FileTable {
    pub fn new(dir: PathBuf) -> Self {
        FileTable { dir, files: RwLock::new(FxHashMap::default()) }
    }

    pub fn get(&self, segment: u32) -> io::Result<Arc<File>> {
        if let Some(f) = self.files.read().get(&segment) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(seg_path(&self.dir, segment))?);
        let mut files = self.files.write();
        if files.len() >= MAX_CACHED_HANDLES {
            files.clear();
        }
        Ok(files.entry(segment).or_insert(f).clone())
    }

    /// Registers the handle the writer created for a new segment.
    pub fn insert(&self, segment: u32, f: Arc<File>) {
        self.files.write().insert(segment, f);
    }

    pub fn remove(&self, segment: u32) {
        self.files.write().remove(&segment);
    }
}

/// Opens (creating if needed) a segment's ack log for appending.
pub(super) fn open_ack_for_append(dir: &Path, segment: u32) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(ack_path(dir, segment))
}

/// Creates a brand-new segment file. Fails if one exists: an open store only
/// writes segments numbered above every file it found, so an existing file
/// would mean two stores share the directory.
pub(super) fn create_segment(dir: &Path, segment: u32) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create_new(true).open(seg_path(dir, segment))
}
