//! Users, password hashes, tags and per-vhost permissions.
//!
//! Passwords are stored as argon2id PHC strings. Hashes imported from
//! RabbitMQ (`rabbit_password_hashing_sha256`) are accepted and replaced by
//! argon2id at the next successful login.
//!
//! Argon2 is slow and memory-hungry by design (tens of milliseconds and
//! 19 MiB per check; `password` bounds both), which would make every AMQP
//! connection and HTTP Basic request pay for it. A successful login is
//! therefore remembered as an HMAC of the password under a key that exists
//! only in this process; the next login with the same password costs one
//! HMAC and never waits for the password gate. The cache holds at most one
//! entry per existing user (the last password that worked), written only
//! after a successful check, so failed attempts can neither grow it nor
//! evict a good entry. Changing or deleting a user drops its entry.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use hmac::{Hmac, Mac};
use parking_lot::{Mutex, RwLock};
use regex::Regex;
use sha2::{Digest, Sha256};

use super::error::BrokerError;
use super::exchange::Exchange;
use super::password::{self, LoginThrottle, PasswordGate};
use crate::definitions::{ExchangeType, User};

pub const HASH_ARGON2ID: &str = "argon2id";
pub const HASH_RABBIT_SHA256: &str = "rabbit_password_hashing_sha256";

/// One of the three permission kinds of RabbitMQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Configure,
    Write,
    Read,
}

/// The name a permission is checked against. RabbitMQ checks the default
/// exchange, whose name is empty, as `amq.default` (for every kind of
/// access), so a pattern such as `^(app.*|amq\.default)$` grants it and the
/// refusal names it `exchange 'amq.default'`.
pub fn permission_name<'a>(kind: &str, name: &'a str) -> &'a str {
    if kind == "exchange" && name.is_empty() { "amq.default" } else { name }
}

#[derive(Debug, Clone)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
    re: [Regex; 3],
}

impl Permissions {
    pub fn new(configure: &str, write: &str, read: &str) -> Result<Self, String> {
        // RabbitMQ reads an empty pattern as "^$", which grants nothing: no
        // resource has the empty name (the default exchange is checked as
        // `amq.default`, see `permission_name`).
        let compile = |p: &str| {
            let p = if p.is_empty() { "^$" } else { p };
            Regex::new(p).map_err(|e| format!("invalid regular expression '{p}': {e}"))
        };
        Ok(Permissions {
            configure: configure.to_owned(),
            write: write.to_owned(),
            read: read.to_owned(),
            re: [compile(configure)?, compile(write)?, compile(read)?],
        })
    }

    pub fn allows(&self, access: Access, name: &str) -> bool {
        let re = match access {
            Access::Configure => &self.re[0],
            Access::Write => &self.re[1],
            Access::Read => &self.re[2],
        };
        re.is_match(name)
    }
}

/// A topic permission: on a topic exchange, which routing keys a user may
/// publish with (write) and bind or unbind with (read). As in RabbitMQ, an
/// empty pattern matches nothing, and `{username}` and `{vhost}` in a
/// pattern stand for the user's and the vhost's names.
#[derive(Debug, Clone)]
pub struct TopicPermission {
    pub exchange: String,
    pub write: String,
    pub read: String,
    /// The write and read patterns with their variables expanded, compiled
    /// when the permission is set for a user and vhost.
    matchers: Option<Arc<[Regex; 2]>>,
}

impl TopicPermission {
    pub fn new(exchange: &str, write: &str, read: &str) -> Result<Self, String> {
        for p in [write, read] {
            Regex::new(&expand(p, "u", "v")).map_err(|e| format!("invalid regular expression '{p}': {e}"))?;
        }
        Ok(TopicPermission {
            exchange: exchange.into(),
            write: write.into(),
            read: read.into(),
            matchers: None,
        })
    }

    /// Compiles the patterns for `user` in `vhost`.
    fn for_user(mut self, vhost: &str, user: &str) -> Self {
        let compile = |p: &str| {
            let p = if p.is_empty() { "^$".to_owned() } else { expand(p, user, vhost) };
            // Checked when the permission was made; an expansion that breaks
            // a pattern grants nothing.
            Regex::new(&p).unwrap_or_else(|_| Regex::new("^$").expect("a valid pattern"))
        };
        self.matchers = Some(Arc::new([compile(&self.write), compile(&self.read)]));
        self
    }

