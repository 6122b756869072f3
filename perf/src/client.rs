//! A small AMQP 0-9-1 client connection: the handshake, channel 1, and the
//! few synchronous methods a load test needs (declare, bind, qos, consume,
//! confirm.select, delete), encoded and parsed with `amq-protocol`.
//!
//! After setup a connection is split into its read and write halves, which
//! the publisher and consumer loops drive with their own hand-made frames
//! (see [`crate::wire`]). An `amqps://` URI puts TLS ([`crate::tls`])
//! under the same frames; the halves are then boxed, so that the loops
//! drive either kind of stream. Heartbeats are switched off (we answer tune with
//! 0): a load test runs for seconds, and a loop busy with its own work
//! should not also have to keep a timer.

use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, gen_frame};
use amq_protocol::protocol::{AMQPClass, basic, channel, confirm, connection, exchange, queue};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use amq_protocol::uri::{AMQPScheme, AMQPUri, SASLMechanism};
use anyhow::{Context, Result, anyhow, bail};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use crate::Common;
use crate::tls::Tls;

use crate::wire::{FRAME_METHOD, RawFrame, next_frame, split_frames};

/// The only channel the load generator opens on each connection.
pub const CHANNEL: u16 = 1;
const DEFAULT_FRAME_MAX: u32 = 131_072;
/// How long a close waits for close-ok; see the publisher for why it waits.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection's read half: a TCP socket's, or a TLS stream's.
pub type Reader = Box<dyn AsyncRead + Send + Sync + Unpin>;
/// A connection's write half; see [`write_out`].
pub type Writer = Box<dyn AsyncWrite + Send + Sync + Unpin>;

/// Writes all of `buf`, then flushes: over TLS, the last bytes could
/// otherwise wait in the session's buffer (on TCP the flush does nothing).
pub async fn write_out(wr: &mut Writer, buf: &[u8]) -> std::io::Result<()> {
    wr.write_all(buf).await?;
    wr.flush().await
}

/// Where to connect and as whom, from an `amqp://` or `amqps://` URI and
/// the TLS options.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub vhost: String,
    pub frame_max: u32,
    /// Log in with EXTERNAL (the TLS client certificate), not PLAIN.
    pub external: bool,
    pub tls: Option<Tls>,
}

impl Endpoint {
    pub fn new(opts: &Common) -> Result<Self> {
        let uri = &opts.uri;
        let u: AMQPUri = uri.parse().map_err(|e: String| anyhow!("bad URI {uri}: {e}"))?;
        let external = match u.query.auth_mechanism {
            None | Some(SASLMechanism::Plain) => false,
            Some(SASLMechanism::External) => true,
            Some(other) => bail!("auth_mechanism={other}: warren-perf logs in with plain or external"),
        };
        let tls = match u.scheme {
            AMQPScheme::AMQPS => Some(Tls::new(&u.authority.host, opts)?),
            AMQPScheme::AMQP if opts.cacert.is_some() || opts.cert.is_some() => {
                bail!("--cacert, --cert and --key are for amqps:// URIs")
            }
            AMQPScheme::AMQP => None,
        };
        Ok(Endpoint {
            host: u.authority.host,
            port: u.authority.port,
            user: u.authority.userinfo.username,
            password: u.authority.userinfo.password,
            vhost: u.vhost,
            frame_max: u.query.frame_max.unwrap_or(DEFAULT_FRAME_MAX),
            external,
            tls,
        })
    }
}

/// What to do about a failed TLS handshake, when rustls' reason says.
fn hint(e: &std::io::Error) -> &'static str {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
            "; give the CA that signed the broker's certificate with --cacert FILE"
        }
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired)) => {
            "; the broker asks for a client certificate: --cert FILE --key FILE"
        }
        _ => "",
    }
}

/// A broker's refusal, with the reply code and text it sent.
#[derive(Debug)]
pub struct Closed {
    pub scope: &'static str,
    pub code: u16,
    pub text: String,
}

impl std::error::Error for Closed {}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} closed by the broker: {} {}", self.scope, self.code, self.text)
    }
}

/// The error a `channel.close` or `connection.close` from the broker means,
/// if `method` is one.
pub fn closing_error(method: &AMQPClass) -> Option<Closed> {
    match method {
        AMQPClass::Channel(channel::AMQPMethod::Close(c)) => {
            Some(Closed { scope: "channel", code: c.reply_code, text: c.reply_text.to_string() })
        }
        AMQPClass::Connection(connection::AMQPMethod::Close(c)) => {
            Some(Closed { scope: "connection", code: c.reply_code, text: c.reply_text.to_string() })
        }
        _ => None,
    }
}

pub fn encode_method(out: &mut Vec<u8>, channel: u16, method: AMQPClass) {
    let frame = AMQPFrame::Method(channel, method);
    let buf = std::mem::take(out);
    *out = cookie_factory::gen_simple(gen_frame(&frame), buf).expect("methods we build always encode");
}

