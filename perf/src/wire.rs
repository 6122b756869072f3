//! The hot frames, encoded and parsed by hand.
//!
//! Everything that happens once per message lives here: a publish (method,
//! content header and body frames) is a pre-encoded template into which the
//! body's timestamp is written; deliveries, confirms and acks are read and
//! written at fixed offsets. Rare methods go through `amq-protocol` in
//! [`crate::client`].
//!
//! A message body starts with a 16-byte stamp when it is large enough:
//! wall-clock nanoseconds (8 bytes), the producer's number (4 bytes) and
//! the producer's sequence number (4 bytes). Consumers turn it into latency
//! and per-producer order checks.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// Type, channel and size before the payload, and the end octet after it.
pub const FRAME_OVERHEAD: usize = 8;

pub const CLASS_BASIC: u16 = 60;
pub const BASIC_PUBLISH: u16 = 40;
pub const BASIC_RETURN: u16 = 50;
pub const BASIC_DELIVER: u16 = 60;
pub const BASIC_ACK: u16 = 80;
pub const BASIC_NACK: u16 = 120;

/// Property flag of `delivery-mode` in a basic content header.
const FLAG_DELIVERY_MODE: u16 = 1 << 12;

/// Nanoseconds on the wall clock: cheap (vDSO), and comparable between
/// processes on one machine, so a producer and a consumer need not share a
/// process for latency to mean something.
pub fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// One frame cut out of a read buffer, borrowing its payload.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub kind: u8,
    pub channel: u16,
    pub payload: &'a [u8],
}

impl RawFrame<'_> {
    /// `(class, method)` of a method frame.
    pub fn method_id(&self) -> Option<(u16, u16)> {
        if self.kind != FRAME_METHOD || self.payload.len() < 4 {
            return None;
        }
        let p = self.payload;
        Some((u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
    }
}

/// The first complete frame of `buf` and its length on the wire, or `None`
/// while it is incomplete.
pub fn next_frame(buf: &[u8]) -> Result<Option<(RawFrame<'_>, usize)>> {
    if buf.len() < FRAME_OVERHEAD {
        return Ok(None);
    }
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let total = size + FRAME_OVERHEAD;
    if buf.len() < total {
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        bail!("bad frame end octet {:#x} after a frame of type {}", buf[total - 1], buf[0]);
    }
    let frame =
        RawFrame { kind: buf[0], channel: u16::from_be_bytes([buf[1], buf[2]]), payload: &buf[7..7 + size] };
    Ok(Some((frame, total)))
}

/// Hands every complete frame at the front of `buf` to `f` and returns how
/// many bytes they took; a partial frame at the end is left for later.
pub fn split_frames(buf: &[u8], mut f: impl FnMut(RawFrame<'_>) -> Result<()>) -> Result<usize> {
    let mut pos = 0;
    while let Some((frame, len)) = next_frame(&buf[pos..])? {
        f(frame)?;
        pos += len;
    }
    Ok(pos)
}

/// The size of the frame starting at the front of `buf`, once its header is
/// there: lets a reader make room for a frame larger than its buffer.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 7).then(|| u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize + FRAME_OVERHEAD)
}

fn push_frame_header(out: &mut Vec<u8>, kind: u8, channel: u16, size: usize) {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(size as u32).to_be_bytes());
}

fn push_short_str(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// A pre-encoded publish: basic.publish, its content header and its body
/// frames, with the place of the body's stamp remembered.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    bytes: Vec<u8>,
    /// Offset of the first body byte within `bytes`, if there is a body.
    body_at: Option<usize>,
    body_len: usize,
}

pub struct PublishSpec<'a> {
    pub channel: u16,
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub mandatory: bool,
    pub persistent: bool,
    pub size: usize,
    pub frame_max: u32,
}

