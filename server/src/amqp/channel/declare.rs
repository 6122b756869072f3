//! Declaring, deleting, binding and purging exchanges and queues, with
//! RabbitMQ's permission and name checks.

use super::*;

/// Whether a bind method adds its binding or removes it.
#[derive(Clone, Copy)]
enum BindOp {
    Bind,
    Unbind,
}

impl Channel {
    // ----- exchanges ---------------------------------------------------------

    pub(super) async fn exchange_declare(&mut self, ctx: &mut Ctx<'_>, d: exchange::Declare) -> Result<()> {
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
            if let Some(ae) = crate::broker::args::as_str_arg(&d.arguments, "alternate-exchange")
                && s.vhost.exchange(&name).is_none()
            {
                self.check(s, Access::Read, "exchange", &name)?;
                self.check(s, Access::Write, "exchange", &ae)?;
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

    pub(super) async fn exchange_delete(&mut self, ctx: &mut Ctx<'_>, d: exchange::Delete) -> Result<()> {
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

    // ----- bindings ----------------------------------------------------------

    pub(super) async fn exchange_bind(&mut self, ctx: &mut Ctx<'_>, b: exchange::Bind) -> Result<()> {
        let (dest, source, key) = (b.destination.as_str(), b.source.as_str(), b.routing_key.as_str());
        self.bind(ctx, BindOp::Bind, DestKind::Exchange, dest, source, key, b.arguments).await?;
        if !b.nowait {
            ctx.reply(self.id, AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})));
        }
        Ok(())
    }

