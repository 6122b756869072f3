//! Publishing to a queue whose home is another node (docs/cluster.md,
//! slice 2): the node that routed the message sends it to the home, which
//! enqueues it as if it had been published there.
//!
//! Order: each home has one forwarding task on the publishing node, which
//! starts its calls one after the other on the one link to that home, and
//! the home enqueues forwarded messages before it reads the next call
//! (`link::serve` calls its handler in arrival order). So messages from one
//! channel reach a remote queue in the order they were published.
//!
//! Batches: the forwarding task sends whatever has queued up for the home
//! since its last call in one call (up to [`BATCH_MESSAGES`] messages or
//! [`BATCH_BYTES`]), and the home answers the batch at once, after one wait
//! for the disk. Under load that is one frame each way and one fsync wait
//! for hundreds of messages; a lone message still goes at once.
//!
//! Confirms: the home answers once the messages are enqueued, and, when
//! one was stored as persistent, once the store has it on disk; the
//! publishing channel confirms only then. A home that cannot be reached, or
//! that lost the queue, answers no: the publisher gets a nack.

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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
/// At most this many messages in one forwarding call...
pub const BATCH_MESSAGES: usize = 512;
/// ...and about this many bytes.
pub const BATCH_BYTES: u64 = 1024 * 1024;

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

    /// The called side: enqueues forwarded messages into this node's
    /// queues now (in arrival order), and returns the answers, which wait
    /// for the disk when a message was stored.
    pub fn accept_publish(
        &self,
        batch: Vec<ForwardedPublish>,
    ) -> Pin<Box<dyn Future<Output = crate::broker::error::Result<Reply>> + Send>> {
        let Ok(broker) = self.broker() else {
            return Box::pin(async { Err(super::consume::stopping()) });
        };
        let mut stored = false;
        // Answers from replicated queues' logs (led here), per message.
        let mut committed: Vec<(usize, Vec<crate::broker::queue::backend::Accepted>)> = Vec::new();
        let answers: Vec<bool> = batch
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let Some(vhost) = broker.vhost(&p.vhost) else { return false };
                let targets: crate::broker::exchange::RouteTargets = p
                    .queues
                    .iter()
                    .filter_map(|name| vhost.queue(name))
                    .filter(|q| q.is_held_here())
                    .collect();
                let all_there = targets.len() == p.queues.len();
                match vhost.deliver(targets, Arc::new(p.msg.into_message()), broker.stores.as_ref()) {
                    Ok(d) => {
                        stored |= d.stored;
                        if !d.elsewhere.is_empty() {
                            committed.push((i, d.elsewhere));
                        }
                        all_there && !d.refused
                    }
                    Err(e) => {
                        tracing::warn!("cannot enqueue a forwarded message: {e}");
                        false
                    }
                }
            })
            .collect();
        let on_disk = match (stored, &broker.stores) {
            (true, Some(stores)) => {
                let (tx, rx) = oneshot::channel();
                stores.persistent.on_durable_result(Box::new(move |written| {
                    let _ = tx.send(written.is_ok());
                }));
                Some(rx)
            }
            _ => None,
        };
        Box::pin(async move {
            let mut answers = answers;
            if let Some(rx) = on_disk {
                let ok = rx.await.unwrap_or(false);
                answers.iter_mut().for_each(|a| *a &= ok);
            }
            for (i, waiting) in committed {
                for w in waiting {
                    answers[i] &= w.await.unwrap_or(false);
                }
            }
            Ok(Reply::Published(answers))
        })
    }
}

async fn run_forwarder(
    cluster: std::sync::Weak<Cluster>,
    home: String,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let mut batch: Vec<Job> = Vec::new();
    while let Some(first) = jobs.recv().await {
        let mut bytes = first.size;
        batch.push(first);
        while batch.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
            match jobs.try_recv() {
                Ok(job) => {
                    bytes += job.size;
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let Some(c) = cluster.upgrade() else { return };
        let (publishes, waiting): (Vec<ForwardedPublish>, Vec<oneshot::Sender<bool>>) =
            batch.drain(..).map(|j| (j.publish, j.done)).unzip();
        let Some(addr) = c.address_of(&home) else {
            tracing::warn!("cannot forward messages to {home}: not a member of the cluster");
            c.forwarders.backlog.fetch_sub(bytes, Ordering::Relaxed);
            answer_all(waiting, None);
            continue;
        };
        // Waits while the link's queue to the home is full.
        let sent = c.peers().to(&addr).start_call(Call::Publish(publishes)).await;
        c.forwarders.backlog.fetch_sub(bytes, Ordering::Relaxed);
        match sent {
            Ok(reply) => {
                tokio::spawn(async move {
                    match reply.await {
                        Ok(Ok(Reply::Published(oks))) => answer_all(waiting, Some(oks)),
                        _ => answer_all(waiting, None),
                    }
                });
            }
            Err(e) => {
                tracing::debug!("cannot forward messages to {home}: {e}");
                answer_all(waiting, None);
            }
        }
    }
}

/// Tells each publisher whether the home took its message; no answer
/// (`None`, or too short a one) is a no.
fn answer_all(waiting: Vec<oneshot::Sender<bool>>, oks: Option<Vec<bool>>) {
    let oks = oks.unwrap_or_default();
    for (i, done) in waiting.into_iter().enumerate() {
        let _ = done.send(oks.get(i).copied().unwrap_or(false));
    }
}
