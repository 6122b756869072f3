//! The broker: vhosts with their exchanges and queues, users and permissions,
//! and the one path (`Broker::apply`) through which every definition change
//! goes, whoever asks for it.

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
    next_id: AtomicU64,
    pub started_at: Instant,
}

impl Broker {
    /// A broker with the default vhost and the default user, as a fresh
    /// RabbitMQ node has.
    pub async fn new(config: Config) -> Result<Arc<Self>> {
        let broker = Arc::new(Broker {
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
