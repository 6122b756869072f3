//! Consuming, acknowledging, prefetch, redelivery, confirms and
//! transactions, against a real server with lapin.

use std::time::Duration;

use futures_lite::StreamExt;
use lapin::Confirmation;
use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Consumer};
use warren_tests::{Server, eventually, reply_code, reply_text, unique};

const T: Duration = Duration::from_secs(5);

async fn declare(ch: &Channel, prefix: &str) -> String {
    let q = unique(prefix);
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    q
}

async fn publish_n(ch: &Channel, q: &str, n: usize) {
    for i in 0..n {
        ch.basic_publish(
            "".into(),
            q.into(),
            Default::default(),
            i.to_string().as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
}

async fn next(c: &mut Consumer) -> Delivery {
    tokio::time::timeout(T, c.next())
        .await
        .expect("delivery in time")
        .expect("stream open")
        .expect("delivery")
}

/// Asserts that nothing arrives within a short while.
async fn nothing(c: &mut Consumer) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), c.next()).await {
        panic!("unexpected delivery {:?}", d.map(|d| d.data));
    }
}

fn body(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.data).into_owned()
}

async fn ready(ch: &Channel, q: &str) -> u32 {
    ch.queue_declare(
        q.into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

#[tokio::test]
async fn consumers_get_messages_round_robin() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "rr").await;
    let ch_a = c.create_channel().await.unwrap();
    let ch_b = c.create_channel().await.unwrap();
    let mut a = ch_a
        .basic_consume(
            q.as_str().into(),
            "a".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut b = ch_b
        .basic_consume(
            q.as_str().into(),
            "b".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish_n(&ch, &q, 6).await;
    let got_a: Vec<String> =
        [next(&mut a).await, next(&mut a).await, next(&mut a).await].iter().map(body).collect();
    let got_b: Vec<String> =
        [next(&mut b).await, next(&mut b).await, next(&mut b).await].iter().map(body).collect();
    assert_eq!(got_a, ["0", "2", "4"]);
    assert_eq!(got_b, ["1", "3", "5"]);
}

#[tokio::test]
async fn prefetch_bounds_unacked_and_ack_releases_credit() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "qos").await;
    publish_n(&ch, &q, 5).await;
    let cch = c.create_channel().await.unwrap();
    cch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    let mut cons = cch
        .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let d0 = next(&mut cons).await;
    let d1 = next(&mut cons).await;
    nothing(&mut cons).await;
    assert_eq!(ready(&ch, &q).await, 3);
    d0.ack(BasicAckOptions::default()).await.unwrap();
    let d2 = next(&mut cons).await;
    assert_eq!(body(&d2), "2");
    nothing(&mut cons).await;
    // One multiple ack settles both outstanding deliveries.
    d2.ack(BasicAckOptions { multiple: true }).await.unwrap();
    let _ = d1;
    let d3 = next(&mut cons).await;
    let d4 = next(&mut cons).await;
    assert_eq!((body(&d3), body(&d4)), ("3".into(), "4".into()));
}

#[tokio::test]
async fn unacked_messages_return_in_order_and_redelivered_when_channel_closes() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "redeliver").await;
    publish_n(&ch, &q, 4).await;
    let cch = c.create_channel().await.unwrap();
    let mut cons = cch
        .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let d = next(&mut cons).await;
        assert!(!d.redelivered);
        seen.push(d);
    }
    // Ack the second only; close the channel with the others unacked.
    seen[1].ack(BasicAckOptions::default()).await.unwrap();
    cch.close(200, "bye".into()).await.unwrap();
    assert_eq!(eventually(T, || async { (ready(&ch, &q).await == 3).then_some(()) }).await, Some(()));
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let m = ch
            .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("message");
        assert!(m.delivery.redelivered);
        bodies.push(String::from_utf8(m.delivery.data).unwrap());
    }
    assert_eq!(bodies, ["0", "2", "3"]);
}

#[tokio::test]
async fn nack_and_reject_requeue_or_discard() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    let q = declare(&ch, "nack").await;
    publish_n(&ch, &q, 3).await;
    let get = |ch: Channel, q: String| async move {
        ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: false }).await.unwrap().expect("message")
    };
    let m0 = get(ch.clone(), q.clone()).await;
    m0.delivery.reject(BasicRejectOptions { requeue: true }).await.unwrap();
    let again = get(ch.clone(), q.clone()).await;
    assert!(again.delivery.redelivered);
    assert_eq!(again.delivery.data, b"0");
    again.delivery.nack(BasicNackOptions { requeue: false, multiple: false }).await.unwrap();
    let m1 = get(ch.clone(), q.clone()).await;
    let m2 = get(ch.clone(), q.clone()).await;
    assert_eq!(m2.delivery.data, b"2");
    m2.delivery.nack(BasicNackOptions { requeue: true, multiple: true }).await.unwrap();
    let _ = m1;
    assert_eq!(ready(&ch, &q).await, 2);
}

