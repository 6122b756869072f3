//! RabbitMQ's protocol extensions: TTL, dead-lettering with x-death, length
//! limits, priorities, consumer priorities, single active consumer, direct
//! reply-to, CC/BCC, alternate exchanges and quorum queues' delivery limit.

use std::time::Duration;

use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Consumer, ExchangeKind};
use warren_tests::{Server, eventually, reply_code, reply_text, unique};

const T: Duration = Duration::from_secs(5);

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(v.into())
}

fn int(v: i64) -> AMQPValue {
    AMQPValue::LongLongInt(v)
}

async fn declare(ch: &Channel, name: &str, a: FieldTable) {
    ch.queue_declare(name.into(), Default::default(), a).await.unwrap();
}

async fn publish(ch: &Channel, x: &str, key: &str, body: &[u8], props: BasicProperties) {
    ch.basic_publish(x.into(), key.into(), Default::default(), body, props).await.unwrap();
}

async fn get(ch: &Channel, q: &str) -> Option<Delivery> {
    ch.basic_get(q.into(), BasicGetOptions { no_ack: true }).await.unwrap().map(|m| m.delivery)
}

async fn next(c: &mut Consumer) -> Delivery {
    tokio::time::timeout(T, c.next()).await.expect("delivery in time").unwrap().unwrap()
}

fn text(v: Option<&AMQPValue>) -> String {
    match v {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        other => format!("{other:?}"),
    }
}

fn header<'a>(d: &'a Delivery, k: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref().and_then(|h| h.inner().get(k))
}

/// Waits until `q` holds a message and returns it.
async fn wait_get(ch: &Channel, q: &str) -> Delivery {
    eventually(T, || async { get(ch, q).await }).await.expect("a message in time")
}

