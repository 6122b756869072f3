//! A raw AMQP client for bad-input tests: it speaks just enough of the
//! protocol to open a connection and channel, then sends whatever bytes a
//! test wants, and reads back frames.

use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, channel, connection};
use amq_protocol::types::{AMQPValue, FieldTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// Client properties announcing these capabilities.
pub fn client_properties(capabilities: &[&str]) -> FieldTable {
    let mut caps = FieldTable::default();
    for c in capabilities {
        caps.insert((*c).into(), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props
}

pub fn encode(f: &AMQPFrame) -> Vec<u8> {
    cookie_factory::gen_simple(gen_frame(f), Vec::new()).expect("encode")
}

impl Raw {
    pub async fn connect(addr: &str) -> Raw {
        Raw { stream: TcpStream::connect(addr).await.expect("tcp connect"), buf: Vec::new() }
    }

    /// Connects from a chosen local address, such as 127.0.0.2: any of
    /// 127/8 is a loopback address of its own, so tests can be several
    /// clients at once.
    pub async fn connect_from(addr: &str, from: std::net::IpAddr) -> Raw {
        let to: std::net::SocketAddr = addr.parse().expect("a socket address");
        let socket =
            if to.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() };
        let socket = socket.expect("socket");
        socket.bind((from, 0).into()).expect("bind the local address");
        Raw { stream: socket.connect(to).await.expect("tcp connect"), buf: Vec::new() }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    pub async fn send_frame(&mut self, f: AMQPFrame) {
        let b = encode(&f);
        self.send(&b).await;
    }

    /// Reads raw bytes until the peer closes or `timeout` passes.
    pub async fn read_until_closed(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let mut out = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        let closed = loop {
            match tokio::time::timeout(timeout, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
                Err(_) => break false,
            }
        };
        (out, closed)
    }

    /// Reads the next frame (None when the connection closes or times out).
    pub async fn frame(&mut self, timeout: Duration) -> Option<AMQPFrame> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok((rest, f)) = parse_frame(&self.buf[..]) {
                let used = self.buf.len() - rest.len();
                self.buf.drain(..used);
                return Some(f);
            }
            match tokio::time::timeout(timeout, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Waits for a method frame, skipping heartbeats.
    pub async fn method(&mut self, timeout: Duration) -> Option<(u16, AMQPClass)> {
        loop {
            match self.frame(timeout).await? {
                AMQPFrame::Method(ch, m) => return Some((ch, m)),
                _ => continue,
            }
        }
    }

    /// Protocol header, PLAIN login as guest, tune, open "/", and channel 1.
    pub async fn open(addr: &str) -> Raw {
        Self::open_with(addr, 0).await
    }

    pub async fn open_with(addr: &str, heartbeat: u16) -> Raw {
        Self::open_full(addr, heartbeat, &[]).await
    }

    /// Opens a connection announcing the given client capabilities.
    pub async fn open_full(addr: &str, heartbeat: u16, capabilities: &[&str]) -> Raw {
        let t = Duration::from_secs(5);
        let mut r = Raw::connect(addr).await;
        r.send(b"AMQP\x00\x00\x09\x01").await;
        let (_, start) = r.method(t).await.expect("connection.start");
        assert!(matches!(start, AMQPClass::Connection(connection::AMQPMethod::Start(_))));
        r.send_frame(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: client_properties(capabilities),
                mechanism: "PLAIN".into(),
                response: "\0guest\0guest".into(),
                locale: "en_US".into(),
            })),
        ))
        .await;
        let (_, tune) = r.method(t).await.expect("connection.tune");
        let AMQPClass::Connection(connection::AMQPMethod::Tune(tune)) = tune else {
            panic!("expected tune, got {tune:?}")
        };
        r.send_frame(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat,
            })),
        ))
        .await;
        r.send_frame(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: "/".into(),
            })),
        ))
        .await;
        let (_, ok) = r.method(t).await.expect("connection.open-ok");
        assert!(matches!(ok, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))), "{ok:?}");
        r.send_frame(AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))))
            .await;
        let (_, ok) = r.method(t).await.expect("channel.open-ok");
        assert!(matches!(ok, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))), "{ok:?}");
        r
    }

    /// Waits for the broker's connection.close and returns (code, text).
    /// Sends channel.open on `ch` and returns the reply (open-ok, or a
    /// close).
    pub async fn open_channel(&mut self, ch: u16, timeout: Duration) -> Option<(u16, AMQPClass)> {
        let open = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
        self.send_frame(AMQPFrame::Method(ch, open)).await;
        self.method(timeout).await
    }

    /// Opens channel `ch`, which must be answered open-ok.
    pub async fn channel_works(&mut self, ch: u16, timeout: Duration) {
        let ok = self.open_channel(ch, timeout).await;
        assert!(matches!(ok, Some((_, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))))), "{ok:?}");
    }

    pub async fn expect_connection_close(&mut self) -> (u16, String) {
        loop {
            match self.method(Duration::from_secs(5)).await {
                Some((0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
                    return (c.reply_code, c.reply_text.to_string());
                }
                Some(_) => continue,
                None => panic!("connection ended without connection.close"),
            }
        }
    }
}
