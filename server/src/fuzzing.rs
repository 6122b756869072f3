//! Entry points of the fuzz targets (`fuzz/`, built with `cargo fuzz`),
//! compiled only for tests and fuzz builds (`cfg(fuzzing)`), never into
//! the server binary.
//!
//! Each function takes arbitrary bytes, feeds them to the part of the
//! broker that reads untrusted input (frames, field tables, binding keys,
//! `warren.conf`, definitions, the HTTP API's JSON bodies) and panics when
//! that part panics or gives a wrong answer (a property that must hold for
//! every input, checked here). The fuzz targets are one-line calls of
//! these, and a unit test below replays every committed corpus and
//! regression input through them, so what a fuzzing campaign found once
//! stays fixed under a plain `cargo test`.

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, channel, parse_class};
use amq_protocol::types::FieldTable;
use amq_protocol::types::generation::gen_field_table;
use amq_protocol::types::parsing::parse_field_table;
use bytes::BytesMut;
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::amqp::channel::Channel;
use crate::amqp::codec::{FRAME_HEADER_SIZE, Frame, FrameWriter, PROTOCOL_HEADER, read_frame};
use crate::amqp::session::{ClientCaps, Ctx, Session};
use crate::broker::Broker;
use crate::broker::consumer::Outbound;
use crate::broker::exchange::topic::TopicTrie;
use crate::broker::exchange::{Destination, Exchange};
use crate::broker::field_table;
use crate::broker::message::{decode_properties, encode_properties};
use crate::broker::props::PropsView;
use crate::definitions::ExchangeType;

/// The most a read buffer may hold beyond twice the input given to it
/// (BytesMut may double its capacity when it grows): a frame header must
/// not make the reader reserve its whole announced size.
const READ_BUFFER_SLACK: usize = 4 * 1024 * 1024;

/// `frames`: the frame reader on a byte stream, fed in chunks as a socket
/// would. The first byte picks frame_max (4096, 131072 or 0, no limit) and
/// the chunk size. Checks: no panic; waiting for more bytes consumes none
/// and does not reserve far beyond what arrived; a method frame encodes
/// back to a frame that reads as the same method; a content header's
/// properties decode, its headers table included.
pub fn frames(data: &[u8]) {
    let Some((&first, stream)) = data.split_first() else { return };
    let frame_max = [4096, 131_072, 0][usize::from(first % 3)];
    let chunk = usize::from(first / 3) * 7 + 1;
    let mut buf = BytesMut::new();
    let mut fed = 0;
    while fed < stream.len() {
        let next = (fed + chunk).min(stream.len());
        buf.extend_from_slice(&stream[fed..next]);
        fed = next;
        loop {
            let before = buf.len();
            match read_frame(&mut buf, frame_max) {
                Ok(None) => {
                    assert_eq!(buf.len(), before, "a partial frame consumed bytes");
                    assert!(
                        buf.capacity() <= 2 * stream.len() + READ_BUFFER_SLACK,
                        "reserved {} bytes for {} bytes of input",
                        buf.capacity(),
                        stream.len()
                    );
                    break;
                }
                Ok(Some(frame)) => check_frame(frame),
                Err(_) => return,
            }
        }
    }
}

fn check_frame(frame: Frame) {
    match frame {
        Frame::Method(ch, m) => {
            let mut w = FrameWriter::new(0);
            w.method(ch, &m);
            assert!(!w.buf.is_empty(), "a decoded method does not encode: {m:?}");
            let payload = &w.buf[FRAME_HEADER_SIZE..w.buf.len() - 1];
            match parse_class(payload) {
                Ok((rest, again)) => {
                    assert!(rest.is_empty());
                    assert_eq!(again, m, "a method does not survive encoding");
                }
                Err(e) => panic!("a decoded method encodes to something unreadable: {m:?}: {e:?}"),
            }
        }
        Frame::Publish(_, p) => {
            let _ = (p.exchange(), p.routing_key());
        }
        Frame::Header { raw_properties, .. } => {
            let view = PropsView::scan(&raw_properties).expect("accepted properties scan");
            let _ = view.headers();
            let _ = view.expiration_ms();
            assert!(decode_properties(&raw_properties).is_some(), "accepted properties do not decode");
        }
        Frame::Body(..) | Frame::Heartbeat(_) => {}
    }
}