#[tokio::test]
async fn ttl_expiry_dead_letters_with_the_full_x_death_header() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let (dlx, dead, q) = (unique("dlx"), unique("dead"), unique("ttl"));
    ch.exchange_declare(dlx.as_str().into(), ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    declare(&ch, &dead, FieldTable::default()).await;
    ch.queue_bind(
        dead.as_str().into(),
        dlx.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare(
        &ch,
        &q,
        args(&[("x-message-ttl", AMQPValue::LongInt(200)), ("x-dead-letter-exchange", s(&dlx))]),
    )
    .await;
    // The per-message TTL is lower than the queue's: it wins.
    let cc = AMQPValue::FieldArray(FieldArray::from(vec![s("cc-key")]));
    let props = BasicProperties::default()
        .with_expiration("50".into())
        .with_headers(args(&[("CC", cc)]))
        .with_correlation_id("keep-me".into());
    publish(&ch, "", &q, b"expire me", props).await;
    let d = wait_get(&ch, &dead).await;
    assert_eq!(d.data, b"expire me");
    assert_eq!(d.exchange.as_str(), dlx);
    assert_eq!(d.routing_key.as_str(), q);
    assert_eq!(d.properties.correlation_id().as_ref().map(|c| c.as_str()), Some("keep-me"));
    assert!(d.properties.expiration().is_none(), "expiration is removed when dead-lettered");
    let Some(AMQPValue::FieldArray(deaths)) = header(&d, "x-death") else { panic!("no x-death") };
    let AMQPValue::FieldTable(death) = &deaths.as_slice()[0] else { panic!() };
    let h = death.inner();
    assert_eq!(text(h.get("reason")), "expired");
    assert_eq!(text(h.get("queue")), q);
    assert_eq!(text(h.get("exchange")), "");
    assert_eq!(h.get("count"), Some(&AMQPValue::LongLongInt(1)));
    assert!(matches!(h.get("time"), Some(AMQPValue::Timestamp(t)) if *t > 1_600_000_000));
    assert_eq!(text(h.get("original-expiration")), "50");
    let Some(AMQPValue::FieldArray(keys)) = h.get("routing-keys") else { panic!("no routing-keys") };
    assert_eq!(
        keys.as_slice().iter().map(|k| text(Some(k))).collect::<Vec<_>>(),
        [q.clone(), "cc-key".into()]
    );
    assert_eq!(text(header(&d, "x-first-death-reason")), "expired");
    assert_eq!(text(header(&d, "x-first-death-queue")), q);
    assert_eq!(text(header(&d, "x-first-death-exchange")), "");
    // Expired messages are never delivered.
    assert!(get(&ch, &q).await.is_none());
}

/// RabbitMQ: "messages with TTL 0 expire on reaching a queue unless they
/// can be delivered to a consumer immediately".
#[tokio::test]
async fn a_ttl_zero_message_reaches_a_waiting_consumer_and_otherwise_expires() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let q = unique("ttl0");
    declare(&ch, &q, args(&[("x-message-ttl", AMQPValue::LongInt(0))])).await;
    let mut consumer = ch
        .basic_consume(q.as_str().into(), "now".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    publish(&ch, "", &q, b"right now", BasicProperties::default()).await;
    let d = tokio::time::timeout(T, consumer.next())
        .await
        .expect("the waiting consumer gets it")
        .unwrap()
        .unwrap();
    assert_eq!(d.data, b"right now");
    d.ack(BasicAckOptions::default()).await.unwrap();
    ch.basic_cancel("now".into(), BasicCancelOptions::default()).await.unwrap();
    // Nobody waiting: it is gone at once.
    publish(&ch, "", &q, b"too late", BasicProperties::default()).await;
    assert!(get(&ch, &q).await.is_none());
}

#[tokio::test]
async fn reject_without_requeue_dead_letters_with_the_routing_key_override() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let (dead, q) = (unique("dead"), unique("rej"));
    declare(&ch, &dead, FieldTable::default()).await;
    // The default exchange as DLX, with the dead-letter queue as the key.
    declare(&ch, &q, args(&[("x-dead-letter-exchange", s("")), ("x-dead-letter-routing-key", s(&dead))]))
        .await;
    publish(&ch, "", &q, b"no thanks", BasicProperties::default()).await;
    let m = ch.basic_get(q.as_str().into(), Default::default()).await.unwrap().unwrap();
    m.delivery.reject(BasicRejectOptions { requeue: false }).await.unwrap();
    let d = wait_get(&ch, &dead).await;
    assert_eq!(d.routing_key.as_str(), dead);
    let Some(AMQPValue::FieldArray(deaths)) = header(&d, "x-death") else { panic!() };
    let AMQPValue::FieldTable(death) = &deaths.as_slice()[0] else { panic!() };
    assert_eq!(text(death.inner().get("reason")), "rejected");
}

#[tokio::test]
async fn automatic_dead_letter_cycles_are_dropped() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let q = unique("cycle");
    // Expired messages go back to the same queue: a cycle without rejection.
    declare(
        &ch,
        &q,
        args(&[
            ("x-message-ttl", AMQPValue::LongInt(50)),
            ("x-dead-letter-exchange", s("")),
            ("x-dead-letter-routing-key", s(&q)),
        ]),
    )
    .await;
    publish(&ch, "", &q, b"round and round", BasicProperties::default()).await;
    // First expiry: it comes back once (x-death now names the queue); the
    // second expiry is a cycle and it is dropped.
    let gone = eventually(T, || async {
        let n = ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count();
        (n == 0).then_some(())
    })
    .await;
    assert!(gone.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(get(&ch, &q).await.is_none(), "the cycle must end");
    assert!(srv.wait_for_log("would close a cycle", T));
}

