//! Frames on the wire: cutting them out of the read buffer and writing them
//! into the write buffer.
//!
//! `amq-protocol` parses and generates method frames and content headers. We
//! do the parts it leaves to us: read a frame's size field first and enforce
//! `frame_max` before buffering the payload, check the frame-end octet, keep
//! content bodies as `Bytes` without copying large ones, and split outgoing
//! bodies into `frame_max`-sized body frames.

use amq_protocol::protocol::{AMQPClass, basic, gen_class, parse_class};
use bytes::{Buf, Bytes, BytesMut};

use crate::broker::error::BrokerError;
use crate::broker::field_table;
use crate::broker::props::PropsView;

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// Type, channel and size, before the payload.
pub const FRAME_HEADER_SIZE: usize = 7;
/// Header plus end octet: what a frame costs beyond its payload.
pub const FRAME_OVERHEAD: usize = 8;
/// The smallest frame_max a peer may negotiate, and the limit before tune.
pub const FRAME_MIN_SIZE: u32 = 4096;
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// The most `read_frame` reserves ahead for a frame still arriving. Its
/// size field alone must not make the reader allocate what it announces:
/// with frame_max 0 (no limit, when warren.conf allows it) that is up to
/// 4 GiB from seven bytes (found by the `frames` fuzz target). A larger
/// frame grows the buffer as its bytes arrive.
const MAX_RESERVE_AHEAD: usize = 1024 * 1024;

/// Bodies at least this large are kept as slices of the read buffer; smaller
/// ones are copied, so a small message never pins a large buffer.
const ZERO_COPY_MIN: usize = 4096;

#[derive(Debug)]
pub enum Frame {
    Method(u16, AMQPClass),
    /// basic.publish, decoded by hand: the commonest method keeps its names
    /// as slices of the frame instead of new strings.
    Publish(u16, PublishMethod),
    /// A content header; the properties stay encoded (checked well-formed).
    Header {
        channel: u16,
        class_id: u16,
        body_size: u64,
        raw_properties: Bytes,
    },
    Body(u16, Bytes),
    Heartbeat(u16),
}

#[derive(Debug, Clone)]
pub struct PublishMethod {
    exchange: Bytes,
    routing_key: Bytes,
    pub mandatory: bool,
    pub immediate: bool,
}

impl PublishMethod {
    pub fn exchange(&self) -> &str {
        // Checked to be UTF-8 when the frame was read.
        std::str::from_utf8(&self.exchange).unwrap_or_default()
    }

    pub fn routing_key(&self) -> &str {
        std::str::from_utf8(&self.routing_key).unwrap_or_default()
    }
}

/// RabbitMQ prints a frame's payload in errors as an Erlang binary.
fn snippet(payload: &[u8]) -> String {
    let (label, bytes) = if payload.len() <= 16 { ("all", payload) } else { ("first 16", &payload[..16]) };
    let list: Vec<String> = bytes.iter().map(|b| b.to_string()).collect();
    format!("{label} octets = <<{}>>", list.join(","))
}

