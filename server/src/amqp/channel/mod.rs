//! One AMQP channel: its method handlers and its state (content being
//! assembled, consumers, prefetch, the unacked log, confirm and tx modes).
//! `Channel::dispatch` sends each method to its handler, in the submodule
//! that owns it: `declare` (exchanges, queues, bindings), `publish`,
//! `consume` (qos, consume, cancel, get), `settle` (acks, recover,
//! transactions), `confirms` (publisher confirms); `channel.flow` and
//! `access.request` are handled here.
//!
//! Channels are owned by their connection task, so nothing here is shared
//! or locked; what queues need to see (a consumer's credit, the channel's
//! flow state) lives in `Consumer` and `ChannelFlow`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use amq_protocol::protocol::{AMQPClass, access, basic, channel, confirm, exchange, queue, tx};
use amq_protocol::types::{FieldTable, ShortString};

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;

mod confirms;
mod consume;
mod declare;
mod publish;
mod settle;

use confirms::Confirms;
pub use confirms::{Confirm, ConfirmFrames};

use super::codec::PublishMethod;
use super::session::{Ctx, Session};
use super::unacked::{Unacked, UnackedLog};
use crate::broker::Applied;
use crate::broker::auth::Access;
use crate::broker::connections::ChannelStats;
use crate::broker::consumer::{ChannelFlow, Consumer, Outbound};
use crate::broker::deadletter;
use crate::broker::error::{BrokerError, Result, rs};
use crate::broker::exchange::{DestKind, Exchange};
use crate::broker::message::Message;
use crate::broker::props::PropsView;
use crate::broker::publish::{Delivered, REPLY_TO};
use crate::broker::queue::{Queue, QueuedMessage};
use crate::broker::vhost::check_exclusive;
use crate::definitions::{DefinitionCommand, ExchangeType};

/// RabbitMQ refuses any content header announcing more than this.
const MAX_BODY_SIZE: u64 = 512 * 1024 * 1024;
/// A basic.publish whose content is still arriving.
struct Publishing {
    method: PublishMethod,
    /// The encoded properties and the announced body size.
    header: Option<(Bytes, u64)>,
    body: BytesMut,
    first: Option<Bytes>,
    received: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Settle {
    Ack,
    Requeue,
    Discard,
}

struct TxPublish {
    exchange: Arc<Exchange>,
    msg: Arc<Message>,
    headers: Option<FieldTable>,
    mandatory: bool,
}

#[derive(Default)]
struct Tx {
    publishes: Vec<TxPublish>,
    settles: Vec<(Settle, Unacked)>,
}

pub struct Channel {
    pub id: u16,
    /// Unique over the node's life, unlike `id`, which clients reuse.
    pub instance: u64,
    /// We sent channel.close and wait for close-ok; everything else is
    /// dropped meanwhile.
    pub closing: bool,
    publishing: Option<Publishing>,
    confirms: Option<Confirms>,
    tx: Option<Tx>,
    consumers: FxHashMap<ShortString, (Arc<Consumer>, Arc<Queue>)>,
    pub flow: Arc<ChannelFlow>,
    /// Prefetch given to consumers created from now on (basic.qos global=false).
    prefetch: u32,
    unacked: UnackedLog,
    next_tag: u64,
    most_recent_queue: Option<String>,
    granted: Vec<(Access, Arc<str>)>,
    /// The direct reply-to pseudo-queue of this channel's reply consumer.
    reply_queue: Option<Arc<Queue>>,
    pub stats: Arc<ChannelStats>,
}

fn method_ids(m: &AMQPClass) -> (u16, u16) {
    (m.get_amqp_class_id(), m.get_amqp_method_id())
}

/// A server-generated name: `prefix` + 22 characters of URL-safe base64.
pub fn generated_name(prefix: &str) -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    format!("{prefix}-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn strip_cr_lf(s: &str) -> String {
    s.replace(['\r', '\n'], "")
}

impl Channel {
    pub fn new(id: u16, instance: u64) -> Self {
        Channel {
            id,
            instance,
            closing: false,
            publishing: None,
            confirms: None,
            tx: None,
            consumers: FxHashMap::default(),
            flow: Arc::new(ChannelFlow::default()),
            prefetch: 0,
            unacked: UnackedLog::default(),
            next_tag: 1,
            most_recent_queue: None,
            granted: Vec::new(),
            reply_queue: None,
            stats: Arc::new(ChannelStats { number: id, ..Default::default() }),
        }
    }

    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    pub fn unacked_count(&self) -> usize {
        self.unacked.len()
    }

    pub fn is_consumer(&self, c: &Arc<Consumer>) -> bool {
        self.consumers.get(&c.tag).is_some_and(|(x, _)| Arc::ptr_eq(x, c))
    }

    pub fn consumer_queues(&self) -> impl Iterator<Item = &Arc<Queue>> {
        self.consumers.values().map(|(_, q)| q)
    }

    /// Removes a consumer the broker cancelled (its queue went away).
    pub fn forget_consumer(&mut self, c: &Arc<Consumer>) -> bool {
        if self.is_consumer(c) {
            self.consumers.remove(&c.tag);
            true
        } else {
            false
        }
    }

    /// Publishes the channel's counts for the management side.
    fn note_counts(&self) {
        self.stats.unacked.store(self.unacked.len() as u32, Ordering::Relaxed);
        self.stats.consumer_count.store(self.consumers.len() as u32, Ordering::Relaxed);
    }

    // ----- permissions -------------------------------------------------