/// At most this many frames of one input reach the channels.
const MAX_CHANNEL_FRAMES: usize = 512;

/// `channel`: a client's byte stream (as a capture of real traffic has it:
/// the protocol header and the connection's handshake methods, which are
/// skipped) read into frames and handed to channels of a connection to an
/// in-memory broker, as the connection task does: methods to the
/// channel's handlers (declares, binds, consumes, acks, confirms, tx),
/// content frames assembled into messages and routed. A fresh broker
/// per input. Checks: no panic, no unbounded allocation.
pub fn channel(data: &[u8]) {
    let data = data.strip_prefix(&PROTOCOL_HEADER[..]).unwrap_or(data);
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    rt.block_on(run_channels(data));
}

async fn run_channels(data: &[u8]) {
    let broker = Broker::in_memory();
    broker
        .apply_in_memory(crate::definitions::DefinitionCommand::SetPermissions {
            vhost: "/".into(),
            user: "guest".into(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        })
        .expect("guest's permissions");
    let vhost = broker.vhost("/").expect("the default vhost");
    let user = broker.auth.user("guest").expect("the default user");
    let outbox = Arc::new(crate::broker::consumer::Outbox::default());
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 5672).into();
    let info = Arc::new(crate::broker::connections::ConnectionInfo {
        id: 1,
        name: "fuzz".into(),
        peer: addr,
        local: addr,
        user: user.name.clone(),
        vhost: "/".into(),
        connected_at: std::time::SystemTime::now(),
        client_properties: FieldTable::default(),
        frame_max: 131_072,
        channel_max: 16,
        heartbeat: 0,
        auth_mechanism: "PLAIN".into(),
        tls: None,
        outbox: outbox.clone(),
        channels: Default::default(),
        recv_oct: Default::default(),
        send_oct: Default::default(),
        channel_stats: Default::default(),
    });
    let s = Session {
        broker: broker.clone(),
        vhost,
        user,
        conn_id: 1,
        outbox,
        info,
        caps: ClientCaps { consumer_cancel_notify: true, connection_blocked: true },
    };
    let mut out = FrameWriter::new(131_072);
    let (mut exclusive, mut kick, mut auto_deletes, mut confirms) = (vec![], vec![], vec![], vec![]);
    let mut channels: FxHashMap<u16, Channel> = FxHashMap::default();
    let mut buf = BytesMut::from(data);
    for _ in 0..MAX_CHANNEL_FRAMES {
        let frame = match read_frame(&mut buf, 131_072) {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => break,
        };
        let ch = match &frame {
            Frame::Method(ch, _) | Frame::Publish(ch, _) | Frame::Body(ch, _) | Frame::Heartbeat(ch) => *ch,
            Frame::Header { channel, .. } => *channel,
        };
        if ch == 0 || ch > 16 {
            // The connection's own methods (the handshake, close) and
            // channels beyond channel_max are the connection's business.
            continue;
        }
        if let Frame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Open(_))) = frame {
            if channels.contains_key(&ch) {
                break; // a connection error
            }
            channels.insert(ch, Channel::new(ch, broker.next_id()));
            continue;
        }
        if let Frame::Method(_, AMQPClass::Channel(_)) = frame {
            // close or close-ok, flow: the channel goes.
            if let Some(mut c) = channels.remove(&ch) {
                let mut ctx = Ctx {
                    s: &s,
                    out: &mut out,
                    exclusive_queues: &mut exclusive,
                    kick: &mut kick,
                    auto_deletes: &mut auto_deletes,
                    confirms: &mut confirms,
                };
                c.release_all(&mut ctx);
            }
            continue;
        }
        let Some(c) = channels.get_mut(&ch) else { break };
        let mut ctx = Ctx {
            s: &s,
            out: &mut out,
            exclusive_queues: &mut exclusive,
            kick: &mut kick,
            auto_deletes: &mut auto_deletes,
            confirms: &mut confirms,
        };
        let result = match frame {
            Frame::Method(_, m) => c.handle(&mut ctx, m).await,
            Frame::Publish(_, p) => c.on_publish(&mut ctx, p),
            Frame::Header { class_id, body_size, raw_properties, .. } => {
                c.on_header(&mut ctx, class_id, body_size, raw_properties)
            }
            Frame::Body(_, body) => c.on_body(&mut ctx, body),
            Frame::Heartbeat(_) => {
                Err((crate::broker::error::BrokerError::unexpected_frame("heartbeat"), 0, 0))
            }
        };
        if let Err((e, _, _)) = result {
            if e.kind.is_hard() {
                break;
            }
            c.release_all(&mut ctx);
            channels.remove(&ch);
        }
        // What the connection does after a batch of frames: confirms,
        // dispatches, deliveries and cancellations from the outbox.
        for ch in confirms.drain(..) {
            if let Some(c) = channels.get_mut(&ch) {
                let _ = c.take_confirms();
            }
        }
        for q in kick.drain(..) {
            q.dispatch();
        }
        auto_deletes.clear();
        let mut items = Vec::new();
        s.outbox.take(&mut items);
        let n = items.len();
        for item in items {
            match item {
                Outbound::Deliver { consumer, queue, msg } => {
                    if let Some(c) = channels.get_mut(&consumer.channel) {
                        let mut ctx = Ctx {
                            s: &s,
                            out: &mut out,
                            exclusive_queues: &mut exclusive,
                            kick: &mut kick,
                            auto_deletes: &mut auto_deletes,
                            confirms: &mut confirms,
                        };
                        let _ = c.write_delivery(&mut ctx, consumer, queue, msg);
                    }
                }
                Outbound::Cancelled { consumer } => {
                    if let Some(c) = channels.get_mut(&consumer.channel) {
                        c.forget_consumer(&consumer);
                    }
                }
                _ => {}
            }
        }
        s.outbox.written(n);
        // Keep what the connection would have written from piling up.
        out.consumed(out.pending());
    }
    for (_, mut c) in channels.drain() {
        let mut ctx = Ctx {
            s: &s,
            out: &mut out,
            exclusive_queues: &mut exclusive,
            kick: &mut kick,
            auto_deletes: &mut auto_deletes,
            confirms: &mut confirms,
        };
        c.release_all(&mut ctx);
    }
}