#[tokio::test]
async fn unknown_delivery_tag_closes_the_channel_with_406() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "tag").await;
    publish_n(&ch, &q, 1).await;
    let m = ch.basic_get(q.as_str().into(), Default::default()).await.unwrap().unwrap();
    m.delivery.ack(Default::default()).await.unwrap();
    // Acking the same tag twice is an error in RabbitMQ, and here.
    let _ = ch.basic_ack(m.delivery.delivery_tag, Default::default()).await;
    let ok = eventually(T, || async { (!ch.status().connected()).then_some(()) }).await;
    assert!(ok.is_some(), "channel should be closed");
    assert!(c.status().connected());
    let ch2 = c.create_channel().await.unwrap();
    assert_eq!(ready(&ch2, &q).await, 0);
}

#[tokio::test]
async fn basic_get_reports_remaining_count_and_get_empty() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    let q = declare(&ch, "get").await;
    publish_n(&ch, &q, 2).await;
    let m = ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert_eq!(m.message_count, 1);
    assert_eq!(m.delivery.routing_key.as_str(), q);
    ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert!(ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap().is_none());
}

#[tokio::test]
async fn cancel_stops_deliveries_and_auto_delete_queue_goes_with_last_consumer() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = unique("ad");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions { auto_delete: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let cch = c.create_channel().await.unwrap();
    let mut cons = cch
        .basic_consume(
            q.as_str().into(),
            "ctag".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish_n(&ch, &q, 1).await;
    next(&mut cons).await;
    cch.basic_cancel("ctag".into(), Default::default()).await.unwrap();
    let gone = eventually(T, || async {
        let probe = c.create_channel().await.unwrap();
        let r = probe
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await;
        matches!(r, Err(ref e) if reply_code(e) == Some(404)).then_some(())
    })
    .await;
    assert!(gone.is_some());
}

#[tokio::test]
async fn exclusive_consumer_and_consumer_tag_reuse() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "excl").await;
    let ch1 = c.create_channel().await.unwrap();
    let _x = ch1
        .basic_consume(
            q.as_str().into(),
            "x".into(),
            BasicConsumeOptions { exclusive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let ch2 = c.create_channel().await.unwrap();
    let err = ch2
        .basic_consume(q.as_str().into(), "y".into(), Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(403));
    assert_eq!(reply_text(&err), format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"));
    // Reusing a consumer tag on a channel is a connection error (530).
    let q2 = declare(&ch1, "tagreuse").await;
    let err = ch1
        .basic_consume(q2.as_str().into(), "x".into(), Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(530), "{}", reply_text(&err));
}

#[tokio::test]
async fn deleting_a_queue_cancels_its_consumers() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "del").await;
    let cch = c.create_channel().await.unwrap();
    let mut cons = cch
        .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.queue_delete(q.as_str().into(), Default::default()).await.unwrap();
    // lapin ends the consumer stream when the server cancels it.
    let ended = tokio::time::timeout(T, cons.next()).await.expect("stream reacts to cancel");
    assert!(ended.is_none(), "{ended:?}");
    assert!(cch.status().connected());
}

#[tokio::test]
async fn recover_requeues_unacked() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    let q = declare(&ch, "recover").await;
    publish_n(&ch, &q, 2).await;
    let _m = ch.basic_get(q.as_str().into(), Default::default()).await.unwrap().unwrap();
    assert_eq!(ready(&ch, &q).await, 1);
    ch.basic_recover(BasicRecoverOptions { requeue: true }).await.unwrap();
    assert_eq!(ready(&ch, &q).await, 2);
    let m = ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert!(m.delivery.redelivered);
    assert_eq!(m.delivery.data, b"0");
}

#[tokio::test]
async fn publisher_confirms_and_mandatory_returns() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let q = declare(&ch, "confirm").await;
    let mut confirms = Vec::new();
    for i in 0..100u32 {
        confirms.push(
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                &i.to_be_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap(),
        );
    }
    for c in confirms {
        assert!(matches!(c.await.unwrap(), Confirmation::Ack(None)));
    }
    // An unroutable mandatory message comes back, and is still acked.
    let c = ch
        .basic_publish(
            "".into(),
            "no-such-queue".into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            b"lost",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    match c {
        Confirmation::Ack(Some(ret)) => {
            assert_eq!(ret.reply_code, 312);
            assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
            assert_eq!(ret.delivery.data, b"lost");
        }
        other => panic!("expected ack with return, got {other:?}"),
    }
    assert_eq!(ready(&ch, &q).await, 100);
}

