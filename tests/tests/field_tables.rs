//! Field tables from clients that nest too deep, or use a type tag AMQP
//! does not have: one frame of this kind used to overflow a worker's stack
//! and abort the whole broker. Now the offender's connection is closed with
//! a clear error, every other client is served, and tables nested as deep
//! as the limit (far beyond what real clients send) come back unchanged.

use std::time::Duration;

use amq_protocol::types::parsing::parse_field_table;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;
use warren_tests::http::{Api, json};
use warren_tests::raw::Raw;
use warren_tests::{Server, unique};

const T: Duration = Duration::from_secs(5);
/// The broker's limit (server/src/broker/field_table.rs).
const MAX_DEPTH: usize = 32;

async fn still_serving(s: &Server) {
    let (_c, ch) = s.channel().await;
    let q = unique("alive");
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.basic_publish("".into(), q.as_str().into(), Default::default(), b"ok", BasicProperties::default())
        .await
        .unwrap();
    let m =
        ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("message");
    assert_eq!(m.delivery.data, b"ok");
}

/// A field table nested `levels` deep (1 is flat), encoded by hand, with an
/// array between tables when `arrays` is set.
fn nested(levels: usize, arrays: bool) -> Vec<u8> {
    let mut value: Vec<u8> = b"t\x01".to_vec();
    for level in 1..levels {
        let mut wrapped = Vec::new();
        if arrays && level % 2 == 1 {
            // [value]
            wrapped.push(b'A');
            wrapped.extend_from_slice(&(value.len() as u32).to_be_bytes());
        } else {
            // {"k": value}
            wrapped.push(b'F');
            wrapped.extend_from_slice(&((value.len() + 2) as u32).to_be_bytes());
            wrapped.extend_from_slice(b"\x01k");
        }
        wrapped.extend_from_slice(&value);
        value = wrapped;
    }
    let mut body = b"\x01k".to_vec();
    body.extend_from_slice(&value);
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(0xCE);
    f
}

fn short(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// basic.publish to the default exchange, a content header whose only
/// property is `headers` (the given encoded table), and a 2-byte body.
fn publish_with_headers(q: &str, headers: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 60, 0, 40, 0, 0];
    short(&mut m, "");
    short(&mut m, q);
    m.push(0);
    let mut h = vec![0, 60, 0, 0];
    h.extend_from_slice(&2u64.to_be_bytes());
    h.extend_from_slice(&(1u16 << 13).to_be_bytes());
    h.extend_from_slice(headers);
    let mut out = frame(1, 1, &m);
    out.extend(frame(2, 1, &h));
    out.extend(frame(3, 1, b"hi"));
    out
}

/// queue.declare with the given encoded arguments table.
fn declare_with_arguments(q: &str, arguments: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 50, 0, 10, 0, 0];
    short(&mut m, q);
    m.push(0);
    m.extend_from_slice(arguments);
    frame(1, 1, &m)
}

#[tokio::test]
async fn deeply_nested_headers_close_the_connection_not_the_broker() {
    let s = Server::start();
    let q = unique("deep");
    let (_c, ch) = s.channel().await;
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    // What crashed the broker: tables 2,000 deep, arrays 5,000 deep.
    for (levels, arrays) in [(2_000, false), (5_000, true), (MAX_DEPTH + 1, false)] {
        let mut r = Raw::open(&s.addr()).await;
        r.send(&publish_with_headers(&q, &nested(levels, arrays))).await;
        let (code, text) = r.expect_connection_close().await;
        assert_eq!(code, 501, "{levels} levels: {text}");
        assert!(text.contains("nested deeper than 32 levels"), "{text}");
        still_serving(&s).await;
    }
    let n = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    assert_eq!(n, 0, "no refused message was enqueued");
}

