//! Bad input: every offender gets RabbitMQ's error, and a fresh client is
//! served normally afterwards.

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, channel, connection, queue};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_tests::raw::{Raw, client_properties, encode};
use warren_tests::{Server, reply_code, unique};

const T: Duration = Duration::from_secs(5);

/// Proves the broker still serves a well-behaved client.
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

fn publish_frame(ch: u16, q: &str) -> AMQPFrame {
    AMQPFrame::Method(
        ch,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: q.into(),
            mandatory: false,
            immediate: false,
        })),
    )
}

fn header_frame(ch: u16, size: u64) -> AMQPFrame {
    AMQPFrame::Header(
        ch,
        amq_protocol::frame::AMQPContentHeader {
            class_id: 60,
            body_size: size,
            properties: Default::default(),
        },
    )
}

#[tokio::test]
async fn garbage_instead_of_protocol_header_gets_our_header_and_a_close() {
    let s = Server::start();
    let mut r = Raw::connect(&s.addr()).await;
    r.send(b"GET / HTTP/1.1\r\n\r\n").await;
    let (bytes, closed) = r.read_until_closed(T).await;
    assert_eq!(bytes, b"AMQP\x00\x00\x09\x01");
    assert!(closed);
    still_serving(&s).await;
}

#[tokio::test]
async fn bad_frame_end_is_a_frame_error() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    let mut f = encode(&AMQPFrame::Method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 1, global: false })),
    ));
    *f.last_mut().unwrap() = 0x00;
    r.send(&f).await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!(code, 501, "{text}");
    assert!(text.contains("invalid_frame_end_marker"), "{text}");
    still_serving(&s).await;
}

#[tokio::test]
async fn frame_larger_than_frame_max_is_a_frame_error() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    // Announce a 1 MiB body frame on a connection tuned to 128 KiB.
    let mut f = vec![3u8, 0, 1];
    f.extend_from_slice(&(1024 * 1024u32).to_be_bytes());
    r.send(&f).await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!(code, 501);
    assert!(text.contains("frame_too_large"), "{text}");
    still_serving(&s).await;
}

#[tokio::test]
async fn method_on_a_channel_never_opened_is_a_channel_error() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    r.send_frame(AMQPFrame::Method(
        7,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: "q".into(),
            ..Default::default()
        })),
    ))
    .await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!((code, text.as_str()), (504, "CHANNEL_ERROR - expected 'channel.open'"));
    still_serving(&s).await;
}

#[tokio::test]
async fn method_on_a_closed_channel_is_a_channel_error() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    r.send_frame(AMQPFrame::Method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    ))
    .await;
    let (_, m) = r.method(T).await.unwrap();
    assert!(matches!(m, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))));
    r.send_frame(publish_frame(1, "q")).await;
    let (code, _) = r.expect_connection_close().await;
    assert_eq!(code, 504);
    still_serving(&s).await;
}

#[tokio::test]
async fn unknown_class_or_method_is_not_implemented() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    // class 99, method 1, no arguments.
    r.send(&[1, 0, 1, 0, 0, 0, 4, 0, 99, 0, 1, 0xCE]).await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!(code, 540, "{text}");
    still_serving(&s).await;
}

#[tokio::test]
async fn body_longer_than_announced_is_a_frame_error_and_nothing_is_enqueued() {
    let s = Server::start();
    let q = unique("body");
    {
        let (_c, ch) = s.channel().await;
        ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    }
    let mut r = Raw::open(&s.addr()).await;
    r.send_frame(publish_frame(1, &q)).await;
    r.send_frame(header_frame(1, 4)).await;
    r.send_frame(AMQPFrame::Body(1, b"too long".to_vec())).await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!(code, 501);
    assert!(text.contains("content body frame exceeds remaining content size"), "{text}");
    still_serving(&s).await;
    let (_c, ch) = s.channel().await;
    let n = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn content_frames_out_of_order_are_unexpected_frames() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    r.send_frame(header_frame(1, 4)).await;
    let (code, _) = r.expect_connection_close().await;
    assert_eq!(code, 505);
    let mut r = Raw::open(&s.addr()).await;
    r.send_frame(publish_frame(1, "q")).await;
    r.send_frame(AMQPFrame::Method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 1, global: false })),
    ))
    .await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!(code, 505, "{text}");
    still_serving(&s).await;
}

#[tokio::test]
async fn wrong_password_and_unknown_vhost_are_refused() {
    let s = Server::start();
    let err = Connection::connect(&s.uri_as("guest", "wrong", "%2f"), ConnectionProperties::default())
        .await
        .expect_err("login refused");
    // lapin announces authentication_failure_close, so RabbitMQ (and we)
    // send connection.close 403 before closing.
    assert_eq!(reply_code(&err), Some(403), "{err:?}");
    let err = Connection::connect(&s.uri_as("nobody", "guest", "%2f"), ConnectionProperties::default())
        .await
        .expect_err("unknown user refused");
    assert_eq!(reply_code(&err), Some(403));
    let err = Connection::connect(&s.uri_as("guest", "guest", "nowhere"), ConnectionProperties::default())
        .await
        .expect_err("unknown vhost refused");
    assert_eq!(reply_code(&err), Some(530), "{err:?}");
    assert!(s.wait_for_log("invalid credentials", T));
    still_serving(&s).await;
}

