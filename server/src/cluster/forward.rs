//! Publishing to a queue whose home is another node (docs/cluster.md,
//! slice 2): the node that routed the message sends it to the home, which
//! enqueues it as if it had been published there.
//!
//! Order: each home has one forwarding task on the publishing node, which
//! starts its calls one after the other on the one link to that home, and
//! the home enqueues a forwarded message before it reads the next call
//! (`link::serve` calls its handler in arrival order). So messages from one
//! channel reach a remote queue in the order they were published.
//!
//! Confirms: the home answers once the message is enqueued, and, when it
//! was stored as persistent, once the store has it on disk; the publishing
//! channel confirms only then. A home that cannot be reached, or that lost
//! the queue, answers no: the publisher gets a nack.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::network::{Call, Reply};
use super::node::Cluster;
use crate::broker::message::Message;

/// A message on the link: properties and body travel as bytes (sharing
/// the message's buffers until they are encoded).
#[derive(Debug, Serialize, Deserialize)]
pub struct WireMessage {
    exchange: String,
    routing_key: String,
    properties: Bytes,
    body: Bytes,
    persistent: bool,
    priority: u8,
    expiration: Option<u64>,
}

impl WireMessage {
    pub fn of(m: &Message) -> WireMessage {
        WireMessage {
            exchange: m.exchange.to_string(),
            routing_key: m.routing_key.to_string(),
            properties: m.properties.clone(),
            body: m.body.clone(),
            persistent: m.persistent,
            priority: m.priority,
            expiration: m.expiration,
        }
    }

    pub fn into_message(self) -> Message {
        Message {
            exchange: self.exchange.into(),
            routing_key: self.routing_key.into(),
            properties: self.properties,
            body: self.body,
            persistent: self.persistent,
            priority: self.priority,
            expiration: self.expiration,
        }
    }

    /// Roughly what the message takes in a queue waiting for the link.
    fn size(&self) -> u64 {
        (self.body.len() + self.properties.len() + self.routing_key.len() + 64) as u64
    }
}

/// A message for some queues of one vhost, all homed on the called node.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardedPublish {
    pub vhost: String,
    pub queues: Vec<String>,
    pub msg: WireMessage,
}

/// Whether a forwarded message was enqueued (and stored, when it had to be).
pub type Forwarded = oneshot::Receiver<bool>;

struct Job {
    publish: ForwardedPublish,
    /// What it counts in the backlog.
    size: u64,
    done: oneshot::Sender<bool>,
}

/// The forwarding task of each home node, and the bytes of messages
/// waiting for one: the publishing connections stop reading while that is
/// over [`BACKLOG_HIGH`] (`throttle_if_behind` in `amqp::connection`), so a
/// slow or busy home slows its publishers down instead of growing a queue.
#[derive(Default)]
pub struct Forwarders {
    homes: parking_lot::Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>,
    backlog: AtomicU64,
}

/// Above this many bytes waiting to be forwarded, publishers wait.
pub const BACKLOG_HIGH: u64 = 16 * 1024 * 1024;

impl Forwarders {
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }
}

impl Cluster {
    /// Sends `msg` to the named queues of `vhost`, all homed on `home`.
    /// The answer says whether the home enqueued it (and stored it, when
    /// it had to).
    pub fn forward(
        self: &Arc<Self>,
        home: &str,
        vhost: &str,
        queues: Vec<String>,
        msg: &Message,
    ) -> Forwarded {
        let (done, answer) = oneshot::channel();
        let msg = WireMessage::of(msg);
        let size = msg.size();
        let job = Job { publish: ForwardedPublish { vhost: vhost.to_owned(), queues, msg }, size, done };
        self.forwarders.backlog.fetch_add(size, Ordering::Relaxed);
        let tx = {
            let mut homes = self.forwarders.homes.lock();
            match homes.get(home) {
                Some(tx) => tx.clone(),
                None => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(run_forwarder(Arc::downgrade(self), home.to_owned(), rx));
                    homes.insert(home.to_owned(), tx.clone());
                    tx
                }
            }
        };
        if let Err(e) = tx.send(job) {
            self.forwarders.backlog.fetch_sub(size, Ordering::Relaxed);
            let _ = e.0.done.send(false);
        }
        answer
    }

    /// Whether too many bytes of messages wait to be forwarded: publishers
    /// then wait.
    pub fn forwarding_behind(&self) -> bool {
        self.forwarders.backlog() > BACKLOG_HIGH
    }

    /// The called side: enqueues a forwarded message into this node's
    /// queues now (in arrival order), and returns the answer, which waits
    /// for the disk when the message was stored.
    pub fn accept_publish(
        &self,
        p: ForwardedPublish,
    ) -> Pin<Box<dyn Future<Output = crate::broker::error::Result<Reply>> + Send>> {
        let Ok(broker) = self.broker() else {
            return Box::pin(async { Err(super::consume::stopping()) });
        };
        let Some(vhost) = broker.vhost(&p.vhost) else {
            return Box::pin(async { Ok(Reply::Published(false)) });
        };
        let targets: crate::broker::exchange::RouteTargets =
            p.queues.iter().filter_map(|name| vhost.queue(name)).filter(|q| q.is_held_here()).collect();
        let all_there = targets.len() == p.queues.len();
        let delivered = vhost.deliver(targets, Arc::new(p.msg.into_message()), broker.stores.as_ref());
        let ok = all_there && delivered.as_ref().is_ok_and(|d| !d.refused);
        match (delivered, &broker.stores) {
            (Ok(d), Some(stores)) if d.stored => {
                let (tx, rx) = oneshot::channel();
                stores.persistent.on_durable_result(Box::new(move |written| {
                    let _ = tx.send(written.is_ok());
                }));
                Box::pin(async move { Ok(Reply::Published(ok && rx.await.unwrap_or(false))) })
            }
            _ => Box::pin(async move { Ok(Reply::Published(ok)) }),
        }
    }
}

async fn run_forwarder(
    cluster: std::sync::Weak<Cluster>,
    home: String,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    while let Some(job) = jobs.recv().await {
        let Some(c) = cluster.upgrade() else { return };
        let Some(addr) = c.address_of(&home) else {
            tracing::warn!("cannot forward a message to {home}: not a member of the cluster");
            c.forwarders.backlog.fetch_sub(job.size, Ordering::Relaxed);
            let _ = job.done.send(false);
            continue;
        };
        // Waits while the link's queue to the home is full.
        let sent = c.peers().to(&addr).start_call(Call::Publish(job.publish)).await;
        c.forwarders.backlog.fetch_sub(job.size, Ordering::Relaxed);
        match sent {
            Ok(reply) => {
                tokio::spawn(async move {
                    let ok = matches!(reply.await, Ok(Ok(Reply::Published(true))));
                    let _ = job.done.send(ok);
                });
            }
            Err(e) => {
                tracing::debug!("cannot forward a message to {home}: {e}");
                let _ = job.done.send(false);
            }
        }
    }
}