#[tokio::test]
async fn headers_nested_to_the_limit_are_delivered_unchanged() {
    let s = Server::start();
    let q = unique("limit");
    let (_c, ch) = s.channel().await;
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut r = Raw::open(&s.addr()).await;
    for arrays in [false, true] {
        let headers = nested(MAX_DEPTH, arrays);
        r.send(&publish_with_headers(&q, &headers)).await;
        let m = warren_tests::eventually(T, || async {
            ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap()
        })
        .await
        .expect("the message");
        let (_, sent) = parse_field_table::<&[u8]>(&headers).unwrap();
        assert_eq!(m.delivery.properties.headers().as_ref(), Some(&sent));
    }
    // The HTTP API shows them too (a JSON object nested as deep).
    let mut r2 = Raw::open(&s.addr()).await;
    r2.send(&publish_with_headers(&q, &nested(MAX_DEPTH, true))).await;
    let api = Api::new(&s);
    let got = warren_tests::eventually(T, || async {
        let r = api
            .post(
                &format!("/api/queues/%2F/{q}/get"),
                json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}),
            )
            .await;
        r.body.as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await
    .expect("a message over HTTP");
    let mut depth = 1;
    let mut at = &got[0]["properties"]["headers"];
    loop {
        let next = if at.is_array() { at.get(0) } else { at.get("k") };
        match next {
            Some(n) if n.is_object() || n.is_array() => {
                depth += 1;
                at = n;
            }
            _ => break,
        }
    }
    assert_eq!(depth, MAX_DEPTH, "{}", got[0]["properties"]["headers"]);
}

#[tokio::test]
async fn deeply_nested_declare_arguments_close_the_connection() {
    let s = Server::start();
    for (levels, arrays) in [(10_000, false), (MAX_DEPTH + 1, true)] {
        let mut r = Raw::open(&s.addr()).await;
        r.send(&declare_with_arguments(&unique("deep-args"), &nested(levels, arrays))).await;
        let (code, text) = r.expect_connection_close().await;
        assert_eq!(code, 501, "{text}");
        assert!(text.contains("nested deeper than 32 levels"), "{text}");
        still_serving(&s).await;
    }
    // As deep as the limit is fine, and compared equal when declared again.
    let q = unique("deep-ok");
    let mut r = Raw::open(&s.addr()).await;
    for _ in 0..2 {
        r.send(&declare_with_arguments(&q, &nested(MAX_DEPTH, true))).await;
        let (_, ok) = r.method(T).await.expect("declare-ok");
        assert!(
            matches!(
                ok,
                amq_protocol::protocol::AMQPClass::Queue(
                    amq_protocol::protocol::queue::AMQPMethod::DeclareOk(_)
                )
            ),
            "{ok:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_field_type_in_headers_is_refused_with_541() {
    let s = Server::start();
    let q = unique("ztag");
    let (_c, ch) = s.channel().await;
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut r = Raw::open(&s.addr()).await;
    // {"k": <type 'Z'>}: no such type.
    r.send(&publish_with_headers(&q, &[0, 0, 0, 3, 1, b'k', b'Z'])).await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!(code, 541, "{text}");
    assert!(text.contains("unknown type 'Z'"), "{text}");
    still_serving(&s).await;
    let n = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    assert_eq!(n, 0, "the message was not stored");
}

#[tokio::test]
async fn json_tables_deeper_than_the_limit_are_a_bad_request() {
    let s = Server::start();
    let api = Api::new(&s);
    let deep = |levels: usize| {
        let mut v = json!({"k": 1});
        for _ in 1..levels {
            v = json!({ "k": v });
        }
        v
    };
    let q = unique("json-deep");
    let r = api
        .put(&format!("/api/queues/%2F/{q}"), json!({"durable": true, "arguments": deep(MAX_DEPTH + 1)}))
        .await;
    assert_eq!(r.code(), 400, "{}", r.body);
    assert!(r.reason().contains("nested deeper"), "{}", r.body);
    let r = api
        .put(&format!("/api/queues/%2F/{q}"), json!({"durable": true, "arguments": deep(MAX_DEPTH)}))
        .await;
    assert_eq!(r.code(), 201, "{}", r.body);
    let r = api
        .post(
            "/api/exchanges/%2F/amq.default/publish",
            json!({"routing_key": q, "payload": "x", "payload_encoding": "string",
                   "properties": {"headers": deep(MAX_DEPTH + 1)}}),
        )
        .await;
    assert_eq!(r.code(), 400, "{}", r.body);
}