#[tokio::test]
async fn client_stalling_mid_frame_is_disconnected() {
    let s = Server::start_with(&["--handshake-timeout", "1"]);
    let mut r = Raw::open(&s.addr()).await;
    // Half a frame header, then silence.
    r.send(&[1, 0, 1, 0]).await;
    let (_, closed) = r.read_until_closed(Duration::from_secs(10)).await;
    assert!(closed, "stalled client should be disconnected");
    assert!(s.wait_for_log("a frame stayed incomplete too long", T));
    // A client that never finishes the handshake is dropped too.
    let mut r = Raw::connect(&s.addr()).await;
    r.send(b"AMQP").await;
    let (_, closed) = r.read_until_closed(Duration::from_secs(10)).await;
    assert!(closed);
    still_serving(&s).await;
}

#[tokio::test]
async fn silent_client_without_heartbeats_is_disconnected() {
    let s = Server::start();
    // Negotiate a 1 s heartbeat, then never send anything.
    let mut r = Raw::open_with(&s.addr(), 1).await;
    let (bytes, closed) = r.read_until_closed(Duration::from_secs(10)).await;
    assert!(closed, "silent client should be disconnected");
    // The server itself sent heartbeats while waiting.
    assert!(bytes.windows(8).any(|w| w == [8, 0, 0, 0, 0, 0, 0, 0xCE]));
    assert!(s.wait_for_log("missed heartbeats from client, timeout: 1s", T));
    still_serving(&s).await;
}

/// Header, connection.start, and a start-ok: the connection, and the
/// broker's next method.
async fn start_ok(s: &Server, mechanism: &str, response: &str, caps: &[&str]) -> (Raw, Option<AMQPClass>) {
    let mut r = Raw::connect(&s.addr()).await;
    r.send(b"AMQP\x00\x00\x09\x01").await;
    r.method(T).await.expect("connection.start");
    let ok = connection::StartOk {
        client_properties: client_properties(caps),
        mechanism: mechanism.into(),
        response: response.into(),
        locale: "en_US".into(),
    };
    r.send_frame(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::StartOk(ok)))).await;
    let next = r.method(T).await.map(|(_, m)| m);
    (r, next)
}

fn close_of(m: Option<AMQPClass>) -> (u16, String, u16, u16) {
    match m {
        Some(AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
            (c.reply_code, c.reply_text.to_string(), c.class_id, c.method_id)
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
}

/// Refusals before connection.open name no method (class 0, method 0).
/// RabbitMQ's one close there, a failed login's for a client that asked
/// for it, is built with no method (rabbit_reader's auth_fail), so it
/// names none either. For the others (an unknown mechanism, frame_max or
/// channel_max out of bounds in tune-ok) RabbitMQ sends no close at all:
/// it closes the socket 3 s later; Warren says why at once.
#[tokio::test]
async fn handshake_refusals_before_open_name_no_method() {
    let s = Server::start();
    let close_caps = ["authentication_failure_close"];
    let (_r, m) = start_ok(&s, "PLAIN", "\0guest\0wrong", &close_caps).await;
    assert_eq!(
        close_of(m),
        (
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."
                .into(),
            0,
            0
        )
    );
    // Without the capability, the socket just closes.
    let (mut r, m) = start_ok(&s, "PLAIN", "\0guest\0wrong", &[]).await;
    assert!(m.is_none(), "{m:?}");
    assert!(r.read_until_closed(T).await.1);

    let (_r, m) = start_ok(&s, "CRAM-MD5", "x", &close_caps).await;
    assert_eq!(
        close_of(m),
        (503, "COMMAND_INVALID - unknown authentication mechanism 'CRAM-MD5'".into(), 0, 0)
    );

    for (frame_max, channel_max, text) in [
        (4095, 0, "NOT_ALLOWED - negotiated frame_max = 4095 is lower than the minimum allowed value (4096)"),
        (
            131_072,
            4000,
            "NOT_ALLOWED - negotiated channel_max = 4000 is higher than the maximum allowed value (2047)",
        ),
    ] {
        let (mut r, m) = start_ok(&s, "PLAIN", "\0guest\0guest", &[]).await;
        assert!(matches!(m, Some(AMQPClass::Connection(connection::AMQPMethod::Tune(_)))), "{m:?}");
        let ok = connection::TuneOk { channel_max, frame_max, heartbeat: 0 };
        r.send_frame(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(ok)))).await;
        assert_eq!(close_of(r.method(T).await.map(|(_, m)| m)), (530, text.into(), 0, 0));
    }
    still_serving(&s).await;
}