    fn allows(&self, access: Access, routing_key: &str) -> bool {
        let Some(m) = &self.matchers else { return false };
        match access {
            Access::Write => m[0].is_match(routing_key),
            Access::Read => m[1].is_match(routing_key),
            Access::Configure => true,
        }
    }
}

/// A topic permission's pattern with `{username}` and `{vhost}` replaced
/// by those names, taken literally.
fn expand(pattern: &str, user: &str, vhost: &str) -> String {
    pattern.replace("{username}", &regex::escape(user)).replace("{vhost}", &regex::escape(vhost))
}

/// A successful login.
pub struct Login {
    pub user: Arc<User>,
    /// The user with its imported hash replaced by argon2id, to be stored.
    pub upgraded: Option<User>,
}

#[derive(Debug)]
pub enum LoginError {
    /// Unknown user or wrong password: the same answer for both.
    InvalidCredentials,
}

/// What a login needs once the cheap checks are done.
pub enum Precheck {
    /// Unknown user, no password, or a wrong password for an imported
    /// sha256 hash.
    Refused,
    /// The password of the user's last successful login.
    Cached(Arc<User>),
    /// An imported RabbitMQ hash matched: accepted, and to be replaced by
    /// argon2id.
    Upgrade(Arc<User>),
    /// The stored argon2 hash must be checked (through the gate).
    Argon2(Arc<User>),
}

#[derive(Default)]
pub struct Auth {
    users: RwLock<HashMap<String, Arc<User>>>,
    /// vhost → user → permissions; nested so that lookups need no key
    /// allocation.
    permissions: RwLock<HashMap<String, HashMap<String, Arc<Permissions>>>>,
    /// vhost → user → topic permissions (one per exchange).
    topic_permissions: RwLock<HashMap<String, HashMap<String, Vec<TopicPermission>>>>,
    /// Whether any topic permission was ever set: publishes to topic
    /// exchanges skip the lookup until one is.
    any_topic_permissions: std::sync::atomic::AtomicBool,
    /// user name → HMAC of the last password that logged it in.
    login_cache: Mutex<HashMap<String, [u8; 32]>>,
    cache_key: [u8; 32],
    /// Bounds the argon2 runs (see `password`).
    pub gate: PasswordGate,
    /// Slows down the answers to failed logins (see `password`).
    pub throttle: LoginThrottle,
    /// Logins counted by protocol and by source, for the API.
    pub attempts: AuthAttempts,
}

type HmacSha256 = Hmac<Sha256>;

