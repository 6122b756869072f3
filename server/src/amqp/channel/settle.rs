//! Settling deliveries: ack, nack, reject, recover, transactions, and
//! giving everything back when the channel closes.

use super::*;

impl Channel {
    // ----- settling ------------------------------------------------------------------

    pub(super) fn basic_ack(&mut self, ctx: &mut Ctx<'_>, a: basic::Ack) -> Result<()> {
        self.settle(ctx, a.delivery_tag, a.multiple, Settle::Ack)
    }

    pub(super) fn basic_nack(&mut self, ctx: &mut Ctx<'_>, n: basic::Nack) -> Result<()> {
        let op = if n.requeue { Settle::Requeue } else { Settle::Discard };
        self.settle(ctx, n.delivery_tag, n.multiple, op)
    }

    pub(super) fn basic_reject(&mut self, ctx: &mut Ctx<'_>, r: basic::Reject) -> Result<()> {
        let op = if r.requeue { Settle::Requeue } else { Settle::Discard };
        self.settle(ctx, r.delivery_tag, false, op)
    }

    pub(super) fn settle(&mut self, ctx: &mut Ctx<'_>, tag: u64, multiple: bool, op: Settle) -> Result<()> {
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
    pub(super) fn kick_if_global(&self, ctx: &mut Ctx<'_>) {
        if self.flow.global_prefetch.load(Ordering::Relaxed) > 0 {
            ctx.kick.extend(self.consumers.values().map(|(_, q)| q.clone()));
        }
    }

    /// basic.recover: recover-async, then recover-ok.
    pub(super) fn basic_recover(&mut self, ctx: &mut Ctx<'_>, r: basic::Recover) -> Result<()> {
        self.recover(ctx, r.requeue)?;
        ctx.reply(self.id, AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})));
        Ok(())
    }

    pub(super) fn recover(&mut self, ctx: &mut Ctx<'_>, requeue: bool) -> Result<()> {
        if !requeue {
            return Err(BrokerError::not_implemented("requeue=false"));
        }
        let entries = self.unacked.take_all();
        apply_settles(ctx, entries.into_iter().map(|u| (Settle::Requeue, u)));
        self.note_counts();
        self.kick_if_global(ctx);
        Ok(())
    }

    // ----- transactions --------------------------------------------------------

    pub(super) fn tx_select(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        if self.confirms.is_some() {
            return Err(BrokerError::precondition_failed("cannot switch from confirm to tx mode"));
        }
        if self.tx.is_none() {
            self.tx = Some(Tx::default());
            self.stats.transactional.store(true, Ordering::Relaxed);
        }
        ctx.reply(self.id, AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})));
        Ok(())
    }

    /// Drops the transaction's publishes; its settled deliveries are unacked
    /// again.
    pub(super) fn tx_rollback(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        let Some(t) = self.tx.as_mut() else {
            return Err(BrokerError::precondition_failed("channel is not transactional"));
        };
        let t = std::mem::take(t);
        self.unacked.restore(t.settles.into_iter().map(|(_, u)| u).collect());
        ctx.reply(self.id, AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})));
        Ok(())
    }

    pub(super) async fn tx_commit(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        let Some(t) = self.tx.as_mut() else {
            return Err(BrokerError::precondition_failed("channel is not transactional"));
        };
        let t = std::mem::take(t);
        let mut stored = false;
        let mut elsewhere = Vec::new();
        for p in t.publishes {
            let d = self.deliver(ctx, &p.exchange, p.msg, p.headers.as_ref(), p.mandatory)?;
            stored |= d.stored;
            elsewhere.extend(d.elsewhere);
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
        // And the queues held on other nodes have them.
        for answer in elsewhere {
            let _ = answer.await;
        }
        ctx.reply(self.id, AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})));
        Ok(())
    }

    /// Releases everything the channel holds: consumers leave their queues
    /// (auto-delete queues may go), unacked messages are requeued in their
    /// original order. Called when the channel or its connection closes.
    pub fn release_all(&mut self, ctx: &mut Ctx<'_>) {
        let consumers: Vec<_> = self.consumers.drain().map(|(_, v)| v).collect();
        for (consumer, q) in consumers {
            self.drop_consumer(ctx, consumer, q);
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
pub(super) fn apply_settles(ctx: &mut Ctx<'_>, entries: impl Iterator<Item = (Settle, Unacked)>) {
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
            Settle::Discard => q.discard(msgs),
            Settle::Requeue => q.requeue(msgs),
        }
        ctx.kick.push(q);
    }
}
