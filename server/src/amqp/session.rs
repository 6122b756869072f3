//! What the channels of one open connection share, and the context a
//! channel's handler works in.

use std::sync::Arc;

use amq_protocol::protocol::AMQPClass;

use super::codec::FrameWriter;
use crate::broker::Broker;
use crate::broker::connections::ConnectionInfo;
use crate::broker::consumer::Outbox;
use crate::broker::queue::Queue;
use crate::broker::vhost::VHost;
use crate::definitions::User;

/// The client's capabilities that change what we send.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientCaps {
    pub consumer_cancel_notify: bool,
    pub connection_blocked: bool,
}

pub struct Session {
    pub broker: Arc<Broker>,
    pub vhost: Arc<VHost>,
    pub user: Arc<User>,
    pub conn_id: u64,
    pub outbox: Arc<Outbox>,
    pub info: Arc<ConnectionInfo>,
    pub caps: ClientCaps,
}

/// Passed to channel handlers: the session, the write buffer and the
/// connection's lists of follow-up work.
pub struct Ctx<'a> {
    pub s: &'a Session,
    pub out: &'a mut FrameWriter,
    /// Exclusive queues this connection declared, deleted when it closes.
    pub exclusive_queues: &'a mut Vec<String>,
    /// Queues to ask for a dispatch once the current batch of frames is
    /// handled (credit was released).
    pub kick: &'a mut Vec<Arc<Queue>>,
    /// Auto-delete queues whose last consumer left.
    pub auto_deletes: &'a mut Vec<Arc<Queue>>,
    /// Channels with confirms to send at the end of the batch.
    pub confirms: &'a mut Vec<u16>,
}

impl Ctx<'_> {
    pub fn reply(&mut self, channel: u16, m: AMQPClass) {
        self.out.method(channel, &m);
    }

    pub fn auto_delete(&mut self, q: Arc<Queue>) {
        self.auto_deletes.push(q);
    }

    pub fn confirm_dirty(&mut self, channel: u16) {
        if !self.confirms.contains(&channel) {
            self.confirms.push(channel);
        }
    }
}