/// `field_table`: the wire check of field tables, against amq-protocol's
/// decoder. Checks: whatever the check accepts decodes to the same length,
/// is no deeper than the limit, and encodes back to bytes the check
/// accepts and that decode to the same table.
pub fn field_table(data: &[u8]) {
    let Ok(n) = field_table::check(data) else { return };
    let (rest, table) = match parse_field_table::<&[u8]>(data) {
        Ok(ok) => ok,
        Err(e) => panic!("accepted but undecodable: {e:?}"),
    };
    assert_eq!(data.len() - rest.len(), n, "the check and the decoder disagree on the length");
    assert!(field_table::depth(&table) <= field_table::MAX_DEPTH);
    check_table_round_trip(&table);
}

/// A table the broker built must encode to bytes its own check accepts and
/// that decode to the same table.
fn check_table_round_trip(table: &FieldTable) {
    let encoded = cookie_factory::gen_simple(gen_field_table(table), Vec::new()).expect("a table encodes");
    assert_eq!(field_table::check(&encoded), Ok(encoded.len()), "an encoded table is refused");
    let (_, again) = parse_field_table::<&[u8]>(&encoded[..]).expect("an encoded table decodes");
    // NaN is not equal to itself: compare the encodings instead.
    let twice = cookie_factory::gen_simple(gen_field_table(&again), Vec::new()).expect("a table encodes");
    assert_eq!(encoded, twice, "a table changes through encode and decode");
}

/// At most this many binding keys per input.
const MAX_BINDINGS: usize = 16;

