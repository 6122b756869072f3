//! The delivery path shared by every publisher: AMQP channels, the HTTP
//! API's publish, and dead-lettering. It routes a message through an
//! exchange (with CC and BCC keys, alternate exchanges, and direct reply-to
//! pseudo-queues), writes it once to the persistent store when it is
//! persistent and reaches durable queues, and enqueues it.

use std::sync::Arc;

use amq_protocol::types::FieldTable;
use smallvec::SmallVec;

use super::deadletter::{self, DeadLetter, Reason};
use super::error::{BrokerError, Result};
use super::exchange::{Exchange, RouteTargets};
use super::message::Message;
use super::queue::Queue;
use super::queue::backend::{Accepted, send_elsewhere};
use super::queue::replica;
use super::vhost::VHost;
use crate::store::Stores;
use crate::store::messages::StoredMessage;

/// The prefix of direct reply-to pseudo-queue names.
pub const REPLY_TO: &str = "amq.rabbitmq.reply-to";

#[derive(Default)]
pub struct Delivered {
    /// Queues the message was routed to.
    pub queues: usize,
    /// It went to the persistent store: a confirm must wait for the disk.
    pub stored: bool,
    /// A queue refused it (a length limit with reject-publish, a home node
    /// that is down): nack it.
    pub refused: bool,
    /// Queues it was routed to whose home node is down: it is not in them.
    pub unreachable: usize,
    /// The answers of the backends of queues held elsewhere (another
    /// node): a confirm waits for them.
    pub elsewhere: Vec<Accepted>,
}

impl VHost {
    /// Routes `msg` from exchange `x` with its routing key plus any CC and
    /// BCC keys, falling back to alternate exchanges when nothing matches.
    pub fn route_all(&self, x: &Exchange, msg: &Message, headers: Option<&FieldTable>) -> RouteTargets {
        let mut targets = RouteTargets::new();
        let cc = deadletter::header_keys(headers, "CC");
        let bcc = deadletter::header_keys(headers, "BCC");
        let mut visited: SmallVec<[Arc<str>; 2]> = SmallVec::new();
        let mut alternate: Option<Arc<Exchange>> = None;
        loop {
            let ae = {
                let xr: &Exchange = alternate.as_deref().unwrap_or(x);
                self.route(xr, &msg.routing_key, headers, &mut targets);
                for k in cc.iter().chain(&bcc) {
                    self.route(xr, k, headers, &mut targets);
                }
                if !targets.is_empty() {
                    break;
                }
                // Nothing matched: try the alternate exchange, once each.
                visited.push(xr.name.clone());
                match xr.alternate() {
                    Some(ae) if !visited.iter().any(|v| **v == *ae) => ae,
                    _ => break,
                }
            };
            match self.exchange(&ae) {
                Some(next) => alternate = Some(next),
                None => break,
            }
        }
        dedup(&mut targets);
        targets
    }

    /// Enqueues a routed message in every target queue, wherever it is
    /// kept: the queues held here take it now; the others get it through
    /// their backends, whose answers are in `Delivered::elsewhere`. `msg`
    /// must already be stripped of BCC.
    pub fn deliver(
        &self,
        mut targets: RouteTargets,
        msg: Arc<Message>,
        stores: Option<&Arc<Stores>>,
    ) -> Result<Delivered> {
        let mut out = Delivered { queues: targets.len(), ..Default::default() };
        let sent = send_elsewhere(&self.name, &mut targets, &msg);
        out.unreachable = sent.unreachable;
        out.refused = sent.unreachable > 0;
        out.elsewhere = sent.accepted;
        let stored = match (stores, msg.persistent) {
            (Some(stores), true) => {
                let ids: SmallVec<[u32; 4]> = targets.iter().filter_map(|q| q.persistent_id()).collect();
                if ids.is_empty() {
                    None
                } else {
                    let m = StoredMessage {
                        exchange: &msg.exchange,
                        routing_key: &msg.routing_key,
                        properties: &msg.properties,
                        body: &msg.body,
                    };
                    Some(stores.persistent.append(&m, &ids).map_err(|e| {
                        BrokerError::internal(format!("cannot store a persistent message: {e}"))
                    })?)
                }
            }
            _ => None,
        };
        out.stored = stored.is_some();
        for q in targets {
            // A replicated queue led here keeps the message in its group's
            // log; the confirm waits for a majority to have it.
            let r = if let Some(log) = q.replica() {
                let (id, committed) = log.append(&msg);
                out.elsewhere.push(committed);
                Some(replica::ref_of(id, msg.body_size()))
            } else if q.persistent_id().is_some() {
                stored
            } else {
                None
            };
            if !q.publish(msg.clone(), r) {
                out.refused = true;
            }
        }
        Ok(out)
    }

    /// Republishes a dead-lettered message through the dead-letter exchange,
    /// leaving out queues that would close a fully automatic cycle.
    pub fn dead_letter(&self, dlx: &str, d: DeadLetter, reason: Reason, stores: Option<&Arc<Stores>>) {
        let Some(x) = self.exchange(dlx) else {
            tracing::debug!("dead-letter exchange '{dlx}' does not exist; message dropped");
            return;
        };
        let mut targets = RouteTargets::new();
        for k in &d.routing_keys {
            self.route(&x, k, None, &mut targets);
        }
        dedup(&mut targets);
        if reason != Reason::Rejected {
            targets.retain(|q| {
                let cycle = deadletter::is_cycle(&d.msg, &q.name);
                if cycle {
                    tracing::warn!(
                        "message dropped: dead-lettering it to queue '{}' would close a cycle without a rejection",
                        q.name
                    );
                }
                !cycle
            });
        }
        // Nobody waits for the answers: a dead-lettered message has no
        // publisher to confirm to.
        if let Err(e) = self.deliver(targets, d.msg, stores) {
            tracing::error!("cannot dead-letter a message: {e}");
        }
    }

    /// The direct reply-to pseudo-queue with this name, if its channel is
    /// still there.
    pub fn reply_queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.reply_queues.read().get(name).cloned()
    }

    pub fn add_reply_queue(&self, q: Arc<Queue>) {
        self.reply_queues.write().insert(q.name.clone(), q);
    }

    pub fn remove_reply_queue(&self, name: &str) {
        self.reply_queues.write().remove(name);
    }
}

fn dedup(targets: &mut RouteTargets) {
    let mut i = 0;
    while i < targets.len() {
        if targets[..i].iter().any(|q| Arc::ptr_eq(q, &targets[i])) {
            targets.remove(i);
        } else {
            i += 1;
        }
    }
}
