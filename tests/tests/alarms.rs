//! Resource alarms: with free disk below the limit, publishers are blocked
//! (connection.blocked, nothing enqueued) while consumers keep draining.

use std::time::Duration;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, basic, connection};
use futures_lite::StreamExt;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;
use warren_tests::raw::Raw;
use warren_tests::{Server, unique};

#[tokio::test]
async fn disk_alarm_blocks_publishers_but_not_consumers() {
    // Ask for more free space than any disk has: the disk alarm is on.
    let s = Server::start_with(&["--disk-free-limit", "18000000000000000000"]);
    assert!(s.wait_for_log("disk alarm set", Duration::from_secs(5)));
    let q = unique("blocked");
    let (c, ch) = s.channel().await;
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();

    let mut p = Raw::open_full(&s.addr(), 0, &["connection.blocked"]).await;
    p.send_frame(AMQPFrame::Method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: q.as_str().into(),
            mandatory: false,
            immediate: false,
        })),
    ))
    .await;
    p.send_frame(AMQPFrame::Header(
        1,
        AMQPContentHeader { class_id: 60, body_size: 2, properties: Default::default() },
    ))
    .await;
    p.send_frame(AMQPFrame::Body(1, b"hi".to_vec())).await;
    match p.method(Duration::from_secs(5)).await {
        Some((0, AMQPClass::Connection(connection::AMQPMethod::Blocked(b)))) => {
            assert_eq!(b.reason.as_str(), "low on disk")
        }
        other => panic!("expected connection.blocked, got {other:?}"),
    }
    // The publish is held, not enqueued.
    tokio::time::sleep(Duration::from_millis(300)).await;
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

    // A connection that only consumes is not blocked. Messages already in
    // a queue (published through the HTTP API in real life; here we check
    // the consumer path stays open with basic.get and consume).
    let cch = c.create_channel().await.unwrap();
    let mut cons = cch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(300), cons.next()).await.is_err());
    assert!(c.status().connected());

    // lapin publishers are held too: their publish never lands.
    let (_c2, ch2) = s.channel().await;
    let publish =
        ch2.basic_publish("".into(), q.as_str().into(), Default::default(), b"x", BasicProperties::default());
    let _ = tokio::time::timeout(Duration::from_millis(500), publish).await;
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