#[tokio::test]
async fn publish_to_missing_exchange_closes_channel_with_404() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    ch.basic_publish("nope".into(), "k".into(), Default::default(), b"x", BasicProperties::default())
        .await
        .unwrap();
    assert!(eventually(T, || async { (!ch.status().connected()).then_some(()) }).await.is_some());
    assert!(c.status().connected());
}

#[tokio::test]
async fn transactions_commit_and_rollback() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "tx").await;
    let tch = c.create_channel().await.unwrap();
    tch.tx_select().await.unwrap();
    publish_n(&tch, &q, 2).await;
    assert_eq!(ready(&ch, &q).await, 0, "nothing visible before commit");
    tch.tx_commit().await.unwrap();
    assert_eq!(ready(&ch, &q).await, 2);
    publish_n(&tch, &q, 1).await;
    tch.tx_rollback().await.unwrap();
    assert_eq!(ready(&ch, &q).await, 2);
    // Acks inside a transaction take effect at commit; rollback keeps them unacked.
    let m = tch.basic_get(q.as_str().into(), Default::default()).await.unwrap().unwrap();
    m.delivery.ack(Default::default()).await.unwrap();
    tch.tx_rollback().await.unwrap();
    m.delivery.ack(Default::default()).await.unwrap();
    tch.tx_commit().await.unwrap();
    assert_eq!(ready(&ch, &q).await, 1);
    // Confirm mode and tx mode exclude each other.
    let err = tch.confirm_select(Default::default()).await.unwrap_err();
    assert_eq!(reply_code(&err), Some(406));
}

#[tokio::test]
async fn channel_flow_pauses_deliveries() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "flow").await;
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
    assert!(!cch.channel_flow(ChannelFlowOptions { active: false }).await.unwrap());
    publish_n(&ch, &q, 1).await;
    nothing(&mut cons).await;
    assert!(cch.channel_flow(ChannelFlowOptions { active: true }).await.unwrap());
    next(&mut cons).await;
}

#[tokio::test]
async fn global_qos_is_shared_by_the_channel_consumers() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let (q1, q2) = (declare(&ch, "g1").await, declare(&ch, "g2").await);
    publish_n(&ch, &q1, 2).await;
    publish_n(&ch, &q2, 3).await;
    let cch = c.create_channel().await.unwrap();
    cch.basic_qos(2, BasicQosOptions { global: true }).await.unwrap();
    let mut a = cch
        .basic_consume(q1.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let mut b = cch
        .basic_consume(q2.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let d = next(&mut a).await;
    next(&mut a).await;
    nothing(&mut b).await;
    d.ack(Default::default()).await.unwrap();
    next(&mut b).await;
}

#[tokio::test]
async fn large_messages_cross_frame_boundaries() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    let q = declare(&ch, "big").await;
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    ch.basic_publish("".into(), q.as_str().into(), Default::default(), &big, BasicProperties::default())
        .await
        .unwrap();
    let m = ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert_eq!(m.delivery.data, big);
}

#[tokio::test]
async fn oversized_message_is_refused_with_406_and_the_channel_closes() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "huge").await;
    let huge = vec![7u8; 16 * 1024 * 1024 + 1];
    let _ = ch
        .basic_publish("".into(), q.as_str().into(), Default::default(), &huge, BasicProperties::default())
        .await;
    assert!(
        eventually(Duration::from_secs(20), || async { (!ch.status().connected()).then_some(()) })
            .await
            .is_some()
    );
    let ch2 = c.create_channel().await.unwrap();
    assert_eq!(ready(&ch2, &q).await, 0);
}

#[tokio::test]
async fn backlog_beyond_the_memory_budget_comes_back_in_order() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = declare(&ch, "backlog").await;
    // 20 MiB of 4 KiB messages: more than a queue keeps in memory, so most
    // are paged to disk and read back.
    let n = 5000u32;
    ch.confirm_select(Default::default()).await.unwrap();
    for i in 0..n {
        let mut body = vec![(i % 256) as u8; 4096];
        body[..4].copy_from_slice(&i.to_be_bytes());
        let _ = ch
            .basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                &body,
                BasicProperties::default(),
            )
            .await
            .unwrap();
    }
    ch.wait_for_confirms().await.unwrap();
    assert_eq!(ready(&ch, &q).await, n);
    let cch = c.create_channel().await.unwrap();
    cch.basic_qos(500, Default::default()).await.unwrap();
    let mut cons = cch
        .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    for i in 0..n {
        let d = next(&mut cons).await;
        assert_eq!(&d.data[..4], &i.to_be_bytes(), "message {i} out of order");
        assert_eq!(d.data.len(), 4096);
        assert!(d.data[4..].iter().all(|b| *b == (i % 256) as u8));
        d.ack(Default::default()).await.unwrap();
    }
    assert_eq!(ready(&ch, &q).await, 0);
}
