//! The broker: vhosts with their exchanges and queues, users and permissions,
//! and the one path (`Broker::apply`, in `commit`) through which every
//! definition change goes, whoever asks for it.
//!
//! - The model: [`vhost`] (a namespace of exchanges and queues),
//!   [`exchange`] (the routers, one file per type), [`queue`] (a shell
//!   around `queue::state`, the pure core that applies RabbitMQ's queue
//!   rules and returns effects; `queue::backend` for a queue whose
//!   messages another node holds), [`message`] and
//!   [`props`] (a published message and its properties in wire form),
//!   [`field_table`] (checking tables before decoding them).
//! - Changing it: `crate::definitions` (`DefinitionCommand`, every
//!   metadata change as a value), `apply` and `commit` (applying a change
//!   in memory, then storing it: the one commit function), [`args`]
//!   (argument validation and equivalence), [`policy`] and [`parameters`]
//!   (policies, operator policies, runtime parameters); `recovery` and
//!   `snapshot` rebuild it from the store and from a cluster snapshot.
//! - Moving messages: [`publish`] (the delivery path every publisher
//!   shares), [`consumer`] (consumers and the outbox to their connection),
//!   [`deadletter`], [`stats`] (the counters behind the API's rates).
//! - Who may do what: [`auth`] (users, tags, permissions) and [`password`]
//!   (argon2id, bounded in memory and time).
//! - The node around it: [`connections`] (the registry of open
//!   connections), [`limits`] (the per-vhost and per-user limits),
//!   [`alarms`] (memory and disk alarms), [`error`] (the
//!   `BrokerError` every layer turns into a reply code or HTTP status).
//! - The seam to a cluster: [`consensus`] (metadata changes committed
//!   through a cluster) and `queue::backend` (queues served from
//!   elsewhere): traits the broker owns and the cluster implements.

pub mod alarms;
mod apply;
pub mod args;
pub mod auth;
mod commit;
pub mod connections;
pub mod consensus;
pub mod consumer;
pub mod deadletter;
pub mod error;
pub mod exchange;
pub mod field_table;
pub mod limits;
pub mod message;
pub mod parameters;
pub mod password;
pub mod policy;
pub mod props;
pub mod publish;
pub mod queue;
mod recovery;
mod snapshot;
pub mod stats;
pub mod vhost;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::RwLock;

use crate::config::Config;
use crate::definitions::User;
use crate::store::Stores;
use crate::store::definitions::DefinitionStore;
use auth::Auth;
use connections::Connections;
use error::{BrokerError, Result};
use vhost::VHost;

use crate::definitions::DefinitionCommand;
pub use apply::Applied;
pub use commit::CommitSink;

pub struct Broker {
    pub config: Config,
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    pub auth: Auth,
    pub parameters: parameters::Parameters,
    pub connections: Connections,
    pub stores: Option<Arc<Stores>>,
    /// Durable definitions; None for a broker that keeps nothing (tests).
    pub definitions: Option<DefinitionStore>,
    /// Serialises "apply in memory, then persist" so that SQLite sees
    /// changes in the order memory did.
    apply_lock: tokio::sync::Mutex<()>,
    pub alarms: alarms::Alarms,
    next_id: AtomicU64,
    pub started_at: Instant,
    /// Held for the node's life: one process per data directory.
    _data_dir_lock: Option<std::fs::File>,
    /// The cluster's metadata log, when a cluster is installed; set once
    /// at start.
    consensus: std::sync::OnceLock<Arc<dyn consensus::Consensus>>,
    /// How queues held on other nodes are served (installed with the
    /// consensus).
    pub backends: queue::backend::BackendsHook,
}