/// Cuts the next complete frame off the front of `buf`. `Ok(None)` means
/// more bytes are needed; the buffer is then reserved for the whole frame.
pub fn read_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, BrokerError> {
    if buf.len() < FRAME_HEADER_SIZE {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    // Like RabbitMQ, allow clients that get the limit wrong by the frame
    // overhead, which is a common off-by-eight mistake.
    let max_payload = frame_max as usize;
    if frame_max != 0 && size > max_payload {
        return Err(BrokerError::frame_error(format!(
            "type {kind}, first 16 octets = <<>>: {{frame_too_large,{size},{}}}",
            max_payload.saturating_sub(FRAME_OVERHEAD)
        )));
    }
    let total = FRAME_HEADER_SIZE + size + 1;
    if buf.len() < total {
        buf.reserve((total - buf.len()).min(MAX_RESERVE_AHEAD));
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        let end = buf[total - 1];
        let payload = &buf[FRAME_HEADER_SIZE..total - 1];
        return Err(BrokerError::frame_error(format!(
            "type {kind}, {}: {{invalid_frame_end_marker,{end}}}",
            snippet(payload)
        )));
    }
    let mut frame = buf.split_to(total);
    frame.advance(FRAME_HEADER_SIZE);
    frame.truncate(size);
    match kind {
        FRAME_METHOD => parse_method(channel, frame).map(Some),
        FRAME_HEADER => parse_header(channel, frame).map(Some),
        FRAME_BODY => {
            let body = if size >= ZERO_COPY_MIN { frame.freeze() } else { Bytes::copy_from_slice(&frame) };
            Ok(Some(Frame::Body(channel, body)))
        }
        FRAME_HEARTBEAT => Ok(Some(Frame::Heartbeat(channel))),
        _ => Err(BrokerError::frame_error(format!("type {kind}, {}: unknown_frame", snippet(&frame)))),
    }
}

/// Known (class, method) pairs of AMQP 0-9-1 as RabbitMQ speaks it.
fn is_known_method(class: u16, method: u16) -> bool {
    match class {
        10 => matches!(method, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51 | 60 | 61 | 70 | 71),
        20 => matches!(method, 10 | 11 | 20 | 21 | 40 | 41),
        30 => matches!(method, 10 | 11),
        40 => matches!(method, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 51),
        50 => matches!(method, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51),
        60 => matches!(
            method,
            10 | 11 | 20 | 21 | 30 | 31 | 40 | 50 | 60 | 70 | 71 | 72 | 80 | 90 | 100 | 110 | 111 | 120
        ),
        85 => matches!(method, 10 | 11),
        90 => matches!(method, 10 | 11 | 20 | 21 | 30 | 31),
        _ => false,
    }
}

/// basic.publish: ticket (u16), exchange, routing key (short strings),
/// mandatory and immediate bits.
fn parse_publish(channel: u16, b: Bytes) -> Option<Frame> {
    let mut at = 6; // class, method, reserved ticket
    let mut short = |b: &Bytes| -> Option<Bytes> {
        let n = usize::from(*b.get(at)?);
        let s = b.get(at + 1..at + 1 + n)?;
        std::str::from_utf8(s).ok()?;
        let out = b.slice(at + 1..at + 1 + n);
        at += 1 + n;
        Some(out)
    };
    let exchange = short(&b)?;
    let routing_key = short(&b)?;
    let bits = *b.get(at)?;
    if b.len() != at + 1 {
        return None;
    }
    Some(Frame::Publish(
        channel,
        PublishMethod { exchange, routing_key, mandatory: bits & 1 != 0, immediate: bits & 2 != 0 },
    ))
}

/// basic.ack: delivery tag (u64) and the multiple bit.
fn parse_ack(channel: u16, payload: &[u8]) -> Option<Frame> {
    if payload.len() != 4 + 8 + 1 {
        return None;
    }
    let delivery_tag = u64::from_be_bytes(payload[4..12].try_into().ok()?);
    let multiple = payload[12] & 1 != 0;
    Some(Frame::Method(
        channel,
        AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack { delivery_tag, multiple })),
    ))
}

fn parse_method(channel: u16, payload: BytesMut) -> Result<Frame, BrokerError> {
    if payload.len() < 4 {
        return Err(BrokerError::frame_error(format!("type 1, {}: short_method", snippet(&payload))));
    }
    let class = u16::from_be_bytes([payload[0], payload[1]]);
    let method = u16::from_be_bytes([payload[2], payload[3]]);
    if !is_known_method(class, method) {
        return Err(BrokerError::not_implemented(format!("unknown method: class {class}, method {method}")));
    }
    let malformed = |payload: &[u8]| {
        BrokerError::frame_error(format!(
            "cannot decode method class {class} method {method}: {}",
            snippet(payload)
        ))
    };
    if let Some(at) = table_argument_at(class, method, &payload) {
        field_table::check(&payload[at..]).map_err(|e| {
            e.into_broker_error(&format!("method class {class} method {method}: its argument table"))
        })?;
    }
    match (class, method) {
        (60, 40) => {
            let b = payload.freeze();
            return parse_publish(channel, b.clone()).ok_or_else(|| malformed(&b));
        }
        (60, 80) => return parse_ack(channel, &payload).ok_or_else(|| malformed(&payload)),
        _ => {}
    }
    match parse_class(&payload[..]) {
        Ok((rest, m)) if rest.is_empty() => Ok(Frame::Method(channel, m)),
        _ => Err(malformed(&payload)),
    }
}

