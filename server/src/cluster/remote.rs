//! The backend of queues homed on another node (`broker::queue::backend`):
//! what the broker's queues ask of "the home", carried over the cluster
//! link. Publishes go through the home's forwarding task ([`super::forward`]);
//! consumers, gets, purges and settles are calls served by the home
//! ([`super::consume`]). The cluster installs [`RemoteBackends`] in the
//! broker when it starts; each home node gets one [`RemoteHome`], shared
//! by every queue homed there.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use super::consume::stopping;
use super::node::Cluster;
use crate::broker::consumer::Consumer;
use crate::broker::error::Result;
use crate::broker::message::Message;
use crate::broker::queue::backend::{Accepted, QueueBackend, QueueBackends, Settle};
use crate::broker::queue::{Queue, QueuedMessage};

/// The factory the broker asks for the backend of a queue homed elsewhere.
pub struct RemoteBackends {
    cluster: Weak<Cluster>,
    homes: parking_lot::Mutex<HashMap<String, Arc<RemoteHome>>>,
}

impl RemoteBackends {
    pub fn new(cluster: Weak<Cluster>) -> Self {
        RemoteBackends { cluster, homes: Default::default() }
    }
}

impl QueueBackends for RemoteBackends {
    fn remote(&self, home: &str) -> Arc<dyn QueueBackend> {
        let mut homes = self.homes.lock();
        homes
            .entry(home.to_owned())
            .or_insert_with(|| Arc::new(RemoteHome { cluster: self.cluster.clone(), home: home.to_owned() }))
            .clone()
    }

    fn behind(&self) -> bool {
        self.cluster.upgrade().is_some_and(|c| c.forwarding_behind())
    }

    fn replicated(&self, q: &Arc<Queue>) {
        if let Some(c) = self.cluster.upgrade() {
            c.register_replicated(q);
        }
    }

    fn deleted(&self, q: &Queue) {
        if let Some(c) = self.cluster.upgrade() {
            c.drop_replicated(q);
        }
    }

    fn members_chosen(&self, q: &Arc<Queue>) {
        if let Some(c) = self.cluster.upgrade() {
            c.members_chosen(q);
        }
    }
}

/// Another node, as the home of some of this node's queues.
pub struct RemoteHome {
    cluster: Weak<Cluster>,
    home: String,
}

impl RemoteHome {
    fn cluster(&self) -> Result<Arc<Cluster>> {
        self.cluster.upgrade().ok_or_else(stopping)
    }
}

impl QueueBackend for RemoteHome {
    fn node(&self) -> &str {
        &self.home
    }

    fn is_down(&self) -> bool {
        self.cluster.upgrade().is_none_or(|c| c.is_down(&self.home))
    }

    fn publish(&self, vhost: &str, queues: Vec<String>, msg: &Message) -> Accepted {
        match self.cluster.upgrade() {
            Some(c) => c.forward(&self.home, vhost, queues, msg),
            None => oneshot::channel().1,
        }
    }

    fn consume<'a>(&'a self, q: &'a Arc<Queue>, c: &'a Arc<Consumer>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.cluster()?.subscribe(&self.home, q, c).await })
    }

    fn cancel(&self, q: &Queue, c: &Arc<Consumer>) {
        if let Some(cluster) = self.cluster.upgrade() {
            cluster.unsubscribe(q, c);
        }
    }

    fn get<'a>(&'a self, q: &'a Queue, no_ack: bool) -> BoxFuture<'a, Result<Option<(QueuedMessage, u64)>>> {
        Box::pin(async move { self.cluster()?.get_remote(&self.home, q, no_ack).await })
    }

    fn purge<'a>(&'a self, q: &'a Queue) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { self.cluster()?.purge_remote(&self.home, q).await })
    }

    fn settle(&self, q: &Queue, op: Settle, ids: Vec<u64>) {
        if let Some(c) = self.cluster.upgrade() {
            c.settle(&self.home, q, op, ids);
        }
    }
}