pub fn decode_method(frame: &RawFrame<'_>) -> Result<AMQPClass> {
    match amq_protocol::protocol::parse_class(frame.payload) {
        Ok((_, m)) => Ok(m),
        Err(e) => bail!("cannot parse method {:?}: {e}", frame.method_id()),
    }
}

/// One open connection (with channel 1 once [`Connection::open`] opened it),
/// before it is split into the halves the hot loops drive.
pub struct Connection {
    pub rd: Reader,
    pub wr: Writer,
    pub rbuf: BytesMut,
    pub frame_max: u32,
    wbuf: Vec<u8>,
}

impl Connection {
    /// Connects, runs the handshake and opens the vhost; no channel yet.
    pub async fn connect(ep: &Endpoint, name: &str) -> Result<Self> {
        let stream = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .with_context(|| format!("cannot connect to {}:{}", ep.host, ep.port))?;
        stream.set_nodelay(true)?;
        let (rd, wr): (Reader, Writer) = match &ep.tls {
            None => {
                let (rd, wr) = stream.into_split();
                (Box::new(rd), Box::new(wr))
            }
            Some(tls) => {
                let stream = tls.connector.connect(tls.name.clone(), stream).await.map_err(|e| {
                    anyhow!("TLS handshake with {}:{} failed: {e}{}", ep.host, ep.port, hint(&e))
                })?;
                let (rd, wr) = tokio::io::split(stream);
                (Box::new(rd), Box::new(wr))
            }
        };
        let mut c = Connection {
            rd,
            wr,
            rbuf: BytesMut::with_capacity(16 * 1024),
            frame_max: 4096,
            wbuf: Vec::new(),
        };
        write_out(&mut c.wr, b"AMQP\x00\x00\x09\x01").await?;
        match c.next_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(_)) => {}
            other => bail!("expected connection.start, got {other:?}"),
        }
        let (mechanism, response) = match ep.external {
            true => ("EXTERNAL", Vec::new()),
            false => {
                let mut response = vec![0u8];
                response.extend_from_slice(ep.user.as_bytes());
                response.push(0);
                response.extend_from_slice(ep.password.as_bytes());
                ("PLAIN", response)
            }
        };
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: client_properties(name),
                mechanism: mechanism.into(),
                response: LongString::from(response),
                locale: "en_US".into(),
            })),
        )
        .await?;
        let tune = match c.next_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => t,
            other => bail!("expected connection.tune, got {other:?}"),
        };
        let frame_max = match tune.frame_max {
            0 => ep.frame_max,
            server => server.min(ep.frame_max),
        };
        let channel_max = if tune.channel_max == 0 { 2047 } else { tune.channel_max };
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max,
                frame_max,
                heartbeat: 0,
            })),
        )
        .await?;
        c.frame_max = frame_max;
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: ep.vhost.as_str().into(),
            })),
        )
        .await?;
        match c.next_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)) => Ok(c),
            other => bail!("expected connection.open-ok, got {other:?}"),
        }
    }

    /// Connects and opens channel 1.
    pub async fn open(ep: &Endpoint, name: &str) -> Result<Self> {
        let mut c = Self::connect(ep, name).await?;
        c.rpc(AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await?;
        Ok(c)
    }

    pub async fn send(&mut self, channel: u16, method: AMQPClass) -> Result<()> {
        self.wbuf.clear();
        encode_method(&mut self.wbuf, channel, method);
        write_out(&mut self.wr, &self.wbuf).await?;
        Ok(())
    }

    /// Reads until the next method on `channel`; heartbeats and frames of
    /// other channels are skipped. A close from the broker is an error
    /// (answered with close-ok first).
    pub async fn next_method(&mut self, channel: u16) -> Result<AMQPClass> {
        loop {
            while let Some((f, len)) = next_frame(&self.rbuf)? {
                let method = match f.kind == FRAME_METHOD && (f.channel == channel || f.channel == 0) {
                    true => Some((f.channel, decode_method(&f)?)),
                    false => None,
                };
                self.rbuf.advance(len);
                let Some((ch, m)) = method else { continue };
                if let Some(closed) = closing_error(&m) {
                    let ok = match closed.scope {
                        "channel" => AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                        _ => AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                    };
                    let _ = self.send(ch, ok).await;
                    return Err(closed.into());
                }
                if ch == channel {
                    return Ok(m);
                }
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes into the read buffer; end of stream is an error.
    pub async fn fill(&mut self) -> Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16 * 1024);
        }
        if self.rd.read_buf(&mut self.rbuf).await? == 0 {
            bail!("the broker closed the connection");
        }
        Ok(())
    }

    /// Sends a method on channel 1 and waits for its reply.
    pub async fn rpc(&mut self, method: AMQPClass) -> Result<AMQPClass> {
        self.send(CHANNEL, method).await?;
        self.next_method(CHANNEL).await
    }

    pub async fn queue_declare(&mut self, name: &str, opts: &QueueOptions) -> Result<queue::DeclareOk> {
        let mut arguments = FieldTable::default();
        if opts.quorum {
            arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        }
        let m = self
            .rpc(AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: short(name)?,
                passive: opts.passive,
                durable: opts.durable || opts.quorum,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments,
            })))
            .await?;
        match m {
            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)) => Ok(ok),
            other => bail!("expected queue.declare-ok, got {other:?}"),
        }
    }

    /// The number of ready messages in a queue (a passive declare).
    pub async fn queue_depth(&mut self, name: &str) -> Result<u64> {
        let opts = QueueOptions { passive: true, ..QueueOptions::default() };
        Ok(u64::from(self.queue_declare(name, &opts).await?.message_count))
    }

    pub async fn queue_delete(&mut self, name: &str) -> Result<()> {
        self.rpc(AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
            queue: short(name)?,
            if_unused: false,
            if_empty: false,
            nowait: false,
        })))
        .await?;
        Ok(())
    }

    pub async fn queue_purge(&mut self, name: &str) -> Result<()> {
        self.rpc(AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
            queue: short(name)?,
            nowait: false,
        })))
        .await?;
        Ok(())
    }

    pub async fn queue_bind(&mut self, queue_name: &str, exchange_name: &str, key: &str) -> Result<()> {
        self.rpc(AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
            queue: short(queue_name)?,
            exchange: short(exchange_name)?,
            routing_key: short(key)?,
            nowait: false,
            arguments: FieldTable::default(),
        })))
        .await?;
        Ok(())
    }

    pub async fn exchange_declare(&mut self, name: &str, kind: &str, durable: bool) -> Result<()> {
        self.rpc(AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
            exchange: short(name)?,
            kind: short(kind)?,
            passive: false,
            durable,
            auto_delete: false,
            internal: false,
            nowait: false,
            arguments: FieldTable::default(),
        })))
        .await?;
        Ok(())
    }

    pub async fn exchange_delete(&mut self, name: &str) -> Result<()> {
        self.rpc(AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
            exchange: short(name)?,
            if_unused: false,
            nowait: false,
        })))
        .await?;
        Ok(())
    }

    pub async fn qos(&mut self, prefetch: u16) -> Result<()> {
        self.rpc(AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: prefetch,
            global: false,
        })))
        .await?;
        Ok(())
    }

    pub async fn consume(&mut self, queue_name: &str, tag: &str, no_ack: bool) -> Result<()> {
        self.rpc(AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: short(queue_name)?,
            consumer_tag: short(tag)?,
            no_local: false,
            no_ack,
            exclusive: false,
            nowait: false,
            arguments: FieldTable::default(),
        })))
        .await?;
        Ok(())
    }

    pub async fn confirm_select(&mut self) -> Result<()> {
        self.rpc(AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false }))).await?;
        Ok(())
    }

    /// connection.close, then waits for close-ok (bounded).
    pub async fn close(mut self) -> Result<()> {
        close_with(&mut self.rd, &mut self.wr, &mut self.rbuf).await
    }
}