    pub(super) async fn exchange_unbind(&mut self, ctx: &mut Ctx<'_>, b: exchange::Unbind) -> Result<()> {
        let (dest, source, key) = (b.destination.as_str(), b.source.as_str(), b.routing_key.as_str());
        self.bind(ctx, BindOp::Unbind, DestKind::Exchange, dest, source, key, b.arguments).await?;
        if !b.nowait {
            ctx.reply(self.id, AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})));
        }
        Ok(())
    }

    pub(super) async fn queue_bind(&mut self, ctx: &mut Ctx<'_>, b: queue::Bind) -> Result<()> {
        let (q, key) = self.queue_and_key(b.queue.as_str(), b.routing_key.as_str())?;
        self.bind(ctx, BindOp::Bind, DestKind::Queue, &q, b.exchange.as_str(), &key, b.arguments).await?;
        if !b.nowait {
            ctx.reply(self.id, AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})));
        }
        Ok(())
    }

    /// queue.unbind has no `nowait`: it is always answered.
    pub(super) async fn queue_unbind(&mut self, ctx: &mut Ctx<'_>, b: queue::Unbind) -> Result<()> {
        let (q, key) = self.queue_and_key(b.queue.as_str(), b.routing_key.as_str())?;
        self.bind(ctx, BindOp::Unbind, DestKind::Queue, &q, b.exchange.as_str(), &key, b.arguments).await?;
        ctx.reply(self.id, AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})));
        Ok(())
    }

    /// The queue a queue.bind/unbind names (none: the channel's most recent
    /// one) and its routing key: with neither given, the queue's name.
    fn queue_and_key(&self, queue: &str, routing_key: &str) -> Result<(String, String)> {
        let q = self.queue_name(queue)?;
        let key = if queue.is_empty() && routing_key.is_empty() { q.clone() } else { routing_key.to_owned() };
        Ok((q, key))
    }

    /// Adds or removes a binding, with RabbitMQ's checks: write on the
    /// destination, read on the source (and its topic permission for the
    /// key), never the default exchange.
    #[allow(clippy::too_many_arguments)]
    async fn bind(
        &mut self,
        ctx: &mut Ctx<'_>,
        op: BindOp,
        kind: DestKind,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<()> {
        let s = ctx.s;
        let dest = strip_cr_lf(destination);
        let src = strip_cr_lf(source);
        self.check(s, Access::Write, kind.as_str(), &dest)?;
        if src.is_empty() || (kind == DestKind::Exchange && dest.is_empty()) {
            return Err(BrokerError::access_refused("operation not permitted on the default exchange"));
        }
        self.check(s, Access::Read, "exchange", &src)?;
        if let Some(x) = s.vhost.exchange(&src) {
            s.broker.auth.check_topic_access(&s.vhost.name, &s.user.name, &x, Access::Read, routing_key)?;
        }
        let vhost = s.vhost.name.to_string();
        let (destination_kind, routing_key) = (kind.as_str().to_owned(), routing_key.to_owned());
        let requester = Some(s.conn_id);
        let cmd = match op {
            BindOp::Bind => DefinitionCommand::Bind {
                vhost,
                source: src,
                destination_kind,
                destination: dest,
                routing_key,
                arguments,
                requester,
            },
            BindOp::Unbind => DefinitionCommand::Unbind {
                vhost,
                source: src,
                destination_kind,
                destination: dest,
                routing_key,
                arguments,
                requester,
            },
        };
        s.broker.apply(cmd).await?;
        Ok(())
    }

    // ----- queues --------------------------------------------------------------

    pub(super) async fn queue_declare(&mut self, ctx: &mut Ctx<'_>, d: queue::Declare) -> Result<()> {
        let s = ctx.s;
        let vname = s.vhost.name.clone();
        if d.queue.as_str().starts_with(REPLY_TO) {
            // Declaring a reply-to pseudo-queue only asks whether it exists.
            let name = d.queue.as_str();
            if s.vhost.reply_queue(name).is_none() {
                return Err(BrokerError::not_found(format!("no {}", rs("queue", name, &vname))));
            }
            if !d.nowait {
                ctx.reply(
                    self.id,
                    AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                        queue: name.into(),
                        message_count: 0,
                        consumer_count: 1,
                    })),
                );
            }
            return Ok(());
        }
        let (queue, messages, consumers) = if d.passive {
            let name = self.queue_name(d.queue.as_str())?;
            self.check_any(s, "queue", &name)?;
            let q = s.vhost.queue_or_404(&name)?;
            check_exclusive(&q, Some(s.conn_id), &vname)?;
            q.check_available()?;
            let c = q.counts();
            (name, c.ready, c.consumers)
        } else {
            let given = strip_cr_lf(d.queue.as_str());
            let name = if given.is_empty() { generated_name("amq.gen") } else { given };
            self.check(s, Access::Configure, "queue", &name)?;
            let existing = s.vhost.queue(&name);
            if let Some(q) = &existing {
                q.check_available()?;
            }
            let exists = existing.is_some();
            if !exists && name.starts_with("amq.") && !d.queue.as_str().is_empty() {
                return Err(BrokerError::access_refused(format!(
                    "queue name '{name}' contains reserved prefix 'amq.*'"
                )));
            }
            if !exists
                && let Some(dlx) = crate::broker::args::as_str_arg(&d.arguments, "x-dead-letter-exchange")
            {
                self.check(s, Access::Read, "queue", &name)?;
                self.check(s, Access::Write, "exchange", &dlx)?;
            }
            if !exists {
                s.broker.check_queue_limit(&vname, &name)?;
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
                    home: None,
                    incarnation: 0,
                })
                .await?;
            let Applied::Queue(declared) = applied else {
                return Err(BrokerError::internal("unexpected result of queue declaration"));
            };
            if declared.created && d.exclusive {
                ctx.exclusive_queues.push(name.clone());
            }
            declared.queue.touch();
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

    pub(super) async fn queue_purge(&mut self, ctx: &mut Ctx<'_>, p: queue::Purge) -> Result<()> {
        let s = ctx.s;
        let name = self.queue_name(p.queue.as_str())?;
        self.check(s, Access::Read, "queue", &name)?;
        let q = s.vhost.queue_or_404(&name)?;
        check_exclusive(&q, Some(s.conn_id), &s.vhost.name)?;
        let n = q.purge().await?;
        if !p.nowait {
            ctx.reply(
                self.id,
                AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count: n as u32 })),
            );
        }
        Ok(())
    }

    pub(super) async fn queue_delete(&mut self, ctx: &mut Ctx<'_>, d: queue::Delete) -> Result<()> {
        let s = ctx.s;
        let name = self.queue_name(d.queue.as_str())?;
        self.check(s, Access::Configure, "queue", &name)?;
        if let Some(q) = s.vhost.queue(&name) {
            q.check_available()?;
        }
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
}