impl Broker {
    /// Opens the data directory: definitions from SQLite, then persistent
    /// messages back into their durable queues. A fresh data directory gets
    /// the default vhost and user, as a fresh RabbitMQ node does.
    pub async fn new(config: Config) -> Result<Arc<Self>> {
        let lock = recovery::lock_data_dir(&config.data_dir)?;
        let defs = DefinitionStore::open(&config.data_dir)
            .await
            .map_err(|e| BrokerError::internal(e.to_string()))?;
        let snapshot = defs.load().await.map_err(|e| BrokerError::internal(e.to_string()))?;
        let (stores, recovered) = recovery::open_stores(&config, &snapshot)?;
        let broker = Arc::new(Broker {
            stores: Some(Arc::new(stores)),
            definitions: Some(defs),
            apply_lock: Default::default(),
            alarms: Default::default(),
            config,
            vhosts: RwLock::new(HashMap::new()),
            auth: Auth::new(),
            parameters: Default::default(),
            connections: Connections::default(),
            next_id: AtomicU64::new(first_id()),
            started_at: Instant::now(),
            _data_dir_lock: Some(lock),
            consensus: Default::default(),
            backends: Default::default(),
        });
        if snapshot.vhosts.is_empty() && snapshot.users.is_empty() {
            broker.seed_defaults().await?;
        } else {
            recovery::replay(&broker, &snapshot, recovered);
        }
        Ok(broker)
    }

    /// A broker with no data directory, and the vhost `/` and the user
    /// `guest` (no password), for unit tests and the fuzz targets
    /// ([`crate::fuzzing`]).
    #[cfg(any(test, fuzzing))]
    pub fn in_memory() -> Arc<Self> {
        let broker = Arc::new(Broker {
            stores: None,
            definitions: None,
            apply_lock: Default::default(),
            alarms: Default::default(),
            config: Config::default(),
            vhosts: RwLock::new(HashMap::new()),
            auth: Auth::new(),
            parameters: Default::default(),
            connections: Connections::default(),
            next_id: AtomicU64::new(1),
            started_at: Instant::now(),
            _data_dir_lock: None,
            consensus: Default::default(),
            backends: Default::default(),
        });
        let user = User {
            name: "guest".into(),
            password_hash: String::new(),
            hashing_algorithm: auth::HASH_ARGON2ID.into(),
            tags: vec!["administrator".into()],
        };
        for cmd in [
            DefinitionCommand::AddVhost { name: "/".into(), description: String::new(), tags: vec![] },
            DefinitionCommand::PutUser(user),
        ] {
            broker.apply_in_memory(cmd).expect("a fresh broker takes its defaults");
        }
        broker
    }

    pub(crate) async fn seed_defaults(&self) -> Result<()> {
        let c = &self.config;
        let (vhost, user, pass) = (c.default_vhost.clone(), c.default_user.clone(), c.default_pass.clone());
        self.apply(DefinitionCommand::AddVhost {
            name: vhost.clone(),
            description: "Default virtual host".into(),
            tags: vec![],
        })
        .await?;
        let hash = self.hash_password(pass.into_bytes()).await;
        self.apply(DefinitionCommand::PutUser(User {
            name: user.clone(),
            password_hash: hash,
            hashing_algorithm: auth::HASH_ARGON2ID.into(),
            tags: c.default_user_tags.clone(),
        }))
        .await?;
        let [configure, write, read] = c.default_permissions.clone();
        self.apply(DefinitionCommand::SetPermissions { vhost, user, configure, write, read }).await?;
        Ok(())
    }

