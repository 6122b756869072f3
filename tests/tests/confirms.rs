//! Publisher confirms at the frame level, for every way a publish can be
//! refused: a raw client records every `basic.ack` and `basic.nack` frame,
//! and each published tag must be confirmed exactly once, with no
//! `multiple` confirm covering a tag that already had its confirm. Client
//! libraries forgive a second confirm in different ways (pika's blocking
//! channel drops the connection), so the promise is checked on the wire.
//! The refusal by a queue whose home node is down is in `cluster.rs`.

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, queue};
use amq_protocol::types::{AMQPValue, FieldTable};
use warren_tests::confirms::{confirms, confirms_into, declare, each_once, publish, select};
use warren_tests::raw::Raw;
use warren_tests::{Server, unique};

const T: Duration = Duration::from_secs(5);

fn limited(max: i64, overflow: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(max));
    args.insert("x-overflow".into(), AMQPValue::LongString(overflow.into()));
    args
}

#[test]
fn the_rule_checker_catches_a_multiple_ack_over_a_nack() {
    // What Warren used to send for the third publish to a full queue.
    let old = [(false, 3, false), (true, 3, true)];
    let caught = std::panic::catch_unwind(|| each_once(&old, 3));
    assert!(caught.is_err());
    assert_eq!(each_once(&[(true, 2, true), (false, 3, false)], 3), [true, true, false]);
}

#[tokio::test]
async fn reject_publish_nacks_the_refused_publish_and_acks_the_others_once() {
    let s = Server::start();
    for overflow in ["reject-publish", "reject-publish-dlx"] {
        for persistent in [false, true] {
            let mut r = Raw::open(&s.addr()).await;
            let q = unique("full");
            declare(&mut r, &q, persistent, limited(2, overflow)).await;
            select(&mut r).await;
            for _ in 0..5 {
                publish(&mut r, "", &q, persistent, false).await;
            }
            let (frames, _) = confirms(&mut r, 5).await;
            let got = each_once(&frames, 5);
            assert_eq!(
                got,
                [true, true, false, false, false],
                "{overflow}, persistent {persistent}: {frames:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_publish_refused_between_accepted_ones_is_confirmed_once_each() {
    // Room for one: each round publishes two (the second is refused), then
    // empties the queue, so accepted and refused tags alternate.
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    let q = unique("one");
    declare(&mut r, &q, true, limited(1, "reject-publish")).await;
    select(&mut r).await;
    let mut seen = Vec::new();
    let rounds = 4;
    for round in 1..=rounds {
        publish(&mut r, "", &q, true, false).await;
        publish(&mut r, "", &q, true, false).await;
        confirms_into(&mut r, 2 * round, &mut seen).await;
        r.send_frame(AMQPFrame::Method(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
                queue: q.as_str().into(),
                nowait: false,
            })),
        ))
        .await;
    }
    let expected: Vec<bool> = (0..rounds).flat_map(|_| [true, false]).collect();
    assert_eq!(each_once(&seen, 2 * rounds), expected, "{seen:?}");
}

#[tokio::test]
async fn a_mandatory_unroutable_publish_is_returned_and_acked_once() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    let q = unique("there");
    declare(&mut r, &q, false, FieldTable::default()).await;
    select(&mut r).await;
    publish(&mut r, "", &q, false, true).await;
    publish(&mut r, "", "nowhere", false, true).await;
    publish(&mut r, "", &q, true, true).await;
    let (frames, returns) = confirms(&mut r, 3).await;
    assert_eq!(returns, 1);
    // RabbitMQ acks an unroutable message: nothing was refused.
    assert_eq!(each_once(&frames, 3), [true, true, true], "{frames:?}");
}

#[tokio::test]
async fn a_publish_held_by_a_resource_alarm_gets_no_confirm_until_it_clears() {
    // An alarm blocks publishers (as RabbitMQ does) rather than refusing
    // their messages: nothing is confirmed, either way, while it is on.
    let s = Server::start_with(&["--disk-free-limit", "18000000000000000000"]);
    assert!(s.wait_for_log("disk alarm set", T));
    let mut r = Raw::open_full(&s.addr(), 0, &["connection.blocked"]).await;
    let q = unique("held");
    declare(&mut r, &q, true, FieldTable::default()).await;
    select(&mut r).await;
    publish(&mut r, "", &q, true, false).await;
    let mut confirms_seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Some(f) = r.frame(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
        if let AMQPFrame::Method(
            _,
            AMQPClass::Basic(m @ (basic::AMQPMethod::Ack(_) | basic::AMQPMethod::Nack(_))),
        ) = f
        {
            confirms_seen.push(m);
        }
    }
    assert!(confirms_seen.is_empty(), "{confirms_seen:?}");
}