    fn check(&mut self, s: &Session, access: Access, kind: &str, name: &str) -> Result<()> {
        let name = crate::broker::auth::permission_name(kind, name);
        if self.granted.iter().any(|(a, n)| *a == access && n.as_ref() == name) {
            return Ok(());
        }
        if s.broker.auth.check(&s.vhost.name, &s.user.name, access, name) {
            // Like RabbitMQ, remember recent grants for the channel's life.
            if self.granted.len() >= 16 {
                self.granted.remove(0);
            }
            self.granted.push((access, name.into()));
            return Ok(());
        }
        Err(BrokerError::access_refused(format!(
            "access to {} refused for user '{}'",
            rs(kind, name, &s.vhost.name),
            s.user.name
        )))
    }

    /// Passive declares need any one of the three permissions.
    fn check_any(&mut self, s: &Session, kind: &str, name: &str) -> Result<()> {
        for a in [Access::Configure, Access::Write, Access::Read] {
            if self.check(s, a, kind, name).is_ok() {
                return Ok(());
            }
        }
        self.check(s, Access::Configure, kind, name)
    }

    fn queue_name(&self, name: &str) -> Result<String> {
        if name.is_empty() {
            return self
                .most_recent_queue
                .clone()
                .ok_or_else(|| BrokerError::not_found("no previously declared queue"));
        }
        Ok(strip_cr_lf(name))
    }

    // ----- dispatch ------------------------------------------------------

    /// Handles one method for this (open) channel. Errors are returned for
    /// the connection to turn into a channel or connection close.
    pub async fn handle(&mut self, ctx: &mut Ctx<'_>, m: AMQPClass) -> Result<(), (BrokerError, u16, u16)> {
        let ids = method_ids(&m);
        if self.publishing.is_some() {
            return Err((
                BrokerError::unexpected_frame(
                    "expected content header for class 60, got non content header frame instead",
                ),
                ids.0,
                ids.1,
            ));
        }
        self.dispatch(ctx, m).await.map_err(|e| (e, ids.0, ids.1))
    }

    async fn dispatch(&mut self, ctx: &mut Ctx<'_>, m: AMQPClass) -> Result<()> {
        use AMQPClass as C;
        match m {
            C::Basic(basic::AMQPMethod::Ack(a)) => self.basic_ack(ctx, a),
            C::Basic(basic::AMQPMethod::Nack(n)) => self.basic_nack(ctx, n),
            C::Basic(basic::AMQPMethod::Reject(r)) => self.basic_reject(ctx, r),
            C::Basic(basic::AMQPMethod::Qos(q)) => self.basic_qos(ctx, q),
            C::Basic(basic::AMQPMethod::Consume(c)) => self.basic_consume(ctx, c).await,
            C::Basic(basic::AMQPMethod::Cancel(c)) => self.basic_cancel(ctx, c).await,
            C::Basic(basic::AMQPMethod::Get(g)) => self.basic_get(ctx, g).await,
            C::Basic(basic::AMQPMethod::Recover(r)) => self.basic_recover(ctx, r),
            C::Basic(basic::AMQPMethod::RecoverAsync(r)) => self.recover(ctx, r.requeue),
            C::Exchange(exchange::AMQPMethod::Declare(d)) => self.exchange_declare(ctx, d).await,
            C::Exchange(exchange::AMQPMethod::Delete(d)) => self.exchange_delete(ctx, d).await,
            C::Exchange(exchange::AMQPMethod::Bind(b)) => self.exchange_bind(ctx, b).await,
            C::Exchange(exchange::AMQPMethod::Unbind(b)) => self.exchange_unbind(ctx, b).await,
            C::Queue(queue::AMQPMethod::Declare(d)) => self.queue_declare(ctx, d).await,
            C::Queue(queue::AMQPMethod::Bind(b)) => self.queue_bind(ctx, b).await,
            C::Queue(queue::AMQPMethod::Unbind(b)) => self.queue_unbind(ctx, b).await,
            C::Queue(queue::AMQPMethod::Purge(p)) => self.queue_purge(ctx, p).await,
            C::Queue(queue::AMQPMethod::Delete(d)) => self.queue_delete(ctx, d).await,
            C::Tx(tx::AMQPMethod::Select(_)) => self.tx_select(ctx),
            C::Tx(tx::AMQPMethod::Commit(_)) => self.tx_commit(ctx).await,
            C::Tx(tx::AMQPMethod::Rollback(_)) => self.tx_rollback(ctx),
            C::Confirm(confirm::AMQPMethod::Select(s)) => self.confirm_select(ctx, s),
            C::Channel(channel::AMQPMethod::Flow(f)) => self.channel_flow(ctx, f),
            C::Channel(channel::AMQPMethod::Open(_)) => {
                Err(BrokerError::channel_error("second 'channel.open' seen"))
            }
            C::Access(access::AMQPMethod::Request(_)) => self.access_request(ctx),
            _ => Err(BrokerError::command_invalid("unimplemented method")),
        }
    }

    // ----- channel and access classes -------------------------------------

    /// `active=false` pauses deliveries (RabbitMQ refuses it); `true`
    /// resumes them.
    fn channel_flow(&mut self, ctx: &mut Ctx<'_>, f: channel::Flow) -> Result<()> {
        self.flow.active.store(f.active, Ordering::Relaxed);
        if f.active {
            ctx.kick.extend(self.consumers.values().map(|(_, q)| q.clone()));
        }
        let ok = channel::FlowOk { active: f.active };
        ctx.reply(self.id, AMQPClass::Channel(channel::AMQPMethod::FlowOk(ok)));
        Ok(())
    }

    /// access.request is obsolete; it is answered and changes nothing.
    fn access_request(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        ctx.reply(self.id, AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})));
        Ok(())
    }
}
