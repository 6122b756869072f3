//! One AMQP connection, from accept to close: the handshake, then a loop
//! that reads frames, writes replies and deliveries, and keeps heartbeats.
//!
//! The connection task owns its channels. Queues reach it only through its
//! outbox (deliveries, cancellations, forced close). After each batch of
//! frames it sends the publisher confirms the batch earned and asks queues
//! to dispatch again where acks released credit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use rustc_hash::FxHashMap;

use super::channel::Channel;
use super::codec::{FRAME_MIN_SIZE, Frame, read_frame};
use super::handshake::{self, Refused};
use super::io::{Io, Socket};
use super::session::{Ctx, Session};
use crate::broker::Broker;
use crate::broker::alarms::AlarmState;
use crate::broker::connections::{ConnectionInfo, HandshakeTicket};
use crate::broker::consumer::{Consumer, Outbound, Outbox};
use crate::broker::error::{BrokerError, ErrorKind};
use crate::broker::queue::{Queue, QueuedMessage};
use crate::definitions::DefinitionCommand;

/// Above this much unwritten output we stop taking deliveries from the
/// outbox, and well above it we stop reading, so a client that does not read
/// cannot make us buffer without bound.
const WRITE_HIGH: usize = 512 * 1024;
const READ_PAUSE: usize = 4 * 1024 * 1024;
/// How long we wait for close-ok after sending connection.close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Serves one client; `tls` is what its TLS session negotiated, if it came
/// over the AMQPS listener. `handshake` is its place among the handshakes
/// in progress, given back when the handshake ends.
pub async fn serve(
    broker: Arc<Broker>,
    stream: Socket,
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<crate::tls::TlsInfo>,
    handshake: HandshakeTicket,
) {
    if let Socket::Tcp(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    let name = format!("{peer} -> {local}");
    tracing::info!("accepting AMQP connection {name}");
    let mut io = Io::new(stream, FRAME_MIN_SIZE);
    let timeout = broker.config.handshake_timeout;
    let opened = match tokio::time::timeout(
        timeout,
        handshake::run(&mut io, &broker, peer, &name, tls.as_ref()),
    )
    .await
    {
        Err(_) => {
            tracing::warn!("closing AMQP connection {name}: handshake_timeout");
            return;
        }
        Ok(Err(Refused::Gone)) | Ok(Err(Refused::Silent)) => return,
        Ok(Err(Refused::Error(e))) => return refuse(io, &name, e, 0, 0).await,
        Ok(Err(Refused::AtOpen(e))) => return refuse(io, &name, e, 10, 40).await,
        Ok(Ok(o)) => o,
    };
    drop(handshake);
    // Held until the connection's task ends.
    let _open = opened.ticket;
    let id = broker.next_id();
    let outbox = Arc::new(Outbox::default());
    let info = Arc::new(ConnectionInfo {
        id,
        name: name.clone(),
        peer,
        local,
        user: opened.user.name.clone(),
        vhost: opened.vhost.name.to_string(),
        connected_at: SystemTime::now(),
        client_properties: opened.client_properties.clone(),
        frame_max: opened.frame_max,
        channel_max: opened.channel_max,
        heartbeat: opened.heartbeat,
        auth_mechanism: opened.mechanism.clone(),
        tls,
        outbox: outbox.clone(),
        channels: Default::default(),
        recv_oct: Default::default(),
        send_oct: Default::default(),
        channel_stats: Default::default(),
    });
    broker.connections.register(info.clone());
    tracing::info!(
        "connection {name}: user '{}' authenticated and granted access to vhost '{}'",
        opened.user.name,
        opened.vhost.name
    );
    let session = Session {
        broker: broker.clone(),
        vhost: opened.vhost,
        user: opened.user,
        conn_id: id,
        outbox,
        info,
        caps: opened.caps,
    };
    let mut conn = Connection {
        io,
        s: session,
        channels: FxHashMap::default(),
        frame_max: opened.frame_max,
        channel_max: opened.channel_max,
        heartbeat: opened.heartbeat,
        closing: None,
        lost_sync: false,
        done: false,
        exclusive_queues: Vec::new(),
        kick: Vec::new(),
        auto_deletes: Vec::new(),
        confirms: Vec::new(),
        scratch: Vec::new(),
        alarms: broker.alarms.subscribe(),
        stalled: None,
        sent_blocked: false,
        name,
    };
    conn.run().await;
    conn.cleanup().await;
}

/// Ends a refused handshake with a connection.close.
async fn refuse(mut io: Io, name: &str, e: BrokerError, class_id: u16, method_id: u16) {
    tracing::error!("closing AMQP connection {name}: {e}");
    io.out.method(0, &close_method(&e, class_id, method_id));
    let _ = tokio::time::timeout(Duration::from_secs(1), io.flush_all()).await;
    // Give the client a moment to read the close before the socket goes.
    let _ = tokio::time::timeout(Duration::from_millis(500), io.read_some()).await;
}

fn close_method(e: &BrokerError, class_id: u16, method_id: u16) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: e.reply_code(),
        reply_text: e.reply_text().into(),
        class_id,
        method_id,
    }))
}