#[tokio::test]
async fn queue_expires_when_unused() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let q = unique("expires");
    declare(&ch, &q, args(&[("x-expires", AMQPValue::LongInt(300))])).await;
    let gone = eventually(T, || async {
        let probe = srv.connect().await.create_channel().await.unwrap();
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
    assert!(gone.is_some(), "an unused queue with x-expires must go");
}

#[tokio::test]
async fn length_limit_drop_head_dead_letters_the_oldest() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let (dead, q) = (unique("dead"), unique("maxlen"));
    declare(&ch, &dead, FieldTable::default()).await;
    declare(
        &ch,
        &q,
        args(&[
            ("x-max-length", AMQPValue::LongInt(2)),
            ("x-dead-letter-exchange", s("")),
            ("x-dead-letter-routing-key", s(&dead)),
        ]),
    )
    .await;
    for b in ["1", "2", "3"] {
        publish(&ch, "", &q, b.as_bytes(), BasicProperties::default()).await;
    }
    assert_eq!(get(&ch, &q).await.unwrap().data, b"2");
    assert_eq!(get(&ch, &q).await.unwrap().data, b"3");
    let d = wait_get(&ch, &dead).await;
    assert_eq!(d.data, b"1");
    let Some(AMQPValue::FieldArray(deaths)) = header(&d, "x-death") else { panic!() };
    let AMQPValue::FieldTable(death) = &deaths.as_slice()[0] else { panic!() };
    assert_eq!(text(death.inner().get("reason")), "maxlen");
}

#[tokio::test]
async fn reject_publish_overflow_nacks_and_dlx_variant_dead_letters() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let q = unique("full");
    declare(&ch, &q, args(&[("x-max-length", AMQPValue::LongInt(1)), ("x-overflow", s("reject-publish"))]))
        .await;
    let ok =
        ch.basic_publish("".into(), q.as_str().into(), Default::default(), b"1", BasicProperties::default());
    assert!(matches!(ok.await.unwrap().await.unwrap(), Confirmation::Ack(_)));
    let refused =
        ch.basic_publish("".into(), q.as_str().into(), Default::default(), b"2", BasicProperties::default());
    assert!(matches!(refused.await.unwrap().await.unwrap(), Confirmation::Nack(_)));
    assert_eq!(get(&ch, &q).await.unwrap().data, b"1");
    assert!(get(&ch, &q).await.is_none());

    let (dead, q2) = (unique("dead"), unique("full-dlx"));
    declare(&ch, &dead, FieldTable::default()).await;
    declare(
        &ch,
        &q2,
        args(&[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", s("reject-publish-dlx")),
            ("x-dead-letter-exchange", s("")),
            ("x-dead-letter-routing-key", s(&dead)),
        ]),
    )
    .await;
    publish(&ch, "", &q2, b"kept", BasicProperties::default()).await;
    let refused = ch.basic_publish(
        "".into(),
        q2.as_str().into(),
        Default::default(),
        b"over",
        BasicProperties::default(),
    );
    assert!(matches!(refused.await.unwrap().await.unwrap(), Confirmation::Nack(_)));
    assert_eq!(wait_get(&ch, &dead).await.data, b"over");
}

#[tokio::test]
async fn priority_queue_delivers_higher_priority_first_fifo_within() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let q = unique("prio");
    declare(&ch, &q, args(&[("x-max-priority", AMQPValue::ShortShortUInt(10))])).await;
    let order = [(1, "a1"), (5, "b5"), (1, "c1"), (9, "d9"), (5, "e5"), (0, "f0"), (20, "g20")];
    for (p, body) in order {
        publish(&ch, "", &q, body.as_bytes(), BasicProperties::default().with_priority(p)).await;
    }
    let mut got = Vec::new();
    while let Some(d) = get(&ch, &q).await {
        got.push(String::from_utf8(d.data).unwrap());
    }
    // Priorities above the maximum count as the maximum.
    assert_eq!(got, ["g20", "d9", "b5", "e5", "a1", "c1", "f0"]);
}