impl PublishTemplate {
    pub fn new(spec: &PublishSpec<'_>) -> Result<Self> {
        if spec.exchange.len() > 255 || spec.routing_key.len() > 255 {
            bail!("exchange names and routing keys are at most 255 bytes");
        }
        let mut out = Vec::with_capacity(64 + spec.size);
        // basic.publish: reserved short, exchange, routing key, bits.
        let method_len = 4 + 2 + 1 + spec.exchange.len() + 1 + spec.routing_key.len() + 1;
        push_frame_header(&mut out, FRAME_METHOD, spec.channel, method_len);
        out.extend_from_slice(&CLASS_BASIC.to_be_bytes());
        out.extend_from_slice(&BASIC_PUBLISH.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        push_short_str(&mut out, spec.exchange);
        push_short_str(&mut out, spec.routing_key);
        out.push(u8::from(spec.mandatory));
        out.push(FRAME_END);
        // Content header: class, weight, body size, property flags and the
        // delivery mode when persistent.
        let flags = if spec.persistent { FLAG_DELIVERY_MODE } else { 0 };
        push_frame_header(&mut out, FRAME_HEADER, spec.channel, 14 + usize::from(spec.persistent));
        out.extend_from_slice(&CLASS_BASIC.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(spec.size as u64).to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
        if spec.persistent {
            out.push(2);
        }
        out.push(FRAME_END);
        let body_at = (spec.size > 0).then_some(out.len() + 7);
        let chunk = (spec.frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1);
        let mut left = spec.size;
        while left > 0 {
            let n = left.min(chunk);
            push_frame_header(&mut out, FRAME_BODY, spec.channel, n);
            out.resize(out.len() + n, 0);
            out.push(FRAME_END);
            left -= n;
        }
        Ok(PublishTemplate { bytes: out, body_at, body_len: spec.size })
    }

    /// Bytes one message takes on the wire.
    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends one message stamped with `nanos`, `producer` and `seq`.
    #[inline]
    pub fn append(&self, out: &mut Vec<u8>, nanos: u64, producer: u32, seq: u32) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        if let Some(at) = self.body_at {
            let body = &mut out[start + at..];
            let mut stamp = [0u8; 16];
            stamp[..8].copy_from_slice(&nanos.to_be_bytes());
            stamp[8..12].copy_from_slice(&producer.to_be_bytes());
            stamp[12..].copy_from_slice(&seq.to_be_bytes());
            let n = self.body_len.min(16).min(body.len());
            body[..n].copy_from_slice(&stamp[..n]);
        }
    }
}

/// What a body's first bytes say about its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub nanos: u64,
    /// Producer and sequence number, present in bodies of 16 bytes or more.
    pub origin: Option<(u32, u32)>,
}

pub fn read_stamp(body: &[u8]) -> Option<Stamp> {
    if body.len() < 8 {
        return None;
    }
    let nanos = u64::from_be_bytes(body[..8].try_into().ok()?);
    let origin = (body.len() >= 16).then(|| {
        (
            u32::from_be_bytes(body[8..12].try_into().unwrap()),
            u32::from_be_bytes(body[12..16].try_into().unwrap()),
        )
    });
    Some(Stamp { nanos, origin })
}

/// The delivery tag of a basic.deliver method payload.
pub fn deliver_tag(payload: &[u8]) -> Option<u64> {
    let ctag_len = *payload.get(4)? as usize;
    let at = 5 + ctag_len;
    Some(u64::from_be_bytes(payload.get(at..at + 8)?.try_into().ok()?))
}

/// Delivery tag and `multiple` bit of a basic.ack or basic.nack payload.
pub fn ack_fields(payload: &[u8]) -> Option<(u64, bool)> {
    let tag = u64::from_be_bytes(payload.get(4..12)?.try_into().ok()?);
    Some((tag, payload.get(12)? & 1 != 0))
}

/// The body size announced by a content header payload.
pub fn header_body_size(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(4..12)?.try_into().ok()?))
}