struct Connection {
    io: Io,
    s: Session,
    channels: FxHashMap<u16, Channel>,
    frame_max: u32,
    channel_max: u16,
    heartbeat: u16,
    /// When we sent connection.close and are waiting for close-ok.
    closing: Option<Instant>,
    /// A framing error: the input can no longer be parsed.
    lost_sync: bool,
    done: bool,
    exclusive_queues: Vec<String>,
    kick: Vec<Arc<Queue>>,
    auto_deletes: Vec<Arc<Queue>>,
    confirms: Vec<u16>,
    scratch: Vec<Outbound>,
    /// Resource alarms. While one is on, the first publish we meet is held
    /// here and nothing more is read until the alarm clears.
    alarms: tokio::sync::watch::Receiver<AlarmState>,
    stalled: Option<Frame>,
    sent_blocked: bool,
    name: String,
}

/// Borrows the connection's parts a channel handler needs, leaving
/// `channels` free to be borrowed alongside.
macro_rules! ctx {
    ($c:ident) => {
        Ctx {
            s: &$c.s,
            out: &mut $c.io.out,
            exclusive_queues: &mut $c.exclusive_queues,
            kick: &mut $c.kick,
            auto_deletes: &mut $c.auto_deletes,
            confirms: &mut $c.confirms,
        }
    };
}

impl Connection {
    async fn run(&mut self) {
        // Tick at least twice per heartbeat interval, so that a heartbeat
        // goes out after half an interval of silence on our side.
        let period = match self.heartbeat {
            0 => Duration::from_secs(1),
            hb => Duration::from_millis((u64::from(hb) * 500).min(1000)),
        };
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.pump_outbox();
            self.finish_batch().await;
            if self.io.try_flush().is_err() {
                return;
            }
            if self.done {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.io.flush_all()).await;
                return;
            }
            let pending = self.io.out.pending();
            let outbox = self.s.outbox.clone();
            let reading = pending < READ_PAUSE && self.stalled.is_none();
            tokio::select! {
                biased;
                r = self.io.stream.readable(), if reading => {
                    match r.and_then(|_| self.io.try_read()) {
                        Ok(true) => {
                            self.on_input().await;
                            // Readiness plus try_read never spends tokio's
                            // cooperative budget, so a socket that always has
                            // data would keep this task on its worker forever
                            // and starve the consumers woken meanwhile. Give
                            // them their turn after each batch.
                            tokio::task::yield_now().await;
                            self.throttle_if_behind().await;
                        }
                        Ok(false) | Err(_) => return,
                    }
                }
                r = self.io.stream.writable(), if pending > 0 => {
                    if r.is_err() {
                        return;
                    }
                }
                _ = outbox.wait(), if pending < WRITE_HIGH => {}
                r = self.alarms.changed() => {
                    if r.is_ok() {
                        self.on_alarm().await;
                    }
                }
                _ = ticker.tick() => self.on_tick(),
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        if let Some(since) = self.closing {
            if now.duration_since(since) > CLOSE_TIMEOUT {
                self.done = true;
            }
            return;
        }
        let hb = u64::from(self.heartbeat);
        // A blocked connection is not read, so its silence proves nothing.
        let watching = self.stalled.is_none();
        if hb > 0 && watching {
            if now.duration_since(self.io.last_read) > Duration::from_secs(hb * 2) {
                tracing::warn!(
                    "closing AMQP connection {}: missed heartbeats from client, timeout: {hb}s",
                    self.name
                );
                self.done = true;
                return;
            }
            if now.duration_since(self.io.last_write) >= Duration::from_millis(hb * 500) {
                self.io.out.heartbeat();
            }
        }
        if watching
            && !self.io.rbuf.is_empty()
            && now.duration_since(self.io.last_read) > self.s.broker.config.handshake_timeout
        {
            tracing::warn!("closing AMQP connection {}: a frame stayed incomplete too long", self.name);
            self.done = true;
        }
        let info = &self.s.info;
        info.recv_oct.store(self.io.read_bytes, Ordering::Relaxed);
        info.send_oct.store(self.io.written_bytes, Ordering::Relaxed);
    }

