//! One AMQP channel: its method handlers and its state (content being
//! assembled, consumers, prefetch, the unacked log, confirm and tx modes).
//!
//! Channels are owned by their connection task, so nothing here is shared
//! or locked; what queues need to see (a consumer's credit, the channel's
//! flow state) lives in `Consumer` and `ChannelFlow`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, confirm, exchange, queue, tx};
use amq_protocol::types::{FieldTable, ShortString};
use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::session::{Ctx, Session};
use super::unacked::{Unacked, UnackedLog};
use crate::broker::auth::Access;
use crate::broker::connections::ChannelStats;
use crate::broker::consumer::{ChannelFlow, Consumer};
use crate::broker::error::{BrokerError, Result, rs};
use crate::broker::exchange::{Exchange, ExchangeType, RouteTargets};
use crate::broker::message::Message;
use crate::broker::queue::{ConsumeRefusal, Queue, QueuedMessage};
use crate::broker::vhost::check_exclusive;
use crate::broker::{Applied, DefinitionCommand};
use crate::store::messages::StoredMessage;

/// RabbitMQ refuses any content header announcing more than this.
const MAX_BODY_SIZE: u64 = 512 * 1024 * 1024;

/// A basic.publish whose content is still arriving.
struct Publishing {
    method: basic::Publish,
    header: Option<(BasicProperties, Bytes, u64)>,
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

/// Publisher confirms. Transient messages are confirmed as soon as they
/// are routed; persistent ones routed to durable queues only once the store
/// has them on disk. Acks go out as "everything up to N" (multiple), so a
/// confirm waits behind an older one still waiting for the disk.
struct Confirms {
    next_seq: u64,
    /// Sequence numbers waiting for the disk, oldest first.
    pending: VecDeque<u64>,
    /// The highest sequence number acked (or nacked) to the client.
    acked: u64,
    /// Everything up to this must be nacked: the store failed to write it.
    /// Nacking is coarse (multiple), which may nack a transient message
    /// that did get routed; the publisher then sends it again.
    failed_upto: u64,
    /// The newest sequence number that needs the disk and whose durability
    /// has not been asked for yet (asked once per batch of frames).
    want_durable: Option<u64>,
}

impl Confirms {
    /// Everything up to this is confirmed.
    fn confirmed_upto(&self) -> u64 {
        self.pending.front().map_or(self.next_seq - 1, |p| p - 1)
    }
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
            C::Basic(basic::AMQPMethod::Publish(p)) => self.basic_publish(p),
            C::Basic(basic::AMQPMethod::Ack(a)) => self.basic_ack(ctx, a.delivery_tag, a.multiple),
            C::Basic(basic::AMQPMethod::Nack(n)) => {
                let op = if n.requeue { Settle::Requeue } else { Settle::Discard };
                self.settle(ctx, n.delivery_tag, n.multiple, op)
            }
            C::Basic(basic::AMQPMethod::Reject(r)) => {
                let op = if r.requeue { Settle::Requeue } else { Settle::Discard };
                self.settle(ctx, r.delivery_tag, false, op)
            }
            C::Basic(basic::AMQPMethod::Qos(q)) => self.basic_qos(ctx, q),
            C::Basic(basic::AMQPMethod::Consume(c)) => self.basic_consume(ctx, c).await,
            C::Basic(basic::AMQPMethod::Cancel(c)) => self.basic_cancel(ctx, c).await,
            C::Basic(basic::AMQPMethod::Get(g)) => self.basic_get(ctx, g),
            C::Basic(basic::AMQPMethod::Recover(r)) => {
                self.recover(ctx, r.requeue)?;
                ctx.reply(self.id, C::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})));
                Ok(())
            }
            C::Basic(basic::AMQPMethod::RecoverAsync(r)) => self.recover(ctx, r.requeue),
            C::Exchange(exchange::AMQPMethod::Declare(d)) => self.exchange_declare(ctx, d).await,
            C::Exchange(exchange::AMQPMethod::Delete(d)) => self.exchange_delete(ctx, d).await,
            C::Exchange(exchange::AMQPMethod::Bind(b)) => {
                let nowait = b.nowait;
                self.bind(
                    ctx,
                    true,
                    "exchange",
                    b.destination.as_str(),
                    b.source.as_str(),
                    b.routing_key.as_str(),
                    b.arguments,
                )
                .await?;
                if !nowait {
                    ctx.reply(self.id, C::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})));
                }
                Ok(())
            }
            C::Exchange(exchange::AMQPMethod::Unbind(b)) => {
                let nowait = b.nowait;
                self.bind(
                    ctx,
                    false,
                    "exchange",
                    b.destination.as_str(),
                    b.source.as_str(),
                    b.routing_key.as_str(),
                    b.arguments,
                )
                .await?;
                if !nowait {
                    ctx.reply(self.id, C::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})));
                }
                Ok(())
            }
            C::Queue(queue::AMQPMethod::Declare(d)) => self.queue_declare(ctx, d).await,
            C::Queue(queue::AMQPMethod::Bind(b)) => {
                let nowait = b.nowait;
                let q = self.queue_name(b.queue.as_str())?;
                let key = if b.queue.as_str().is_empty() && b.routing_key.as_str().is_empty() {
                    q.clone()
                } else {
                    b.routing_key.as_str().to_owned()
                };
                self.bind(ctx, true, "queue", &q, b.exchange.as_str(), &key, b.arguments).await?;
                if !nowait {
                    ctx.reply(self.id, C::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})));
                }
                Ok(())
            }
            C::Queue(queue::AMQPMethod::Unbind(b)) => {
                let q = self.queue_name(b.queue.as_str())?;
                let key = if b.queue.as_str().is_empty() && b.routing_key.as_str().is_empty() {
                    q.clone()
                } else {
                    b.routing_key.as_str().to_owned()
                };
                self.bind(ctx, false, "queue", &q, b.exchange.as_str(), &key, b.arguments).await?;
                ctx.reply(self.id, C::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})));
                Ok(())
            }
            C::Queue(queue::AMQPMethod::Purge(p)) => self.queue_purge(ctx, p),
            C::Queue(queue::AMQPMethod::Delete(d)) => self.queue_delete(ctx, d).await,
            C::Tx(tx::AMQPMethod::Select(_)) => {
                if self.confirms.is_some() {
                    return Err(BrokerError::precondition_failed("cannot switch from confirm to tx mode"));
                }
                if self.tx.is_none() {
                    self.tx = Some(Tx::default());
                    self.stats.transactional.store(true, Ordering::Relaxed);
                }
                ctx.reply(self.id, C::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})));
                Ok(())
            }
            C::Tx(tx::AMQPMethod::Commit(_)) => self.tx_commit(ctx).await,
            C::Tx(tx::AMQPMethod::Rollback(_)) => {
                let Some(t) = self.tx.as_mut() else {
                    return Err(BrokerError::precondition_failed("channel is not transactional"));
                };
                let t = std::mem::take(t);
                self.unacked.restore(t.settles.into_iter().map(|(_, u)| u).collect());
                ctx.reply(self.id, C::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})));
                Ok(())
            }
            C::Confirm(confirm::AMQPMethod::Select(s)) => {
                if self.tx.is_some() {
                    return Err(BrokerError::precondition_failed("cannot switch from tx to confirm mode"));
                }
                if self.confirms.is_none() {
                    self.confirms = Some(Confirms {
                        next_seq: 1,
                        pending: VecDeque::new(),
                        acked: 0,
                        failed_upto: 0,
                        want_durable: None,
                    });
                    self.stats.confirm.store(true, Ordering::Relaxed);
                }
                if !s.nowait {
                    ctx.reply(self.id, C::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})));
                }
                Ok(())
            }
            C::Channel(amq_protocol::protocol::channel::AMQPMethod::Flow(f)) => {
                self.flow.active.store(f.active, Ordering::Relaxed);
                if f.active {
                    ctx.kick.extend(self.consumers.values().map(|(_, q)| q.clone()));
                }
                ctx.reply(
                    self.id,
                    C::Channel(amq_protocol::protocol::channel::AMQPMethod::FlowOk(
                        amq_protocol::protocol::channel::FlowOk { active: f.active },
                    )),
                );
                Ok(())
            }
            C::Channel(amq_protocol::protocol::channel::AMQPMethod::Open(_)) => {
                Err(BrokerError::channel_error("second 'channel.open' seen"))
            }
            C::Access(amq_protocol::protocol::access::AMQPMethod::Request(_)) => {
                ctx.reply(
                    self.id,
                    C::Access(amq_protocol::protocol::access::AMQPMethod::RequestOk(
                        amq_protocol::protocol::access::RequestOk {},
                    )),
                );
                Ok(())
            }
            _ => Err(BrokerError::command_invalid("unimplemented method")),
        }
    }

    // ----- content assembly ------------------------------------------------

    fn basic_publish(&mut self, p: basic::Publish) -> Result<()> {
        if p.immediate {
            return Err(BrokerError::not_implemented("immediate=true"));
        }
        self.publishing =
            Some(Publishing { method: p, header: None, body: BytesMut::new(), first: None, received: 0 });
        Ok(())
    }

    /// A content header frame arrived for this channel.
    pub fn on_header(
        &mut self,
        ctx: &mut Ctx<'_>,
        class_id: u16,
        body_size: u64,
        properties: BasicProperties,
        raw: Bytes,
    ) -> Result<(), (BrokerError, u16, u16)> {
        let Some(p) = self.publishing.as_mut().filter(|p| p.header.is_none()) else {
            return Err((
                BrokerError::unexpected_frame("expected method frame, got non method frame instead"),
                0,
                0,
            ));
        };
        if class_id != 60 {
            return Err((
                BrokerError::unexpected_frame(format!(
                    "expected content header for class 60, got one for class {class_id} instead"
                )),
                60,
                40,
            ));
        }
        if body_size > MAX_BODY_SIZE {
            return Err((
                BrokerError::frame_error(format!(
                    "content body size {body_size} exceeds maximum allowed size {MAX_BODY_SIZE}"
                )),
                60,
                40,
            ));
        }
        p.header = Some((properties, raw, body_size));
        if body_size == 0 {
            return self.complete_publish(ctx).map_err(|e| (e, 60, 40));
        }
        Ok(())
    }

    /// A content body frame arrived for this channel.
    pub fn on_body(&mut self, ctx: &mut Ctx<'_>, chunk: Bytes) -> Result<(), (BrokerError, u16, u16)> {
        let max = ctx.s.broker.config.max_message_size as u64;
        let Some(p) = self.publishing.as_mut().filter(|p| p.header.is_some()) else {
            return Err((
                BrokerError::unexpected_frame("expected method frame, got non method frame instead"),
                0,
                0,
            ));
        };
        let size = p.header.as_ref().map_or(0, |h| h.2);
        if p.received + chunk.len() as u64 > size {
            return Err((
                BrokerError::frame_error("content body frame exceeds remaining content size"),
                60,
                40,
            ));
        }
        p.received += chunk.len() as u64;
        // An oversized body is read and dropped as it comes; the publish is
        // refused once it is complete, as RabbitMQ does.
        if size <= max {
            if p.first.is_none() && p.body.is_empty() {
                p.first = Some(chunk);
            } else {
                if let Some(first) = p.first.take() {
                    p.body.reserve(size as usize);
                    p.body.extend_from_slice(&first);
                }
                p.body.extend_from_slice(&chunk);
            }
        }
        if p.received == size {
            return self.complete_publish(ctx).map_err(|e| (e, 60, 40));
        }
        Ok(())
    }

    fn complete_publish(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        let p = self.publishing.take().expect("publishing in progress");
        let (props, raw_props, size) = p.header.expect("header received");
        let s = ctx.s;
        let max = s.broker.config.max_message_size;
        if size as usize > max {
            return Err(BrokerError::precondition_failed(format!(
                "message size {size} is larger than configured max size {max}"
            )));
        }
        let body = p.first.unwrap_or_else(|| p.body.freeze());
        let xname = p.method.exchange.as_str();
        self.check(s, Access::Write, "exchange", xname)?;
        let x = s
            .vhost
            .exchange(xname)
            .ok_or_else(|| BrokerError::not_found(format!("no {}", rs("exchange", xname, &s.vhost.name))))?;
        if x.internal {
            return Err(BrokerError::access_refused(format!(
                "cannot publish to internal {}",
                rs("exchange", xname, &s.vhost.name)
            )));
        }
        if let Some(exp) = props.expiration() {
            let text = exp.as_str();
            if text.parse::<u64>().is_err() {
                return Err(BrokerError::precondition_failed(format!(
                    "invalid expiration '{text}': {{invalid_expiration,\"{text}\"}}"
                )));
            }
        }
        self.stats.publish.incr();
        let routing_key = p.method.routing_key.as_str();
        let msg = Arc::new(Message::from_wire(x.name.clone(), routing_key, &props, raw_props, body));
        let headers = props.headers().clone();
        let seq = self.confirms.as_mut().map(|c| {
            c.next_seq += 1;
            c.next_seq - 1
        });
        if let Some(tx) = self.tx.as_mut() {
            tx.publishes.push(TxPublish { exchange: x, msg, headers, mandatory: p.method.mandatory });
            return Ok(());
        }
        let stored = self.deliver(ctx, &x, msg, headers.as_ref(), p.method.mandatory)?;
        if let (Some(seq), Some(c)) = (seq, self.confirms.as_mut()) {
            if stored {
                c.pending.push_back(seq);
                c.want_durable = Some(seq);
            }
            ctx.confirm_dirty(self.id);
        }
        Ok(())
    }

    /// Routes a message into its queues; returns it to the publisher when
    /// it is mandatory and reaches none.
    /// Returns whether the message went to the persistent store, so that a
    /// confirm must wait for the disk.
    fn deliver(
        &mut self,
        ctx: &mut Ctx<'_>,
        x: &Arc<Exchange>,
        msg: Arc<Message>,
        headers: Option<&FieldTable>,
        mandatory: bool,
    ) -> Result<bool> {
        let mut targets = RouteTargets::new();
        ctx.s.vhost.route(x, &msg.routing_key, headers, &mut targets);
        x.stats.publish_in.incr();
        x.stats.publish_out.add(targets.len() as u64);
        if targets.is_empty() {
            if mandatory {
                self.stats.return_unroutable.incr();
                ctx.out.method(
                    self.id,
                    &AMQPClass::Basic(basic::AMQPMethod::Return(basic::Return {
                        reply_code: 312,
                        reply_text: "NO_ROUTE".into(),
                        exchange: x.name.as_ref().into(),
                        routing_key: msg.routing_key.as_ref().into(),
                    })),
                );
                ctx.out.content(self.id, &msg.properties, &msg.body);
            }
            return Ok(false);
        }
        let stored = match (&ctx.s.broker.stores, msg.persistent) {
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
                    let r = stores.persistent.append(&m, &ids).map_err(|e| {
                        BrokerError::internal(format!("cannot store a persistent message: {e}"))
                    })?;
                    Some(r)
                }
            }
            _ => None,
        };
        for q in targets {
            let r = if q.persistent_id().is_some() { stored } else { None };
            q.publish(msg.clone(), r);
        }
        Ok(stored.is_some())
    }

    /// The confirms to send now, in order: a nack for everything up to a
    /// failed write, then an ack for everything confirmed, each as
    /// (ack?, up to this sequence number, how many publishes).
    pub fn take_confirms(&mut self) -> SmallVec<[(bool, u64, u64); 2]> {
        let mut out = SmallVec::new();
        let Some(c) = self.confirms.as_mut() else { return out };
        if c.failed_upto > c.acked {
            out.push((false, c.failed_upto, c.failed_upto - c.acked));
            c.acked = c.failed_upto;
        }
        let upto = c.confirmed_upto();
        if upto > c.acked {
            out.push((true, upto, upto - c.acked));
            c.acked = upto;
        }
        out
    }

    /// The newest sequence number whose durability must now be asked of the
    /// store (once per batch).
    pub fn take_durable_request(&mut self) -> Option<u64> {
        self.confirms.as_mut()?.want_durable.take()
    }

    /// The store has everything up to `seq` on disk, or (`ok` false) could
    /// not write it: those publishes are nacked.
    pub fn durable(&mut self, seq: u64, ok: bool) {
        if let Some(c) = self.confirms.as_mut() {
            while c.pending.front().is_some_and(|p| *p <= seq) {
                c.pending.pop_front();
            }
            if !ok {
                c.failed_upto = c.failed_upto.max(seq);
            }
        }
    }

    pub fn awaiting_content(&self) -> bool {
        self.publishing.is_some()
    }

    // ----- exchanges ---------------------------------------------------------

    async fn exchange_declare(&mut self, ctx: &mut Ctx<'_>, d: exchange::Declare) -> Result<()> {
        let s = ctx.s;
        let name = strip_cr_lf(d.exchange.as_str());
        if d.passive {
            if name.is_empty() {
                return Err(BrokerError::access_refused("operation not permitted on the default exchange"));
            }
            self.check_any(s, "exchange", &name)?;
            if s.vhost.exchange(&name).is_none() {
                return Err(BrokerError::not_found(format!("no {}", rs("exchange", &name, &s.vhost.name))));
            }
        } else {
            let kind = ExchangeType::parse(d.kind.as_str())
                .ok_or_else(|| BrokerError::command_invalid(format!("unknown exchange type '{}'", d.kind)))?;
            if name.is_empty() {
                return Err(BrokerError::access_refused("operation not permitted on the default exchange"));
            }
            self.check(s, Access::Configure, "exchange", &name)?;
            if s.vhost.exchange(&name).is_none() && name.starts_with("amq.") {
                return Err(BrokerError::access_refused(format!(
                    "exchange name '{name}' contains reserved prefix 'amq.*'"
                )));
            }
            if let Some(ae) = crate::broker::args::as_str_arg(&d.arguments, "alternate-exchange") {
                if s.vhost.exchange(&name).is_none() {
                    self.check(s, Access::Read, "exchange", &name)?;
                    self.check(s, Access::Write, "exchange", &ae)?;
                }
            }
            s.broker
                .apply(DefinitionCommand::DeclareExchange {
                    vhost: s.vhost.name.to_string(),
                    name,
                    kind,
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: d.arguments,
                })
                .await?;
        }
        if !d.nowait {
            ctx.reply(self.id, AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})));
        }
        Ok(())
    }

    async fn exchange_delete(&mut self, ctx: &mut Ctx<'_>, d: exchange::Delete) -> Result<()> {
        let s = ctx.s;
        let name = strip_cr_lf(d.exchange.as_str());
        if name.is_empty() {
            return Err(BrokerError::access_refused("operation not permitted on the default exchange"));
        }
        if name.starts_with("amq.") {
            return Err(BrokerError::access_refused(format!(
                "deletion of system {} not allowed",
                rs("exchange", &name, &s.vhost.name)
            )));
        }
        self.check(s, Access::Configure, "exchange", &name)?;
        s.broker
            .apply(DefinitionCommand::DeleteExchange {
                vhost: s.vhost.name.to_string(),
                name,
                if_unused: d.if_unused,
            })
            .await?;
        if !d.nowait {
            ctx.reply(self.id, AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})));
        }
        Ok(())
    }

    /// queue.bind/unbind and exchange.bind/unbind, with RabbitMQ's checks:
    /// write on the destination, read on the source, never the default
    /// exchange.
    #[allow(clippy::too_many_arguments)]
    async fn bind(
        &mut self,
        ctx: &mut Ctx<'_>,
        add: bool,
        dest_kind: &str,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<()> {
        let s = ctx.s;
        let dest = strip_cr_lf(destination);
        let src = strip_cr_lf(source);
        self.check(s, Access::Write, dest_kind, &dest)?;
        if src.is_empty() || (dest_kind == "exchange" && dest.is_empty()) {
            return Err(BrokerError::access_refused("operation not permitted on the default exchange"));
        }
        self.check(s, Access::Read, "exchange", &src)?;
        let vhost = s.vhost.name.to_string();
        let (destination_kind, routing_key) = (dest_kind.to_owned(), routing_key.to_owned());
        let requester = Some(s.conn_id);
        let cmd = if add {
            DefinitionCommand::Bind {
                vhost,
                source: src,
                destination_kind,
                destination: dest,
                routing_key,
                arguments,
                requester,
            }
        } else {
            DefinitionCommand::Unbind {
                vhost,
                source: src,
                destination_kind,
                destination: dest,
                routing_key,
                arguments,
                requester,
            }
        };
        s.broker.apply(cmd).await?;
        Ok(())
    }

    // ----- queues --------------------------------------------------------------

    async fn queue_declare(&mut self, ctx: &mut Ctx<'_>, d: queue::Declare) -> Result<()> {
        let s = ctx.s;
        let vname = s.vhost.name.clone();
        let (queue, messages, consumers) = if d.passive {
            let name = self.queue_name(d.queue.as_str())?;
            self.check_any(s, "queue", &name)?;
            let q = s.vhost.queue_or_404(&name)?;
            check_exclusive(&q, Some(s.conn_id), &vname)?;
            let c = q.counts();
            (name, c.ready, c.consumers)
        } else {
            let given = strip_cr_lf(d.queue.as_str());
            let name = if given.is_empty() { generated_name("amq.gen") } else { given };
            self.check(s, Access::Configure, "queue", &name)?;
            let exists = s.vhost.queue(&name).is_some();
            if !exists && name.starts_with("amq.") && !d.queue.as_str().is_empty() {
                return Err(BrokerError::access_refused(format!(
                    "queue name '{name}' contains reserved prefix 'amq.*'"
                )));
            }
            if !exists {
                if let Some(dlx) = crate::broker::args::as_str_arg(&d.arguments, "x-dead-letter-exchange") {
                    self.check(s, Access::Read, "queue", &name)?;
                    self.check(s, Access::Write, "exchange", &dlx)?;
                }
            }
            let owner = d.exclusive.then_some(s.conn_id);
            let applied = s
                .broker
                .apply(DefinitionCommand::DeclareQueue {
                    vhost: vname.to_string(),
                    name: name.clone(),
                    durable: d.durable && !d.exclusive,
                    auto_delete: d.auto_delete,
                    exclusive_owner: owner,
                    arguments: d.arguments,
                })
                .await?;
            let Applied::Queue(declared) = applied else {
                return Err(BrokerError::internal("unexpected result of queue declaration"));
            };
            if declared.created && d.exclusive {
                ctx.exclusive_queues.push(name.clone());
            }
            let c = declared.queue.counts();
            (name, c.ready, c.consumers)
        };
        self.most_recent_queue = Some(queue.clone());
        if !d.nowait {
            ctx.reply(
                self.id,
                AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                    queue: queue.as_str().into(),
                    message_count: messages as u32,
                    consumer_count: consumers as u32,
                })),
            );
        }
        Ok(())
    }

    fn queue_purge(&mut self, ctx: &mut Ctx<'_>, p: queue::Purge) -> Result<()> {
        let s = ctx.s;
        let name = self.queue_name(p.queue.as_str())?;
        self.check(s, Access::Read, "queue", &name)?;
        let q = s.vhost.queue_or_404(&name)?;
        check_exclusive(&q, Some(s.conn_id), &s.vhost.name)?;
        let n = q.purge();
        if !p.nowait {
            ctx.reply(
                self.id,
                AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count: n as u32 })),
            );
        }
        Ok(())
    }

    async fn queue_delete(&mut self, ctx: &mut Ctx<'_>, d: queue::Delete) -> Result<()> {
        let s = ctx.s;
        let name = self.queue_name(d.queue.as_str())?;
        self.check(s, Access::Configure, "queue", &name)?;
        let applied = s
            .broker
            .apply(DefinitionCommand::DeleteQueue {
                vhost: s.vhost.name.to_string(),
                name: name.clone(),
                if_unused: d.if_unused,
                if_empty: d.if_empty,
                requester: Some(s.conn_id),
            })
            .await?;
        let n = match applied {
            Applied::QueueDeleted(_, n, _) => n,
            _ => 0,
        };
        ctx.exclusive_queues.retain(|q| q != &name);
        if !d.nowait {
            ctx.reply(
                self.id,
                AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: n as u32 })),
            );
        }
        Ok(())
    }

    // ----- consuming -------------------------------------------------------------

    fn basic_qos(&mut self, ctx: &mut Ctx<'_>, q: basic::Qos) -> Result<()> {
        // prefetch_size is not exposed by the codec (RabbitMQ refuses
        // anything but 0; clients send 0).
        let count = u32::from(q.prefetch_count);
        if q.global {
            self.flow.global_prefetch.store(count, Ordering::Relaxed);
            self.stats.global_prefetch_count.store(count, Ordering::Relaxed);
            ctx.kick.extend(self.consumers.values().map(|(_, q)| q.clone()));
        } else {
            self.prefetch = count;
            self.stats.prefetch_count.store(count, Ordering::Relaxed);
        }
        ctx.reply(self.id, AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})));
        Ok(())
    }

    async fn basic_consume(&mut self, ctx: &mut Ctx<'_>, c: basic::Consume) -> Result<()> {
        let s = ctx.s;
        let tag: ShortString = if c.consumer_tag.as_str().is_empty() {
            generated_name("amq.ctag").into()
        } else {
            c.consumer_tag.clone()
        };
        if self.consumers.contains_key(&tag) {
            return Err(BrokerError::not_allowed(format!("attempt to reuse consumer tag '{tag}'")));
        }
        let name = self.queue_name(c.queue.as_str())?;
        self.check(s, Access::Read, "queue", &name)?;
        let q = s.vhost.queue_or_404(&name)?;
        check_exclusive(&q, Some(s.conn_id), &s.vhost.name)?;
        crate::broker::args::validate_consumer_args(&c.arguments, &name, &s.vhost.name)?;
        let priority =
            c.arguments.inner().get("x-priority").and_then(crate::broker::args::as_int).unwrap_or(0) as i32;
        let consumer = Arc::new(Consumer::new(
            tag.clone(),
            self.id,
            s.conn_id,
            s.outbox.clone(),
            self.flow.clone(),
            c.no_ack,
            c.exclusive,
            self.prefetch,
            c.arguments,
            priority,
        ));
        // The queue may hand over messages at once, but they wait in this
        // connection's outbox, which is written after this reply: consume-ok
        // always reaches the client before the first delivery.
        if let Err(ConsumeRefusal::ExclusiveInUse) = q.add_consumer(consumer.clone()) {
            return Err(BrokerError::access_refused(format!(
                "{} in exclusive use",
                rs("queue", &name, &s.vhost.name)
            )));
        }
        self.consumers.insert(tag.clone(), (consumer, q));
        self.note_counts();
        if !c.nowait {
            ctx.reply(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk { consumer_tag: tag })),
            );
        }
        Ok(())
    }

    async fn basic_cancel(&mut self, ctx: &mut Ctx<'_>, c: basic::Cancel) -> Result<()> {
        if let Some((consumer, q)) = self.consumers.remove(&c.consumer_tag) {
            if q.remove_consumer(&consumer) {
                ctx.auto_delete(q);
            }
        }
        self.note_counts();
        if !c.nowait {
            ctx.reply(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                    consumer_tag: c.consumer_tag,
                })),
            );
        }
        Ok(())
    }

    fn basic_get(&mut self, ctx: &mut Ctx<'_>, g: basic::Get) -> Result<()> {
        let s = ctx.s;
        let name = self.queue_name(g.queue.as_str())?;
        self.check(s, Access::Read, "queue", &name)?;
        let q = s.vhost.queue_or_404(&name)?;
        check_exclusive(&q, Some(s.conn_id), &s.vhost.name)?;
        match q.get(g.no_ack) {
            None => ctx.reply(self.id, AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}))),
            Some((m, remaining)) => {
                let tag = self.next_tag;
                self.next_tag += 1;
                ctx.out.method(
                    self.id,
                    &AMQPClass::Basic(basic::AMQPMethod::GetOk(basic::GetOk {
                        delivery_tag: tag,
                        redelivered: m.redelivered,
                        exchange: m.msg.exchange.as_ref().into(),
                        routing_key: m.msg.routing_key.as_ref().into(),
                        message_count: remaining as u32,
                    })),
                );
                ctx.out.content(self.id, &m.msg.properties, &m.msg.body);
                if m.redelivered {
                    self.stats.redeliver.incr();
                }
                if g.no_ack {
                    self.stats.get_no_ack.incr();
                } else {
                    self.stats.get.incr();
                    self.unacked.push(Unacked { tag, queue: q, msg: m, consumer: None });
                    self.note_counts();
                }
            }
        }
        Ok(())
    }

    /// Writes a delivery handed over by a queue. Returns false when the
    /// consumer is no longer on this channel; the caller gives it back.
    pub fn write_delivery(
        &mut self,
        ctx: &mut Ctx<'_>,
        consumer: Arc<Consumer>,
        queue: Arc<Queue>,
        m: QueuedMessage,
    ) -> Result<(), (Arc<Consumer>, Arc<Queue>, QueuedMessage)> {
        if self.closing || !self.is_consumer(&consumer) {
            return Err((consumer, queue, m));
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        ctx.out.method(
            self.id,
            &AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: consumer.tag.clone(),
                delivery_tag: tag,
                redelivered: m.redelivered,
                exchange: m.msg.exchange.as_ref().into(),
                routing_key: m.msg.routing_key.as_ref().into(),
            })),
        );
        ctx.out.content(self.id, &m.msg.properties, &m.msg.body);
        if m.redelivered {
            self.stats.redeliver.incr();
        }
        if consumer.no_ack {
            self.stats.deliver_no_ack.incr();
            queue.delivered_no_ack(&m);
        } else {
            self.stats.deliver.incr();
            self.unacked.push(Unacked { tag, queue, msg: m, consumer: Some(consumer) });
            self.stats.unacked.store(self.unacked.len() as u32, Ordering::Relaxed);
        }
        Ok(())
    }

    // ----- settling ------------------------------------------------------------------

    fn basic_ack(&mut self, ctx: &mut Ctx<'_>, tag: u64, multiple: bool) -> Result<()> {
        self.settle(ctx, tag, multiple, Settle::Ack)
    }

    fn settle(&mut self, ctx: &mut Ctx<'_>, tag: u64, multiple: bool, op: Settle) -> Result<()> {
        let Some(entries) = self.unacked.take(tag, multiple) else {
            return Err(BrokerError::precondition_failed(format!("unknown delivery tag {tag}")));
        };
        self.note_counts();
        if op == Settle::Ack {
            self.stats.ack.add(entries.len() as u64);
        }
        if let Some(t) = self.tx.as_mut() {
            t.settles.extend(entries.into_iter().map(|u| (op, u)));
            return Ok(());
        }
        apply_settles(ctx, entries.into_iter().map(|u| (op, u)));
        self.kick_if_global(ctx);
        Ok(())
    }

    /// With a channel-wide prefetch, credit released by one queue's message
    /// may be used by a consumer of another queue on the channel.
    fn kick_if_global(&self, ctx: &mut Ctx<'_>) {
        if self.flow.global_prefetch.load(Ordering::Relaxed) > 0 {
            ctx.kick.extend(self.consumers.values().map(|(_, q)| q.clone()));
        }
    }

    fn recover(&mut self, ctx: &mut Ctx<'_>, requeue: bool) -> Result<()> {
        if !requeue {
            return Err(BrokerError::not_implemented("requeue=false"));
        }
        let entries = self.unacked.take_all();
        apply_settles(ctx, entries.into_iter().map(|u| (Settle::Requeue, u)));
        self.note_counts();
        self.kick_if_global(ctx);
        Ok(())
    }

    async fn tx_commit(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        let Some(t) = self.tx.as_mut() else {
            return Err(BrokerError::precondition_failed("channel is not transactional"));
        };
        let t = std::mem::take(t);
        let mut stored = false;
        for p in t.publishes {
            stored |= self.deliver(ctx, &p.exchange, p.msg, p.headers.as_ref(), p.mandatory)?;
        }
        apply_settles(ctx, t.settles.into_iter());
        self.kick_if_global(ctx);
        // commit-ok promises the persistent messages are on disk.
        if let (true, Some(stores)) = (stored, &ctx.s.broker.stores) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            stores.persistent.on_durable(Box::new(move || {
                let _ = tx.send(());
            }));
            let _ = rx.await;
        }
        ctx.reply(self.id, AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})));
        Ok(())
    }

    /// Releases everything the channel holds: consumers leave their queues
    /// (auto-delete queues may go), unacked messages are requeued in their
    /// original order. Called when the channel or its connection closes.
    pub fn release_all(&mut self, ctx: &mut Ctx<'_>) {
        for (_, (consumer, q)) in self.consumers.drain() {
            if q.remove_consumer(&consumer) {
                ctx.auto_delete(q);
            }
        }
        let mut entries = self.unacked.take_all();
        if let Some(t) = self.tx.take() {
            entries.extend(t.settles.into_iter().map(|(_, u)| u));
        }
        apply_settles(ctx, entries.into_iter().map(|u| (Settle::Requeue, u)));
        self.publishing = None;
    }
}

/// Settles entries with their queues, one call per queue, and releases the
/// consumers' credit.
fn apply_settles(ctx: &mut Ctx<'_>, entries: impl Iterator<Item = (Settle, Unacked)>) {
    let mut groups: Vec<(Settle, Arc<Queue>, Vec<QueuedMessage>)> = Vec::new();
    for (op, u) in entries {
        if let Some(c) = &u.consumer {
            c.release(1);
        }
        match groups.iter_mut().find(|(o, q, _)| *o == op && Arc::ptr_eq(q, &u.queue)) {
            Some((_, _, v)) => v.push(u.msg),
            None => groups.push((op, u.queue, vec![u.msg])),
        }
    }
    for (op, q, msgs) in groups {
        match op {
            Settle::Ack => q.settle(&msgs, true),
            Settle::Discard => q.settle(&msgs, false),
            Settle::Requeue => q.requeue(msgs),
        }
        ctx.kick.push(q);
    }
}