/// Where the field table of a method from a client starts, for the methods
/// that carry one; None when the fields before it are cut short (the
/// method's decoder then refuses it). The table is checked before the
/// recursive decoder sees it ([`field_table`]).
fn table_argument_at(class: u16, method: u16, payload: &[u8]) -> Option<usize> {
    /// The fields before the table: a u16, a short string, a byte of bits.
    enum F {
        U16,
        Short,
        Bits,
    }
    use F::*;
    let before: &[F] = match (class, method) {
        (10, 11) => &[],                                          // start-ok: client properties first
        (40, 10) => &[U16, Short, Short, Bits],                   // exchange.declare
        (40, 30) | (40, 40) => &[U16, Short, Short, Short, Bits], // exchange.bind, unbind
        (50, 10) => &[U16, Short, Bits],                          // queue.declare
        (50, 20) => &[U16, Short, Short, Short, Bits],            // queue.bind
        (50, 50) => &[U16, Short, Short, Short],                  // queue.unbind
        (60, 20) => &[U16, Short, Short, Bits],                   // basic.consume
        _ => return None,
    };
    let mut at = 4;
    for f in before {
        at += match f {
            U16 => 2,
            Short => 1 + usize::from(*payload.get(at)?),
            Bits => 1,
        };
    }
    (at < payload.len()).then_some(at)
}

/// A content header: class (u16), weight (u16), body size (u64), then the
/// properties, which are checked well-formed but left encoded.
fn parse_header(channel: u16, payload: BytesMut) -> Result<Frame, BrokerError> {
    let view = if payload.len() >= 14 { PropsView::scan(&payload[12..]) } else { None };
    let Some(view) = view else {
        return Err(BrokerError::frame_error(format!(
            "type 2, {}: cannot decode content header",
            snippet(&payload)
        )));
    };
    if let Some(headers) = view.raw_headers() {
        field_table::check(headers)
            .map_err(|e| e.into_broker_error("content header: the headers property"))?;
    }
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    let body_size = u64::from_be_bytes(payload[4..12].try_into().unwrap_or_default());
    let raw_properties = payload.freeze().slice(12..);
    Ok(Frame::Header { channel, class_id, body_size, raw_properties })
}

/// The write buffer of a connection, with helpers that append frames.
#[derive(Default)]
pub struct FrameWriter {
    pub buf: Vec<u8>,
    /// Bytes of `buf` already written to the socket.
    pub pos: usize,
    pub frame_max: u32,
    scratch: Vec<u8>,
}