    async fn on_input(&mut self) {
        if self.lost_sync {
            self.io.rbuf.clear();
            return;
        }
        loop {
            match read_frame(&mut self.io.rbuf, self.frame_max) {
                Ok(Some(frame)) => {
                    if self.must_block(&frame) {
                        self.block(frame);
                        return;
                    }
                    self.on_frame(frame).await;
                    if self.done || self.lost_sync {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    // The stream can no longer be parsed: report and stop
                    // reading.
                    self.close_connection(e, 0, 0);
                    self.lost_sync = true;
                    self.io.rbuf.clear();
                    return;
                }
            }
        }
    }

    /// When the disk is not keeping up with what the stores are asked to
    /// write, or other nodes of the cluster with the messages forwarded to
    /// them, stop reading (the client then feels TCP backpressure) until
    /// they have caught up, rather than letting buffers grow.
    async fn throttle_if_behind(&mut self) {
        const BEHIND: u64 = 64 * 1024 * 1024;
        let Some(stores) = self.s.broker.stores.clone() else { return };
        let elsewhere = self.s.broker.backends.get().cloned();
        let behind = || {
            stores.paging.stats().pending_bytes + stores.persistent.stats().pending_bytes > BEHIND
                || elsewhere.as_ref().is_some_and(|b| b.behind())
        };
        while behind() {
            // Deliveries and confirms owed so far still go out meanwhile.
            self.pump_outbox();
            self.finish_batch().await;
            if self.io.try_flush().is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Publishing is what an alarm stops.
    fn must_block(&self, frame: &Frame) -> bool {
        matches!(frame, Frame::Publish(..)) && self.alarms.borrow().any() && self.closing.is_none()
    }

    fn block(&mut self, frame: Frame) {
        let state = *self.alarms.borrow();
        tracing::warn!("connection {} blocked: {}", self.name, state.reason());
        if self.s.caps.connection_blocked && !self.sent_blocked {
            self.io.out.method(
                0,
                &AMQPClass::Connection(connection::AMQPMethod::Blocked(connection::Blocked {
                    reason: state.reason().into(),
                })),
            );
            self.sent_blocked = true;
        }
        self.stalled = Some(frame);
    }

    async fn on_alarm(&mut self) {
        if self.alarms.borrow().any() {
            return;
        }
        if self.sent_blocked {
            self.io.out.method(
                0,
                &AMQPClass::Connection(connection::AMQPMethod::Unblocked(connection::Unblocked {})),
            );
            self.sent_blocked = false;
        }
        if let Some(frame) = self.stalled.take() {
            tracing::info!("connection {} unblocked", self.name);
            self.on_frame(frame).await;
            self.on_input().await;
        }
    }

    async fn on_frame(&mut self, frame: Frame) {
        if self.closing.is_some() {
            // Only the end of the closing handshake matters now.
            match frame {
                Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {
                    self.done = true
                }
                Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
                    self.io.out.method(
                        0,
                        &AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                    );
                    self.done = true;
                }
                _ => {}
            }
            return;
        }
        match frame {
            Frame::Heartbeat(0) => {}
            Frame::Heartbeat(_) => {
                self.close_connection(BrokerError::unexpected_frame("type 8, all octets = <<>>"), 0, 0)
            }
            Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(u))) => {
                self.update_secret(u).await
            }
            Frame::Method(0, AMQPClass::Connection(m)) => self.on_connection_method(m),
            Frame::Method(0, m) => self.close_connection(
                BrokerError::channel_error("unexpected method in connection state running"),
                m.get_amqp_class_id(),
                m.get_amqp_method_id(),
            ),
            Frame::Method(ch, AMQPClass::Channel(channel::AMQPMethod::Open(_))) => self.open_channel(ch),
            Frame::Method(ch, AMQPClass::Channel(channel::AMQPMethod::Close(_))) => self.on_channel_close(ch),
            Frame::Method(ch, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => {
                if self.channels.get(&ch).is_some_and(|c| c.closing) {
                    self.remove_channel(ch);
                }
            }
            Frame::Method(_, AMQPClass::Connection(m)) => {
                let (c, mid) = (10, AMQPClass::Connection(m).get_amqp_method_id());
                self.close_connection(BrokerError::command_invalid("unimplemented method"), c, mid);
            }
            Frame::Method(ch, m) => {
                let Some(channel) = self.channels.get_mut(&ch) else {
                    return self.not_open(m.get_amqp_class_id(), m.get_amqp_method_id());
                };
                if channel.closing {
                    return;
                }
                let mut ctx = ctx!(self);
                let result = channel.handle(&mut ctx, m).await;
                if let Err((e, c, mid)) = result {
                    self.fail(ch, e, c, mid);
                }
            }
            Frame::Publish(ch, p) => {
                let Some(channel) = self.channels.get_mut(&ch) else { return self.not_open(60, 40) };
                if channel.closing {
                    return;
                }
                let mut ctx = ctx!(self);
                if let Err((e, c, m)) = channel.on_publish(&mut ctx, p) {
                    self.fail(ch, e, c, m);
                }
            }
            Frame::Header { channel: ch, class_id, body_size, raw_properties } => {
                let Some(channel) = self.channels.get_mut(&ch) else {
                    return self.not_open(0, 0);
                };
                if channel.closing {
                    return;
                }
                let mut ctx = ctx!(self);
                if let Err((e, c, m)) = channel.on_header(&mut ctx, class_id, body_size, raw_properties) {
                    self.fail(ch, e, c, m);
                }
            }
            Frame::Body(ch, body) => {
                let Some(channel) = self.channels.get_mut(&ch) else {
                    return self.not_open(0, 0);
                };
                if channel.closing {
                    return;
                }
                let mut ctx = ctx!(self);
                if let Err((e, c, m)) = channel.on_body(&mut ctx, body) {
                    self.fail(ch, e, c, m);
                }
            }
        }
    }

    fn not_open(&mut self, class_id: u16, method_id: u16) {
        self.close_connection(BrokerError::channel_error("expected 'channel.open'"), class_id, method_id);
    }

    /// `connection.update-secret`: the client replaces the credential it
    /// connected with (RabbitMQ 3.8+, for clients refreshing an OAuth
    /// token). Here the secret is the password of the connection's user,
    /// checked like a login (the same cache and password gate); the user
    /// stays the same. RabbitMQ refuses a secret with 530 and this text.
    async fn update_secret(&mut self, u: connection::UpdateSecret) {
        let name = self.s.user.name.clone();
        let secret = u.new_secret.as_bytes().to_vec();
        match self.s.broker.login(&name, secret, Some(self.s.info.peer.ip())).await {
            Ok(user) => {
                tracing::info!(
                    "connection {}: user '{name}' updated secret, reason: {}",
                    self.name,
                    u.reason.as_str()
                );
                // Tags or the hash may have changed since the connection
                // opened; later checks see the user as it is now.
                self.s.user = user;
                self.io.out.method(
                    0,
                    &AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(
                        connection::UpdateSecretOk {},
                    )),
                );
            }
            Err(_) => {
                tracing::error!("connection {}: secret update was refused for user '{name}'", self.name);
                self.close_connection(
                    BrokerError::not_allowed("New secret was refused by one of the backends"),
                    10,
                    70,
                );
            }
        }
    }