#[tokio::test]
async fn consumer_priorities_and_single_active_consumer_failover() {
    let srv = Server::start();
    let (c, ch) = srv.channel().await;
    let q = unique("cprio");
    declare(&ch, &q, FieldTable::default()).await;
    let low_ch = c.create_channel().await.unwrap();
    let high_ch = c.create_channel().await.unwrap();
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut low =
        low_ch.basic_consume(q.as_str().into(), "low".into(), no_ack, FieldTable::default()).await.unwrap();
    let mut high = high_ch
        .basic_consume(
            q.as_str().into(),
            "high".into(),
            no_ack,
            args(&[("x-priority", AMQPValue::LongInt(10))]),
        )
        .await
        .unwrap();
    for i in 0..4 {
        publish(&ch, "", &q, format!("{i}").as_bytes(), BasicProperties::default()).await;
    }
    for _ in 0..4 {
        next(&mut high).await;
    }
    assert!(tokio::time::timeout(Duration::from_millis(300), low.next()).await.is_err());

    let sac = unique("sac");
    declare(&ch, &sac, args(&[("x-single-active-consumer", AMQPValue::Boolean(true))])).await;
    let first_ch = c.create_channel().await.unwrap();
    let second_ch = c.create_channel().await.unwrap();
    let mut first = first_ch
        .basic_consume(sac.as_str().into(), "first".into(), no_ack, FieldTable::default())
        .await
        .unwrap();
    let mut second = second_ch
        .basic_consume(sac.as_str().into(), "second".into(), no_ack, FieldTable::default())
        .await
        .unwrap();
    for i in 0..3 {
        publish(&ch, "", &sac, format!("{i}").as_bytes(), BasicProperties::default()).await;
    }
    for _ in 0..3 {
        next(&mut first).await;
    }
    assert!(tokio::time::timeout(Duration::from_millis(300), second.next()).await.is_err());
    // The active consumer goes; the next one takes over.
    first_ch.basic_cancel("first".into(), Default::default()).await.unwrap();
    publish(&ch, "", &sac, b"after", BasicProperties::default()).await;
    assert_eq!(next(&mut second).await.data, b"after");
}

#[tokio::test]
async fn direct_reply_to_rpc() {
    let srv = Server::start();
    let (_c, server_ch) = srv.channel().await;
    let rpc = unique("rpc_queue");
    declare(&server_ch, &rpc, FieldTable::default()).await;
    let mut requests = server_ch
        .basic_consume(rpc.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let (_c2, client) = srv.channel().await;
    let mut replies = client
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let props = BasicProperties::default()
        .with_reply_to("amq.rabbitmq.reply-to".into())
        .with_correlation_id("42".into());
    publish(&client, "", &rpc, b"50", props).await;
    let req = next(&mut requests).await;
    let reply_to = req.properties.reply_to().clone().unwrap();
    assert!(reply_to.as_str().starts_with("amq.rabbitmq.reply-to."), "{reply_to}");
    let n: i32 = std::str::from_utf8(&req.data).unwrap().parse().unwrap();
    let answer =
        BasicProperties::default().with_correlation_id(req.properties.correlation_id().clone().unwrap());
    publish(&server_ch, "", reply_to.as_str(), (n + 100).to_string().as_bytes(), answer).await;
    req.ack(Default::default()).await.unwrap();
    let r = next(&mut replies).await;
    assert_eq!(r.data, b"150");
    assert_eq!(r.properties.correlation_id().as_ref().map(|c| c.as_str()), Some("42"));
    // Replying needs the consumer to exist; an ack-requiring one is refused.
    let (_c3, other) = srv.channel().await;
    let err = other
        .basic_consume("amq.rabbitmq.reply-to".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(406));
    assert_eq!(reply_text(&err), "PRECONDITION_FAILED - reply consumer cannot acknowledge");
}

#[tokio::test]
async fn cc_and_bcc_route_and_bcc_is_stripped() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let (main, cc, bcc) = (unique("main"), unique("cc"), unique("bcc"));
    for q in [&main, &cc, &bcc] {
        declare(&ch, q, FieldTable::default()).await;
    }
    let list = |q: &str| AMQPValue::FieldArray(FieldArray::from(vec![s(q)]));
    let props = BasicProperties::default().with_headers(args(&[("CC", list(&cc)), ("BCC", list(&bcc))]));
    publish(&ch, "", &main, b"copies", props).await;
    for q in [&main, &cc, &bcc] {
        let d = get(&ch, q).await.unwrap_or_else(|| panic!("{q} got nothing"));
        assert_eq!(d.data, b"copies");
        assert!(header(&d, "BCC").is_none(), "BCC must not reach consumers");
        assert!(header(&d, "CC").is_some());
    }
}

