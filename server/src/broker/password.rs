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
//!   default, at most 4, shared by AMQP logins, HTTP Basic,
//!   `connection.update-secret` and the hashing of new passwords). The rest
//!   wait their turn without holding a thread, taken round the clients'
//!   addresses and user names so that a flood from one place for one user
//!   does not hold everyone else up. A credential that was checked before
//!   does not come here at all (`Auth`'s cache), so a flood of bad attempts
//!   does not delay a client that logged in before.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::ptr::NonNull;
use std::sync::Arc;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use tokio::sync::oneshot;

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
        // Huge pages where the system offers them on request: ten faults
        // instead of five thousand make a check about a third faster
        // (26 ms instead of 41 here, against 23-31 ms for the argon2
        // crate's own allocation). Refusal is harmless.
        // SAFETY: advice on the mapping just made.
        unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) };
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
/// thread, handed out fairly: waiters are grouped by the client's address,
/// then by user name, and slots go round the addresses, and within an
/// address round its user names, first come first served inside a group. A
/// flood of wrong passwords for one user from one place then delays another
/// client's first login by about one run per busy group, not by the whole
/// flood. A waiter whose caller goes away (a handshake timeout, a closed
/// HTTP connection) gives its turn up.
pub struct PasswordGate {
    state: Arc<Mutex<GateState>>,
    size: usize,
}

#[derive(Default)]
struct GateState {
    free: usize,
    /// Addresses with waiters, in turn order.
    turn: VecDeque<Option<IpAddr>>,
    sources: HashMap<Option<IpAddr>, Source>,
}

/// The waiters from one address.
#[derive(Default)]
struct Source {
    /// User names with waiters, in turn order.
    turn: VecDeque<String>,
    waiting: HashMap<String, VecDeque<oneshot::Sender<Slot>>>,
}

impl GateState {
    fn enqueue(&mut self, ip: Option<IpAddr>, user: &str, tx: oneshot::Sender<Slot>) {
        let source = self.sources.entry(ip).or_insert_with(|| {
            self.turn.push_back(ip);
            Source::default()
        });
        let queue = source.waiting.entry(user.to_owned()).or_insert_with(|| {
            source.turn.push_back(user.to_owned());
            VecDeque::new()
        });
        queue.push_back(tx);
    }

    /// The next waiter in fair order, rotating both turns.
    fn next(&mut self) -> Option<oneshot::Sender<Slot>> {
        let ip = self.turn.pop_front()?;
        let source = self.sources.get_mut(&ip)?;
        let user = source.turn.pop_front()?;
        let queue = source.waiting.get_mut(&user)?;
        let tx = queue.pop_front();
        if queue.is_empty() {
            source.waiting.remove(&user);
        } else {
            source.turn.push_back(user);
        }
        if source.turn.is_empty() {
            self.sources.remove(&ip);
        } else {
            self.turn.push_back(ip);
        }
        tx
    }
}

/// The right to run one check; given back (to the next waiter, or to the
/// pool) when dropped.
struct Slot {
    state: Option<Arc<Mutex<GateState>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else { return };
        let mut st = state.lock();
        while let Some(tx) = st.next() {
            match tx.send(Slot { state: Some(state.clone()) }) {
                Ok(()) => return,
                // That waiter is gone: disarm its slot (dropping it here
                // would lock again) and try the next.
                Err(mut slot) => slot.state = None,
            }
        }
        st.free += 1;
    }
}

impl Default for PasswordGate {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::new(cores.clamp(1, 4))
    }
}

impl PasswordGate {
    pub fn new(size: usize) -> Self {
        let state = GateState { free: size, ..Default::default() };
        PasswordGate { state: Arc::new(Mutex::new(state)), size }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    async fn slot(&self, ip: Option<IpAddr>, user: &str) -> Option<Slot> {
        let rx = {
            let mut st = self.state.lock();
            if st.free > 0 {
                st.free -= 1;
                return Some(Slot { state: Some(self.state.clone()) });
            }
            let (tx, rx) = oneshot::channel();
            st.enqueue(ip, user, tx);
            rx
        };
        rx.await.ok()
    }

    /// Runs `f` on a blocking thread once a slot is free, for a client at
    /// `ip` (None: no address, e.g. the broker itself) logging in as
    /// `user`. None if the task panicked.
    pub async fn run<T, F>(&self, ip: Option<IpAddr>, user: &str, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = self.slot(ip.map(|a| a.to_canonical()), user).await?;
        // The slot goes with the work: a caller that stops waiting does not
        // free it before argon2 is done with its memory.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
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
                gate.run(None, "u", move || {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_gate_takes_turns_by_address_then_user() {
        use std::time::Duration;
        let gate = Arc::new(PasswordGate::new(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(None, "x", move || hold.recv().ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let mut tasks = Vec::new();
        let waiters = (0..6).map(|_| (a, "victim")).chain([(a, "late"), (b, "other")]);
        for (ip, user) in waiters {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                gate.run(Some(ip), user, move || order.lock().push(user)).await
            }));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // One waiter gives up: its turn passes to the next.
        let quitter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(Some(a), "late", || ()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        quitter.abort();
        release.send(()).unwrap();
        busy.await.unwrap();
        for t in tasks {
            assert!(t.await.unwrap().is_some());
        }
        let order = order.lock().clone();
        assert_eq!(order.len(), 8);
        assert_eq!(&order[..3], ["victim", "other", "late"], "{order:?}");
        // Every slot came back.
        assert_eq!(gate.state.lock().free, 1);
        assert!(gate.state.lock().sources.is_empty());
    }

    #[test]
    fn malformed_or_oversized_hashes_are_refused() {
        assert!(!verify_argon2("", b"x"));
        assert!(!verify_argon2("$argon2id$v=19$m=19456,t=2,p=1$", b"x"));
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(!verify_argon2(huge, b"x"));
    }
}
/// `cargo test -p warren --lib password::timing -- --ignored --nocapture`
#[cfg(test)]
mod timing {
    #[test]
    #[ignore]
    fn a_check_costs_about_what_the_crate_s_own_allocation_costs() {
        use argon2::password_hash::PasswordVerifier;
        let h = super::hash_argon2id(b"pw");
        let parsed = argon2::PasswordHash::new(&h).unwrap();
        for round in 0..2 {
            let t = std::time::Instant::now();
            for _ in 0..20 {
                assert!(!super::verify_argon2(&h, b"x"));
            }
            let ours = t.elapsed() / 20;
            let t = std::time::Instant::now();
            for _ in 0..20 {
                assert!(argon2::Argon2::default().verify_password(b"x", &parsed).is_err());
            }
            eprintln!("round {round}: ours {ours:?}, crate {:?}", t.elapsed() / 20);
        }
    }
}