/// `topic`: the topic exchange's trie against a plain matcher written here.
/// The input is lines: binding keys, then the routing key last. Checks:
/// the trie routes to exactly the bindings the reference matches, also
/// after half of them are removed.
pub fn topic(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.split('\n').collect();
    let Some(key) = lines.pop() else { return };
    // AMQP short strings: keys of at most 255 bytes.
    if key.len() > 255 || lines.iter().any(|l| l.len() > 255) {
        return;
    }
    lines.truncate(MAX_BINDINGS);
    let dests: Vec<Destination> = (0..lines.len())
        .map(|i| {
            Destination::Exchange(Arc::new(Exchange::new(
                i.to_string().into(),
                "/".into(),
                ExchangeType::Fanout,
                false,
                false,
                false,
                FieldTable::default(),
            )))
        })
        .collect();
    let mut trie = TopicTrie::default();
    for (pattern, d) in lines.iter().zip(&dests) {
        trie.add(pattern, d.clone());
    }
    let routed = |trie: &TopicTrie| {
        let mut out = Vec::new();
        trie.route(key, &mut out);
        let mut ids: Vec<usize> = out.iter().map(|d| d.name().parse().expect("an index")).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let expected = |live: &dyn Fn(usize) -> bool| -> Vec<usize> {
        (0..lines.len()).filter(|&i| live(i) && reference_topic_match(lines[i], key)).collect()
    };
    assert_eq!(routed(&trie), expected(&|_| true), "bindings {lines:?}, key {key:?}");
    for (i, (pattern, d)) in lines.iter().zip(&dests).enumerate() {
        if i % 2 == 1 {
            trie.remove(pattern, d);
        }
    }
    assert_eq!(routed(&trie), expected(&|i| i % 2 == 0), "after removals: bindings {lines:?}, key {key:?}");
}

/// Topic matching as AMQP defines it, by dynamic programming over words:
/// `*` is exactly one word, `#` zero or more; the empty key has no words.
fn reference_topic_match(pattern: &str, key: &str) -> bool {
    let split = |s: &str| -> Vec<String> {
        if s.is_empty() { Vec::new() } else { s.split('.').map(str::to_owned).collect() }
    };
    let (p, k) = (split(pattern), split(key));
    // m[i][j]: the first i pattern words match the first j key words.
    let mut m = vec![vec![false; k.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        for j in 0..=k.len() {
            m[i][j] = match p[i - 1].as_str() {
                "#" => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                "*" => j > 0 && m[i - 1][j - 1],
                w => j > 0 && m[i - 1][j - 1] && k[j - 1] == w,
            };
        }
    }
    m[p.len()][k.len()]
}

/// `conf`: `warren.conf` text applied to the default settings. Checks: no
/// panic; a refusal names a line of the input.
pub fn conf(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut config = crate::config::Config::default();
    if let Err((line, _)) = crate::conf::apply(text, &mut config) {
        assert!(line <= text.lines().count().max(1), "error on line {line} of {}", text.lines().count());
    }
}

/// `definitions`: a definitions document (as `POST /api/definitions` and
/// `load_definitions` take it) parsed and checked into broker commands,
/// which are then applied to an in-memory broker. Checks: no panic; every
/// table in the commands round-trips through the wire encoding.
pub fn definitions(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let broker = Broker::in_memory();
    let Ok((cmds, limits)) = crate::http::api::definitions::import::parse_and_plan(&broker, body, None)
    else {
        return;
    };
    for (_, l) in &limits {
        let _ = crate::http::api::limits::check_limits(l);
    }
    for cmd in cmds {
        use crate::definitions::DefinitionCommand as C;
        match &cmd {
            C::DeclareExchange { arguments, .. }
            | C::DeclareQueue { arguments, .. }
            | C::Bind { arguments, .. } => check_table_round_trip(arguments),
            _ => {}
        }
        let _ = broker.apply_in_memory(cmd);
    }
}

/// `http_json`: a management API request body, as its handler reads and
/// checks it. The first byte picks the request type; the rest is the body.
/// Checks: no panic; tables and properties built from JSON are valid on the
/// wire (they reach AMQP clients and the store).
pub fn http_json(data: &[u8]) {
    use crate::http::amqp_json::{json_to_properties, json_to_table};
    use crate::http::extract::parse_body;
    use warren_api_types::requests as r;
    let Some((&which, body)) = data.split_first() else { return };
    let table = |args: &Option<Map<String, Value>>| {
        if let Some(t) = args.as_ref().and_then(|a| json_to_table(a).ok()) {
            check_table_round_trip(&t);
        }
    };
    match which % 12 {
        0 => {
            if let Ok(q) = parse_body::<r::DeclareQueue>(body) {
                table(&q.arguments);
                if let Some(n) = &q.name {
                    let _ = crate::http::error::check_name("queue", n);
                }
            }
        }
        1 => {
            if let Ok(x) = parse_body::<r::DeclareExchange>(body) {
                let _ = ExchangeType::parse(&x.kind);
                table(&x.arguments);
            }
        }
        2 => {
            if let Ok(b) = parse_body::<r::CreateBinding>(body) {
                table(&b.arguments);
            }
        }
        3 => {
            if let Ok(v) = parse_body::<r::PutVhost>(body) {
                if let Some(n) = &v.name {
                    let _ = crate::http::error::check_name("vhost", n);
                }
            }
        }
        4 => {
            if let Ok(u) = parse_body::<r::PutUser>(body) {
                if let Some(h) = &u.password_hash {
                    let _ = crate::http::api::users::given_hash(h, u.hashing_algorithm.as_deref());
                }
                if let Some(l) = &u.limits {
                    let _ = crate::http::api::limits::check_limits(l);
                }
            }
        }
        5 => {
            if let Ok(p) = parse_body::<r::PutPermission>(body) {
                let _ = crate::broker::auth::Permissions::new(&p.configure, &p.write, &p.read);
            }
        }
        6 => {
            if let Ok(p) = parse_body::<r::PutTopicPermission>(body) {
                let _ = crate::broker::auth::TopicPermission::new(&p.exchange, &p.write, &p.read);
            }
        }
        7 => {
            if let Ok(p) = parse_body::<r::PutParameter>(body) {
                let _ = crate::broker::parameters::validate_policy(&p.value);
            }
        }
        8 => {
            if let Ok(p) = parse_body::<r::PutPolicy>(body) {
                let value = serde_json::json!({"pattern": p.pattern, "definition": p.definition,
                    "priority": p.priority.map_or(0, |i| i.0),
                    "apply-to": p.apply_to.unwrap_or_else(|| "all".into())});
                if crate::broker::parameters::validate_policy(&value).is_ok() {
                    let _ =
                        crate::broker::parameters::validate_policy_keys(crate::definitions::POLICY, &value);
                }
            }
        }
        9 => {
            let _ = parse_body::<r::PutLimit>(body);
        }
        10 => {
            if let Ok(p) = parse_body::<r::Publish>(body) {
                if let Ok(props) = json_to_properties(&p.properties) {
                    let raw = encode_properties(&props);
                    let view = PropsView::scan(&raw).expect("encoded properties scan");
                    if let Some(h) = view.raw_headers() {
                        assert!(field_table::check(h).is_ok(), "encoded headers are refused");
                    }
                    assert!(decode_properties(&raw).is_some(), "encoded properties do not decode");
                }
            }
        }
        _ => {
            let _ = parse_body::<r::GetMessages>(body);
            let _ = parse_body::<r::Login>(body);
        }
    }
}

/// Every entry point by the name of its fuzz target (`fuzz/fuzz_targets/`).
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("frames", frames),
    ("channel", channel),
    ("field_table", field_table),
    ("topic", topic),
    ("conf", conf),
    ("definitions", definitions),
    ("http_json", http_json),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays `fuzz/corpus/<target>/*` and `fuzz/regressions/<target>/*`
    /// through the entry points, without libFuzzer.
    #[test]
    fn corpus_and_regressions_replay_cleanly() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut replayed = 0;
        for (name, run) in TARGETS {
            for kind in ["corpus", "regressions"] {
                let Ok(dir) = std::fs::read_dir(root.join(kind).join(name)) else { continue };
                let mut paths: Vec<_> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
                paths.sort();
                for path in paths {
                    let data = std::fs::read(&path).expect("a corpus file");
                    let result = std::panic::catch_unwind(|| run(&data));
                    assert!(result.is_ok(), "{name}: {} fails", path.display());
                    replayed += 1;
                }
            }
        }
        assert!(replayed > 0, "no corpus found under {}", root.display());
    }

    #[test]
    fn the_reference_topic_matcher() {
        for (p, k, m) in [
            ("#", "", true),
            ("", "", true),
            ("*", "", false),
            ("a.#.z", "a.z", true),
            ("a.#.z", "a.b.c.z", true),
            ("*.*", "a", false),
            ("a.*.#", "a.b", true),
            ("#.#", "x", true),
            ("a", "a.", false),
            ("a.", "a.", true),
        ] {
            assert_eq!(reference_topic_match(p, k), m, "{p:?} {k:?}");
        }
    }
}