/// A normal connection.close.
pub fn connection_close() -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }))
}

/// Sends connection.close and waits (bounded) for close-ok, ignoring every
/// other frame still in flight, such as deliveries.
pub async fn close_with(rd: &mut Reader, wr: &mut Writer, rbuf: &mut BytesMut) -> Result<()> {
    let mut out = Vec::new();
    encode_method(&mut out, 0, connection_close());
    write_out(wr, &out).await?;
    let wait = async {
        loop {
            let mut done = false;
            let n = split_frames(rbuf, |f| {
                if f.channel == 0 && f.method_id() == Some((10, 51)) {
                    done = true;
                }
                Ok(())
            })?;
            rbuf.advance(n);
            if done {
                return Ok(());
            }
            if rbuf.capacity() - rbuf.len() < 4096 {
                rbuf.reserve(64 * 1024);
            }
            if rd.read_buf(rbuf).await? == 0 {
                return Ok(());
            }
        }
    };
    tokio::time::timeout(CLOSE_TIMEOUT, wait)
        .await
        .map_err(|_| anyhow!("no close-ok within {CLOSE_TIMEOUT:?}"))?
}

#[derive(Debug, Clone, Default)]
pub struct QueueOptions {
    pub durable: bool,
    pub quorum: bool,
    pub passive: bool,
}

fn short(s: &str) -> Result<ShortString> {
    ShortString::try_new(s).map_err(|e| anyhow!("{s:?}: {e}"))
}

fn client_properties(name: &str) -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in ["publisher_confirms", "consumer_cancel_notify", "basic.nack", "connection.blocked"] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    props.insert("product".into(), AMQPValue::LongString("warren-perf".into()));
    props.insert("version".into(), AMQPValue::LongString(env!("CARGO_PKG_VERSION").into()));
    props.insert("connection_name".into(), AMQPValue::LongString(name.into()));
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props
}
