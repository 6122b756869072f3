//! Consuming on a channel: prefetch, consumers, basic.get, and writing the
//! deliveries queues hand over.

use super::*;
use crate::broker::consumer::ConsumerSpec;

impl Channel {
    // ----- consuming -------------------------------------------------------------

    pub(super) fn basic_qos(&mut self, ctx: &mut Ctx<'_>, q: basic::Qos) -> Result<()> {
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

    pub(super) async fn basic_consume(&mut self, ctx: &mut Ctx<'_>, c: basic::Consume) -> Result<()> {
        let s = ctx.s;
        let tag: ShortString = if c.consumer_tag.as_str().is_empty() {
            generated_name("amq.ctag").into()
        } else {
            c.consumer_tag.clone()
        };
        if self.consumers.contains_key(&tag) {
            return Err(BrokerError::not_allowed(format!("attempt to reuse consumer tag '{tag}'")));
        }
        if c.queue.as_str() == REPLY_TO {
            return self.consume_replies(ctx, tag, c.no_ack, c.nowait);
        }
        let name = self.queue_name(c.queue.as_str())?;
        self.check(s, Access::Read, "queue", &name)?;
        let q = s.vhost.queue_or_404(&name)?;
        check_exclusive(&q, Some(s.conn_id), &s.vhost.name)?;
        crate::broker::args::validate_consumer_args(&c.arguments, &name, &s.vhost.name)?;
        let priority =
            c.arguments.inner().get("x-priority").and_then(crate::broker::args::as_int).unwrap_or(0) as i32;
        let consumer = Arc::new(Consumer::new(ConsumerSpec {
            tag: tag.clone(),
            channel: self.id,
            connection_id: s.conn_id,
            outbox: s.outbox.clone(),
            flow: self.flow.clone(),
            no_ack: c.no_ack,
            exclusive: c.exclusive,
            prefetch: self.prefetch,
            arguments: c.arguments,
            priority,
        }));
        // The queue may hand over messages at once, but they wait in this
        // connection's outbox, which is written after this reply: consume-ok
        // always reaches the client before the first delivery.
        q.consume(&consumer).await?;
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

    /// Direct reply-to: a no-ack consumer on `amq.rabbitmq.reply-to` gets
    /// its own pseudo-queue; publishes from this channel with that reply-to
    /// are rewritten to name it, and replies routed to the name reach it.
    fn consume_replies(
        &mut self,
        ctx: &mut Ctx<'_>,
        tag: ShortString,
        no_ack: bool,
        nowait: bool,
    ) -> Result<()> {
        if !no_ack {
            return Err(BrokerError::precondition_failed("reply consumer cannot acknowledge"));
        }
        if self.reply_queue.is_some() {
            return Err(BrokerError::precondition_failed("reply consumer already set"));
        }
        let s = ctx.s;
        // RabbitMQ's form: the prefix, a dot, and an opaque token.
        let name = format!("{REPLY_TO}.{}", &generated_name("x")[2..]);
        let q = s.vhost.new_reply_queue(&name, s.conn_id);
        let consumer = Arc::new(Consumer::new(ConsumerSpec {
            tag: tag.clone(),
            channel: self.id,
            connection_id: s.conn_id,
            outbox: s.outbox.clone(),
            flow: self.flow.clone(),
            no_ack: true,
            exclusive: false,
            prefetch: 0,
            arguments: FieldTable::default(),
            priority: 0,
        }));
        let _ = q.add_consumer(consumer.clone());
        self.consumers.insert(tag.clone(), (consumer, q.clone()));
        self.reply_queue = Some(q);
        self.note_counts();
        if !nowait {
            ctx.reply(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk { consumer_tag: tag })),
            );
        }
        Ok(())
    }

    /// Detaches a consumer; the reply-to pseudo-queue goes with its consumer.
    pub(super) fn drop_consumer(&mut self, ctx: &mut Ctx<'_>, consumer: Arc<Consumer>, q: Arc<Queue>) {
        if self.reply_queue.as_ref().is_some_and(|r| Arc::ptr_eq(r, &q)) {
            ctx.s.vhost.remove_reply_queue(&q.name);
            q.delete();
            self.reply_queue = None;
            return;
        }
        if q.remove_consumer(&consumer) {
            ctx.auto_delete(q);
        }
    }

    pub(super) async fn basic_cancel(&mut self, ctx: &mut Ctx<'_>, c: basic::Cancel) -> Result<()> {
        if let Some((consumer, q)) = self.consumers.remove(&c.consumer_tag) {
            self.drop_consumer(ctx, consumer, q);
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

    pub(super) async fn basic_get(&mut self, ctx: &mut Ctx<'_>, g: basic::Get) -> Result<()> {
        let s = ctx.s;
        let name = self.queue_name(g.queue.as_str())?;
        self.check(s, Access::Read, "queue", &name)?;
        let q = s.vhost.queue_or_404(&name)?;
        check_exclusive(&q, Some(s.conn_id), &s.vhost.name)?;
        let got = q.get(g.no_ack).await?;
        match got {
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
        ctx.out.deliver(
            self.id,
            consumer.tag.as_str(),
            tag,
            m.redelivered,
            &m.msg.exchange,
            &m.msg.routing_key,
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
}