/// Appends a basic.ack frame.
pub fn push_ack(out: &mut Vec<u8>, channel: u16, tag: u64, multiple: bool) {
    push_frame_header(out, FRAME_METHOD, channel, 13);
    out.extend_from_slice(&CLASS_BASIC.to_be_bytes());
    out.extend_from_slice(&BASIC_ACK.to_be_bytes());
    out.extend_from_slice(&tag.to_be_bytes());
    out.push(u8::from(multiple));
    out.push(FRAME_END);
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::{AMQPFrame, parse_frame};
    use amq_protocol::protocol::{AMQPClass, basic};

    fn spec(size: usize, persistent: bool, frame_max: u32) -> PublishSpec<'static> {
        PublishSpec {
            channel: 1,
            exchange: "ex",
            routing_key: "key",
            mandatory: true,
            persistent,
            size,
            frame_max,
        }
    }

    #[test]
    fn publish_template_parses_with_amq_protocol() {
        let t = PublishTemplate::new(&spec(20, true, 4096)).unwrap();
        let mut out = Vec::new();
        t.append(&mut out, 42, 7, 9);
        let (rest, f) = parse_frame(&out[..]).unwrap();
        match f {
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(p))) => {
                assert_eq!(p.exchange.as_str(), "ex");
                assert_eq!(p.routing_key.as_str(), "key");
                assert!(p.mandatory);
            }
            other => panic!("unexpected {other:?}"),
        }
        let (rest, f) = parse_frame(rest).unwrap();
        match f {
            AMQPFrame::Header(1, h) => {
                assert_eq!(h.body_size, 20);
                assert_eq!(h.properties.delivery_mode(), &Some(2));
            }
            other => panic!("unexpected {other:?}"),
        }
        let (rest, f) = parse_frame(rest).unwrap();
        match f {
            AMQPFrame::Body(1, b) => {
                assert_eq!(b.len(), 20);
                assert_eq!(read_stamp(&b), Some(Stamp { nanos: 42, origin: Some((7, 9)) }));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn large_bodies_are_split_and_small_ones_carry_what_fits() {
        let t = PublishTemplate::new(&spec(10_000, false, 4096)).unwrap();
        let mut out = Vec::new();
        t.append(&mut out, 1, 2, 3);
        let mut kinds = Vec::new();
        let used = split_frames(&out, |f| {
            kinds.push((f.kind, f.payload.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(used, out.len());
        assert_eq!(kinds.iter().filter(|k| k.0 == FRAME_BODY).map(|k| k.1).sum::<usize>(), 10_000);
        assert!(kinds.iter().all(|k| k.1 <= 4088));

        let t = PublishTemplate::new(&spec(4, false, 4096)).unwrap();
        let mut out = Vec::new();
        t.append(&mut out, u64::MAX, 0, 0);
        assert_eq!(&out[out.len() - 5..out.len() - 1], &[0xff; 4]);
    }

    #[test]
    fn split_frames_leaves_partial_frames() {
        let mut out = Vec::new();
        push_ack(&mut out, 3, 77, true);
        push_ack(&mut out, 3, 78, false);
        for cut in 0..out.len() {
            let mut n = 0;
            let used = split_frames(&out[..cut], |f| {
                assert_eq!(f.method_id(), Some((CLASS_BASIC, BASIC_ACK)));
                n += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(used, n * 21);
        }
        let mut tags = Vec::new();
        split_frames(&out, |f| {
            tags.push(ack_fields(f.payload).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(tags, vec![(77, true), (78, false)]);
    }

    #[test]
    fn deliver_fields() {
        let m = AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
            consumer_tag: "ctag-1".into(),
            delivery_tag: 123_456,
            redelivered: false,
            exchange: "".into(),
            routing_key: "q".into(),
        }));
        let frame = AMQPFrame::Method(1, m);
        let bytes = cookie_factory::gen_simple(amq_protocol::frame::gen_frame(&frame), Vec::new()).unwrap();
        split_frames(&bytes, |f| {
            assert_eq!(f.method_id(), Some((CLASS_BASIC, BASIC_DELIVER)));
            assert_eq!(deliver_tag(f.payload), Some(123_456));
            Ok(())
        })
        .unwrap();
    }
}