impl Auth {
    pub fn new() -> Self {
        Auth { cache_key: rand::random(), ..Default::default() }
    }

    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn users(&self) -> Vec<Arc<User>> {
        let mut v: Vec<_> = self.users.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn put_user(&self, user: User) {
        self.login_cache.lock().remove(&user.name);
        self.users.write().insert(user.name.clone(), Arc::new(user));
    }

    pub fn delete_user(&self, name: &str) -> bool {
        self.login_cache.lock().remove(name);
        for users in self.permissions.write().values_mut() {
            users.remove(name);
        }
        for users in self.topic_permissions.write().values_mut() {
            users.remove(name);
        }
        self.users.write().remove(name).is_some()
    }

    pub fn set_permissions(&self, vhost: &str, user: &str, p: Permissions) {
        self.permissions.write().entry(vhost.to_owned()).or_default().insert(user.to_owned(), Arc::new(p));
    }

    pub fn clear_permissions(&self, vhost: &str, user: &str) -> bool {
        self.permissions.write().get_mut(vhost).is_some_and(|m| m.remove(user).is_some())
    }

    pub fn clear_vhost(&self, vhost: &str) {
        self.permissions.write().remove(vhost);
        self.topic_permissions.write().remove(vhost);
    }

    pub fn set_topic_permission(&self, vhost: &str, user: &str, p: TopicPermission) {
        let p = p.for_user(vhost, user);
        let mut g = self.topic_permissions.write();
        let list = g.entry(vhost.to_owned()).or_default().entry(user.to_owned()).or_default();
        list.retain(|x| x.exchange != p.exchange);
        list.push(p);
        self.any_topic_permissions.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// [`Auth::check_topic`] for a publish to, or a binding from, `x`: only
    /// topic exchanges are checked; a refusal is RabbitMQ's 403.
    pub fn check_topic_access(
        &self,
        vhost: &str,
        user: &str,
        x: &Exchange,
        access: Access,
        routing_key: &str,
    ) -> Result<(), BrokerError> {
        if x.kind != ExchangeType::Topic || self.check_topic(vhost, user, &x.name, access, routing_key) {
            return Ok(());
        }
        let what = if access == Access::Write { "write" } else { "read" };
        Err(BrokerError::access_refused(format!(
            "{what} access to topic '{routing_key}' in exchange '{}' in vhost '{vhost}' refused for user '{user}'",
            x.name
        )))
    }

    /// RabbitMQ's topic authorisation, for a topic exchange: when `user`
    /// has a topic permission for `exchange` in `vhost`, the routing key
    /// must match its write (publish) or read (bind, unbind) pattern;
    /// without one, every key is allowed.
    pub fn check_topic(
        &self,
        vhost: &str,
        user: &str,
        exchange: &str,
        access: Access,
        routing_key: &str,
    ) -> bool {
        if !self.any_topic_permissions.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let g = self.topic_permissions.read();
        let found =
            g.get(vhost).and_then(|m| m.get(user)).and_then(|l| l.iter().find(|p| p.exchange == exchange));
        found.is_none_or(|p| p.allows(access, routing_key))
    }

    pub fn clear_topic_permissions(&self, vhost: &str, user: &str, exchange: Option<&str>) -> bool {
        let mut g = self.topic_permissions.write();
        let Some(list) = g.get_mut(vhost).and_then(|m| m.get_mut(user)) else { return false };
        let before = list.len();
        list.retain(|x| exchange.is_some_and(|e| e != x.exchange));
        before != list.len()
    }

    /// Every (vhost, user, topic permission), sorted.
    pub fn all_topic_permissions(&self) -> Vec<(String, String, TopicPermission)> {
        let mut v: Vec<_> = self
            .topic_permissions
            .read()
            .iter()
            .flat_map(|(vh, m)| {
                m.iter().flat_map(move |(u, ps)| ps.iter().map(move |p| (vh.clone(), u.clone(), p.clone())))
            })
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1, &a.2.exchange).cmp(&(&b.0, &b.1, &b.2.exchange)));
        v
    }

    pub fn permissions(&self, vhost: &str, user: &str) -> Option<Arc<Permissions>> {
        self.permissions.read().get(vhost).and_then(|m| m.get(user)).cloned()
    }

    /// Every (vhost, user, permissions), sorted.
    pub fn all_permissions(&self) -> Vec<(String, String, Arc<Permissions>)> {
        let mut v: Vec<_> = self
            .permissions
            .read()
            .iter()
            .flat_map(|(vh, m)| m.iter().map(move |(u, p)| (vh.clone(), u.clone(), p.clone())))
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        v
    }

    pub fn check(&self, vhost: &str, user: &str, access: Access, name: &str) -> bool {
        self.permissions(vhost, user).is_some_and(|p| p.allows(access, name))
    }

    fn cache_tag(&self, user: &User, password: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.cache_key).expect("any key length");
        mac.update(user.name.as_bytes());
        mac.update(&[0]);
        mac.update(user.password_hash.as_bytes());
        mac.update(&[0]);
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    /// The checks that cost no argon2 run: the user, the cache, an imported
    /// sha256 hash. Cheap enough for an async thread.
    pub fn precheck(&self, username: &str, password: &[u8]) -> Precheck {
        let Some(user) = self.user(username) else { return Precheck::Refused };
        if user.password_hash.is_empty() {
            return Precheck::Refused;
        }
        if user.hashing_algorithm == HASH_RABBIT_SHA256 {
            return match verify_rabbit_sha256(&user.password_hash, password) {
                true => Precheck::Upgrade(user),
                false => Precheck::Refused,
            };
        }
        let tag = self.cache_tag(&user, password);
        if self.login_cache.lock().get(username) == Some(&tag) {
            return Precheck::Cached(user);
        }
        Precheck::Argon2(user)
    }

    /// Records a successful argon2 check of `password` for `user`. Only
    /// ever called after success: a failed attempt adds nothing.
    pub fn remember(&self, user: &User, password: &[u8]) {
        let tag = self.cache_tag(user, password);
        // A user changed meanwhile keeps no entry for its old hash (the tag
        // would not match anyway).
        let current = self.user(&user.name);
        if current.is_some_and(|u| u.password_hash == user.password_hash) {
            self.login_cache.lock().insert(user.name.clone(), tag);
        }
    }