    fn on_connection_method(&mut self, m: connection::AMQPMethod) {
        match m {
            connection::AMQPMethod::Close(c) => {
                tracing::info!(
                    "closing AMQP connection {} (vhost '{}', user '{}'): client said {} {}",
                    self.name,
                    self.s.vhost.name,
                    self.s.user.name,
                    c.reply_code,
                    c.reply_text
                );
                self.io.out.method(
                    0,
                    &AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                );
                self.done = true;
            }
            connection::AMQPMethod::CloseOk(_) => self.done = true,
            other => {
                let mid = AMQPClass::Connection(other).get_amqp_method_id();
                self.close_connection(
                    BrokerError::channel_error("unexpected method in connection state running"),
                    10,
                    mid,
                );
            }
        }
    }

    fn open_channel(&mut self, ch: u16) {
        if self.channels.contains_key(&ch) {
            return self.close_connection(BrokerError::channel_error("second 'channel.open' seen"), 20, 10);
        }
        // RabbitMQ names no method (class 0, method 0) for either limit.
        if ch > self.channel_max || self.channels.len() >= usize::from(self.channel_max) {
            return self.close_connection(
                BrokerError::not_allowed(format!(
                    "number of channels opened ({}) has reached the negotiated channel_max ({})",
                    self.channels.len(),
                    self.channel_max
                )),
                0,
                0,
            );
        }
        if let Err(e) = self.s.broker.check_channel_limit(&self.s.user.name) {
            return self.close_connection(e, 0, 0);
        }
        let channel = Channel::new(ch, self.s.broker.next_id());
        self.s.info.channel_stats.lock().insert(ch, channel.stats.clone());
        self.s.broker.connections.churn.channel_opened();
        self.channels.insert(ch, channel);
        self.s.info.channels.store(self.channels.len() as u32, Ordering::Relaxed);
        self.io.out.method(ch, &AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})));
    }

    fn on_channel_close(&mut self, ch: u16) {
        match self.channels.get(&ch) {
            None => self.not_open(20, 40),
            Some(c) if c.closing => {
                // Both sides closed at once: answer, and forget the channel.
                self.io
                    .out
                    .method(ch, &AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
                self.remove_channel(ch);
            }
            Some(_) => {
                self.release_channel(ch);
                self.remove_channel(ch);
                self.io
                    .out
                    .method(ch, &AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
            }
        }
    }

    fn release_channel(&mut self, ch: u16) {
        if let Some(channel) = self.channels.get_mut(&ch) {
            let mut ctx = ctx!(self);
            channel.release_all(&mut ctx);
        }
    }

    fn remove_channel(&mut self, ch: u16) {
        self.channels.remove(&ch);
        if self.s.info.channel_stats.lock().remove(&ch).is_some() {
            self.s.broker.connections.churn.channel_closed();
        }
        self.confirms.retain(|c| *c != ch);
        self.s.info.channels.store(self.channels.len() as u32, Ordering::Relaxed);
    }

    /// A handler failed: a soft error closes the channel, a hard one the
    /// connection.
    fn fail(&mut self, ch: u16, e: BrokerError, class_id: u16, method_id: u16) {
        if e.kind.is_hard() {
            return self.close_connection(e, class_id, method_id);
        }
        tracing::warn!("channel error on connection {} channel {ch}: {e}", self.name);
        self.release_channel(ch);
        if let Some(c) = self.channels.get_mut(&ch) {
            c.closing = true;
        }
        self.confirms.retain(|c| *c != ch);
        self.io.out.method(
            ch,
            &AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: e.reply_code(),
                reply_text: e.reply_text().into(),
                class_id,
                method_id,
            })),
        );
    }

    fn close_connection(&mut self, e: BrokerError, class_id: u16, method_id: u16) {
        if self.closing.is_some() {
            return;
        }
        if e.kind == ErrorKind::ConnectionForced {
            tracing::warn!("closing AMQP connection {}: {e}", self.name);
        } else {
            tracing::error!("error on AMQP connection {}: {e}", self.name);
        }
        self.io.out.method(0, &close_method(&e, class_id, method_id));
        self.closing = Some(Instant::now());
    }

    /// Writes what queues handed over, while there is room in the output.
    fn pump_outbox(&mut self) {
        if self.io.out.pending() >= WRITE_HIGH {
            return;
        }
        let mut items = std::mem::take(&mut self.scratch);
        self.s.outbox.take(&mut items);
        if items.is_empty() {
            self.scratch = items;
            return;
        }
        let n = items.len();
        for item in items.drain(..) {
            match item {
                Outbound::Deliver { consumer, queue, msg } => {
                    let result = match self.channels.get_mut(&consumer.channel) {
                        Some(channel) => {
                            let mut ctx = ctx!(self);
                            channel.write_delivery(&mut ctx, consumer, queue, msg)
                        }
                        None => Err((consumer, queue, msg)),
                    };
                    if let Err((c, q, m)) = result {
                        give_back(&c, &q, m);
                    }
                }
                Outbound::Cancelled { consumer } => {
                    let notify = self.s.caps.consumer_cancel_notify;
                    if let Some(channel) = self.channels.get_mut(&consumer.channel)
                        && channel.forget_consumer(&consumer)
                        && notify
                        && !channel.closing
                    {
                        self.io.out.method(
                            consumer.channel,
                            &AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
                                consumer_tag: consumer.tag.clone(),
                                nowait: true,
                            })),
                        );
                    }
                }
                Outbound::Durable { channel, instance, upto, ok } => {
                    if let Some(c) = self.channels.get_mut(&channel).filter(|c| c.instance == instance) {
                        c.durable(upto, ok);
                        if !self.confirms.contains(&channel) {
                            self.confirms.push(channel);
                        }
                    }
                }
                Outbound::Forwarded { channel, instance, seq, ok } => {
                    if let Some(c) = self.channels.get_mut(&channel).filter(|c| c.instance == instance) {
                        c.forwarded(seq, ok);
                        if !self.confirms.contains(&channel) {
                            self.confirms.push(channel);
                        }
                    }
                }
                Outbound::ForceClose { reason } => {
                    self.close_connection(BrokerError::new(ErrorKind::ConnectionForced, reason), 0, 0)
                }
            }
        }
        self.scratch = items;
        if self.s.outbox.written(n) {
            for c in self.channels.values() {
                self.kick.extend(c.consumer_queues().cloned());
            }
        }
    }

    /// Work owed at the end of a batch of frames: confirms, dispatches that
    /// released credit allows, auto-delete queues whose last consumer left.
    async fn finish_batch(&mut self) {
        for ch in std::mem::take(&mut self.confirms) {
            let Some(c) = self.channels.get_mut(&ch) else { continue };
            if let (Some(seq), Some(stores)) = (c.take_durable_request(), &self.s.broker.stores) {
                // One store callback per channel and batch, not per message.
                let (outbox, instance) = (self.s.outbox.clone(), c.instance);
                stores.persistent.on_durable_result(Box::new(move |written| {
                    outbox.push(Outbound::Durable { channel: ch, instance, upto: seq, ok: written.is_ok() });
                }));
            }
            let Some(c) = self.channels.get_mut(&ch) else { continue };
            for f in c.take_confirms() {
                if f.ack {
                    c.stats.confirm_sent.add(f.count);
                }
                self.io.out.confirm(ch, f.ack, f.tag, f.multiple);
            }
        }
        if !self.kick.is_empty() {
            let mut kick = std::mem::take(&mut self.kick);
            kick.sort_by_key(|q| Arc::as_ptr(q) as usize);
            kick.dedup_by(|a, b| Arc::ptr_eq(a, b));
            for q in &kick {
                q.dispatch();
            }
            kick.clear();
            self.kick = kick;
        }
        for q in std::mem::take(&mut self.auto_deletes) {
            delete_queue(&self.s.broker, &q, true).await;
        }
    }

    /// Everything the connection held goes back: consumers leave their
    /// queues, deliveries not yet written and unacked messages are requeued,
    /// exclusive queues are deleted.
    async fn cleanup(&mut self) {
        let ids: Vec<u16> = self.channels.keys().copied().collect();
        for ch in ids {
            self.release_channel(ch);
        }
        let mut items = Vec::new();
        self.s.outbox.take(&mut items);
        for item in items {
            if let Outbound::Deliver { consumer, queue, msg } = item {
                give_back(&consumer, &queue, msg);
            }
        }
        self.finish_batch().await;
        for name in std::mem::take(&mut self.exclusive_queues) {
            let _ = self
                .s
                .broker
                .apply(DefinitionCommand::DeleteQueue {
                    vhost: self.s.vhost.name.to_string(),
                    name,
                    if_unused: false,
                    if_empty: false,
                    requester: Some(self.s.conn_id),
                })
                .await;
        }
        self.s.broker.connections.unregister(self.s.conn_id);
        tracing::info!("connection {} closed", self.name);
    }
}

/// Returns a delivery that never reached the client to its queue.
fn give_back(consumer: &Arc<Consumer>, queue: &Arc<Queue>, m: QueuedMessage) {
    consumer.release(1);
    queue.return_undelivered(m, !consumer.no_ack);
}

/// Deletes an auto-delete queue whose last consumer left, unless a consumer
/// came back meanwhile or the name now belongs to another queue.
async fn delete_queue(broker: &Broker, q: &Arc<Queue>, if_unused: bool) {
    let Some(v) = broker.vhost(&q.vhost) else {
        return;
    };
    if !v.queue(&q.name).is_some_and(|cur| Arc::ptr_eq(&cur, q)) {
        return;
    }
    let _ = broker
        .apply(DefinitionCommand::DeleteQueue {
            vhost: q.vhost.to_string(),
            name: q.name.to_string(),
            if_unused,
            if_empty: false,
            requester: None,
        })
        .await;
}