impl FrameWriter {
    pub fn new(frame_max: u32) -> Self {
        FrameWriter {
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
            frame_max,
            scratch: Vec::with_capacity(256),
        }
    }

    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Forgets what has been written; keeps the allocation unless it grew
    /// large.
    pub fn consumed(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > 4 * 1024 * 1024 {
                self.buf.shrink_to(64 * 1024);
            }
        }
    }

    pub fn unwritten(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn method(&mut self, channel: u16, method: &AMQPClass) {
        // Encode into a scratch buffer first: a failed generation consumes
        // the buffer it writes into, and must not take the pending output
        // with it. It can only fail on a method value we built wrongly.
        let scratch = std::mem::take(&mut self.scratch);
        let encoded = match cookie_factory::gen_simple(gen_class(method), scratch) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode method {method:?}: {e:?}");
                return;
            }
        };
        self.buf.push(FRAME_METHOD);
        self.buf.extend_from_slice(&channel.to_be_bytes());
        self.buf.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(&encoded);
        self.buf.push(FRAME_END);
        self.scratch = encoded;
        self.scratch.clear();
    }

    /// A content header and the body frames for a basic-class message.
    pub fn content(&mut self, channel: u16, raw_properties: &[u8], body: &[u8]) {
        let ch = channel.to_be_bytes();
        let header_size = (12 + raw_properties.len()) as u32;
        self.buf.reserve(FRAME_OVERHEAD * 2 + header_size as usize + body.len());
        self.buf.push(FRAME_HEADER);
        self.buf.extend_from_slice(&ch);
        self.buf.extend_from_slice(&header_size.to_be_bytes());
        self.buf.extend_from_slice(&60u16.to_be_bytes());
        self.buf.extend_from_slice(&0u16.to_be_bytes());
        self.buf.extend_from_slice(&(body.len() as u64).to_be_bytes());
        self.buf.extend_from_slice(raw_properties);
        self.buf.push(FRAME_END);
        let chunk = (self.frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1);
        for part in body.chunks(chunk) {
            self.buf.push(FRAME_BODY);
            self.buf.extend_from_slice(&ch);
            self.buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
            self.buf.extend_from_slice(part);
            self.buf.push(FRAME_END);
        }
    }

    /// Starts a method frame of `class`/`method`; returns where its size goes.
    fn begin_method(&mut self, channel: u16, class: u16, method: u16) -> usize {
        self.buf.push(FRAME_METHOD);
        self.buf.extend_from_slice(&channel.to_be_bytes());
        let size_at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&method.to_be_bytes());
        size_at
    }

    fn end_method(&mut self, size_at: usize) {
        let size = (self.buf.len() - size_at - 4) as u32;
        self.buf[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
        self.buf.push(FRAME_END);
    }

    fn short_str(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(255)];
        self.buf.push(b.len() as u8);
        self.buf.extend_from_slice(b);
    }

    /// basic.deliver, written by hand: it is the commonest frame we send.
    pub fn deliver(
        &mut self,
        ch: u16,
        tag: &str,
        delivery_tag: u64,
        redelivered: bool,
        exchange: &str,
        key: &str,
    ) {
        let at = self.begin_method(ch, 60, 60);
        self.short_str(tag);
        self.buf.extend_from_slice(&delivery_tag.to_be_bytes());
        self.buf.push(u8::from(redelivered));
        self.short_str(exchange);
        self.short_str(key);
        self.end_method(at);
    }

    /// basic.ack or basic.nack (publisher confirms).
    pub fn confirm(&mut self, ch: u16, ack: bool, delivery_tag: u64, multiple: bool) {
        let at = self.begin_method(ch, 60, if ack { 80 } else { 120 });
        self.buf.extend_from_slice(&delivery_tag.to_be_bytes());
        self.buf.push(u8::from(multiple));
        self.end_method(at);
    }

    pub fn heartbeat(&mut self) {
        self.buf.extend_from_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::{AMQPFrame, gen_frame};
    use amq_protocol::protocol::{BasicProperties, queue};

    fn encode(frame: &AMQPFrame) -> Vec<u8> {
        cookie_factory::gen_simple(gen_frame(frame), Vec::new()).unwrap()
    }

    #[test]
    fn method_round_trip_through_our_writer_and_reader() {
        let m = AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
            queue: "q".into(),
            message_count: 3,
            consumer_count: 1,
        }));
        let mut w = FrameWriter::new(131072);
        w.method(7, &m);
        assert_eq!(w.buf, encode(&AMQPFrame::Method(7, m.clone())));
        let mut buf = BytesMut::from(&w.buf[..]);
        match read_frame(&mut buf, 131072).unwrap() {
            Some(Frame::Method(7, parsed)) => assert_eq!(parsed, m),
            other => panic!("unexpected {other:?}"),
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let bytes = encode(&AMQPFrame::Heartbeat);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert!(read_frame(&mut buf, 4096).unwrap().is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn content_is_split_by_frame_max_and_read_back() {
        let props =
            crate::broker::message::encode_properties(&BasicProperties::default().with_delivery_mode(2));
        let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut w = FrameWriter::new(4096);
        w.content(1, &props, &body);
        let mut buf = BytesMut::from(&w.buf[..]);
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(f) = read_frame(&mut buf, 4096).unwrap() {
            frames += 1;
            match f {
                Frame::Header { body_size, raw_properties, .. } => {
                    assert_eq!(body_size, 10_000);
                    assert!(PropsView::scan(&raw_properties).unwrap().persistent());
                }
                Frame::Body(1, b) => {
                    assert!(b.len() <= 4096 - 8);
                    got.extend_from_slice(&b);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, body);
        assert_eq!(frames, 1 + 3);
    }

    #[test]
    fn hand_written_hot_frames_match_the_codec() {
        let mut w = FrameWriter::new(131072);
        w.deliver(3, "ctag", 42, true, "ex", "rk");
        w.confirm(3, true, 7, true);
        w.confirm(3, false, 8, false);
        let expected = [
            AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: "ctag".into(),
                delivery_tag: 42,
                redelivered: true,
                exchange: "ex".into(),
                routing_key: "rk".into(),
            })),
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: 7, multiple: true })),
            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
                delivery_tag: 8,
                multiple: false,
                requeue: false,
            })),
        ];
        let mut all = Vec::new();
        for m in &expected {
            all.extend(encode(&AMQPFrame::Method(3, m.clone())));
        }
        assert_eq!(w.buf, all);
        // And our reader takes acks by hand too.
        let mut buf = BytesMut::from(&all[..]);
        read_frame(&mut buf, 4096).unwrap();
        match read_frame(&mut buf, 4096).unwrap() {
            Some(Frame::Method(3, m)) => assert_eq!(m, expected[1]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_end_octet_and_oversized_frames_are_frame_errors() {
        let mut bytes = encode(&AMQPFrame::Heartbeat);
        *bytes.last_mut().unwrap() = 0;
        let e = read_frame(&mut BytesMut::from(&bytes[..]), 4096).unwrap_err();
        assert_eq!(e.reply_code(), 501);
        assert!(e.message.contains("invalid_frame_end_marker"));

        let mut big = vec![FRAME_BODY, 0, 1];
        big.extend_from_slice(&100_000u32.to_be_bytes());
        let e = read_frame(&mut BytesMut::from(&big[..]), 4096).unwrap_err();
        assert!(e.message.contains("frame_too_large"), "{}", e.message);
    }

    #[test]
    fn unknown_methods_and_garbage_arguments() {
        let mut f = vec![FRAME_METHOD, 0, 1, 0, 0, 0, 4, 0, 99, 0, 1, FRAME_END];
        let e = read_frame(&mut BytesMut::from(&f[..]), 4096).unwrap_err();
        assert_eq!(e.reply_code(), 540);
        // basic.publish (60, 40) with a truncated argument list.
        f = vec![FRAME_METHOD, 0, 1, 0, 0, 0, 6, 0, 60, 0, 40, 0, 0, FRAME_END];
        let e = read_frame(&mut BytesMut::from(&f[..]), 4096).unwrap_err();
        assert_eq!(e.reply_code(), 501);
        let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: "q".into(),
            mandatory: false,
            immediate: false,
        }));
        let ok = encode(&AMQPFrame::Method(1, publish.clone()));
        match read_frame(&mut BytesMut::from(&ok[..]), 4096).unwrap() {
            Some(Frame::Publish(1, p)) => {
                assert_eq!(
                    (p.exchange(), p.routing_key(), p.mandatory, p.immediate),
                    ("", "q", false, false)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
