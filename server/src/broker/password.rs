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
//! - A refused login is answered late once its client address or its user
//!   name has failed a few times lately ([`LoginThrottle`]): the delay
//!   doubles with each further failure up to a cap, and is forgotten after a
//!   quiet period. Only refusals wait, on a timer rather than a thread, so a
//!   correct login is answered at once from anywhere, while a password
//!   guesser that waits for its answers gets a few a second at most.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// How failed logins are slowed down (`login_throttle.*` in warren.conf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failures from one address, or for one user name, answered at once.
    pub free_failures: u32,
    /// The delay of the first failure beyond those; each further one
    /// doubles it.
    pub initial_delay: Duration,
    /// The longest delay; zero turns the throttle off.
    pub max_delay: Duration,
    /// An address or user name without a failure for this long starts
    /// afresh.
    pub quiet_period: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            free_failures: 5,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            quiet_period: Duration::from_secs(60),
        }
    }
}

impl ThrottleSettings {
    /// The delay owed by the `n`th failure in a row.
    pub fn delay(&self, n: u32) -> Duration {
        if n <= self.free_failures || self.max_delay.is_zero() {
            return Duration::ZERO;
        }
        let doublings = (n - self.free_failures - 1).min(31);
        self.initial_delay.saturating_mul(1 << doublings).min(self.max_delay)
    }
}

/// Each table of [`LoginThrottle`] keeps at most this many addresses or
/// user names; beyond it the ones that failed longest ago are forgotten.
pub const THROTTLE_ENTRIES: usize = 8192;

/// A user name is kept to this many bytes (an attacker chooses it).
const THROTTLE_NAME_BYTES: usize = 256;

/// Recent failed logins by client address and by user name, which say how
/// long the answer to the next failure waits. Both tables are bounded.
#[derive(Default)]
pub struct LoginThrottle {
    by_address: Mutex<Failures<IpAddr>>,
    by_user: Mutex<Failures<String>>,
}

/// Failures in a row (within the quiet period) and when the last one was.
#[derive(Clone, Copy)]
struct Streak {
    failures: u32,
    last: Instant,
}

struct Failures<K> {
    map: HashMap<K, Streak>,
    cap: usize,
}

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Failures { map: HashMap::new(), cap: THROTTLE_ENTRIES }
    }
}

impl<K: Hash + Eq + Clone> Failures<K> {
    /// Counts a failure for `key` and returns its streak's length.
    fn fail(&mut self, key: K, now: Instant, quiet: Duration) -> u32 {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.evict(now, quiet);
        }
        let s = self.map.entry(key).or_insert(Streak { failures: 0, last: now });
        if now.saturating_duration_since(s.last) > quiet {
            s.failures = 0;
        }
        s.failures = s.failures.saturating_add(1);
        s.last = now;
        s.failures
    }

    /// Makes room: streaks past their quiet period go, and if that is not
    /// enough, the eighth of the table that failed longest ago.
    fn evict(&mut self, now: Instant, quiet: Duration) {
        self.map.retain(|_, s| now.saturating_duration_since(s.last) <= quiet);
        if self.map.len() < self.cap {
            return;
        }
        let mut lasts: Vec<Instant> = self.map.values().map(|s| s.last).collect();
        let k = (self.cap / 8).max(1).min(lasts.len() - 1);
        let (_, cut, _) = lasts.select_nth_unstable(k);
        let cut = *cut;
        self.map.retain(|_, s| s.last > cut);
    }
}

/// The address a throttle counts under: an IPv6 client by its /64, which
/// one host usually has whole.
fn throttle_address(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

fn throttle_name(user: &str) -> String {
    let mut end = user.len().min(THROTTLE_NAME_BYTES);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_owned()
}

impl LoginThrottle {
    /// Counts a failed login by `user` from `ip` and returns how long its
    /// answer waits: the longer of what the address and the user name owe.
    pub fn failed(&self, ip: Option<IpAddr>, user: &str, settings: &ThrottleSettings) -> Duration {
        let now = Instant::now();
        let quiet = settings.quiet_period;
        let by_user = self.by_user.lock().fail(throttle_name(user), now, quiet);
        let by_address = ip.map_or(0, |ip| self.by_address.lock().fail(throttle_address(ip), now, quiet));
        settings.delay(by_user.max(by_address))
    }

    /// (addresses, user names) held, for tests and the curious.
    pub fn len(&self) -> (usize, usize) {
        (self.by_address.lock().map.len(), self.by_user.lock().map.len())
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
    fn failures_beyond_the_free_ones_double_their_delay_up_to_the_cap() {
        let s = ThrottleSettings::default();
        let delays: Vec<u64> = (1..=11).map(|n| s.delay(n).as_millis() as u64).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 250, 500, 1000, 2000, 4000, 4000]);
        let off = ThrottleSettings { max_delay: Duration::ZERO, ..s.clone() };
        assert_eq!(off.delay(100), Duration::ZERO);
        assert_eq!(s.delay(u32::MAX), s.max_delay);
    }

    #[test]
    fn the_throttle_counts_by_address_and_by_user_and_forgets_after_quiet() {
        let s = ThrottleSettings {
            free_failures: 2,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            quiet_period: Duration::from_millis(200),
        };
        let t = LoginThrottle::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(t.failed(Some(a), "u1", &s), Duration::ZERO);
        assert_eq!(t.failed(Some(a), "u2", &s), Duration::ZERO);
        // The address has failed three times, each user name less.
        assert_eq!(t.failed(Some(a), "u3", &s), Duration::from_millis(100));
        // Another address, another user: free.
        assert_eq!(t.failed(Some(b), "v", &s), Duration::ZERO);
        // The same user name from another address: the name's streak.
        assert_eq!(t.failed(Some(b), "u1", &s), Duration::ZERO);
        assert_eq!(t.failed(Some(b), "u1", &s), Duration::from_millis(100));
        // IPv6 by /64, IPv4-mapped as IPv4.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(t.failed(Some(mapped), "w", &s), Duration::from_millis(200));
        let (x, y): (IpAddr, IpAddr) = ("2001:db8::1".parse().unwrap(), "2001:db8::2:3".parse().unwrap());
        t.failed(Some(x), "p", &s);
        t.failed(Some(y), "q", &s);
        assert_eq!(t.failed(Some(y), "r", &s), Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.failed(Some(a), "u1", &s), Duration::ZERO);
    }

    #[test]
    fn the_throttle_tables_are_bounded() {
        let s = ThrottleSettings::default();
        let t = LoginThrottle::default();
        let long = "x".repeat(10_000);
        for i in 0..(THROTTLE_ENTRIES as u32 + 3000) {
            let ip = IpAddr::from(i.to_be_bytes());
            t.failed(Some(ip), &format!("{long}{i}"), &s);
        }
        let (addresses, users) = t.len();
        assert!(addresses <= THROTTLE_ENTRIES && users <= THROTTLE_ENTRIES, "{addresses} {users}");
        // Long names are cut, so they all fell into one entry.
        assert_eq!(users, 1);
        // The newest address is still counted.
        let last = IpAddr::from((THROTTLE_ENTRIES as u32 + 2999).to_be_bytes());
        assert!(t.by_address.lock().map.contains_key(&last));
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