#[tokio::test]
async fn alternate_exchange_chains_and_loops() {
    let srv = Server::start();
    let (_c, ch) = srv.channel().await;
    let (x, ae1, ae2, q) = (unique("x"), unique("ae1"), unique("ae2"), unique("unrouted"));
    // x -> ae1 -> ae2 (fanout to q); ae1 also points back at x (a loop).
    ch.exchange_declare(ae2.as_str().into(), ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.exchange_declare(
        ae1.as_str().into(),
        ExchangeKind::Direct,
        Default::default(),
        args(&[("alternate-exchange", s(&ae2))]),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        Default::default(),
        args(&[("alternate-exchange", s(&ae1))]),
    )
    .await
    .unwrap();
    declare(&ch, &q, FieldTable::default()).await;
    ch.queue_bind(
        q.as_str().into(),
        ae2.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let c = ch
        .basic_publish(
            x.as_str().into(),
            "nobody".into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            b"ae",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(c, Confirmation::Ack(None)), "routed through the alternates, so not returned: {c:?}");
    assert_eq!(get(&ch, &q).await.unwrap().data, b"ae");
    // A loop of alternates ends without routing.
    let (l1, l2) = (unique("loop1"), unique("loop2"));
    ch.exchange_declare(
        l1.as_str().into(),
        ExchangeKind::Direct,
        Default::default(),
        args(&[("alternate-exchange", s(&l2))]),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        l2.as_str().into(),
        ExchangeKind::Direct,
        Default::default(),
        args(&[("alternate-exchange", s(&l1))]),
    )
    .await
    .unwrap();
    let c = ch
        .basic_publish(
            l1.as_str().into(),
            "k".into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            b"lost",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(c, Confirmation::Ack(Some(_))), "unroutable through the loop, so returned: {c:?}");
}

#[tokio::test]
async fn quorum_queue_delivery_limit_and_declaration_rules() {
    let srv = Server::start();
    let (c, ch) = srv.channel().await;
    let (dead, q) = (unique("dead"), unique("qq"));
    declare(&ch, &dead, FieldTable::default()).await;
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions { durable: true, ..Default::default() },
        args(&[
            ("x-queue-type", s("quorum")),
            ("x-delivery-limit", AMQPValue::LongInt(2)),
            ("x-dead-letter-exchange", s("")),
            ("x-dead-letter-routing-key", s(&dead)),
        ]),
    )
    .await
    .unwrap();
    publish(&ch, "", &q, b"poison", BasicProperties::default()).await;
    // Delivered and requeued twice (with a growing x-delivery-count), then
    // the third requeue goes over the limit.
    for expected in [None, Some(1), Some(2)] {
        let m = ch.basic_get(q.as_str().into(), Default::default()).await.unwrap().expect("redelivered");
        let count = header(&m.delivery, "x-delivery-count").cloned();
        assert_eq!(count, expected.map(int), "x-delivery-count");
        m.delivery.nack(BasicNackOptions { requeue: true, multiple: false }).await.unwrap();
    }
    let d = wait_get(&ch, &dead).await;
    assert_eq!(d.data, b"poison");
    assert!(get(&ch, &q).await.is_none());
    let err = ch
        .queue_declare(
            unique("qq-transient").as_str().into(),
            Default::default(),
            args(&[("x-queue-type", s("quorum"))]),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(406));
    assert!(reply_text(&err).contains("invalid property 'non-durable'"), "{}", reply_text(&err));
    let _ = (c, ShortString::from("unused"), LongString::from("unused"));
}
