//! Publishing on a channel: assembling content frames into a message,
//! routing it, and publisher confirms.

use super::*;

/// The most a message's body buffer reserves ahead of the bytes received.
const MAX_BODY_RESERVE: usize = 1024 * 1024;

impl Channel {
    // ----- content assembly ------------------------------------------------

    /// basic.publish: its content frames follow.
    pub fn on_publish(
        &mut self,
        _ctx: &mut Ctx<'_>,
        p: PublishMethod,
    ) -> Result<(), (BrokerError, u16, u16)> {
        if self.publishing.is_some() {
            return Err((
                BrokerError::unexpected_frame(
                    "expected content header for class 60, got non content header frame instead",
                ),
                60,
                40,
            ));
        }
        if p.immediate {
            return Err((BrokerError::not_implemented("immediate=true"), 60, 40));
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
        p.header = Some((raw, body_size));
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
        let size = p.header.as_ref().map_or(0, |h| h.1);
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
                    // Not the whole announced size at once: a header may
                    // announce max_message_size and the body never come,
                    // on every channel. Beyond this the buffer grows as
                    // bytes arrive.
                    p.body.reserve((size as usize).min(MAX_BODY_RESERVE));
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

    pub(super) fn complete_publish(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        let p = self.publishing.take().expect("publishing in progress");
        let (raw_props, size) = p.header.expect("header received");
        let s = ctx.s;
        let max = s.broker.config.max_message_size;
        if size as usize > max {
            return Err(BrokerError::precondition_failed(format!(
                "message size {size} is larger than configured max size {max}"
            )));
        }
        let body = p.first.unwrap_or_else(|| p.body.freeze());
        let xname = p.method.exchange();
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
        s.broker.auth.check_topic_access(
            &s.vhost.name,
            &s.user.name,
            &x,
            Access::Write,
            p.method.routing_key(),
        )?;
        // Checked well-formed when the header frame was read.
        let view = PropsView::scan(&raw_props).unwrap_or_default();
        let expiration = view.expiration_ms().map_err(|text| {
            BrokerError::precondition_failed(format!(
                "invalid expiration '{text}': {{invalid_expiration,\"{text}\"}}"
            ))
        })?;
        if let Some(uid) = view.user_id.filter(|u| *u != s.user.name) {
            return Err(BrokerError::precondition_failed(format!(
                "user_id property set to '{uid}' but authenticated user was '{}'",
                s.user.name
            )));
        }
        self.stats.publish.incr();
        let headers = if view.has_headers() { view.headers() } else { None };
        let routing_key = p.method.routing_key();
        let msg = if view.reply_to == Some(REPLY_TO) {
            // Direct reply-to: the pseudo name becomes this channel's queue.
            let Some(rq) = &self.reply_queue else {
                return Err(BrokerError::precondition_failed("fast reply consumer does not exist"));
            };
            let props = crate::broker::message::decode_properties(&raw_props)
                .unwrap_or_default()
                .with_reply_to(rq.name.as_ref().into());
            Message::new(x.name.clone(), routing_key, &props, body)
        } else {
            Message::from_wire(x.name.clone(), routing_key, &view, expiration, raw_props.clone(), body)
        };
        let msg = Arc::new(msg);
        let seq = self.confirms.as_mut().map(Confirms::next);
        if let Some(tx) = self.tx.as_mut() {
            tx.publishes.push(TxPublish { exchange: x, msg, headers, mandatory: p.method.mandatory });
            return Ok(());
        }
        let delivered = self.deliver(ctx, &x, msg, headers.as_ref(), p.method.mandatory)?;
        if let (Some(seq), Some(c)) = (seq, self.confirms.as_mut()) {
            if delivered.refused {
                c.refused(seq);
            } else if delivered.stored {
                c.stored(seq);
            }
            if !delivered.elsewhere.is_empty() {
                // Confirmed once every backend holding it has answered.
                c.forwarding(seq);
                let (outbox, channel, instance) = (ctx.s.outbox.clone(), self.id, self.instance);
                tokio::spawn(async move {
                    let mut ok = true;
                    for answer in delivered.elsewhere {
                        ok &= answer.await.unwrap_or(false);
                    }
                    outbox.push(Outbound::Forwarded { channel, instance, seq, ok });
                });
            }
            ctx.confirm_dirty(self.id);
        }
        Ok(())
    }

    /// Routes a message into its queues (the vhost's delivery path), and
    /// returns it to the publisher when it is mandatory and reaches none.
    pub(super) fn deliver(
        &mut self,
        ctx: &mut Ctx<'_>,
        x: &Arc<Exchange>,
        msg: Arc<Message>,
        headers: Option<&FieldTable>,
        mandatory: bool,
    ) -> Result<Delivered> {
        let vhost = &ctx.s.vhost;
        let targets = vhost.route_all(x, &msg, headers);
        x.stats.publish_in.incr();
        x.stats.publish_out.add(targets.len() as u64);
        if targets.is_empty() {
            if mandatory {
                self.return_unroutable(ctx, x, &msg);
            }
            return Ok(Delivered::default());
        }
        // BCC keys route, but the header never reaches a consumer.
        let msg = match headers.is_some_and(|h| h.contains_key("BCC")) {
            true => deadletter::strip_bcc(&msg).map(Arc::new).unwrap_or(msg),
            false => msg,
        };
        let delivered = vhost.deliver(targets, msg.clone(), ctx.s.broker.stores.as_ref())?;
        if mandatory && delivered.unreachable == delivered.queues {
            // Every queue it was routed to is down: unroutable, as in
            // RabbitMQ (and nacked, since no queue has it).
            self.return_unroutable(ctx, x, &msg);
        }
        Ok(delivered)
    }

    /// basic.return of a mandatory message that reached no queue.
    fn return_unroutable(&mut self, ctx: &mut Ctx<'_>, x: &Exchange, msg: &Message) {
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

    /// A home node answered for a forwarded publish: confirm it, or nack it.
    pub fn forwarded(&mut self, seq: u64, ok: bool) {
        if let Some(c) = self.confirms.as_mut() {
            c.forwarded(seq, ok);
        }
    }

    /// The confirms to send now, in order.
    pub fn take_confirms(&mut self) -> ConfirmFrames {
        self.confirms.as_mut().map(Confirms::take).unwrap_or_default()
    }

    /// The newest sequence number whose durability must now be asked of the
    /// store (once per batch).
    pub fn take_durable_request(&mut self) -> Option<u64> {
        self.confirms.as_mut()?.take_durable_request()
    }

    /// The store has everything up to `seq` on disk, or (`ok` false) could
    /// not write it: those publishes are nacked.
    pub fn durable(&mut self, seq: u64, ok: bool) {
        if let Some(c) = self.confirms.as_mut() {
            c.durable(seq, ok);
        }
    }

    pub fn awaiting_content(&self) -> bool {
        self.publishing.is_some()
    }
}
