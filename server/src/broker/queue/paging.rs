//! The queue shell's [`Pager`]: where the bodies of ready messages beyond a
//! queue's memory budget go. A persistent message of a durable queue is
//! already in the message store, so paging it out only forgets its body; any
//! other message is written to the paging store, and read back (and its
//! place there released) when the queue drains down to it.

use std::sync::Arc;

use super::ready::{Paged, Pager, QueuedMessage};
use super::replica::{ReplicaLog, id_of, is_replica_ref};
use crate::broker::message::Message;
use crate::store::Stores;
use crate::store::messages::StoredMessage;

/// Paging over the node's stores, for one queue.
pub(super) struct StorePager<'a> {
    pub stores: Option<&'a Arc<Stores>>,
    /// The queue's id in the persistent store (a durable queue).
    pub store_id: Option<u32>,
    /// A replicated queue's log, which holds its messages (led here).
    pub replica: Option<Arc<dyn ReplicaLog>>,
    pub queue: &'a str,
}

impl Pager for StorePager<'_> {
    fn page_out(&self, m: &QueuedMessage) -> Option<Paged> {
        if let (Some(log), Some(r)) = (&self.replica, m.stored.filter(|r| is_replica_ref(*r))) {
            // Its log keeps the body once it is committed; until then it
            // stays in memory.
            return log.read(id_of(r)).map(|_| Paged {
                r,
                persistent: true,
                redelivered: m.redelivered,
                expires: m.expires,
            });
        }
        if let Some(r) = m.stored {
            return Some(Paged { r, persistent: true, redelivered: m.redelivered, expires: m.expires });
        }
        let stores = self.stores?;
        let msg = &m.msg;
        let sm = StoredMessage {
            exchange: &msg.exchange,
            routing_key: &msg.routing_key,
            properties: &msg.properties,
            body: &msg.body,
        };
        match stores.paging.append(&sm, &[0]) {
            Ok(r) => Some(Paged { r, persistent: false, redelivered: m.redelivered, expires: m.expires }),
            Err(e) => {
                tracing::error!("cannot page out a message of queue '{}': {e}", self.queue);
                None
            }
        }
    }

    fn page_in(&self, p: Paged, seq: u64) -> Option<QueuedMessage> {
        if let (Some(log), true) = (&self.replica, p.persistent && is_replica_ref(p.r)) {
            let Some(msg) = log.read(id_of(p.r)) else {
                tracing::error!("queue '{}': a message is missing from its log, dropping it", self.queue);
                return None;
            };
            return Some(QueuedMessage {
                seq,
                msg,
                redelivered: p.redelivered,
                stored: Some(p.r),
                expires: p.expires,
                deliveries: 0,
            });
        }
        let stores = self.stores?;
        let store = if p.persistent { &stores.persistent } else { &stores.paging };
        match store.read(p.r) {
            Ok(m) => {
                if !p.persistent {
                    stores.paging.ack(p.r, 0);
                }
                Some(QueuedMessage {
                    seq,
                    msg: Arc::new(Message::from_store(m)),
                    redelivered: p.redelivered,
                    stored: p.persistent.then_some(p.r),
                    expires: p.expires,
                    deliveries: 0,
                })
            }
            Err(e) => {
                tracing::error!("queue '{}': cannot read a paged message back, dropping it: {e}", self.queue);
                self.release(p);
                None
            }
        }
    }

    fn release(&self, p: Paged) {
        if p.persistent && is_replica_ref(p.r) {
            if let Some(log) = &self.replica {
                log.remove(id_of(p.r));
            }
            return;
        }
        let Some(stores) = self.stores else { return };
        if p.persistent {
            if let Some(id) = self.store_id {
                stores.persistent.ack(p.r, id);
            }
        } else {
            stores.paging.ack(p.r, 0);
        }
    }
}