    /// Checks a username and password on the calling thread, without the
    /// gate (tests, tools). The broker uses `Broker::login`. A user whose
    /// hash was imported from RabbitMQ comes back with `upgraded`, the same
    /// user with an argon2id hash, for the caller to store.
    pub fn login(&self, username: &str, password: &[u8]) -> Result<Login, LoginError> {
        match self.precheck(username, password) {
            Precheck::Refused => Err(LoginError::InvalidCredentials),
            Precheck::Cached(user) => Ok(Login { user, upgraded: None }),
            Precheck::Upgrade(user) => {
                let upgraded = upgraded(&user, hash_password(password));
                Ok(Login { user, upgraded: Some(upgraded) })
            }
            Precheck::Argon2(user) => {
                if !password::verify_argon2(&user.password_hash, password) {
                    return Err(LoginError::InvalidCredentials);
                }
                self.remember(&user, password);
                Ok(Login { user, upgraded: None })
            }
        }
    }
}

/// The protocols whose logins are counted, named as RabbitMQ names them in
/// `/api/auth/attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Amqp091,
    Http,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Amqp091 => "amqp091",
            Protocol::Http => "http",
        }
    }
}

/// Login attempts, succeeded and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptCounts {
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
}

impl AttemptCounts {
    fn add(&mut self, ok: bool) {
        self.attempts += 1;
        if ok {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
    }
}

/// One source of logins: (client address, user name, protocol).
pub type AttemptSource = (String, String, Protocol);

/// The sources [`AuthAttempts`] keeps; beyond it the one counted longest
/// ago is dropped.
pub const ATTEMPT_SOURCES: usize = 1024;

/// Password logins counted as RabbitMQ's `rabbit_core_metrics` counts
/// them: per protocol, and per source (address, user name, protocol).
/// RabbitMQ tracks sources only when asked to, because the table can grow
/// without bound; here it is always on and bounded instead.
#[derive(Default)]
pub struct AuthAttempts {
    inner: Mutex<AttemptsInner>,
}

#[derive(Default)]
struct AttemptsInner {
    by_protocol: std::collections::BTreeMap<Protocol, AttemptCounts>,
    /// Counts and when (in `seq` order) each source was last counted.
    by_source: HashMap<AttemptSource, (AttemptCounts, u64)>,
    seq: u64,
}

impl AuthAttempts {
    pub fn record(&self, protocol: Protocol, peer: Option<std::net::IpAddr>, user: &str, ok: bool) {
        let addr = peer.map(|ip| ip.to_canonical().to_string()).unwrap_or_default();
        let mut g = self.inner.lock();
        g.by_protocol.entry(protocol).or_default().add(ok);
        g.seq += 1;
        let seq = g.seq;
        let user: String = user.chars().take(256).collect();
        let key = (addr, user, protocol);
        if !g.by_source.contains_key(&key) && g.by_source.len() >= ATTEMPT_SOURCES {
            let oldest = g.by_source.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                g.by_source.remove(&k);
            }
        }
        let e = g.by_source.entry(key).or_insert((AttemptCounts::default(), seq));
        e.0.add(ok);
        e.1 = seq;
    }

    pub fn by_protocol(&self) -> Vec<(Protocol, AttemptCounts)> {
        self.inner.lock().by_protocol.iter().map(|(p, c)| (*p, *c)).collect()
    }