    /// Checks a login. A password that logged this user in before costs
    /// one HMAC here; any other goes through the password gate (a few
    /// argon2 runs at a time, off the async threads, with memory returned
    /// to the system after each), where `peer`, the client's address, picks
    /// its place in the queue. An imported RabbitMQ hash is replaced by an
    /// argon2id one, stored through the definitions path.
    pub async fn login(
        self: &Arc<Self>,
        name: &str,
        password: Vec<u8>,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Arc<User>, auth::LoginError> {
        match self.auth.precheck(name, &password) {
            auth::Precheck::Refused => Err(auth::LoginError::InvalidCredentials),
            auth::Precheck::Cached(user) => Ok(user),
            auth::Precheck::Argon2(user) => {
                let hash = user.password_hash.clone();
                let (ok, password) = self
                    .auth
                    .gate
                    .run(peer, name, move || (password::verify_argon2(&hash, &password), password))
                    .await
                    .ok_or(auth::LoginError::InvalidCredentials)?;
                if !ok {
                    return Err(auth::LoginError::InvalidCredentials);
                }
                self.auth.remember(&user, &password);
                Ok(user)
            }
            auth::Precheck::Upgrade(user) => {
                let hash = self.auth.gate.run(peer, name, move || password::hash_argon2id(&password)).await;
                let hash = hash.unwrap_or_default();
                if hash.is_empty() {
                    tracing::error!("cannot hash the password of user '{name}' to upgrade its imported hash");
                    return Ok(user);
                }
                if let Err(e) = self.apply(DefinitionCommand::PutUser(auth::upgraded(&user, hash))).await {
                    tracing::error!("cannot store the upgraded password hash of user '{name}': {e}");
                }
                Ok(self.auth.user(name).unwrap_or(user))
            }
        }
    }

    /// An argon2id hash of a password, made through the password gate.
    /// Empty if hashing failed (such a user cannot log in with a password).
    pub async fn hash_password(&self, password: Vec<u8>) -> String {
        self.auth.gate.run(None, "", move || password::hash_argon2id(&password)).await.unwrap_or_default()
    }

    /// Writes out what is pending and closes the stores (shutdown).
    pub async fn close(&self) {
        if let Some(stores) = self.stores.clone() {
            // flush blocks until the writer thread has synced.
            let flushed = tokio::task::spawn_blocking(move || stores.persistent.flush()).await;
            if let Ok(Err(e)) = flushed {
                tracing::error!("cannot flush the message store: {e}");
            }
        }
        if let Some(defs) = &self.definitions {
            defs.close().await;
        }
    }

    /// The resource limits in bytes, from the configuration.
    pub fn alarm_limits(&self) -> alarms::Limits {
        let c = &self.config;
        let memory = c
            .memory_high_watermark_absolute
            .unwrap_or_else(|| (alarms::total_memory() as f64 * c.memory_high_watermark_relative) as u64);
        alarms::Limits {
            memory_high_watermark: if memory == 0 { u64::MAX } else { memory },
            disk_free_limit: c.disk_free_limit,
            data_dir: c.data_dir.clone(),
        }
    }

    /// Plugs a cluster in beneath the broker: from now on, definition
    /// changes are committed through `consensus` while it is clustered,
    /// and queues homed on other nodes are served by `backends`.
    pub fn install_cluster(
        &self,
        consensus: Arc<dyn consensus::Consensus>,
        backends: Arc<dyn queue::backend::QueueBackends>,
    ) {
        let _ = self.consensus.set(consensus);
        let _ = self.backends.set(backends);
    }

    /// The cluster's metadata log, while this node is a member of a
    /// running cluster.
    pub fn consensus(&self) -> Option<&Arc<dyn consensus::Consensus>> {
        self.consensus.get().filter(|c| c.is_clustered())
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.read().get(name).cloned()
    }

    pub fn vhost_or_404(&self, name: &str) -> Result<Arc<VHost>> {
        self.vhost(name).ok_or_else(|| BrokerError::not_found(format!("no vhost '{name}'")))
    }

    pub fn vhosts(&self) -> Vec<Arc<VHost>> {
        let mut v: Vec<_> = self.vhosts.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub(crate) fn insert_vhost(&self, vhost: Arc<VHost>) -> bool {
        let mut map = self.vhosts.write();
        if map.contains_key(vhost.name.as_ref()) {
            return false;
        }
        map.insert(vhost.name.to_string(), vhost);
        true
    }

    pub(crate) fn remove_vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.write().remove(name)
    }
}

/// Connection and channel ids start at a random point in the upper half of
/// the number space, so that ids from different nodes of a cluster do not
/// meet (exclusive queues name their owner by connection id).
fn first_id() -> u64 {
    (u64::from(rand::random::<u32>()) << 32) | 1
}
