//! Resource alarms: memory above the high watermark, or free disk below the
//! limit. While an alarm is on, connections that publish are blocked
//! (`connection.blocked`, and their input is no longer read) until it
//! clears; consumers keep draining. RabbitMQ behaves the same way.
//!
//! A monitor task samples the process's resident memory and the data
//! directory's free space every second and publishes the state through a
//! `watch` channel that every connection listens to.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmState {
    pub memory: bool,
    pub disk: bool,
}

impl AlarmState {
    pub fn any(&self) -> bool {
        self.memory || self.disk
    }

    /// The reason RabbitMQ gives in `connection.blocked`.
    pub fn reason(&self) -> &'static str {
        if self.disk { "low on disk" } else { "low on memory" }
    }
}

/// The limits, in bytes.
#[derive(Debug, Clone)]
pub struct Limits {
    pub memory_high_watermark: u64,
    pub disk_free_limit: u64,
    pub data_dir: PathBuf,
}

pub struct Alarms {
    tx: watch::Sender<AlarmState>,
    limits: parking_lot::Mutex<Option<Limits>>,
}

impl Default for Alarms {
    fn default() -> Self {
        Alarms { tx: watch::channel(AlarmState::default()).0, limits: Default::default() }
    }
}

impl Alarms {
    pub fn subscribe(&self) -> watch::Receiver<AlarmState> {
        self.tx.subscribe()
    }

    pub fn state(&self) -> AlarmState {
        *self.tx.borrow()
    }

    fn set(&self, new: AlarmState) {
        self.tx.send_if_modified(|cur| {
            if *cur == new {
                return false;
            }
            if new.memory != cur.memory {
                tracing::warn!("memory alarm {}", if new.memory { "set" } else { "cleared" });
            }
            if new.disk != cur.disk {
                tracing::warn!("disk alarm {}", if new.disk { "set" } else { "cleared" });
            }
            *cur = new;
            true
        });
    }

    /// Samples the resources now and updates the state.
    pub fn check(&self, limits: &Limits) {
        let memory = resident_bytes().is_some_and(|rss| rss > limits.memory_high_watermark);
        let disk = disk_free(&limits.data_dir).is_some_and(|free| free < limits.disk_free_limit);
        self.set(AlarmState { memory, disk });
    }

    /// Replaces the limits (at start, or `set_disk_free_limit` and friends
    /// at run time) and checks them at once.
    pub fn set_limits(&self, limits: Limits) {
        self.check(&limits);
        *self.limits.lock() = Some(limits);
    }

    pub fn limits(&self) -> Option<Limits> {
        self.limits.lock().clone()
    }

    /// Checks the current limits every second until the task is dropped.
    pub async fn monitor(&self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Some(l) = self.limits() {
                self.check(&l);
            }
        }
    }
}

/// Resident set size of this process.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// Total memory of the machine (or 0 when unknown).
pub fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        })
        .map_or(0, |kb| kb * 1024)
}

/// Bytes available to this process on the file system holding `path`.
pub fn disk_free(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_set_and_clear_alarms() {
        let a = Alarms::default();
        let rx = a.subscribe();
        let dir = std::env::temp_dir();
        a.check(&Limits { memory_high_watermark: u64::MAX, disk_free_limit: 0, data_dir: dir.clone() });
        assert!(!a.state().any());
        a.check(&Limits { memory_high_watermark: 1, disk_free_limit: u64::MAX, data_dir: dir.clone() });
        assert_eq!(*rx.borrow(), AlarmState { memory: true, disk: true });
        assert_eq!(a.state().reason(), "low on disk");
        a.check(&Limits { memory_high_watermark: u64::MAX, disk_free_limit: 0, data_dir: dir });
        assert!(!a.state().any());
        assert!(resident_bytes().unwrap() > 0);
        assert!(total_memory() > 0);
    }
}