    /// Every source, sorted.
    pub fn by_source(&self) -> Vec<(AttemptSource, AttemptCounts)> {
        let mut v: Vec<_> = self.inner.lock().by_source.iter().map(|(k, (c, _))| (k.clone(), *c)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Forgets everything (RabbitMQ's `reset_node_auth_attempt_metrics`).
    pub fn reset(&self) {
        let mut g = self.inner.lock();
        g.by_protocol.clear();
        g.by_source.clear();
    }
}

/// Why [`Broker::authenticate`] refused a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user or wrong password.
    InvalidCredentials,
    /// The password was right, but the caller's checks refused the user
    /// (the loopback rule, the management tags), with the reason.
    NotAllowed(String),
}

impl super::Broker {
    /// A password login from a client, as every front door takes it (AMQP
    /// PLAIN and AMQPLAIN, HTTP Basic, the dashboard's `POST /api/login`):
    /// [`Broker::login`](super::Broker::login), then the caller's own
    /// checks (`admit` answers why a user may not in, if it may not). Every
    /// outcome is counted in `auth.attempts`; every refusal is logged with
    /// the user name and address (never the password). A wrong password
    /// is answered only after the delay the throttle sets for its address
    /// and user name, on a timer: the task waits, no thread does.
    pub async fn authenticate(
        self: &std::sync::Arc<Self>,
        protocol: Protocol,
        name: &str,
        password: Vec<u8>,
        peer: Option<std::net::IpAddr>,
        admit: impl FnOnce(&User) -> Option<String>,
    ) -> Result<Arc<User>, Refusal> {
        self.authenticate_as(protocol, name, Some(password), peer, admit).await
    }

    /// [`authenticate`](Self::authenticate) without a password when
    /// `password` is None: the EXTERNAL mechanism, whose identity the
    /// client's verified TLS certificate proved. The user must exist.
    pub async fn authenticate_as(
        self: &std::sync::Arc<Self>,
        protocol: Protocol,
        name: &str,
        password: Option<Vec<u8>>,
        peer: Option<std::net::IpAddr>,
        admit: impl FnOnce(&User) -> Option<String>,
    ) -> Result<Arc<User>, Refusal> {
        let shown = name.escape_debug().to_string();
        let from = peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_canonical().to_string());
        let found = match password {
            Some(password) => self.login(name, password, peer).await,
            None => self.auth.user(name).ok_or(LoginError::InvalidCredentials),
        };
        let user = match found {
            Ok(user) => user,
            Err(LoginError::InvalidCredentials) => {
                self.auth.attempts.record(protocol, peer, name, false);
                let delay = self.auth.throttle.failed(peer, name, &self.config.login_throttle);
                tracing::warn!(
                    "{} login failed for user '{shown}' from {from}: invalid credentials{}",
                    protocol.name(),
                    if delay.is_zero() { String::new() } else { format!("; answered in {delay:?}") }
                );
                tokio::time::sleep(delay).await;
                return Err(Refusal::InvalidCredentials);
            }
        };
        if let Some(why) = admit(&user) {
            self.auth.attempts.record(protocol, peer, name, false);
            tracing::warn!("{} login refused for user '{shown}' from {from}: {why}", protocol.name());
            return Err(Refusal::NotAllowed(why));
        }
        self.auth.attempts.record(protocol, peer, name, true);
        Ok(user)
    }
}

/// The user with an imported hash replaced by an argon2id one.
pub fn upgraded(user: &User, argon2id_hash: String) -> User {
    User { password_hash: argon2id_hash, hashing_algorithm: HASH_ARGON2ID.to_owned(), ..user.clone() }
}

/// An argon2id PHC string for a password, with a random salt. Blocking and
/// memory-hungry: the broker runs it through `Broker::hash_password`.
pub fn hash_password(password: &[u8]) -> String {
    password::hash_argon2id(password)
}

pub fn verify_password(stored: &str, algorithm: &str, password: &[u8]) -> bool {
    match algorithm {
        HASH_RABBIT_SHA256 => verify_rabbit_sha256(stored, password),
        _ => password::verify_argon2(stored, password),
    }
}

/// RabbitMQ's hash: base64(salt(4) ++ sha256(salt ++ password)).
fn verify_rabbit_sha256(stored: &str, password: &[u8]) -> bool {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(stored) else {
        return false;
    };
    if raw.len() != 36 {
        return false;
    }
    let (salt, digest) = raw.split_at(4);
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password);
    let computed = h.finalize();
    // Constant-time comparison.
    computed.iter().zip(digest).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, pw: &str) -> User {
        User {
            name: name.into(),
            password_hash: hash_password(pw.as_bytes()),
            hashing_algorithm: HASH_ARGON2ID.into(),
            tags: vec![],
        }
    }

    #[test]
    fn login_checks_password_and_caches() {
        let auth = Auth::new();
        auth.put_user(user("lqz", "123"));
        assert!(auth.login("lqz", b"123").is_ok());
        assert!(auth.login("lqz", b"123").is_ok());
        assert!(auth.login("lqz", b"wrong").is_err());
        assert!(auth.login("nobody", b"123").is_err());
        // Changing the user invalidates the cached login.
        auth.put_user(user("lqz", "456"));
        assert!(auth.login("lqz", b"123").is_err());
        assert!(auth.login("lqz", b"456").is_ok());
    }

    #[test]
    fn failed_logins_never_enter_the_cache() {
        let auth = Auth::new();
        auth.put_user(user("lqz", "123"));
        for i in 0..20 {
            assert!(auth.login("lqz", format!("wrong-{i}").as_bytes()).is_err());
            assert!(auth.login(&format!("nobody-{i}"), b"123").is_err());
        }
        assert!(auth.login_cache.lock().is_empty(), "a failed attempt added an entry");
        assert!(auth.login("lqz", b"123").is_ok());
        assert!(matches!(auth.precheck("lqz", b"123"), Precheck::Cached(_)));
        // Wrong attempts neither add nor evict: one entry per user, still
        // the good one.
        for i in 0..20 {
            assert!(auth.login("lqz", format!("wrong-{i}").as_bytes()).is_err());
        }
        assert_eq!(auth.login_cache.lock().len(), 1);
        assert!(matches!(auth.precheck("lqz", b"123"), Precheck::Cached(_)));
        assert!(matches!(auth.precheck("lqz", b"1234"), Precheck::Argon2(_)));
        auth.delete_user("lqz");
        assert!(auth.login_cache.lock().is_empty());
    }

    #[test]
    fn rabbitmq_sha256_hash_is_accepted_and_upgraded() {
        let salt = [1u8, 2, 3, 4];
        let mut h = Sha256::new();
        h.update(salt);
        h.update(b"secret");
        let mut raw = salt.to_vec();
        raw.extend_from_slice(&h.finalize());
        let stored = base64::engine::general_purpose::STANDARD.encode(raw);
        let auth = Auth::new();
        auth.put_user(User {
            name: "old".into(),
            password_hash: stored,
            hashing_algorithm: HASH_RABBIT_SHA256.into(),
            tags: vec![],
        });
        assert!(auth.login("old", b"nope").is_err());
        let l = auth.login("old", b"secret").unwrap();
        let upgraded = l.upgraded.expect("an upgrade");
        assert_eq!(upgraded.hashing_algorithm, HASH_ARGON2ID);
        auth.put_user(upgraded);
        let again = auth.login("old", b"secret").unwrap();
        assert!(again.upgraded.is_none());
        assert_eq!(again.user.hashing_algorithm, HASH_ARGON2ID);
    }

    #[test]
    fn attempts_are_counted_per_protocol_and_per_source_in_a_bounded_table() {
        let a = AuthAttempts::default();
        let ip: std::net::IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        a.record(Protocol::Amqp091, Some(ip), "u", false);
        a.record(Protocol::Amqp091, Some(ip), "u", true);
        a.record(Protocol::Http, None, "v", false);
        let amqp = AttemptCounts { attempts: 2, succeeded: 1, failed: 1 };
        let http = AttemptCounts { attempts: 1, succeeded: 0, failed: 1 };
        assert_eq!(a.by_protocol(), [(Protocol::Amqp091, amqp), (Protocol::Http, http)]);
        let sources = a.by_source();
        assert_eq!(sources[0], ((String::new(), "v".into(), Protocol::Http), http));
        assert_eq!(sources[1], (("10.0.0.1".into(), "u".into(), Protocol::Amqp091), amqp));
        for i in 0..ATTEMPT_SOURCES + 10 {
            a.record(Protocol::Http, Some(ip), &format!("spray-{i}"), false);
        }
        let sources = a.by_source();
        assert_eq!(sources.len(), ATTEMPT_SOURCES);
        assert!(sources.iter().any(|(k, _)| k.1 == format!("spray-{}", ATTEMPT_SOURCES + 9)));
        assert_eq!(a.by_protocol()[1].1.attempts, 1 + ATTEMPT_SOURCES as u64 + 10);
        a.reset();
        assert!(a.by_protocol().is_empty() && a.by_source().is_empty());
    }

    #[test]
    fn permissions_follow_rabbitmq_regex_rules() {
        let p = Permissions::new("^amq\\.gen", ".*", "").unwrap();
        assert!(p.allows(Access::Configure, "amq.gen-abc"));
        assert!(!p.allows(Access::Configure, "q"));
        assert!(p.allows(Access::Write, "anything"));
        assert!(p.allows(Access::Read, ""));
        assert!(!p.allows(Access::Read, "q"));
        assert!(Permissions::new("(", "", "").is_err());
    }
}
