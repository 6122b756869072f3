//! Argon2id password hashing and checking, bounded in memory and in time.
//!
//! Argon2 is memory-hard: one check of a hash made with the default
//! parameters fills 19 MiB. Two things follow.
//!
//! - The memory is mapped from the kernel for each run and unmapped right
//!   after ([`Scratch`]), never taken from the allocator. Through glibc's
//!   malloc, a freed 19 MiB block raises its mmap threshold, so the next
//!   ones come from per-thread arenas that keep the memory: a burst of
//!   wrong-password logins on many blocking threads left the process
//!   hundreds of MB to GBs larger, for good.
//! - Only a few runs happen at once ([`PasswordGate`], one per core by
//!   default, shared by AMQP logins, HTTP Basic, `connection.update-secret`
//!   and the hashing of new passwords). The rest wait their turn, in order,
//!   without holding a thread. A credential that was checked before does not
//!   come here at all (`Auth`'s cache), so a flood of bad attempts does not
//!   delay a client that logged in before.

use std::ptr::NonNull;
use std::sync::Arc;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// A stored hash asking for more memory than this (in KiB) is not checked:
/// the number of concurrent checks times this bounds what logins may take.
pub const MAX_M_COST_KIB: u32 = 256 * 1024;

/// Argon2's working memory, mapped anonymously (so zeroed, and page-aligned,
/// which is more than `Block`'s 64 bytes) and unmapped on drop.
struct Scratch {
    ptr: NonNull<Block>,
    blocks: usize,
}

// The mapping is owned by the value alone.
unsafe impl Send for Scratch {}

impl Scratch {
    fn map(blocks: usize) -> Option<Scratch> {
        let len = blocks.checked_mul(Block::SIZE)?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Scratch { ptr: NonNull::new(p.cast())?, blocks })
    }
}

impl AsMut<[Block]> for Scratch {
    fn as_mut(&mut self) -> &mut [Block] {
        // SAFETY: the mapping holds `blocks` blocks, is aligned to a page,
        // and its zeroed bytes are a valid `Block` (plain integers). `&mut
        // self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.blocks) }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`, once.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.blocks * Block::SIZE);
        }
    }
}

/// An argon2id PHC string for a password, with a random salt and the
/// crate's default parameters (m=19456, t=2, p=1). Empty when hashing fails
/// (a user with an empty hash cannot log in). Blocking: run it through the
/// gate.
pub fn hash_argon2id(password: &[u8]) -> String {
    let params = Params::DEFAULT;
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let Some(mut memory) = Scratch::map(params.block_count()) else { return String::new() };
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    if argon.hash_password_into_with_memory(password, &salt, &mut out, &mut memory).is_err() {
        return String::new();
    }
    drop(memory);
    let phc = (|| {
        Some(PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).ok()?,
            salt: Some(Salt::new(&salt).ok()?),
            hash: Some(Output::new(&out).ok()?),
        })
    })();
    phc.map(|h| h.to_string()).unwrap_or_default()
}

/// Whether `password` matches an argon2 (i, d or id) PHC string. Blocking:
/// run it through the gate.
pub fn verify_argon2(stored: &str, password: &[u8]) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else { return false };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else { return false };
    if params.m_cost() > MAX_M_COST_KIB {
        tracing::warn!(
            "a password hash asks for {} KiB of memory, above the {MAX_M_COST_KIB} KiB allowed: not checked",
            params.m_cost()
        );
        return false;
    }
    let mut buf = [0u8; Output::MAX_LENGTH];
    let Some(out) = buf.get_mut(..expected.len()) else { return false };
    let Some(mut memory) = Scratch::map(params.block_count()) else { return false };
    let argon = Argon2::new(algorithm, version, params);
    if argon.hash_password_into_with_memory(password, salt, &mut *out, &mut memory).is_err() {
        return false;
    }
    drop(memory);
    // Constant time.
    out.iter().zip(expected.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// At most a fixed number of argon2 runs at once, each on a blocking
/// thread. Waiters queue in arrival order (tokio's semaphore is fair) and
/// leave the queue when their caller goes away.
pub struct PasswordGate {
    permits: Arc<tokio::sync::Semaphore>,
    size: usize,
}

impl Default for PasswordGate {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::new(cores.clamp(1, 4))
    }
}

impl PasswordGate {
    pub fn new(size: usize) -> Self {
        PasswordGate { permits: Arc::new(tokio::sync::Semaphore::new(size)), size }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `f` on a blocking thread once a slot is free. None if the task
    /// panicked.
    pub async fn run<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        // The permit goes with the work: a caller that stops waiting does
        // not free the slot before argon2 is done with its memory.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    #[test]
    fn hashes_and_verifies_like_the_argon2_crate() {
        let ours = hash_argon2id(b"s3cret");
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        assert!(verify_argon2(&ours, b"s3cret"));
        assert!(!verify_argon2(&ours, b"s3cret "));
        // The crate accepts our hash, and we accept the crate's.
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"s3cret", &parsed).is_ok());
        let theirs = {
            use argon2::password_hash::PasswordHasher;
            Argon2::default().hash_password(b"pw").unwrap().to_string()
        };
        assert!(verify_argon2(&theirs, b"pw"));
        assert!(!verify_argon2(&theirs, b"pW"));
    }

    #[test]
    fn other_parameters_and_variants_are_honoured() {
        use argon2::password_hash::PasswordHasher;
        let params = Params::new(1024, 1, 2, Some(20)).unwrap();
        for alg in [Algorithm::Argon2i, Algorithm::Argon2d, Algorithm::Argon2id] {
            let h = Argon2::new(alg, Version::V0x10, params.clone()).hash_password(b"x").unwrap().to_string();
            assert!(verify_argon2(&h, b"x"), "{h}");
            assert!(!verify_argon2(&h, b"y"), "{h}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_gate_runs_at_most_its_size_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let gate = Arc::new(PasswordGate::new(2));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (gate, now, most) = (gate.clone(), now.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                gate.run(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_some());
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn malformed_or_oversized_hashes_are_refused() {
        assert!(!verify_argon2("", b"x"));
        assert!(!verify_argon2("$argon2id$v=19$m=19456,t=2,p=1$", b"x"));
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(!verify_argon2(huge, b"x"));
    }
}
