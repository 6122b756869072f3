//! The broker: vhosts with their exchanges and queues, users and permissions,
//! and the one path (`Broker::apply`) through which every definition change
//! goes, whoever asks for it.

pub mod alarms;
pub mod args;
pub mod auth;
pub mod connections;
pub mod consumer;
pub mod definitions;
pub mod error;
pub mod exchange;
pub mod message;
pub mod parameters;
pub mod queue;
pub mod stats;
pub mod vhost;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::RwLock;

use crate::config::Config;
use crate::store::Stores;
use crate::store::messages::{MessageStore, StoreConfig};
use auth::Auth;
use connections::Connections;
use error::{BrokerError, Result};
use vhost::VHost;

pub use definitions::{Applied, DefinitionCommand};

pub struct Broker {
    pub config: Config,
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    pub auth: Auth,
    pub parameters: parameters::Parameters,
    pub connections: Connections,
    pub stores: Option<Arc<Stores>>,
    pub alarms: alarms::Alarms,
    next_id: AtomicU64,
    pub started_at: Instant,
}

impl Broker {
    /// A broker with the default vhost and the default user, as a fresh
    /// RabbitMQ node has.
    pub async fn new(config: Config) -> Result<Arc<Self>> {
        let stores = Some(Arc::new(open_stores(&config)?));
        let broker = Arc::new(Broker {
            stores,
            alarms: Default::default(),
            config,
            vhosts: RwLock::new(HashMap::new()),
            auth: Auth::new(),
            parameters: Default::default(),
            connections: Connections::default(),
            next_id: AtomicU64::new(1),
            started_at: Instant::now(),
        });
        broker.seed_defaults().await?;
        Ok(broker)
    }

    async fn seed_defaults(&self) -> Result<()> {
        let c = &self.config;
        let (vhost, user, pass) = (c.default_vhost.clone(), c.default_user.clone(), c.default_pass.clone());
        self.apply(DefinitionCommand::AddVhost {
            name: vhost.clone(),
            description: "Default virtual host".into(),
            tags: vec![],
        })
        .await?;
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(pass.as_bytes()))
            .await
            .map_err(|e| BrokerError::internal(e.to_string()))?;
        self.apply(DefinitionCommand::PutUser(auth::User {
            name: user.clone(),
            password_hash: hash,
            hashing_algorithm: auth::HASH_ARGON2ID.into(),
            tags: vec!["administrator".into()],
        }))
        .await?;
        self.apply(DefinitionCommand::SetPermissions {
            vhost,
            user,
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        })
        .await?;
        Ok(())
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

/// Opens the persistent message store and a fresh paging store under the
/// data directory.
fn open_stores(config: &Config) -> Result<Stores> {
    let io = |what: &str, e: std::io::Error| {
        BrokerError::internal(format!("cannot open the {what} in {}: {e}", config.data_dir.display()))
    };
    let (persistent, _recovery) = MessageStore::open(
        StoreConfig {
            dir: config.data_dir.join("msgs"),
            segment_size: 64 * 1024 * 1024,
            fsync: true,
            wipe: false,
        },
        &Default::default(),
    )
    .map_err(|e| io("message store", e))?;
    let (paging, _) = MessageStore::open(
        StoreConfig {
            dir: config.data_dir.join("paging"),
            segment_size: 64 * 1024 * 1024,
            fsync: false,
            wipe: true,
        },
        &Default::default(),
    )
    .map_err(|e| io("paging store", e))?;
    Ok(Stores { persistent, paging })
}
